#include "layers/ops/metrics.h"

#include <cmath>

#include "kernels/metrics.h"
#include "layers/ops/context.h"

namespace fovea::ops {

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
