#include "cpu_reference/filter2d.h"
#include "layers/ops/image_filters.h"

#include "cpu_reference/common.h"

namespace fovea::ref {
namespace {

void check_geometry(const char* op, int64_t H, int64_t W, int64_t R, int64_t S) {
  FOVEA_CHECK(H > 0 && W > 0, op, ": image size must be > 0, got ", H, "x", W);
  FOVEA_CHECK(R > 0 && S > 0 && R % 2 == 1 && S % 2 == 1, op, ": kernel size must be odd and > 0, got ", R, "x", S);
}

}  // namespace

void filter2d_forward(int64_t H, int64_t W, const float* x, int64_t R, int64_t S, const float* k, float* y) {
  const char* op = "filter2d_forward";
  check_geometry(op, H, W, R, S);
  detail::check_ptr(op, "x", x), detail::check_ptr(op, "k", k), detail::check_ptr(op, "y", y);
#pragma omp parallel for schedule(dynamic, detail::chunk_items(W* R* S)) if (H * W * R * S >= detail::kParallelGrain)
  for (int64_t i = 0; i < H; ++i)
    for (int64_t j = 0; j < W; ++j) {
      double s = 0.0;
      for (int64_t a = 0; a < R; ++a) {
        const int64_t h = i + R / 2 - a;
        if (h < 0 || h >= H) continue;
        for (int64_t b = 0; b < S; ++b) {
          const int64_t w = j + S / 2 - b;
          if (w >= 0 && w < W) s += double(k[a * S + b]) * double(x[h * W + w]);
        }
      }
      y[i * W + j] = float(s);
    }
}

void filter2d_backward_data(int64_t H, int64_t W, const float* dy, int64_t R, int64_t S, const float* k, float* dx) {
  const char* op = "filter2d_backward_data";
  check_geometry(op, H, W, R, S);
  detail::check_ptr(op, "dy", dy), detail::check_ptr(op, "k", k), detail::check_ptr(op, "dx", dx);
#pragma omp parallel for schedule(dynamic, detail::chunk_items(W* R* S)) if (H * W * R * S >= detail::kParallelGrain)
  for (int64_t m = 0; m < H; ++m)
    for (int64_t n = 0; n < W; ++n) {
      double s = 0.0;
      for (int64_t a = 0; a < R; ++a) {
        const int64_t i = m - R / 2 + a;
        if (i < 0 || i >= H) continue;
        for (int64_t b = 0; b < S; ++b) {
          const int64_t j = n - S / 2 + b;
          if (j >= 0 && j < W) s += double(k[a * S + b]) * double(dy[i * W + j]);
        }
      }
      dx[m * W + n] = float(s);
    }
}

void filter2d_backward_filter(int64_t H, int64_t W, const float* x, const float* dy, int64_t R, int64_t S, float* dk) {
  const char* op = "filter2d_backward_filter";
  check_geometry(op, H, W, R, S);
  detail::check_ptr(op, "x", x), detail::check_ptr(op, "dy", dy), detail::check_ptr(op, "dk", dk);
#pragma omp parallel for schedule(dynamic, detail::chunk_items(W* R* S)) if (H * W * R * S >= detail::kParallelGrain)
  for (int64_t ab = 0; ab < R * S; ++ab) {
    const int64_t a = ab / S, b = ab % S;
    double s = 0.0;
    for (int64_t i = 0; i < H; ++i) {
      const int64_t h = i + R / 2 - a;
      if (h < 0 || h >= H) continue;
      for (int64_t j = 0; j < W; ++j) {
        const int64_t w = j + S / 2 - b;
        if (w >= 0 && w < W) s += double(dy[i * W + j]) * double(x[h * W + w]);
      }
    }
    dk[ab] = float(s);
  }
}

void conv1d_same(int64_t n, const float* x, int64_t m, const float* k, float* y) {
  const char* op = "conv1d_same";
  FOVEA_CHECK(n > 0, op, ": argument 'n' must be > 0, got ", n);
  FOVEA_CHECK(m > 0 && m % 2 == 1, op, ": argument 'm' (kernel length) must be odd and > 0, got ", m);
  detail::check_ptr(op, "x", x), detail::check_ptr(op, "k", k), detail::check_ptr(op, "y", y);
  for (int64_t i = 0; i < n; ++i) {
    double s = 0.0;
    for (int64_t j = 0; j < m; ++j) {
      const int64_t t = i + m / 2 - j;
      if (t >= 0 && t < n) s += double(k[j]) * double(x[t]);
    }
    y[i] = float(s);
  }
}

// ---- the cpu slots of layers/ops/image_filters.h's dispatch stubs

namespace {

const bool registered = ops::filter2d_forward_stub.define(
    Slot::cpu, [](const Exec&, int64_t H, int64_t W, const float* x, int64_t R, int64_t S, const float* k, float* y) {
      filter2d_forward(H, W, x, R, S, k, y);
    });

}  // namespace

}  // namespace fovea::ref
