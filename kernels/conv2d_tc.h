// Convolutions on the tensor cores at a kernel level: raw device buffers, no conversion (a benchmark times these on
// 16-bit NHWC data), and the simple im2col path that the op-level precision stubs of layers/ops/conv2d.h keep beside
// the implicit-GEMM kernels. Semantics: cpu_reference/gemm.h (operands rounded to the type: TF32 by cvt.rna in the
// kernel, 16-bit tensors are already in their type; exact products, FP32 sums, the output rounded once).
//
//   conv2d_tc_fprop_nhwc_{tf32,bf16,fp16}_stub(ex, p, x, w, b, y)   (kernels/conv2d_tc_igemm.cu)
//       y[N][P][Q][K] = conv(x[N][H][W][C], w[K][R][S][C/g]) + b[K]: NHWC activations, KRSC filter, p's geometry
//       (stride, padding, dilation, groups). b is FP32 and may be null; it is read as a value of the output type
//       (rounded to it) and added to the FP32 sum before the output is rounded. Fast path (16-byte cp.async gather)
//       when C/g is a multiple of 8 (BF16/FP16) or 4 (TF32) and x is 16-byte aligned; any other shape runs the same
//       kernel with element loads for x. Block tile 128 x 32 when K/g <= 32, 128 x 64 when K/g <= 64, else
//       128 x 128 (the same sums).
//       Split-K where the output tiles are few (conv2d_tc_igemm_splits, from the shape only): FP32 partials in the
//       workspace (conv2d_tc_workspace_bytes; none needed without a split), summed in part order, the bias added
//       and the output rounded once by a second kernel. Deterministic: one fixed summation order per shape.
//   conv2d_tc_dgrad_nhwc_{tf32,bf16,fp16}_stub(ex, p, dy, w, dx)
//       dx[N][H][W][C] = the gradient of the convolution for dy[N][P][Q][K] and w[K][R][S][C/g]: an implicit GEMM
//       reduced over (r, s, k), one per stride phase of dx (stride_h x stride_w launches; each over the taps that
//       reach its pixels only, no zeros gathered; one at unit stride). Workspace: the filter rearranged per phase
//       as [g][c][r][s][k], then the split-K partials where it splits as fprop does
//       (conv2d_tc_workspace_bytes). cp.async gather when K/g is a multiple of 8 (16-bit) or 4 (TF32), element loads
//       otherwise. Block tile 128 x 32 when C/g <= 32, 128 x 64 when C/g <= 64, else
//       128 x 128.
//   conv2d_tc_wgrad_nhwc_{tf32,bf16,fp16}_stub(ex, p, x, dy, dw)
//       dw[K][R][S][C/g] = sum over n, p, q of dy x (the filter gradient, overwritten): split-K over N P Q in
//       conv2d_tc_wgrad_splits(prec, p) parts (fixed by the shape, not the device), FP32 partials in the workspace
//       summed in split order, rounded once. Operands staged by element loads (see kernels/conv2d_tc_igemm.cuh).
//   conv2d_tc_im2col_{forward,backward_data,backward_filter}_stub   (kernels/conv2d_tc_im2col.cu)
//       the simple kernels: FP32 NCHW tensors, im2col / col2im + the tensor-core GEMM, the same semantics, the
//       signatures of layers/ops/conv2d.h's *_precision_stub (which kernels/conv2d_tc_igemm.cu serves).
#pragma once
#include <algorithm>
#include <cstdint>
#include <numeric>  // std::gcd

#include "core/dispatch.h"
#include "core/float_formats.h"
#include "kernels/tc_gemm.h"  // tc_split_k_parts
#include "layers/ops/conv2d.h"

namespace fovea::ops {

inline constinit DispatchStub<void(const Exec&, const Conv2dParams& p, const float* x, const float* w, const float* b,
                                   float* y)>
    conv2d_tc_fprop_nhwc_tf32_stub{"conv2d_tc_fprop_nhwc_tf32"};
inline constinit DispatchStub<void(const Exec&, const Conv2dParams& p, const BFloat16* x, const BFloat16* w,
                                   const float* b, BFloat16* y)>
    conv2d_tc_fprop_nhwc_bf16_stub{"conv2d_tc_fprop_nhwc_bf16"};
inline constinit DispatchStub<void(const Exec&, const Conv2dParams& p, const Half* x, const Half* w, const float* b,
                                   Half* y)>
    conv2d_tc_fprop_nhwc_fp16_stub{"conv2d_tc_fprop_nhwc_fp16"};

inline constinit DispatchStub<void(const Exec&, Precision, const Conv2dParams&, const float* x, const float* w,
                                   const float* b, float* y)>
    conv2d_tc_im2col_forward_stub{"conv2d_tc_im2col_forward"};
inline constinit DispatchStub<void(const Exec&, Precision, const Conv2dParams&, const float* dy, const float* w,
                                   float* dx)>
    conv2d_tc_im2col_backward_data_stub{"conv2d_tc_im2col_backward_data"};
inline constinit DispatchStub<void(const Exec&, Precision, const Conv2dParams&, const float* x, const float* dy,
                                   float* dw)>
    conv2d_tc_im2col_backward_filter_stub{"conv2d_tc_im2col_backward_filter"};

inline constinit DispatchStub<void(const Exec&, const Conv2dParams& p, const float* dy, const float* w, float* dx)>
    conv2d_tc_dgrad_nhwc_tf32_stub{"conv2d_tc_dgrad_nhwc_tf32"};
inline constinit DispatchStub<void(const Exec&, const Conv2dParams& p, const BFloat16* dy, const BFloat16* w,
                                   BFloat16* dx)>
    conv2d_tc_dgrad_nhwc_bf16_stub{"conv2d_tc_dgrad_nhwc_bf16"};
inline constinit DispatchStub<void(const Exec&, const Conv2dParams& p, const Half* dy, const Half* w, Half* dx)>
    conv2d_tc_dgrad_nhwc_fp16_stub{"conv2d_tc_dgrad_nhwc_fp16"};

inline constinit DispatchStub<void(const Exec&, const Conv2dParams& p, const float* x, const float* dy, float* dw)>
    conv2d_tc_wgrad_nhwc_tf32_stub{"conv2d_tc_wgrad_nhwc_tf32"};
inline constinit DispatchStub<void(const Exec&, const Conv2dParams& p, const BFloat16* x, const BFloat16* dy,
                                   BFloat16* dw)>
    conv2d_tc_wgrad_nhwc_bf16_stub{"conv2d_tc_wgrad_nhwc_bf16"};
inline constinit DispatchStub<void(const Exec&, const Conv2dParams& p, const Half* x, const Half* dy, Half* dw)>
    conv2d_tc_wgrad_nhwc_fp16_stub{"conv2d_tc_wgrad_nhwc_fp16"};

// The parts of wgrad's N P Q reduction: enough blocks for ~264 (two per SM of a 132-SM H100) when the output has few
// 128 x 128 tiles (ResNet CIFAR: 1 to 5), at least 8 k-tiles of 128 bytes per part. A function of the shape only.
inline int64_t conv2d_tc_wgrad_splits(Precision prec, const Conv2dParams& p) {
  const int64_t bk = prec == Precision::tf32 ? 32 : 64;
  const int64_t ktiles = (p.N * p.P() * p.Q() + bk - 1) / bk;
  const int64_t tiles = (p.K_per_group() + 127) / 128 * ((p.C_per_group() * p.R * p.S + 127) / 128) * p.groups;
  return tc_split_k_parts(tiles, ktiles);  // kernels/tc_gemm.h
}

// The implicit-GEMM fprop's and dgrad's block tile width for `cols` GEMM columns per group (fprop: K/g, dgrad: C/g):
// 32 up to 32 columns, 64 up to 64, else 128 (kernels/conv2d_tc_igemm.cuh, conv_tile_n).
inline int64_t conv2d_tc_tile_n(int64_t cols) {
  return cols <= 32 ? 32 : cols <= 64 ? 64 : 128;
}

// The parts of the implicit-GEMM fprop's (op forward: reduction over R S C/g) or dgrad's (backward_data: over R S K/g,
// at a stride above 1 the largest stride phase's R' S' K/g) reduction: tc_split_k_parts of the output's block tiles
// (128 rows of N P Q, or N H W, by conv2d_tc_tile_n columns, per group) and its k-tiles of 128 bytes. Splits where the
// tiles are few and the reduction long: ResNet-9's 4 x 4 layers (512 -> 512, 3 x 3) at batch 1..8 have 4 tiles and 72
// BF16 k-tiles: 9 parts. 1 (no split) for ops other than forward and backward_data. A function of the shape only.
inline int64_t conv2d_tc_igemm_splits(ConvOp op, Precision prec, const Conv2dParams& p) {
  if (op != ConvOp::forward && op != ConvOp::backward_data) return 1;
  const bool f = op == ConvOp::forward;
  const int64_t bk = prec == Precision::tf32 ? 32 : 64;
  const int64_t rows = p.N * (f ? p.P() * p.Q() : p.H * p.W), cols = f ? p.K_per_group() : p.C_per_group();
  // dgrad reduces each stride phase over its own taps: at most ceil(R / step) of R, step = stride / gcd(stride, dil)
  auto taps = [f](int64_t R, int64_t stride, int64_t dil) {
    const int64_t step = f ? 1 : stride / std::gcd(stride, dil);
    return (R + step - 1) / step;
  };
  const int64_t kred = taps(p.R, p.stride_h, p.dil_h) * taps(p.S, p.stride_w, p.dil_w) *
                       (f ? p.C_per_group() : p.K_per_group()),
                tn = conv2d_tc_tile_n(cols);
  const int64_t tiles = (rows + 127) / 128 * ((cols + tn - 1) / tn) * p.groups;
  if (tiles == 0 || kred == 0) return 1;
  return tc_split_k_parts(tiles, (kred + bk - 1) / bk);  // kernels/tc_gemm.h
}

// The FP32 partials of a split fprop or dgrad: one output (y, or dx) per part; none without a split.
inline int64_t conv2d_tc_igemm_partial_floats(ConvOp op, Precision prec, const Conv2dParams& p) {
  const int64_t s = conv2d_tc_igemm_splits(op, prec, p);
  return s > 1 ? s * (op == ConvOp::forward ? p.y_size() : p.x_size()) : 0;
}

// Workspace bytes of the kernel-level stubs: fprop, its split's partials (none without a split); dgrad, the rearranged
// filter, then (from a 16-byte boundary) its split's partials; wgrad, its partials.
inline int64_t conv2d_tc_workspace_bytes(ConvOp op, Precision prec, const Conv2dParams& p) {
  const int64_t e = prec == Precision::tf32 ? 4 : 2;
  const int64_t partial = conv2d_tc_igemm_partial_floats(op, prec, p) * 4;
  if (op == ConvOp::backward_data) return (partial ? (p.w_size() * e + 15) / 16 * 16 : p.w_size() * e) + partial;
  if (op == ConvOp::backward_filter) return conv2d_tc_wgrad_splits(prec, p) * p.w_size() * 4;
  return partial;
}

}  // namespace fovea::ops
