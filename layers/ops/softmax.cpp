#include "layers/ops/softmax.h"

#include "core/error.h"
#include "layers/ops/context.h"

namespace fovea {

void CrossEntropyParams::validate(const char* op) const {
  FOVEA_CHECK(N > 0, op, ": argument 'N' must be > 0, got ", N);
  FOVEA_CHECK(C > 0, op, ": argument 'C' must be > 0, got ", C);
  FOVEA_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, op,
              ": argument 'label_smoothing' must be in [0, 1], got ", label_smoothing);
}

namespace ops {
namespace {

void check_rows(const char* op, const Tensor& x) {
  FOVEA_CHECK(x.ndim() == 2, op, ": argument must be [N, C], got ", x.shape().str());
}

Tensor rows(Context& ctx, const DispatchStub<RowFn>& stub, const char* op, const Tensor& x) {
  check_tensor(ctx, op, "x", x);
  check_rows(op, x);
  Tensor y = empty_like(ctx, x.shape());
  stub(ctx.exec(), RowAlgo::automatic, x.size(0), x.size(1), x.data<float>(), y.data<float>());
  return y;
}

Tensor rows_backward(Context& ctx, const DispatchStub<RowBackwardFn>& stub, const char* op, const Tensor& dy,
                     const Tensor& y) {
  check_tensor(ctx, op, "dy", dy);
  check_tensor(ctx, op, "y", y);
  check_rows(op, y);
  check_same_shape(op, "dy", dy, "y", y);
  Tensor dx = empty_like(ctx, y.shape());
  stub(ctx.exec(), RowAlgo::automatic, y.size(0), y.size(1), y.data<float>(), dy.data<float>(), dx.data<float>());
  return dx;
}

}  // namespace

Tensor softmax_forward(Context& ctx, const Tensor& x) {
  return rows(ctx, softmax_forward_stub, "softmax", x);
}
Tensor softmax_backward(Context& ctx, const Tensor& dy, const Tensor& y) {
  return rows_backward(ctx, softmax_backward_stub, "softmax_backward", dy, y);
}
Tensor log_softmax_forward(Context& ctx, const Tensor& x) {
  return rows(ctx, log_softmax_forward_stub, "log_softmax", x);
}
Tensor log_softmax_backward(Context& ctx, const Tensor& dy, const Tensor& y) {
  return rows_backward(ctx, log_softmax_backward_stub, "log_softmax_backward", dy, y);
}

CrossEntropyOut cross_entropy(Context& ctx, const Tensor& logits, const Tensor& labels, float label_smoothing) {
  check_tensor(ctx, "cross_entropy", "logits", logits);
  check_tensor(ctx, "cross_entropy", "labels", labels, DType::int64);
  check_rows("cross_entropy", logits);
  FOVEA_CHECK(labels.ndim() == 1 && labels.size(0) == logits.size(0), "cross_entropy: 'labels' ", labels.shape().str(),
              " must be [N] for logits ", logits.shape().str());
  CrossEntropyParams p;
  p.N = logits.size(0), p.C = logits.size(1), p.label_smoothing = label_smoothing;
  p.validate("cross_entropy");
  CrossEntropyOut out{empty_like(ctx, {1}), empty_like(ctx, logits.shape())};
  Tensor row_loss = empty_like(ctx, {p.N});
  const Exec ex = ctx.exec();
  cross_entropy_forward_stub(ex, RowAlgo::automatic, p, logits.data<float>(), labels.data<int64_t>(),
                             row_loss.data<float>(), out.loss.data<float>());
  cross_entropy_backward_stub(ex, RowAlgo::automatic, p, logits.data<float>(), labels.data<int64_t>(), 1.0f,
                              out.dlogits.data<float>());
  return out;
}

}  // namespace ops
}  // namespace fovea
