#include "cpu_reference/regularizers.h"
#include "layers/ops/optimizers.h"

#include <cmath>

#include "cpu_reference/common.h"

namespace fovea::ref {
namespace {

void check_coef(const char* op, const char* arg, double v) {
  FOVEA_CHECK(std::isfinite(v) && v >= 0.0, op, ": argument '", arg, "' must be finite and >= 0, got ", v);
}

// Sequential: the penalty value must not depend on the thread count.
double penalty(int64_t n, const float* w, double l1, double l2, float* grad) {
  double s1 = 0.0, s2 = 0.0;
  const float f1 = float(l1), f2 = float(l2);
  for (int64_t i = 0; i < n; ++i) {
    const float x = w[i];
    s1 += std::fabs(double(x));
    s2 += double(x) * double(x);
    if (grad) {
      const float sign = x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f);
      grad[i] += f1 * sign + f2 * x;
    }
  }
  return l1 * s1 + 0.5 * l2 * s2;
}

}  // namespace

double l1_penalty(int64_t n, const float* w, double lambda, float* grad) {
  const char* op = "l1_penalty";
  detail::check_count(op, "n", n), detail::check_ptr(op, "w", w), check_coef(op, "lambda", lambda);
  return penalty(n, w, lambda, 0.0, grad);
}

double l2_penalty(int64_t n, const float* w, double lambda, float* grad) {
  const char* op = "l2_penalty";
  detail::check_count(op, "n", n), detail::check_ptr(op, "w", w), check_coef(op, "lambda", lambda);
  return penalty(n, w, 0.0, lambda, grad);
}

double elastic_net_penalty(int64_t n, const float* w, double l1, double l2, float* grad) {
  const char* op = "elastic_net_penalty";
  detail::check_count(op, "n", n), detail::check_ptr(op, "w", w);
  check_coef(op, "l1", l1), check_coef(op, "l2", l2);
  return penalty(n, w, l1, l2, grad);
}

void max_norm_constraint(int64_t rows, int64_t cols, float* w, double max_norm) {
  const char* op = "max_norm_constraint";
  detail::check_count(op, "rows", rows), detail::check_count(op, "cols", cols), detail::check_ptr(op, "w", w);
  check_coef(op, "max_norm", max_norm);
#pragma omp parallel for schedule(dynamic, detail::chunk_items(cols)) if (rows * cols >= detail::kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    float* row = w + r * cols;
    const double norm = std::sqrt(detail::dot_double(row, row, cols));
    if (norm > max_norm) {
      const float scale = float(max_norm / (norm + 1e-7));
      for (int64_t i = 0; i < cols; ++i) row[i] *= scale;
    }
  }
}

// ---- the cpu slots of layers/ops/optimizers.h's dispatch stubs

namespace {

const bool registered =
    ops::elastic_net_penalty_stub.define(
        Slot::cpu, [](const Exec&, int64_t n, const float* w, float l1, float l2, float* grad,
                      float* penalty) { penalty[0] = float(elastic_net_penalty(n, w, l1, l2, grad)); }) &&
    ops::max_norm_rows_stub.define(
        Slot::cpu, [](const Exec&, int64_t rows, int64_t cols, float* w, float max_norm, const float* amp) {
          if (!amp || amp[kAmpFoundInf] == 0.0f) max_norm_constraint(rows, cols, w, max_norm);
        });

}  // namespace

}  // namespace fovea::ref
