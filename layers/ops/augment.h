// Augmentation and normalisation of an image batch on the training device: x [N,C,H,W] uint8 (scaled by
// 1/255) or float, warps float [N,6] (one Affine per image, core/augment.h) or none, mean/stddev per
// channel or none: y = (warp(x) * scale - mean[c]) / stddev[c], float [N,C,H,W]. The per-pixel arithmetic is
// core/augment.h's, shared with the host loader, so every device gives the host loader's values.
//   reference : cpu_reference/augment.cpp     kernels : kernels/augment.cu
#pragma once
#include <cstdint>
#include <vector>

#include "core/augment.h"
#include "core/dispatch.h"
#include "core/hostdevice.h"
#include "core/tensor.h"

namespace fovea {

// The channel statistics travel by value (at most kMaxChannels), so the op needs no device buffer besides
// the images and warps.
struct AugmentParams {
  static constexpr int kMaxChannels = 8;
  int64_t N = 1, C = 1, H = 1, W = 1;
  float scale = 1.0f;  // 1/255 for uint8 pixels
  bool warp = false, normalize = false;
  float mean[kMaxChannels] = {}, stddev[kMaxChannels] = {};
  FOVEA_HD int64_t size() const { return N * C * H * W; }
  void validate(const char* op = "augment") const;
};

namespace ops {

// warps [N] (ignored unless p.warp); y must not alias x.
inline constinit DispatchStub<void(const Exec&, const AugmentParams&, const uint8_t* x, const Affine* warps, float* y)>
    augment_forward_u8_stub{"augment_forward(uint8)"};
inline constinit DispatchStub<void(const Exec&, const AugmentParams&, const float* x, const Affine* warps, float* y)>
    augment_forward_f32_stub{"augment_forward(float32)"};

struct Context;
Tensor augment_forward(Context& ctx, const Tensor& x, const Tensor& warps, const std::vector<float>& mean,
                       const std::vector<float>& stddev);
// Its kernel parameters (validated) for x of this shape and dtype.
AugmentParams augment_params(const Shape& x, DType dtype, bool warp, const std::vector<float>& mean,
                             const std::vector<float>& stddev);

}  // namespace ops
}  // namespace fovea
