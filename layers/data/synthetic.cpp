// Built-in synthetic datasets: "shapes" (10 classes of 32x32 RGB images) and "rings" (2-D points).
// Everything is drawn from Philox words of (seed, split stream, index), so every machine makes the
// same images.
#include <algorithm>
#include <cmath>

#include "core/philox.h"
#include "layers/data/data.h"

namespace fovea::data {

const char* const kShapeNames[10] = {"circle", "square", "triangle", "cross",   "ring",
                                     "h-bars", "v-bars", "diagonal", "ellipse", "plus"};

namespace {

constexpr int kSide = 32;
constexpr uint64_t kWordsPerImage = 64;  // parameter words per image (indices i*64 .. i*64+63)

// Streams (Philox offsets) per split: parameters, and pixel noise.
uint64_t param_stream(Split s) {
  return s == Split::train ? 0x5AA9E5'0001ull : 0x5AA9E5'0002ull;
}
uint64_t noise_stream(Split s) {
  return s == Split::train ? 0x5AA9E5'0011ull : 0x5AA9E5'0012ull;
}
uint64_t rings_stream(Split s) {
  return s == Split::train ? 0x219C5'0001ull : 0x219C5'0002ull;
}

float luminance(const float c[3]) {
  return 0.299f * c[0] + 0.587f * c[1] + 0.114f * c[2];
}

// A bar of half-length 1 along u and half-width w, as a distance-like value (0 on the edge).
float bar(float u, float v, float len, float w) {
  return std::max(std::fabs(u) - len, std::fabs(v) - w);
}

// Signed distance-like value of shape `cls` at local coordinates (u, v) (shape radius ~ 1):
// negative inside. Exact distances are not needed: coverage is clamp(0.5 - d * size).
float shape_distance(int cls, float u, float v) {
  const float r = std::sqrt(u * u + v * v);
  const float s = 0.70710678f;
  switch (cls) {
    case 0: return r - 0.95f;                                    // circle
    case 1: return std::max(std::fabs(u), std::fabs(v)) - 0.8f;  // square
    case 2: {                                                    // triangle, a vertex pointing up
      const float a = v * -1.0f;                                 // image y grows downwards
      const float e1 = -a, e2 = 0.8660254f * u + 0.5f * a, e3 = -0.8660254f * u + 0.5f * a;
      return std::max(e1, std::max(e2, e3)) - 0.5f;
    }
    case 3: return std::min(bar(s * (u + v), s * (v - u), 1.0f, 0.2f), bar(s * (u - v), s * (u + v), 1.0f, 0.2f));  // X
    case 4: return std::fabs(r - 0.75f) - 0.22f;  // ring
    case 5: {                                     // three horizontal bars
      const float band = std::min(std::fabs(v + 0.65f), std::min(std::fabs(v), std::fabs(v - 0.65f))) - 0.17f;
      return std::max(std::fabs(u) - 0.9f, band);
    }
    case 6: {  // three vertical bars
      const float band = std::min(std::fabs(u + 0.65f), std::min(std::fabs(u), std::fabs(u - 0.65f))) - 0.17f;
      return std::max(std::fabs(v) - 0.9f, band);
    }
    case 7: return bar(s * (u - v), s * (u + v), 1.1f, 0.2f);  // one diagonal bar, "\" direction
    case 8: {                                                  // ellipse 1 x 0.5
      const float q = std::sqrt(u * u + 4.0f * v * v);
      return (q - 1.0f) * 0.5f;
    }
    default: return std::min(bar(u, v, 1.0f, 0.2f), bar(v, u, 1.0f, 0.2f));  // plus
  }
}

void render_shape(uint64_t seed, Split split, int64_t i, int cls, uint8_t* out) {
  const uint64_t ps = param_stream(split);
  const auto U = [&](int k) { return philox_uniform(seed, ps, uint64_t(i) * kWordsPerImage + uint64_t(k)); };
  float bg[3], fg[3], grad[3];
  for (int c = 0; c < 3; ++c) bg[c] = U(c);
  for (int c = 0; c < 3; ++c) grad[c] = (U(3 + c) - 0.5f) * 0.5f;  // per-channel gradient amplitude
  const float gangle = 6.2831853f * U(6);
  const float gx = std::cos(gangle), gy = std::sin(gangle);
  // A foreground colour with enough contrast to the background: the first of 6 draws, else inverted.
  bool found = false;
  for (int t = 0; t < 6 && !found; ++t) {
    for (int c = 0; c < 3; ++c) fg[c] = U(8 + 3 * t + c);
    found = std::fabs(luminance(fg) - luminance(bg)) >= 0.25f;
  }
  if (!found)
    for (int c = 0; c < 3; ++c) fg[c] = 1.0f - bg[c];
  const float size = 5.0f + 6.0f * U(26);
  const float cx = 0.9f * size + U(27) * (kSide - 1.8f * size), cy = 0.9f * size + U(28) * (kSide - 1.8f * size);
  const float angle = (U(29) - 0.5f) * 2.0f * 0.35f;  // +-20 degrees
  const float ca = std::cos(angle), sa = std::sin(angle);
  const float noise = 0.02f + 0.10f * U(30);
  // Up to two distractor dots of radius 1 to 2.5 pixels.
  const int ndots = int(U(31) * 3.0f);
  float dots[2][6];
  for (int d = 0; d < 2; ++d) {
    dots[d][0] = U(32 + 6 * d) * kSide;
    dots[d][1] = U(33 + 6 * d) * kSide;
    dots[d][2] = 1.0f + 1.5f * U(34 + 6 * d);
    for (int c = 0; c < 3; ++c) dots[d][3 + c] = U(35 + 6 * d + c);
  }

  const uint64_t ns = noise_stream(split);
  for (int y = 0; y < kSide; ++y)
    for (int x = 0; x < kSide; x += 4) {
      // One Philox block gives the noise of 4 pixels of one row for the 3 channels (12 words: 3 blocks).
      float nz[3][4];
      for (int c = 0; c < 3; ++c) {
        const uint64_t block = (uint64_t(i) * 3 + c) * (kSide * kSide / 4) + uint64_t(y * kSide + x) / 4;
        const Philox4 r =
            philox4x32(Philox4{{uint32_t(block), uint32_t(block >> 32), uint32_t(ns), uint32_t(ns >> 32)}},
                       uint32_t(seed), uint32_t(seed >> 32));
        for (int k = 0; k < 4; ++k) nz[c][k] = (float(r.v[k] >> 8) * (1.0f / 16777216.0f) - 0.5f) * 3.4641016f;
      }
      for (int k = 0; k < 4; ++k) {
        const float px = float(x + k) + 0.5f, py = float(y) + 0.5f;
        const float dx = px - cx, dy = py - cy;
        const float u = (ca * dx + sa * dy) / size, v = (-sa * dx + ca * dy) / size;
        const float cov = std::clamp(0.5f - shape_distance(cls, u, v) * size, 0.0f, 1.0f);
        const float g = (gx * (px - 16.0f) + gy * (py - 16.0f)) / 16.0f;
        for (int c = 0; c < 3; ++c) {
          float val = bg[c] + grad[c] * g;
          val = val * (1.0f - cov) + fg[c] * cov;
          for (int d = 0; d < ndots; ++d) {
            const float ex = px - dots[d][0], ey = py - dots[d][1];
            const float dc = std::clamp(dots[d][2] + 0.5f - std::sqrt(ex * ex + ey * ey), 0.0f, 1.0f);
            val = val * (1.0f - dc) + dots[d][3 + c] * dc;
          }
          val += noise * nz[c][k];
          const float q = std::clamp(val, 0.0f, 1.0f) * 255.0f + 0.5f;
          out[(c * kSide + y) * kSide + x + k] = uint8_t(q);
        }
      }
    }
}

}  // namespace

Dataset make_shapes(int64_t n, Split split, uint64_t seed) {
  FOVEA_CHECK(n >= 0, "make_shapes: argument 'n' must be >= 0, got ", n);
  Dataset ds;
  ds.images = Tensor::empty({n, 3, kSide, kSide}, DType::uint8, kCPU);
  ds.labels = Tensor::empty({n}, DType::int64, kCPU);
  ds.class_names.assign(kShapeNames, kShapeNames + 10);
  ds.name = cat("shapes/", split_name(split));
  uint8_t* img = ds.images.data<uint8_t>();
  int64_t* lab = ds.labels.data<int64_t>();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    lab[i] = i % 10;
    render_shape(seed, split, i, int(i % 10), img + i * 3 * kSide * kSide);
  }
  return ds;
}

Dataset make_rings(int64_t n, Split split, uint64_t seed, const RingsOptions& o) {
  FOVEA_CHECK(n >= 0, "make_rings: argument 'n' must be >= 0, got ", n);
  FOVEA_CHECK(o.r_inner > 0 && o.r_ring_lo >= 0 && o.r_ring_hi > o.r_ring_lo && o.noise >= 0,
              "make_rings: radii must satisfy r_inner > 0, 0 <= r_ring_lo < r_ring_hi and noise >= 0, got ", o.r_inner,
              ", ", o.r_ring_lo, ", ", o.r_ring_hi, ", ", o.noise);
  Dataset ds;
  ds.images = Tensor::empty({n, 2}, DType::float32, kCPU);
  ds.labels = Tensor::empty({n}, DType::int64, kCPU);
  ds.class_names = {"inner", "ring"};
  ds.name = cat("rings/", split_name(split));
  float* p = ds.images.data<float>();
  int64_t* lab = ds.labels.data<int64_t>();
  const uint64_t st = rings_stream(split);
  for (int64_t i = 0; i < n; ++i) {
    const int cls = int(i % 2);
    const float u = philox_uniform(seed, st, uint64_t(i) * 8), t = philox_uniform(seed, st, uint64_t(i) * 8 + 1);
    // Uniform in area: r^2 uniform between the squared radii.
    const double r2lo = cls ? double(o.r_ring_lo) * o.r_ring_lo : 0.0;
    const double r2hi = cls ? double(o.r_ring_hi) * o.r_ring_hi : double(o.r_inner) * o.r_inner;
    const double r = std::sqrt(r2lo + u * (r2hi - r2lo)), a = 6.283185307179586 * t;
    p[2 * i] = float(r * std::cos(a)) + o.noise * philox_normal(seed, st, uint64_t(i) * 8 + 4);
    p[2 * i + 1] = float(r * std::sin(a)) + o.noise * philox_normal(seed, st, uint64_t(i) * 8 + 5);
    lab[i] = cls;
  }
  return ds;
}

Dataset load_dataset(const std::string& name, const std::string& dir, Split split) {
  if (name == "mnist") return load_mnist(dir, split);
  if (name == "fashion-mnist" || name == "fashion_mnist") return load_fashion_mnist(dir, split);
  if (name == "cifar10" || name == "cifar-10") return load_cifar10(dir, split);
  if (name == "cifar100" || name == "cifar-100") return load_cifar100(dir, split);
  if (name == "shapes") return make_shapes(split == Split::train ? 10000 : 2000, split, 0);
  if (name == "rings") return make_rings(split == Split::train ? 2000 : 1000, split, 0);
  FOVEA_FAIL("load_dataset: unknown dataset '", name, "' (mnist, fashion-mnist, cifar10, cifar100, shapes, rings)");
}

}  // namespace fovea::data
