#include "cpu_reference/metrics.h"

#include <cmath>

#include "core/error.h"

namespace fovea::ref {

int64_t row_argmax(const float* row, int64_t C) {
  int64_t arg = 0;
  for (int64_t c = 1; c < C && !std::isnan(row[arg]); ++c)
    if (row[c] > row[arg] || std::isnan(row[c])) arg = c;
  return arg;
}

void accumulate_metrics(const Exec&, const ops::MetricsBatch& b, double* sums, int64_t* confusion) {
  const char* op = "accumulate_metrics";
  FOVEA_CHECK(b.N >= 0 && b.C > 0, op, ": logits must be [N, C] with N >= 0 and C > 0, got [", b.N, ", ", b.C, "]");
  FOVEA_CHECK(b.loss && sums && (b.N == 0 || (b.logits && b.labels)), op, ": null pointer");
  int64_t correct = 0;
  for (int64_t n = 0; n < b.N; ++n) {
    const int64_t label = b.labels[n], pred = row_argmax(b.logits + n * b.C, b.C);
    if (label < 0 || label >= b.C) continue;
    correct += pred == label;
    if (confusion) ++confusion[label * b.C + pred];
  }
  const float loss = b.loss[0];
  sums[ops::kLossSum] += double(loss) * double(b.N);
  sums[ops::kCorrect] += double(correct);
  if (!std::isfinite(loss) && sums[ops::kFirstNonFinite] == 0) {
    sums[ops::kFirstNonFinite] = double(b.tag + 1);
    sums[ops::kNonFiniteLoss] = double(loss);
  }
}

namespace {
const bool registered = ops::accumulate_metrics_stub.define(Slot::cpu, accumulate_metrics);
}  // namespace

}  // namespace fovea::ref
