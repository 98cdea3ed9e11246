#include "layers/ops/mse.h"

#include "layers/ops/context.h"
#include "layers/ops/registry.h"

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

// ---------------------------------------------------------------- registry entry

namespace fovea::ops {
namespace {

const RegisterOp mse_op{{
    .name = "mse",
    .doc = "torch.nn.functional.mse_loss(pred, target), mean over all elements",
    .inputs = {{.name = "pred", .doc = "any shape"},
               {.name = "target", .no_grad = true, .doc = "the shape of pred (not differentiated)"}},
    .outputs = {"loss"},
    .forward = [](Context& ctx, const OpArgs& a) -> NamedTensors {
      return {{"loss", mse_loss(ctx, a.tensor("pred"), a.tensor("target")).loss.reshape(Shape())}};
    },
    .backward = [](Context& ctx, const OpArgs& a, const NamedTensors&) -> NamedTensors {
      const Tensor &pred = a.tensor("pred"), &target = a.tensor("target"), &dloss = a.tensor("dloss");
      check_tensor(ctx, "mse", "pred", pred);
      check_tensor(ctx, "mse", "target", target);
      check_same_shape("mse", "pred", pred, "target", target);
      FOVEA_CHECK(dloss.numel() == 1, "mse: 'dloss' must hold one value, got shape ", dloss.shape().str());
      Tensor dpred = empty_like(ctx, pred.shape());
      mse_backward_stub(ctx.exec(), pred.numel(), pred.data<float>(), target.data<float>(),
                        dloss.to(kCPU).data<float>()[0], dpred.data<float>());
      return {{"dpred", dpred}};
    },
    .torch = "loss = F.mse_loss(pred, target)",
    .samples = {{"one", {{"pred", {1}}, {"target", {1}}}},
                {"odd", {{"pred", {3, 5}}, {"target", {3, 5}}}},
                {"large", {{"pred", {64, 1000}}, {"target", {64, 1000}}}, {}, true}},
    .stubs = {&mse_forward_stub, &mse_backward_stub},
    .cost =
        [](const OpArgs& a) {
          const double n = double(a.tensor("pred").numel());
          return std::pair{3.0 * n, 8.0 * n};
        },
}};

}  // namespace
}  // namespace fovea::ops
