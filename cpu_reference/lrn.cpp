#include "cpu_reference/lrn.h"
#include "layers/ops/lrn.h"

#include <algorithm>
#include <cmath>

#include "cpu_reference/common.h"

namespace fovea::ref {
namespace {

// s[c][hw] for one image, in double: a sliding window sum of squares over channels.
void lrn_scale(const LrnParams& p, const float* x, double* s) {
  const int64_t C = p.C, HW = p.H * p.W, before = p.size / 2, after = (p.size - 1) / 2;
  const double a = p.alpha / double(p.size);
  for (int64_t c = 0; c < C; ++c) {
    double* sc = s + c * HW;
    std::fill(sc, sc + HW, 0.0);
    const int64_t c0 = std::max<int64_t>(c - before, 0), c1 = std::min<int64_t>(c + after, C - 1);
    for (int64_t j = c0; j <= c1; ++j) {
      const float* xj = x + j * HW;
      for (int64_t i = 0; i < HW; ++i) sc[i] += double(xj[i]) * double(xj[i]);
    }
    for (int64_t i = 0; i < HW; ++i) sc[i] = p.k + a * sc[i];
  }
}

}  // namespace

void lrn_forward(const LrnParams& p, const float* x, float* y) {
  const char* op = "lrn_forward";
  p.validate(op);
  detail::check_ptr(op, "x", x), detail::check_ptr(op, "y", y);
  const int64_t CHW = p.C * p.H * p.W;
#pragma omp parallel for schedule(dynamic, 1) if (p.x_size() >= detail::kParallelGrain / 4)
  for (int64_t n = 0; n < p.N; ++n) {
    double* s = reinterpret_cast<double*>(detail::scratch(0, size_t(2 * CHW)));
    lrn_scale(p, x + n * CHW, s);
    for (int64_t i = 0; i < CHW; ++i) y[n * CHW + i] = float(double(x[n * CHW + i]) * std::pow(s[i], -p.beta));
  }
}

void lrn_backward(const LrnParams& p, const float* x, const float* dy, float* dx) {
  const char* op = "lrn_backward";
  p.validate(op);
  detail::check_ptr(op, "x", x), detail::check_ptr(op, "dy", dy), detail::check_ptr(op, "dx", dx);
  const int64_t C = p.C, HW = p.H * p.W, CHW = C * HW, before = p.size / 2, after = (p.size - 1) / 2;
  const double coef = 2.0 * p.alpha * p.beta / double(p.size);
#pragma omp parallel for schedule(dynamic, 1) if (p.x_size() >= detail::kParallelGrain / 4)
  for (int64_t n = 0; n < p.N; ++n) {
    double* s = reinterpret_cast<double*>(detail::scratch(0, size_t(2 * CHW)));
    double* t = reinterpret_cast<double*>(detail::scratch(1, size_t(2 * CHW)));  // dy x s^(-beta-1)
    const float *xn = x + n * CHW, *dyn = dy + n * CHW;
    lrn_scale(p, xn, s);
    for (int64_t i = 0; i < CHW; ++i) t[i] = double(dyn[i]) * double(xn[i]) * std::pow(s[i], -p.beta - 1.0);
    float* dxn = dx + n * CHW;
    for (int64_t c = 0; c < C; ++c) {
      // Channels j whose window contains c: j in [c - after, c + before].
      const int64_t j0 = std::max<int64_t>(c - after, 0), j1 = std::min<int64_t>(c + before, C - 1);
      for (int64_t i = 0; i < HW; ++i) {
        double acc = 0.0;
        for (int64_t j = j0; j <= j1; ++j) acc += t[j * HW + i];
        const int64_t ci = c * HW + i;
        dxn[ci] = float(double(dyn[ci]) * std::pow(s[ci], -p.beta) - coef * double(xn[ci]) * acc);
      }
    }
  }
}

// ---- the cpu slots of layers/ops/lrn.h's dispatch stubs

namespace {

const bool registered =
    ops::lrn_forward_stub.define(
        Slot::cpu, [](const Exec&, const LrnParams& p, const float* x, float* y) { lrn_forward(p, x, y); }) &&
    ops::lrn_backward_stub.define(Slot::cpu, [](const Exec&, const LrnParams& p, const float* x, const float* dy,
                                                float* dx) { lrn_backward(p, x, dy, dx); });

}  // namespace

}  // namespace fovea::ref
