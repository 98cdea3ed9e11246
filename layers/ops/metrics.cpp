#include "layers/ops/metrics.h"

#include <cmath>

#include "kernels/metrics.h"
#include "layers/ops/context.h"

namespace fovea::ops {

Tensor metric_sums(Context& ctx) {
  return Tensor::zeros({kMetricSlots}, DType::float64, ctx.device, ctx.stream);
}

void accumulate_metrics(Context& ctx, const Tensor& loss, const Tensor& logits, const Tensor& labels, Tensor& sums,
                        int64_t tag, Tensor* confusion) {
  constexpr const char* op = "accumulate_metrics";
  check_tensor(ctx, op, "loss", loss);
  check_tensor(ctx, op, "logits", logits);
  check_tensor(ctx, op, "labels", labels, DType::int64);
  check_tensor(ctx, op, "sums", sums, DType::float64);
  FOVEA_CHECK(loss.numel() == 1, op, ": argument 'loss' must hold one value, got ", loss.shape().str());
  FOVEA_CHECK(logits.ndim() == 2 && logits.size(1) > 0, op, ": argument 'logits' must be [N, C] with C > 0, got ",
              logits.shape().str());
  const int64_t N = logits.size(0), C = logits.size(1);
  FOVEA_CHECK(labels.ndim() == 1 && labels.size(0) == N, op, ": argument 'labels' must be [", N, "], got ",
              labels.shape().str());
  FOVEA_CHECK(sums.shape() == Shape({kMetricSlots}), op, ": argument 'sums' must be [", kMetricSlots, "], got ",
              sums.shape().str());
  FOVEA_CHECK(tag >= 0 && tag < (int64_t(1) << 53), op, ": argument 'tag' must be in [0, 2^53), got ", tag);
  int64_t* conf = nullptr;
  if (confusion) {
    check_tensor(ctx, op, "confusion", *confusion, DType::int64);
    FOVEA_CHECK(confusion->shape() == Shape({C, C}), op, ": argument 'confusion' must be [", C, ", ", C, "], got ",
                confusion->shape().str());
    conf = confusion->data<int64_t>();
  }
  MetricsBatch b;
  b.N = N;
  b.C = C;
  b.loss = loss.data<float>();
  b.logits = logits.data<float>();
  b.labels = labels.data<int64_t>();
  b.tag = tag;
  accumulate_metrics_stub(ctx.exec(), b, sums.data<double>(), conf);
}

MetricSums read_metric_sums(Context& ctx, const Tensor& sums) {
  check_tensor(ctx, "read_metric_sums", "sums", sums, DType::float64);
  FOVEA_CHECK(sums.shape() == Shape({kMetricSlots}), "read_metric_sums: argument 'sums' must be [", kMetricSlots,
              "], got ", sums.shape().str());
  const std::vector<double> v = sums.to_vector<double>(ctx.stream);
  MetricSums s;
  s.loss_sum = v[kLossSum];
  s.correct = int64_t(v[kCorrect]);
  s.first_non_finite = int64_t(v[kFirstNonFinite]) - 1;
  s.non_finite_loss = v[kNonFiniteLoss];
  return s;
}

int64_t count_correct(Context& ctx, const Tensor& logits, const Tensor& labels) {
  check_tensor(ctx, "count_correct", "logits", logits);
  check_tensor(ctx, "count_correct", "labels", labels, DType::int64);
  FOVEA_CHECK(logits.ndim() == 2, "count_correct: argument must be [N, C], got ", logits.shape().str());
  FOVEA_CHECK(labels.ndim() == 1 && labels.size(0) == logits.size(0), "count_correct: 'labels' ", labels.shape().str(),
              " must be [N] for logits ", logits.shape().str());
  const int64_t N = logits.size(0), C = logits.size(1);
  if (ctx.device.type != DeviceType::cpu) {
    int64_t correct = 0;
    auto call = [&](auto fn) {
      correct = fn(logits.data<float>(), labels.data<int64_t>(), N, C, *ctx.workspace, ctx.stream);
    };
#if FOVEA_HAVE_CUDA
    if (ctx.device.type == DeviceType::cuda)
      call(cuda_kernels::count_correct);
    else
#endif
      call(emu_kernels::count_correct);
    return correct;
  }
  const float* x = logits.data<float>();
  const int64_t* y = labels.data<int64_t>();
  int64_t correct = 0;
  for (int64_t n = 0; n < N; ++n) {
    int64_t best = 0;  // torch.argmax: the first maximum; NaN counts as the maximum
    for (int64_t c = 1; c < C; ++c) {
      const float v = x[n * C + c], b = x[n * C + best];
      if (!std::isnan(b) && (v > b || std::isnan(v))) best = c;
    }
    correct += best == y[n];
  }
  return correct;
}

}  // namespace fovea::ops
