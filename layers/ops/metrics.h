// Training and evaluation metrics that stay on the device. A step adds its batch into a small float64
// tensor of sums (loss, correct predictions, the first non-finite loss) and reads nothing back; the host
// reads the sums once per log interval (one device-to-host copy: one host synchronisation), so a training
// step never waits for the GPU. Evaluation also counts a confusion matrix there.
//
//   Tensor sums = ops::metric_sums(ctx);                                         // zeros [kMetricSlots]
//   for each batch: ops::accumulate_metrics(ctx, loss, logits, labels, sums, step);
//   MetricSums s = ops::read_metric_sums(ctx, sums);                             // the one read
//
//   reference : cpu_reference/metrics.cpp     kernels : kernels/metrics.cu (backend cudnn uses slot cuda)
#pragma once
#include <cstdint>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace fovea::ops {

struct Context;

// The slots of a sums tensor (float64 [kMetricSlots]).
enum MetricSlot : int {
  kLossSum = 0,         // sum over batches of double(mean batch loss) * double(N), added in call order
  kCorrect = 1,         // rows whose arg-max is the label
  kFirstNonFinite = 2,  // 0, or 1 + the tag of the first batch whose loss was NaN or Inf
  kNonFiniteLoss = 3,   // that loss
};
inline constexpr int64_t kMetricSlots = 4;

// One batch, as the implementations see it.
struct MetricsBatch {
  int64_t N = 0, C = 0;             // logits [N, C]
  const float* loss = nullptr;      // [1]: the batch's mean loss
  const float* logits = nullptr;    // [N, C]
  const int64_t* labels = nullptr;  // [N]; labels outside [0, C) are never correct and not in the confusion
  int64_t tag = 0;                  // recorded with the first non-finite loss (the training step); >= 0
};

// sums[kLossSum] += double(loss[0]) * double(N) (one rounding of each, in this order: the host loop it
// replaces); sums[kCorrect] += rows whose arg-max (torch.argmax: the first maximum, a NaN counts as the
// maximum) equals the label; if loss[0] is not finite and sums[kFirstNonFinite] == 0, sums[kFirstNonFinite] =
// tag + 1 and sums[kNonFiniteLoss] = loss[0]. confusion (int64 [C, C], [label][prediction]) += 1 per row,
// unless null. Deterministic: counts are integers, the loss sum one add per call.
inline constinit DispatchStub<void(const Exec&, const MetricsBatch& batch, double* sums, int64_t* confusion)>
    accumulate_metrics_stub{"accumulate_metrics"};

// A zeroed sums tensor on ctx's device (enqueued, no synchronisation).
Tensor metric_sums(Context& ctx);
// loss float32 [1], logits float32 [N, C], labels int64 [N], sums float64 [kMetricSlots], confusion int64
// [C, C] or null; all on ctx's device. Enqueued on ctx's stream; reads nothing back.
void accumulate_metrics(Context& ctx, const Tensor& loss, const Tensor& logits, const Tensor& labels, Tensor& sums,
                        int64_t tag, Tensor* confusion = nullptr);

// The host's view of a sums tensor.
struct MetricSums {
  double loss_sum = 0;
  int64_t correct = 0;
  int64_t first_non_finite = -1;  // the tag of the first non-finite loss, -1 if none
  double non_finite_loss = 0;
  bool non_finite() const { return first_non_finite >= 0; }
};
// One device-to-host copy of `sums` on ctx's stream (a host synchronisation on emu and cuda).
MetricSums read_metric_sums(Context& ctx, const Tensor& sums);

// Number of rows whose arg-max equals the label (torch.argmax: the first maximum; a NaN counts as the
// maximum). Reads back one number: a host synchronisation (training uses accumulate_metrics instead).
int64_t count_correct(Context& ctx, const Tensor& logits, const Tensor& labels);

}  // namespace fovea::ops
