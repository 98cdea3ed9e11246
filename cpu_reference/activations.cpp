#include "cpu_reference/activations.h"
#include "layers/ops/activations.h"

#include <cmath>
#include <cstring>

#include "cpu_reference/common.h"

namespace fovea::ref {

using detail::check_count;
using detail::check_ptr;
using detail::kChunk;
using detail::kParallelGrain;

void relu_forward(int64_t n, const float* x, float* y) {
  const char* op = "relu_forward";
  check_count(op, "n", n), check_ptr(op, "x", x), check_ptr(op, "y", y);
#pragma omp parallel for simd schedule(dynamic, kChunk) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] < 0.0f ? 0.0f : x[i];  // NaN propagates, as in PyTorch
}

void relu_backward(int64_t n, const float* y, const float* dy, float* dx) {
  const char* op = "relu_backward";
  check_count(op, "n", n), check_ptr(op, "y", y), check_ptr(op, "dy", dy), check_ptr(op, "dx", dx);
#pragma omp parallel for simd schedule(dynamic, kChunk) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) {
    const float g = dy[i];  // loaded unconditionally: the select then vectorises
    dx[i] = y[i] > 0.0f ? g : 0.0f;
  }
}

void relu6_forward(int64_t n, const float* x, float* y) {
  const char* op = "relu6_forward";
  check_count(op, "n", n), check_ptr(op, "x", x), check_ptr(op, "y", y);
#pragma omp parallel for simd schedule(dynamic, kChunk) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    y[i] = v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);  // NaN fails both tests and propagates
  }
}

void relu6_backward(int64_t n, const float* x, const float* dy, float* dx) {
  const char* op = "relu6_backward";
  check_count(op, "n", n), check_ptr(op, "x", x), check_ptr(op, "dy", dy), check_ptr(op, "dx", dx);
#pragma omp parallel for simd schedule(dynamic, kChunk) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) {
    const float g = dy[i];
    dx[i] = x[i] > 0.0f && x[i] < 6.0f ? g : 0.0f;
  }
}

void leaky_relu_forward(int64_t n, float slope, const float* x, float* y) {
  const char* op = "leaky_relu_forward";
  check_count(op, "n", n), check_ptr(op, "x", x), check_ptr(op, "y", y);
  FOVEA_CHECK(std::isfinite(slope), op, ": argument 'slope' must be finite, got ", slope);
#pragma omp parallel for simd schedule(dynamic, kChunk) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    y[i] = v > 0.0f ? v : v * slope;
  }
}

void leaky_relu_backward(int64_t n, float slope, const float* x, const float* dy, float* dx) {
  const char* op = "leaky_relu_backward";
  check_count(op, "n", n), check_ptr(op, "x", x), check_ptr(op, "dy", dy), check_ptr(op, "dx", dx);
  FOVEA_CHECK(std::isfinite(slope), op, ": argument 'slope' must be finite, got ", slope);
#pragma omp parallel for simd schedule(dynamic, kChunk) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) {
    const float g = dy[i];
    dx[i] = x[i] > 0.0f ? g : g * slope;
  }
}

void sigmoid_forward(int64_t n, const float* x, float* y) {
  const char* op = "sigmoid_forward";
  check_count(op, "n", n), check_ptr(op, "x", x), check_ptr(op, "y", y);
#pragma omp parallel for schedule(dynamic, kChunk) if (n >= kParallelGrain / 8)
  for (int64_t i = 0; i < n; ++i) y[i] = 1.0f / (1.0f + std::exp(-x[i]));
}

void sigmoid_backward(int64_t n, const float* y, const float* dy, float* dx) {
  const char* op = "sigmoid_backward";
  check_count(op, "n", n), check_ptr(op, "y", y), check_ptr(op, "dy", dy), check_ptr(op, "dx", dx);
#pragma omp parallel for simd schedule(dynamic, kChunk) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * (1.0f - y[i]) * y[i];
}

void tanh_forward(int64_t n, const float* x, float* y) {
  const char* op = "tanh_forward";
  check_count(op, "n", n), check_ptr(op, "x", x), check_ptr(op, "y", y);
#pragma omp parallel for schedule(dynamic, kChunk) if (n >= kParallelGrain / 8)
  for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}

void tanh_backward(int64_t n, const float* y, const float* dy, float* dx) {
  const char* op = "tanh_backward";
  check_count(op, "n", n), check_ptr(op, "y", y), check_ptr(op, "dy", dy), check_ptr(op, "dx", dx);
#pragma omp parallel for simd schedule(dynamic, kChunk) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}

void residual_add_forward(int64_t n, const float* a, const float* b, float* y) {
  const char* op = "residual_add_forward";
  check_count(op, "n", n), check_ptr(op, "a", a), check_ptr(op, "b", b), check_ptr(op, "y", y);
#pragma omp parallel for simd schedule(dynamic, kChunk) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

void residual_add_backward(int64_t n, const float* dy, float* da, float* db) {
  const char* op = "residual_add_backward";
  check_count(op, "n", n), check_ptr(op, "dy", dy);
  FOVEA_CHECK(da || db, op, ": arguments 'da' and 'db' are both null");
  if (da && da != dy) std::memcpy(da, dy, size_t(n) * sizeof(float));
  if (db && db != dy) std::memcpy(db, dy, size_t(n) * sizeof(float));
}

// ---- the cpu slots of layers/ops/activations.h's dispatch stubs

namespace {

const bool registered =
    ops::relu_forward_stub.define(Slot::cpu,
                                  [](const Exec&, int64_t n, const float* x, float* y) { relu_forward(n, x, y); }) &&
    ops::relu_backward_stub.define(Slot::cpu, [](const Exec&, int64_t n, const float* s, const float* dy,
                                                 float* dx) { relu_backward(n, s, dy, dx); }) &&
    ops::relu6_forward_stub.define(Slot::cpu,
                                   [](const Exec&, int64_t n, const float* x, float* y) { relu6_forward(n, x, y); }) &&
    ops::relu6_backward_stub.define(Slot::cpu, [](const Exec&, int64_t n, const float* s, const float* dy,
                                                  float* dx) { relu6_backward(n, s, dy, dx); }) &&
    ops::sigmoid_forward_stub.define(
        Slot::cpu, [](const Exec&, int64_t n, const float* x, float* y) { sigmoid_forward(n, x, y); }) &&
    ops::sigmoid_backward_stub.define(Slot::cpu, [](const Exec&, int64_t n, const float* s, const float* dy,
                                                    float* dx) { sigmoid_backward(n, s, dy, dx); }) &&
    ops::tanh_forward_stub.define(Slot::cpu,
                                  [](const Exec&, int64_t n, const float* x, float* y) { tanh_forward(n, x, y); }) &&
    ops::tanh_backward_stub.define(Slot::cpu, [](const Exec&, int64_t n, const float* s, const float* dy,
                                                 float* dx) { tanh_backward(n, s, dy, dx); }) &&
    ops::leaky_relu_forward_stub.define(Slot::cpu, [](const Exec&, int64_t n, float slope, const float* x,
                                                      float* y) { leaky_relu_forward(n, slope, x, y); }) &&
    ops::leaky_relu_backward_stub.define(Slot::cpu,
                                         [](const Exec&, int64_t n, float slope, const float* x, const float* dy,
                                            float* dx) { leaky_relu_backward(n, slope, x, dy, dx); }) &&
    ops::residual_add_forward_stub.define(Slot::cpu, [](const Exec&, int64_t n, const float* a, const float* b,
                                                        float* y) { residual_add_forward(n, a, b, y); }) &&
    ops::residual_add_backward_stub.define(Slot::cpu, [](const Exec&, int64_t n, const float* dy, float* da,
                                                         float* db) { residual_add_backward(n, dy, da, db); });

}  // namespace

}  // namespace fovea::ref
