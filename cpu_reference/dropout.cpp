#include "cpu_reference/dropout.h"
#include "layers/ops/dropout.h"

#include <cstring>

#include "core/philox.h"
#include "cpu_reference/common.h"

namespace fovea::ref {
namespace {

void apply(const char* op, const DropoutParams& p, int64_t n, const float* in, float* out) {
  p.validate(op);
  detail::check_count(op, "n", n);
  if (!p.training) {
    if (out != in) std::memcpy(out, in, size_t(n) * sizeof(float));
    return;
  }
  const float pf = float(p.p), scale = dropout_scale(p);
#pragma omp parallel for schedule(dynamic, detail::kChunk) if (n >= detail::kParallelGrain / 16)
  for (int64_t i = 0; i < n; ++i) out[i] = philox_uniform(p.seed, p.offset, uint64_t(i)) >= pf ? in[i] * scale : 0.0f;
}

}  // namespace

float dropout_scale(const DropoutParams& p) {
  p.validate("dropout_scale");
  return float(1.0 / (1.0 - p.p));
}

void dropout_forward(const DropoutParams& p, int64_t n, const float* x, float* y) {
  const char* op = "dropout_forward";
  detail::check_ptr(op, "x", x), detail::check_ptr(op, "y", y);
  apply(op, p, n, x, y);
}

void dropout_backward(const DropoutParams& p, int64_t n, const float* dy, float* dx) {
  const char* op = "dropout_backward";
  detail::check_ptr(op, "dy", dy), detail::check_ptr(op, "dx", dx);
  apply(op, p, n, dy, dx);
}

// ---- the cpu slots of layers/ops/dropout.h's dispatch stubs

namespace {

const bool registered =
    ops::dropout_forward_stub.define(Slot::cpu, [](const Exec&, const DropoutParams& p, int64_t n, const float* x,
                                                   float* y) { dropout_forward(p, n, x, y); }) &&
    ops::dropout_backward_stub.define(Slot::cpu, [](const Exec&, const DropoutParams& p, int64_t n, const float* dy,
                                                    float* dx) { dropout_backward(p, n, dy, dx); });

}  // namespace

}  // namespace fovea::ref
