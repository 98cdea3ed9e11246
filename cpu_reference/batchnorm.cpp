#include "cpu_reference/batchnorm.h"
#include "layers/ops/batchnorm.h"

#include <cmath>

#include "cpu_reference/common.h"

namespace fovea::ref {

using detail::check_ptr;

void batchnorm2d_forward(const BatchNormParams& p, const float* x, const float* gamma, const float* beta,
                         float* running_mean, float* running_var, float* y, float* save_mean, float* save_invstd) {
  const char* op = "batchnorm2d_forward";
  p.validate(op);
  check_ptr(op, "x", x), check_ptr(op, "y", y);
  FOVEA_CHECK((running_mean == nullptr) == (running_var == nullptr), op,
              ": arguments 'running_mean' and 'running_var' must be both given or both null");
  FOVEA_CHECK(p.training || running_mean, op, ": eval mode needs 'running_mean' and 'running_var', got null");
  const int64_t C = p.C, HW = p.H * p.W, M = p.N * HW;
#pragma omp parallel for schedule(dynamic, 1) if (p.x_size() >= detail::kParallelGrain)
  for (int64_t c = 0; c < C; ++c) {
    double mean, invstd;
    if (p.training) {
      double s = 0.0;
      for (int64_t n = 0; n < p.N; ++n) s += detail::sum_double(x + (n * C + c) * HW, HW);
      mean = s / double(M);
      double ss = 0.0;  // two passes: no cancellation in E[x^2] - E[x]^2
      for (int64_t n = 0; n < p.N; ++n) {
        const float* xp = x + (n * C + c) * HW;
        for (int64_t i = 0; i < HW; ++i) ss += (double(xp[i]) - mean) * (double(xp[i]) - mean);
      }
      const double var = ss / double(M);
      invstd = 1.0 / std::sqrt(var + p.eps);
      if (running_mean) {
        running_mean[c] = float((1.0 - p.momentum) * double(running_mean[c]) + p.momentum * mean);
        running_var[c] =
            float((1.0 - p.momentum) * double(running_var[c]) + p.momentum * var * double(M) / double(M - 1));
      }
    } else {
      mean = running_mean[c];
      invstd = 1.0 / std::sqrt(double(running_var[c]) + p.eps);
    }
    if (save_mean) save_mean[c] = float(mean);
    if (save_invstd) save_invstd[c] = float(invstd);
    const double g = gamma ? double(gamma[c]) : 1.0, b = beta ? double(beta[c]) : 0.0;
    const double scale = g * invstd, shift = b - mean * scale;
    for (int64_t n = 0; n < p.N; ++n) {
      const float* xp = x + (n * C + c) * HW;
      float* yp = y + (n * C + c) * HW;
      for (int64_t i = 0; i < HW; ++i) yp[i] = float(double(xp[i]) * scale + shift);
    }
  }
}

void batchnorm2d_backward(const BatchNormParams& p, const float* x, const float* dy, const float* gamma,
                          const float* save_mean, const float* save_invstd, float* dx, float* dgamma, float* dbeta) {
  const char* op = "batchnorm2d_backward";
  p.validate(op);
  check_ptr(op, "x", x), check_ptr(op, "dy", dy), check_ptr(op, "save_mean", save_mean);
  check_ptr(op, "save_invstd", save_invstd);
  FOVEA_CHECK(dx || dgamma || dbeta, op, ": arguments 'dx', 'dgamma' and 'dbeta' are all null");
  const int64_t C = p.C, HW = p.H * p.W, M = p.N * HW;
#pragma omp parallel for schedule(dynamic, 1) if (p.x_size() >= detail::kParallelGrain)
  for (int64_t c = 0; c < C; ++c) {
    const double mean = save_mean[c], invstd = save_invstd[c], g = gamma ? double(gamma[c]) : 1.0;
    double sum_dy = 0.0, sum_dy_xhat = 0.0;
    for (int64_t n = 0; n < p.N; ++n) {
      const float *xp = x + (n * C + c) * HW, *gp = dy + (n * C + c) * HW;
      for (int64_t i = 0; i < HW; ++i) {
        sum_dy += gp[i];
        sum_dy_xhat += double(gp[i]) * (double(xp[i]) - mean) * invstd;
      }
    }
    if (dgamma) dgamma[c] = float(sum_dy_xhat);
    if (dbeta) dbeta[c] = float(sum_dy);
    if (!dx) continue;
    for (int64_t n = 0; n < p.N; ++n) {
      const float *xp = x + (n * C + c) * HW, *gp = dy + (n * C + c) * HW;
      float* dp = dx + (n * C + c) * HW;
      if (p.training) {
        // dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat))
        const double k = g * invstd, mdy = sum_dy / double(M), mdx = sum_dy_xhat / double(M);
        for (int64_t i = 0; i < HW; ++i) {
          const double xhat = (double(xp[i]) - mean) * invstd;
          dp[i] = float(k * (double(gp[i]) - mdy - xhat * mdx));
        }
      } else {
        const float k = float(g * invstd);
        for (int64_t i = 0; i < HW; ++i) dp[i] = gp[i] * k;
      }
    }
  }
}

// ---- the cpu slots of layers/ops/batchnorm.h's dispatch stubs

namespace {

const bool registered =
    ops::batchnorm2d_forward_stub.define(
        Slot::cpu,
        [](const Exec&, const BatchNormParams& p, const float* x, const float* gamma, const float* beta, float* rm,
           float* rv, float* y, float* sm, float* si) { batchnorm2d_forward(p, x, gamma, beta, rm, rv, y, sm, si); }) &&
    ops::batchnorm2d_backward_stub.define(
        Slot::cpu, [](const Exec&, const BatchNormParams& p, const float* x, const float* dy, const float* gamma,
                      const float* sm, const float* si, float* dx, float* dgamma,
                      float* dbeta) { batchnorm2d_backward(p, x, dy, gamma, sm, si, dx, dgamma, dbeta); });

}  // namespace

}  // namespace fovea::ref
