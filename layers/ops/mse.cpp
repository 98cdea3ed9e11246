#include "layers/ops/mse.h"

#include "layers/ops/context.h"

namespace fovea::ops {

MseOut mse_loss(Context& ctx, const Tensor& pred, const Tensor& target) {
  check_tensor(ctx, "mse_loss", "pred", pred);
  check_tensor(ctx, "mse_loss", "target", target);
  check_same_shape("mse_loss", "pred", pred, "target", target);
  MseOut out{empty_like(ctx, {1}), empty_like(ctx, pred.shape())};
  const int64_t n = pred.numel();
  const Exec ex = ctx.exec();
  mse_forward_stub(ex, n, pred.data<float>(), target.data<float>(), out.loss.data<float>());
  mse_backward_stub(ex, n, pred.data<float>(), target.data<float>(), 1.0f, out.dpred.data<float>());
  return out;
}

}  // namespace fovea::ops
