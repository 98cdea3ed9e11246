// Augmentation and normalisation of an image batch; the emu/cuda slots of layers/ops/augment.h (semantics there).
//
// One thread per output pixel, grid-stride. Per pixel: 4 bilinear taps (1 byte each for uint8, mostly
// from L1/L2 since neighbouring threads read neighbouring pixels) and one 4-byte store; crop + flip
// warps take the integral path (1 tap). A CIFAR batch of 128 is 393,216 pixels, ~1.9 MB of traffic:
// microseconds on any GPU, so moving augmentation here takes it off the host's critical path and
// lets the loader send uint8 pixels (4x fewer bytes over PCIe than normalised floats).
#include "layers/ops/augment.h"

#include "kernels/common.cuh"
#include "kernels/reduce.cuh"  // grid_stride_blocks

namespace fovea::FOVEA_KERNEL_NS {
namespace {

constexpr int kAugmentBlock = 256;

template <typename T>
__global__ void augment_kernel(AugmentParams p, const T* __restrict__ x, const Affine* __restrict__ warps,
                               float* __restrict__ y) {
  const int64_t n = p.size(), plane = p.H * p.W, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const int64_t xx = i % p.W, yy = (i / p.W) % p.H, nc = i / plane, c = nc % p.C;
    const Affine A = p.warp ? warps[nc / p.C] : Affine{};
    y[i] = augmented_pixel(x + nc * plane, p.H, p.W, A, p.warp, p.warp && affine_is_integral(A), xx, yy, p.scale,
                           p.normalize, p.mean[c], p.stddev[c]);
  }
}

template <typename T>
void run(const Exec& ex, const AugmentParams& p, const T* x, const Affine* warps, float* y) {
  const char* op = "augment_forward";
  p.validate(op);
  if (p.size() == 0) return;
  check_ptr(op, "x", x), check_ptr(op, "y", y);
  FOVEA_CHECK(!p.warp || warps, op, ": argument 'warps' must not be null when p.warp is set");
  FOVEA_CHECK(static_cast<const void*>(x) != static_cast<const void*>(y), op, ": 'y' must not alias 'x'");
  launch<augment_kernel<T>>(op, dim3(grid_stride_blocks(p.size(), kAugmentBlock)), dim3(kAugmentBlock), 0, ex.stream, p,
                            x, warps, y);
}

}  // namespace

void augment_forward(const Exec& ex, const AugmentParams& p, const uint8_t* x, const Affine* warps, float* y) {
  run(ex, p, x, warps, y);
}
void augment_forward(const Exec& ex, const AugmentParams& p, const float* x, const Affine* warps, float* y) {
  run(ex, p, x, warps, y);
}

const bool registered = ops::augment_forward_u8_stub.define(kThisSlot, augment_forward) &&
                        ops::augment_forward_f32_stub.define(kThisSlot, augment_forward);

}  // namespace fovea::FOVEA_KERNEL_NS
