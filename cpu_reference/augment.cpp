#include "cpu_reference/augment.h"
#include "layers/ops/augment.h"

#include "core/error.h"

namespace fovea::ref {
namespace {

template <typename T>
void run(const AugmentParams& p, const T* x, const Affine* warps, float* y) {
  const char* op = "augment_forward";
  p.validate(op);
  if (p.size() == 0) return;
  FOVEA_CHECK(x && y, op, ": arguments 'x' and 'y' must not be null");
  FOVEA_CHECK(!p.warp || warps, op, ": argument 'warps' must not be null when p.warp is set");
  const int64_t plane = p.H * p.W;
#pragma omp parallel for schedule(static)
  for (int64_t nc = 0; nc < p.N * p.C; ++nc) {
    const Affine A = p.warp ? warps[nc / p.C] : Affine{};
    const bool integral = p.warp && affine_is_integral(A);
    const int64_t c = nc % p.C;
    for (int64_t yy = 0; yy < p.H; ++yy)
      for (int64_t xx = 0; xx < p.W; ++xx)
        y[nc * plane + yy * p.W + xx] = augmented_pixel(x + nc * plane, p.H, p.W, A, p.warp, integral, xx, yy, p.scale,
                                                        p.normalize, p.mean[c], p.stddev[c]);
  }
}

}  // namespace

void augment_forward(const AugmentParams& p, const uint8_t* x, const Affine* warps, float* y) {
  run(p, x, warps, y);
}
void augment_forward(const AugmentParams& p, const float* x, const Affine* warps, float* y) {
  run(p, x, warps, y);
}

// ---- the cpu slots of layers/ops/augment.h's dispatch stubs

namespace {

const bool registered =
    ops::augment_forward_u8_stub.define(Slot::cpu, [](const Exec&, const AugmentParams& p, const uint8_t* x,
                                                      const Affine* w, float* y) { augment_forward(p, x, w, y); }) &&
    ops::augment_forward_f32_stub.define(Slot::cpu, [](const Exec&, const AugmentParams& p, const float* x,
                                                       const Affine* w, float* y) { augment_forward(p, x, w, y); });

}  // namespace

}  // namespace fovea::ref
