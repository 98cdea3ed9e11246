#include "layers/ops/metrics.h"

#include "core/tensor.h"
#include "cpu_reference/metrics.h"
#include "kernels/metrics.h"
#include "layers/ops/ops.h"

namespace fovea::ops {
namespace {

Exec exec_of(const Context& ctx) {
  Exec e;
  e.device = ctx.device;
  e.backend = ctx.backend == Backend::cudnn ? fovea::Backend::cudnn : fovea::Backend::custom;
  e.stream = ctx.stream;
  e.workspace = ctx.workspace.get();
  e.deterministic = ctx.deterministic;
  return e;
}

void check_on(const Context& ctx, const char* op, const char* arg, const Tensor& t, DType dtype) {
  FOVEA_CHECK(t.defined(), op, ": argument '", arg, "' is missing");
  FOVEA_CHECK(t.device() == ctx.device, op, ": argument '", arg, "' is on ", t.device().str(), " but the op runs on ",
              ctx.device.str(), " (copy it explicitly with .to())");
  FOVEA_CHECK(t.dtype() == dtype, op, ": argument '", arg, "' must be ", dtype_name(dtype), ", got ", t.str());
}

// The implementations register themselves in their slots, but they live in static libraries that are not
// yet linked whole (a fovea_impl target is the lead's part of issue 12): reading their registration flags
// keeps their object files, and so their registrations, in every binary that calls this op.
bool implementations_linked() {
  bool ok = ref::metrics_registered && emu_kernels::metrics_registered;
#if FOVEA_HAVE_CUDA
  ok = ok && cuda_kernels::metrics_registered;
#endif
  return ok;
}

}  // namespace

Tensor metric_sums(Context& ctx) {
  return Tensor::zeros({kMetricSlots}, DType::float64, ctx.device, ctx.stream);
}

void accumulate_metrics(Context& ctx, const Tensor& loss, const Tensor& logits, const Tensor& labels, Tensor& sums,
                        int64_t tag, Tensor* confusion) {
  constexpr const char* op = "accumulate_metrics";
  FOVEA_ASSERT(implementations_linked(), "the metric implementations did not register");
  check_on(ctx, op, "loss", loss, DType::float32);
  check_on(ctx, op, "logits", logits, DType::float32);
  check_on(ctx, op, "labels", labels, DType::int64);
  check_on(ctx, op, "sums", sums, DType::float64);
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
    check_on(ctx, op, "confusion", *confusion, DType::int64);
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
  accumulate_metrics_stub(exec_of(ctx), b, sums.data<double>(), conf);
}

MetricSums read_metric_sums(Context& ctx, const Tensor& sums) {
  constexpr const char* op = "read_metric_sums";
  check_on(ctx, op, "sums", sums, DType::float64);
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

}  // namespace fovea::ops
