// The per-pixel arithmetic of data augmentation, shared by the host loader (layers/data/transform.cpp),
// the CPU reference (cpu_reference/augment.cpp) and the kernel (kernels/augment.cu): one definition, so
// every device warps and normalises an image with the same float expressions.
#pragma once
#include <cmath>
#include <cstdint>

#include "core/hostdevice.h"

namespace fovea {

// Output pixel (x, y) reads the source at (a00 x + a01 y + a02, a10 x + a11 y + a12).
struct Affine {
  float a00 = 1, a01 = 0, a02 = 0, a10 = 0, a11 = 1, a12 = 0;
};

// Flips and whole-pixel shifts (the usual crop + flip recipe): source coordinates are integers, so the
// pixels are read directly, without the four bilinear taps (same values, 4x less work).
FOVEA_HD_INLINE bool affine_is_integral(const Affine& A) {
  return A.a01 == 0 && A.a10 == 0 && (A.a00 == 1 || A.a00 == -1) && A.a11 == 1 && A.a02 == floorf(A.a02) &&
         A.a12 == floorf(A.a12);
}

// Bilinear sample of one H x W plane at (sx, sy), 0 outside; `scale` converts the stored value.
template <typename T>
FOVEA_HD_INLINE float sample_bilinear(const T* plane, int64_t H, int64_t W, float sx, float sy, float scale) {
  const float fx = floorf(sx), fy = floorf(sy);
  const float tx = sx - fx, ty = sy - fy;
  const int64_t x0 = int64_t(fx), y0 = int64_t(fy);
  float v = 0.0f;
  for (int dy = 0; dy < 2; ++dy)
    for (int dx = 0; dx < 2; ++dx) {
      const float w = (dx ? tx : 1.0f - tx) * (dy ? ty : 1.0f - ty);
      const int64_t x = x0 + dx, y = y0 + dy;
      if (w != 0.0f && x >= 0 && x < W && y >= 0 && y < H) v += w * (float(plane[y * W + x]) * scale);
    }
  return v;
}

// Output pixel (x, y) of one plane: stored value * scale, read through the warp A when `warp` (exactly
// when `integral`, see affine_is_integral), then (v - mean) / stddev when `normalize`.
template <typename T>
FOVEA_HD_INLINE float augmented_pixel(const T* plane, int64_t H, int64_t W, const Affine& A, bool warp, bool integral,
                                      int64_t x, int64_t y, float scale, bool normalize, float mean, float stddev) {
  float v;
  if (warp && integral) {
    const int64_t sx = int64_t(A.a00) * x + int64_t(A.a02), sy = y + int64_t(A.a12);
    v = sx >= 0 && sx < W && sy >= 0 && sy < H ? float(plane[sy * W + sx]) * scale : 0.0f;
  } else if (warp) {
    const float sx = A.a00 * float(x) + A.a01 * float(y) + A.a02;
    const float sy = A.a10 * float(x) + A.a11 * float(y) + A.a12;
    v = sample_bilinear(plane, H, W, sx, sy, scale);
  } else {
    v = float(plane[y * W + x]) * scale;
  }
  return normalize ? (v - mean) / stddev : v;
}

}  // namespace fovea
