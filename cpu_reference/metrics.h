// The cpu implementation of ops::accumulate_metrics_stub (layers/ops/metrics.h, which states the contract):
// the plain loops, in double for the loss sum.
#pragma once
#include <cstdint>

#include "layers/ops/metrics.h"

namespace fovea::ref {

// torch.argmax of one row: the first maximum; the first NaN if there is one.
int64_t row_argmax(const float* row, int64_t C);

// Registered in slot cpu of ops::accumulate_metrics_stub.
void accumulate_metrics(const Exec& ex, const ops::MetricsBatch& b, double* sums, int64_t* confusion);

}  // namespace fovea::ref
