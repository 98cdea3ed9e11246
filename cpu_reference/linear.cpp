#include "cpu_reference/linear.h"
#include "layers/ops/linear.h"

#include <algorithm>
#include <vector>

#include "cpu_reference/common.h"
#include "cpu_reference/gemm.h"

namespace fovea::ref {

using detail::check_ptr;

void linear_forward(const LinearParams& p, const float* x, const float* w, const float* b, float* y) {
  const char* op = "linear_forward";
  p.validate(op);
  check_ptr(op, "x", x), check_ptr(op, "w", w), check_ptr(op, "y", y);
  const int64_t N = p.N, I = p.in_features, O = p.out_features;
  if (b) {
    for (int64_t n = 0; n < N; ++n) std::copy(b, b + O, y + n * O);
  }
  // y [N, O] = x [N, I] * W^T [I, O] (+ y holding the bias)
  detail::parallel_sgemm(false, true, N, O, I, 1.0f, x, I, w, I, b ? 1.0f : 0.0f, y, O);
}

void linear_backward_data(const LinearParams& p, const float* dy, const float* w, float* dx) {
  const char* op = "linear_backward_data";
  p.validate(op);
  check_ptr(op, "dy", dy), check_ptr(op, "w", w), check_ptr(op, "dx", dx);
  const int64_t N = p.N, I = p.in_features, O = p.out_features;
  detail::parallel_sgemm(false, false, N, I, O, 1.0f, dy, O, w, I, 0.0f, dx, I);
}

void linear_backward_weight(const LinearParams& p, const float* x, const float* dy, float* dw) {
  const char* op = "linear_backward_weight";
  p.validate(op);
  check_ptr(op, "x", x), check_ptr(op, "dy", dy), check_ptr(op, "dw", dw);
  const int64_t N = p.N, I = p.in_features, O = p.out_features;
  detail::parallel_sgemm(true, false, O, I, N, 1.0f, dy, O, x, I, 0.0f, dw, I);
}

void linear_backward_bias(const LinearParams& p, const float* dy, float* db) {
  const char* op = "linear_backward_bias";
  p.validate(op);
  check_ptr(op, "dy", dy), check_ptr(op, "db", db);
  const int64_t N = p.N, O = p.out_features;
  // Column sums in double, rows in order; accumulate a row at a time for contiguous access.
  double* acc = reinterpret_cast<double*>(detail::scratch(2, size_t(2 * O)));
  std::fill(acc, acc + O, 0.0);
  for (int64_t n = 0; n < N; ++n) {
    const float* row = dy + n * O;
    for (int64_t o = 0; o < O; ++o) acc[o] += double(row[o]);
  }
  for (int64_t o = 0; o < O; ++o) db[o] = float(acc[o]);
}

// ------------------------------------------------------------------ tensor-core precisions
void linear_forward(const LinearParams& p, Precision prec, const float* x, const float* w, const float* b, float* y) {
  if (prec == Precision::fp32) return linear_forward(p, x, w, b, y);
  const char* op = "linear_forward";
  p.validate(op);
  check_ptr(op, "x", x), check_ptr(op, "w", w), check_ptr(op, "y", y);
  const int64_t N = p.N, I = p.in_features, O = p.out_features;
  if (b) {
    for (int64_t n = 0; n < N; ++n) round_outputs(prec, b, O, y + n * O);  // the bias, a value of y's type
  }
  gemm(prec, false, true, N, O, I, 1.0f, x, I, w, I, b ? 1.0f : 0.0f, y, O);
}

void linear_backward_data(const LinearParams& p, Precision prec, const float* dy, const float* w, float* dx) {
  if (prec == Precision::fp32) return linear_backward_data(p, dy, w, dx);
  const char* op = "linear_backward_data";
  p.validate(op);
  check_ptr(op, "dy", dy), check_ptr(op, "w", w), check_ptr(op, "dx", dx);
  const int64_t N = p.N, I = p.in_features, O = p.out_features;
  gemm(prec, false, false, N, I, O, 1.0f, dy, O, w, I, 0.0f, dx, I);
}

void linear_backward_weight(const LinearParams& p, Precision prec, const float* x, const float* dy, float* dw) {
  if (prec == Precision::fp32) return linear_backward_weight(p, x, dy, dw);
  const char* op = "linear_backward_weight";
  p.validate(op);
  check_ptr(op, "x", x), check_ptr(op, "dy", dy), check_ptr(op, "dw", dw);
  const int64_t N = p.N, I = p.in_features, O = p.out_features;
  gemm(prec, true, false, O, I, N, 1.0f, dy, O, x, I, 0.0f, dw, I);
}
// ---- the cpu slots of layers/ops/linear.h's dispatch stubs

namespace {

const bool registered =
    ops::linear_forward_stub.define(Slot::cpu, [](const Exec&, const LinearParams& p, const float* x, const float* w,
                                                  const float* b, float* y) { linear_forward(p, x, w, b, y); }) &&
    ops::linear_backward_data_stub.define(Slot::cpu,
                                          [](const Exec&, const LinearParams& p, const float* dy, const float* w,
                                             float* dx) { linear_backward_data(p, dy, w, dx); }) &&
    ops::linear_backward_weight_stub.define(Slot::cpu,
                                            [](const Exec&, const LinearParams& p, const float* x, const float* dy,
                                               float* dw) { linear_backward_weight(p, x, dy, dw); }) &&
    ops::linear_backward_bias_stub.define(Slot::cpu, [](const Exec&, const LinearParams& p, const float* dy,
                                                        float* db) { linear_backward_bias(p, dy, db); }) &&
    ops::linear_forward_precision_stub.define(
        Slot::cpu, [](const Exec&, Precision prec, const LinearParams& p, const float* x, const float* w,
                      const float* b, float* y) { linear_forward(p, prec, x, w, b, y); }) &&
    ops::linear_backward_data_precision_stub.define(
        Slot::cpu, [](const Exec&, Precision prec, const LinearParams& p, const float* dy, const float* w,
                      float* dx) { linear_backward_data(p, prec, dy, w, dx); }) &&
    ops::linear_backward_weight_precision_stub.define(
        Slot::cpu, [](const Exec&, Precision prec, const LinearParams& p, const float* x, const float* dy, float* dw) {
          linear_backward_weight(p, prec, x, dy, dw);
        });

}  // namespace

}  // namespace fovea::ref
