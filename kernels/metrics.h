// Metric reductions for training/evaluation loops (kernels/metrics.cu), built on Thrust: the CUDA backend
// under nvcc, the OpenMP backend (serial CPP backend without OpenMP) in the emulator build. Both return the
// value to the host, so they synchronise `stream`. Thrust's temporary storage comes from `ws` (a bump
// allocator over at most kMetricScratchBytes), never from a hidden allocation.
// The same file implements ops::accumulate_metrics_stub (layers/ops/metrics.h), which reads nothing back.
#pragma once
#include <cstdint>

#include "core/memory.h"
#include "kernels/api.h"

namespace fovea {
inline constexpr size_t kMetricScratchBytes = size_t(1) << 20;
}

#define FOVEA_METRIC_KERNELS                                                                               \
  /* sum of values[0..n) accumulated in double (e.g. per-row losses); 0 for n == 0. */                     \
  double metric_sum(const float* values, int64_t n, Workspace& ws, StreamHandle stream);                   \
  /* Rows of logits [N, C] whose argmax equals labels[n] (torch.argmax: the first maximum; a NaN counts as \
     the maximum). Labels outside [0, C) never match. */                                                   \
  int64_t count_correct(const float* logits, const int64_t* labels, int64_t N, int64_t C, Workspace& ws,   \
                        StreamHandle stream);

FOVEA_DECLARE_KERNELS(FOVEA_METRIC_KERNELS)
