// THE shared conv and pooling shape lists (CUTLASS-style): edge cases every conv implementation
// (reference, kernels, cuDNN backend, benchmarks) is checked on, and CIFAR-sized shapes for speed. The op
// registry's samples, the kernel tests and `fovea bench` all read them from here.
#pragma once
#include <ostream>
#include <string>
#include <vector>

#include "layers/ops/conv2d.h"
#include "layers/ops/pooling.h"

namespace fovea::shapes {

struct ConvShape {
  std::string name;
  Conv2dParams p;
};

struct PoolShape {
  std::string name;
  Pool2dParams p;
};

// gtest prints parameters with these (by name and geometry, not as bytes).
inline void PrintTo(const ConvShape& s, std::ostream* os) {
  *os << s.name << " " << s.p.str();
}
inline void PrintTo(const PoolShape& s, std::ostream* os) {
  *os << s.name << " " << s.p.str();
}

// Conv2dParams from the usual argument order; square stride/pad/dilation unless given per axis.
inline Conv2dParams conv_params(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t S,
                                int64_t stride = 1, int64_t pad = 0, int64_t dil = 1, int64_t groups = 1) {
  Conv2dParams p;
  p.N = N, p.C = C, p.H = H, p.W = W, p.K = K, p.R = R, p.S = S;
  p.stride_h = p.stride_w = stride;
  p.pad_h = p.pad_w = pad;
  p.dil_h = p.dil_w = dil;
  p.groups = groups;
  return p;
}

// Small edge-case shapes: fast enough for a direct nested-loop reference and the emulator.
inline std::vector<ConvShape> conv_edge_shapes() {
  std::vector<ConvShape> v = {
      {"n1_c1_k1_3x3", conv_params(1, 1, 5, 5, 1, 3, 3)},
      {"n1_c1_1x1", conv_params(1, 1, 7, 7, 1, 1, 1)},
      {"pointwise_1x1", conv_params(2, 8, 6, 5, 12, 1, 1)},
      {"odd_3x3_pad1", conv_params(2, 3, 7, 9, 5, 3, 3, 1, 1)},
      {"stride2_3x3_pad1", conv_params(2, 4, 11, 11, 6, 3, 3, 2, 1)},
      {"stride3_3x3", conv_params(2, 3, 13, 10, 4, 3, 3, 3, 0)},
      {"stride2_1x1", conv_params(2, 6, 9, 9, 4, 1, 1, 2, 0)},
      {"pad0_5x5", conv_params(1, 2, 9, 9, 3, 5, 5, 1, 0)},
      {"pad2_5x5", conv_params(2, 3, 9, 8, 4, 5, 5, 1, 2)},
      {"pad3_7x7", conv_params(1, 3, 10, 10, 4, 7, 7, 1, 3)},
      {"pad3_7x7_stride2", conv_params(2, 3, 15, 17, 8, 7, 7, 2, 3)},
      {"pad_larger_than_needed", conv_params(1, 2, 4, 4, 3, 3, 3, 1, 3)},
      {"dilation2_3x3", conv_params(2, 3, 11, 11, 4, 3, 3, 1, 2, 2)},
      {"dilation2_stride2", conv_params(1, 4, 12, 13, 4, 3, 3, 2, 1, 2)},
      {"groups2", conv_params(2, 4, 8, 8, 6, 3, 3, 1, 1, 1, 2)},
      {"groups4_stride2", conv_params(1, 8, 9, 9, 8, 3, 3, 2, 1, 1, 4)},
      {"depthwise_3x3", conv_params(2, 8, 10, 10, 8, 3, 3, 1, 1, 1, 8)},
      {"depthwise_mult2_5x5", conv_params(1, 4, 9, 9, 8, 5, 5, 1, 2, 1, 4)},
      {"depthwise_stride2", conv_params(2, 6, 11, 11, 6, 3, 3, 2, 1, 1, 6)},
      {"kernel_equals_input", conv_params(2, 3, 5, 5, 4, 5, 5)},
      {"output_1x1_pad", conv_params(1, 2, 3, 3, 2, 5, 5, 1, 1)},
      {"size_17x33", conv_params(1, 5, 17, 33, 7, 3, 3, 1, 1)},
      {"size_65x31", conv_params(1, 3, 65, 31, 5, 3, 3, 1, 1)},
      {"channels_33_k_65", conv_params(1, 33, 7, 7, 65, 3, 3, 1, 1)},
      {"n3_channels_17", conv_params(3, 17, 6, 6, 19, 3, 3, 1, 1)},
      {"n19_uneven_batch", conv_params(19, 3, 6, 6, 4, 3, 3, 1, 1)},
      {"n40_several_images_per_gemm", conv_params(40, 2, 5, 5, 3, 3, 3, 1, 1)},
      {"pointwise_n37", conv_params(37, 4, 3, 5, 6, 1, 1)},
      {"wide_1x64", conv_params(2, 2, 1, 64, 3, 1, 3, 1, 0)},
      {"tall_40x1", conv_params(2, 2, 40, 1, 3, 3, 1, 1, 0)},
  };
  // Non-square kernels, strides, paddings, dilations.
  Conv2dParams a = conv_params(2, 3, 10, 12, 4, 3, 5);
  a.pad_h = 1, a.pad_w = 2;
  v.push_back({"kernel_3x5_pad1x2", a});
  Conv2dParams b = conv_params(1, 2, 9, 14, 3, 1, 7);
  b.stride_h = 1, b.stride_w = 2, b.pad_w = 3;
  v.push_back({"kernel_1x7_stride1x2", b});
  Conv2dParams c = conv_params(2, 4, 13, 11, 6, 5, 3, 1, 0, 1, 2);
  c.stride_h = 3, c.stride_w = 2, c.pad_h = 2, c.pad_w = 1, c.dil_h = 1, c.dil_w = 2;
  v.push_back({"mixed_anisotropic_groups2", c});
  Conv2dParams d = conv_params(1, 3, 8, 19, 2, 7, 1);
  d.pad_h = 3;
  v.push_back({"kernel_7x1_pad3x0", d});
  return v;
}

// CIFAR-sized layers (batch 32-128, 32x32/16x16/8x8, 16-256 channels): for speed and big-shape checks.
inline std::vector<ConvShape> conv_cifar_shapes() {
  return {
      {"cifar_conv1_3to16_32x32_n128", conv_params(128, 3, 32, 32, 16, 3, 3, 1, 1)},
      {"cifar_16to32_32x32_n64", conv_params(64, 16, 32, 32, 32, 3, 3, 1, 1)},
      {"cifar_32to64_16x16_s2_n64", conv_params(64, 32, 32, 32, 64, 3, 3, 2, 1)},
      {"cifar_64to64_16x16_n64", conv_params(64, 64, 16, 16, 64, 3, 3, 1, 1)},
      {"cifar_64to128_8x8_n128", conv_params(128, 64, 8, 8, 128, 3, 3, 1, 1)},
      {"cifar_128to256_8x8_n32", conv_params(32, 128, 8, 8, 256, 3, 3, 1, 1)},
      {"cifar_256to256_8x8_n32", conv_params(32, 256, 8, 8, 256, 3, 3, 1, 1)},
      {"cifar_1x1_128to256_8x8_n64", conv_params(64, 128, 8, 8, 256, 1, 1)},
      {"cifar_depthwise_64_16x16_n64", conv_params(64, 64, 16, 16, 64, 3, 3, 1, 1, 1, 64)},
  };
}

inline Pool2dParams pool_params(int64_t N, int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw, int64_t sh,
                                int64_t sw, int64_t ph = 0, int64_t pw = 0, bool count_include_pad = true) {
  Pool2dParams p;
  p.N = N, p.C = C, p.H = H, p.W = W;
  p.kernel_h = kh, p.kernel_w = kw, p.stride_h = sh, p.stride_w = sw, p.pad_h = ph, p.pad_w = pw;
  p.count_include_pad = count_include_pad;
  return p;
}

// Pooling edge cases: overlapping windows, padding, odd sizes, windows that drop the last row.
inline std::vector<PoolShape> pool_shapes() {
  return {
      {"n1_c1_2x2_s2", pool_params(1, 1, 4, 4, 2, 2, 2, 2)},
      {"2x2_s2_odd_input", pool_params(2, 3, 7, 9, 2, 2, 2, 2)},
      {"3x3_s2_overlap", pool_params(2, 3, 9, 9, 3, 3, 2, 2)},
      {"3x3_s1_pad1", pool_params(1, 4, 6, 7, 3, 3, 1, 1, 1, 1)},
      {"3x3_s2_pad1", pool_params(2, 2, 11, 10, 3, 3, 2, 2, 1, 1)},
      {"3x3_s2_pad1_no_pad_count", pool_params(2, 2, 11, 10, 3, 3, 2, 2, 1, 1, false)},
      {"2x3_s1x2_pad1x0", pool_params(1, 3, 8, 9, 2, 3, 1, 2, 1, 0)},
      {"5x5_s3_pad2", pool_params(1, 2, 13, 12, 5, 5, 3, 3, 2, 2)},
      {"5x5_s3_pad2_no_pad_count", pool_params(1, 2, 13, 12, 5, 5, 3, 3, 2, 2, false)},
      {"global_like_6x6", pool_params(2, 5, 6, 6, 6, 6, 1, 1)},
      {"cifar_2x2_s2_n64_c64_32x32", pool_params(64, 64, 32, 32, 2, 2, 2, 2)},
  };
}

}  // namespace fovea::shapes
