#include "layers/ops/dropout.h"

#include "core/error.h"
#include "layers/ops/context.h"

namespace fovea {

void DropoutParams::validate(const char* op) const {
  FOVEA_CHECK(p >= 0.0 && p < 1.0, op, ": argument 'p' must be in [0, 1), got ", p);
}

namespace ops {
namespace {
DropoutParams params(float p, uint64_t seed, uint64_t offset) {
  DropoutParams dp;
  dp.p = p, dp.seed = seed, dp.offset = offset, dp.training = true;
  dp.validate("dropout");
  return dp;
}
}  // namespace

Tensor dropout_forward(Context& ctx, const Tensor& x, float p, uint64_t seed, uint64_t offset) {
  check_tensor(ctx, "dropout", "x", x);
  const DropoutParams dp = params(p, seed, offset);
  Tensor y = empty_like(ctx, x.shape());
  dropout_forward_stub(ctx.exec(), dp, x.numel(), x.data<float>(), y.data<float>());
  return y;
}

Tensor dropout_backward(Context& ctx, const Tensor& dy, float p, uint64_t seed, uint64_t offset) {
  check_tensor(ctx, "dropout_backward", "dy", dy);
  const DropoutParams dp = params(p, seed, offset);
  Tensor dx = empty_like(ctx, dy.shape());
  dropout_backward_stub(ctx.exec(), dp, dy.numel(), dy.data<float>(), dx.data<float>());
  return dx;
}

}  // namespace ops
}  // namespace fovea
