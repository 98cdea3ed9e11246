#include "cpu_reference/mse.h"
#include "layers/ops/mse.h"

#include "cpu_reference/common.h"

namespace fovea::ref {

float mse_forward(int64_t n, const float* x, const float* target) {
  const char* op = "mse_forward";
  FOVEA_CHECK(n > 0, op, ": argument 'n' must be > 0, got ", n);
  detail::check_ptr(op, "x", x), detail::check_ptr(op, "target", target);
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // fixed-order partial sums
  for (int64_t i = 0; i < n; ++i) {
    const double d = double(x[i]) - double(target[i]);
    acc[i & 7] += d * d;
  }
  const double s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  return float(s / double(n));
}

void mse_backward(int64_t n, const float* x, const float* target, float dloss, float* dx) {
  const char* op = "mse_backward";
  FOVEA_CHECK(n > 0, op, ": argument 'n' must be > 0, got ", n);
  detail::check_ptr(op, "x", x), detail::check_ptr(op, "target", target), detail::check_ptr(op, "dx", dx);
  const double scale = 2.0 * double(dloss) / double(n);
#pragma omp parallel for schedule(dynamic, detail::kChunk) if (n >= detail::kParallelGrain)
  for (int64_t i = 0; i < n; ++i) dx[i] = float((double(x[i]) - double(target[i])) * scale);
}

// ---- the cpu slots of layers/ops/mse.h's dispatch stubs

namespace {

const bool registered =
    ops::mse_forward_stub.define(Slot::cpu, [](const Exec&, int64_t n, const float* x, const float* t,
                                               float* loss) { loss[0] = mse_forward(n, x, t); }) &&
    ops::mse_backward_stub.define(Slot::cpu, [](const Exec&, int64_t n, const float* x, const float* t, float dloss,
                                                float* dx) { mse_backward(n, x, t, dloss, dx); });

}  // namespace

}  // namespace fovea::ref
