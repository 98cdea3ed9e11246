// Batch norm and the conv bias gradient under backend onednn: fovea's own vectorised loops, not oneDNN's, as
// PyTorch runs ATen's batch norm beside oneDNN's convolutions. oneDNN 2.6 has batch norm only on its generic
// kernel for plain NCHW (ncsp_bnorm: 2x the reference's time for 128x16x32x32 on one thread) and its reduction
// primitive (the bias gradient) only as a reference kernel ("ref:any"). The reference (cpu_reference/batchnorm.cpp)
// sums in double one element at a time: a chain of dependent double additions that no compiler vectorises, which
// made batch norm a third of a resnet20 step under backend onednn (perf, one thread).
//
// Design: per channel (the parallel loop, as the reference), each (n, c) plane is reduced in blocks of kBlock
// floats with a fixed-width SIMD reduction (`omp simd`: lanes of float partial sums in an order fixed at compile
// time), and the blocks' sums are added in double. The error of a block sum is that of kBlock / lanes float
// additions; the totals keep the reference's double accumulation. The element-wise passes (normalise, dx) run in
// float. Per channel the work and its order do not depend on the thread count: bitwise the same results for any
// thread count, within rel L2 1e-5 of the reference (tests/op_registry_test.cpp, OpOnOnednn.batchnorm*).
// Cost: the reference's forward reads x three times (sum, variance, normalise) and writes y once, as here, but its
// first two passes run at one double addition per ~4 cycles; here each pass runs at memory speed.
#include <algorithm>
#include <cmath>

#include "cpu_reference/common.h"
#include "layers/onednn/onednn_common.h"
#include "layers/ops/batchnorm.h"
#include "layers/ops/conv2d.h"

namespace fovea::onednn::detail {
namespace {

constexpr int64_t kBlock = 1024;  // floats per block sum: the float error stays far below 1e-5

// sum of x[i] over n elements: float SIMD partial sums per block, the blocks added in double.
double block_sum(const float* x, int64_t n) {
  double total = 0.0;
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = b; i < e; ++i) s += x[i];
    total += double(s);
  }
  return total;
}

// sum of (x[i] - m)^2.
double block_sum_sq_dev(const float* x, int64_t n, float m) {
  double total = 0.0;
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = b; i < e; ++i) {
      const float d = x[i] - m;
      s += d * d;
    }
    total += double(s);
  }
  return total;
}

// sum of dy[i] and of dy[i] * (x[i] - m), in one pass.
void block_sums_dy(const float* x, const float* dy, int64_t n, float m, double& sum_dy, double& sum_dy_xc) {
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    float s = 0.0f, t = 0.0f;
#pragma omp simd reduction(+ : s, t)
    for (int64_t i = b; i < e; ++i) {
      s += dy[i];
      t += dy[i] * (x[i] - m);
    }
    sum_dy += double(s);
    sum_dy_xc += double(t);
  }
}

void batchnorm2d_forward(const Exec&, const BatchNormParams& p, const float* x, const float* gamma, const float* beta,
                         float* running_mean, float* running_var, float* y, float* save_mean, float* save_invstd) {
  const char* op = "batchnorm2d_forward (onednn)";
  p.validate(op);
  ref::detail::check_ptr(op, "x", x), ref::detail::check_ptr(op, "y", y);
  FOVEA_CHECK((running_mean == nullptr) == (running_var == nullptr), op,
              ": arguments 'running_mean' and 'running_var' must be both given or both null");
  FOVEA_CHECK(p.training || running_mean, op, ": eval mode needs 'running_mean' and 'running_var', got null");
  const int64_t C = p.C, HW = p.H * p.W, M = p.N * HW;
#pragma omp parallel for schedule(dynamic, 1) if (p.x_size() >= ref::detail::kParallelGrain)
  for (int64_t c = 0; c < C; ++c) {
    double mean, invstd;
    if (p.training) {
      double s = 0.0;
      for (int64_t n = 0; n < p.N; ++n) s += block_sum(x + (n * C + c) * HW, HW);
      mean = s / double(M);
      double ss = 0.0;  // two passes, as the reference: no cancellation in E[x^2] - E[x]^2
      for (int64_t n = 0; n < p.N; ++n) ss += block_sum_sq_dev(x + (n * C + c) * HW, HW, float(mean));
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
    const float scale = float(g * invstd), shift = float(b - mean * g * invstd);
    for (int64_t n = 0; n < p.N; ++n) {
      const float* xp = x + (n * C + c) * HW;
      float* yp = y + (n * C + c) * HW;
#pragma omp simd
      for (int64_t i = 0; i < HW; ++i) yp[i] = xp[i] * scale + shift;
    }
  }
}

void batchnorm2d_backward(const Exec&, const BatchNormParams& p, const float* x, const float* dy, const float* gamma,
                          const float* save_mean, const float* save_invstd, float* dx, float* dgamma, float* dbeta) {
  const char* op = "batchnorm2d_backward (onednn)";
  p.validate(op);
  ref::detail::check_ptr(op, "x", x), ref::detail::check_ptr(op, "dy", dy);
  ref::detail::check_ptr(op, "save_mean", save_mean), ref::detail::check_ptr(op, "save_invstd", save_invstd);
  FOVEA_CHECK(dx || dgamma || dbeta, op, ": arguments 'dx', 'dgamma' and 'dbeta' are all null");
  const int64_t C = p.C, HW = p.H * p.W, M = p.N * HW;
#pragma omp parallel for schedule(dynamic, 1) if (p.x_size() >= ref::detail::kParallelGrain)
  for (int64_t c = 0; c < C; ++c) {
    const float mean = save_mean[c];
    const double invstd = save_invstd[c], g = gamma ? double(gamma[c]) : 1.0;
    double sum_dy = 0.0, sum_dy_xc = 0.0;  // sum dy, sum dy * (x - mean)
    for (int64_t n = 0; n < p.N; ++n)
      block_sums_dy(x + (n * C + c) * HW, dy + (n * C + c) * HW, HW, mean, sum_dy, sum_dy_xc);
    if (dgamma) dgamma[c] = float(sum_dy_xc * invstd);  // sum dy * xhat
    if (dbeta) dbeta[c] = float(sum_dy);
    if (!dx) continue;
    // training: dx = gamma * invstd * (dy - mean(dy) - (x - mean) * invstd^2 * mean(dy * (x - mean)))
    const float k = float(g * invstd);
    const float mdy = p.training ? float(sum_dy / double(M)) : 0.0f;
    const float kx = p.training ? float(sum_dy_xc * invstd * invstd / double(M)) : 0.0f;
    for (int64_t n = 0; n < p.N; ++n) {
      const float *xp = x + (n * C + c) * HW, *gp = dy + (n * C + c) * HW;
      float* dp = dx + (n * C + c) * HW;
      if (p.training) {
#pragma omp simd
        for (int64_t i = 0; i < HW; ++i) dp[i] = k * (gp[i] - mdy - (xp[i] - mean) * kx);
      } else {
#pragma omp simd
        for (int64_t i = 0; i < HW; ++i) dp[i] = gp[i] * k;
      }
    }
  }
}

// db[k] = sum over n, p, q of dy[n, k, p, q]: per output channel, the planes' block sums added in double.
void conv2d_backward_bias(const Exec&, const Conv2dParams& p, const float* dy, float* db) {
  const char* op = "conv2d_backward_bias (onednn)";
  ref::detail::check_ptr(op, "dy", dy), ref::detail::check_ptr(op, "db", db);
  FOVEA_CHECK(p.N > 0 && p.K > 0 && p.P() > 0 && p.Q() > 0, op, ": needs a non-empty output, got ", p.str());
  const int64_t K = p.K, PQ = p.P() * p.Q();
#pragma omp parallel for schedule(static) if (p.N * K * PQ >= ref::detail::kParallelGrain)
  for (int64_t k = 0; k < K; ++k) {
    double s = 0.0;
    for (int64_t n = 0; n < p.N; ++n) s += block_sum(dy + (n * K + k) * PQ, PQ);
    db[k] = float(s);
  }
}

const bool registered = ops::batchnorm2d_forward_stub.define(Slot::onednn, batchnorm2d_forward) &&
                        ops::batchnorm2d_backward_stub.define(Slot::onednn, batchnorm2d_backward) &&
                        ops::conv2d_backward_bias_stub.define(Slot::onednn, conv2d_backward_bias);

}  // namespace
}  // namespace fovea::onednn::detail
