#include "cpu_reference/softmax.h"
#include "layers/ops/softmax.h"

#include <algorithm>
#include <cmath>

#include "cpu_reference/common.h"

namespace fovea::ref {
namespace {

using detail::check_ptr;

void check_nc(const char* op, int64_t N, int64_t C) {
  FOVEA_CHECK(N > 0, op, ": argument 'N' must be > 0, got ", N);
  FOVEA_CHECK(C > 0, op, ": argument 'C' must be > 0, got ", C);
}

// max and log(sum(exp(x - max))) of one row, in double. A NaN or infinite input makes the row NaN, as in PyTorch.
struct RowStats {
  double max, log_sum;
};
RowStats row_stats(const float* x, int64_t C) {
  float m = x[0];
  for (int64_t c = 1; c < C; ++c) m = std::max(m, x[c]);
  double s = 0.0;
  for (int64_t c = 0; c < C; ++c) s += std::exp(double(x[c]) - m);
  return {double(m), std::log(s)};
}

void check_labels(const char* op, const CrossEntropyParams& p, const int64_t* labels) {
  for (int64_t n = 0; n < p.N; ++n)
    FOVEA_CHECK(labels[n] >= 0 && labels[n] < p.C, op, ": argument 'labels'[", n, "]=", labels[n],
                " is out of range [0, ", p.C, ")");
}

constexpr int64_t kRowGrain = 1 << 12;

}  // namespace

void softmax_forward(int64_t N, int64_t C, const float* x, float* y) {
  const char* op = "softmax_forward";
  check_nc(op, N, C), check_ptr(op, "x", x), check_ptr(op, "y", y);
#pragma omp parallel for schedule(dynamic, detail::chunk_items(C)) if (N * C >= kRowGrain)
  for (int64_t n = 0; n < N; ++n) {
    const float* xr = x + n * C;
    float* yr = y + n * C;
    const RowStats st = row_stats(xr, C);
    for (int64_t c = 0; c < C; ++c) yr[c] = float(std::exp(double(xr[c]) - st.max - st.log_sum));
  }
}

void softmax_backward(int64_t N, int64_t C, const float* y, const float* dy, float* dx) {
  const char* op = "softmax_backward";
  check_nc(op, N, C), check_ptr(op, "y", y), check_ptr(op, "dy", dy), check_ptr(op, "dx", dx);
#pragma omp parallel for schedule(dynamic, detail::chunk_items(C)) if (N * C >= kRowGrain)
  for (int64_t n = 0; n < N; ++n) {
    const float *yr = y + n * C, *gr = dy + n * C;
    const double dot = detail::dot_double(yr, gr, C);
    float* dr = dx + n * C;
    for (int64_t c = 0; c < C; ++c) dr[c] = float(double(yr[c]) * (double(gr[c]) - dot));
  }
}

void log_softmax_forward(int64_t N, int64_t C, const float* x, float* y) {
  const char* op = "log_softmax_forward";
  check_nc(op, N, C), check_ptr(op, "x", x), check_ptr(op, "y", y);
#pragma omp parallel for schedule(dynamic, detail::chunk_items(C)) if (N * C >= kRowGrain)
  for (int64_t n = 0; n < N; ++n) {
    const float* xr = x + n * C;
    float* yr = y + n * C;
    const RowStats st = row_stats(xr, C);
    for (int64_t c = 0; c < C; ++c) yr[c] = float(double(xr[c]) - st.max - st.log_sum);
  }
}

void log_softmax_backward(int64_t N, int64_t C, const float* y, const float* dy, float* dx) {
  const char* op = "log_softmax_backward";
  check_nc(op, N, C), check_ptr(op, "y", y), check_ptr(op, "dy", dy), check_ptr(op, "dx", dx);
#pragma omp parallel for schedule(dynamic, detail::chunk_items(C)) if (N * C >= kRowGrain)
  for (int64_t n = 0; n < N; ++n) {
    const float *yr = y + n * C, *gr = dy + n * C;
    const double s = detail::sum_double(gr, C);
    float* dr = dx + n * C;
    for (int64_t c = 0; c < C; ++c) dr[c] = float(double(gr[c]) - std::exp(double(yr[c])) * s);
  }
}

float cross_entropy_forward(const CrossEntropyParams& p, const float* logits, const int64_t* labels) {
  const char* op = "cross_entropy_forward";
  p.validate(op);
  check_ptr(op, "logits", logits), check_ptr(op, "labels", labels);
  check_labels(op, p, labels);
  const double eps = p.label_smoothing, C = double(p.C);
  double total = 0.0;
  // Rows in order (no parallel reduction): the loss is the same bits whatever the thread count.
  for (int64_t n = 0; n < p.N; ++n) {
    const float* xr = logits + n * p.C;
    const RowStats st = row_stats(xr, p.C);
    const double lse = st.max + st.log_sum;
    const double nll = lse - double(xr[labels[n]]);
    double loss = (1.0 - eps) * nll;
    if (eps > 0.0) loss += eps * (lse - detail::sum_double(xr, p.C) / C);  // eps * mean_c(-log_softmax)
    total += loss;
  }
  return float(total / double(p.N));
}

void cross_entropy_backward(const CrossEntropyParams& p, const float* logits, const int64_t* labels, float dloss,
                            float* dlogits) {
  const char* op = "cross_entropy_backward";
  p.validate(op);
  check_ptr(op, "logits", logits), check_ptr(op, "labels", labels), check_ptr(op, "dlogits", dlogits);
  check_labels(op, p, labels);
  const double eps = p.label_smoothing, off = eps / double(p.C), scale = double(dloss) / double(p.N);
#pragma omp parallel for schedule(dynamic, detail::chunk_items(p.C)) if (p.N * p.C >= kRowGrain)
  for (int64_t n = 0; n < p.N; ++n) {
    const float* xr = logits + n * p.C;
    float* dr = dlogits + n * p.C;
    const RowStats st = row_stats(xr, p.C);
    for (int64_t c = 0; c < p.C; ++c) {
      const double q = off + (c == labels[n] ? 1.0 - eps : 0.0);
      dr[c] = float((std::exp(double(xr[c]) - st.max - st.log_sum) - q) * scale);
    }
  }
}

// ---- the cpu slots of layers/ops/softmax.h's dispatch stubs

namespace {

// The reference computes the mean loss itself (its own fixed order); the per-row losses are each row alone.
void cross_entropy_forward_slot(const Exec&, RowAlgo, const CrossEntropyParams& p, const float* logits,
                                const int64_t* labels, float* row_loss, float* loss) {
  if (row_loss) {
    CrossEntropyParams one = p;
    one.N = 1;
    for (int64_t n = 0; n < p.N; ++n) row_loss[n] = cross_entropy_forward(one, logits + n * p.C, labels + n);
  }
  if (loss) loss[0] = cross_entropy_forward(p, logits, labels);
}
const bool registered =
    ops::softmax_forward_stub.define(Slot::cpu, [](const Exec&, RowAlgo, int64_t N, int64_t C, const float* x,
                                                   float* y) { softmax_forward(N, C, x, y); }) &&
    ops::softmax_backward_stub.define(Slot::cpu,
                                      [](const Exec&, RowAlgo, int64_t N, int64_t C, const float* y, const float* dy,
                                         float* dx) { softmax_backward(N, C, y, dy, dx); }) &&
    ops::log_softmax_forward_stub.define(Slot::cpu, [](const Exec&, RowAlgo, int64_t N, int64_t C, const float* x,
                                                       float* y) { log_softmax_forward(N, C, x, y); }) &&
    ops::log_softmax_backward_stub.define(
        Slot::cpu, [](const Exec&, RowAlgo, int64_t N, int64_t C, const float* y, const float* dy,
                      float* dx) { log_softmax_backward(N, C, y, dy, dx); }) &&
    ops::cross_entropy_forward_stub.define(Slot::cpu, cross_entropy_forward_slot) &&
    ops::cross_entropy_backward_stub.define(
        Slot::cpu, [](const Exec&, RowAlgo, const CrossEntropyParams& p, const float* logits, const int64_t* labels,
                      float dloss, float* dlogits) { cross_entropy_backward(p, logits, labels, dloss, dlogits); });

}  // namespace

}  // namespace fovea::ref
