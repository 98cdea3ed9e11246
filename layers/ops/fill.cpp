#include "layers/ops/fill.h"

#include "layers/ops/context.h"

namespace fovea::ops {

void fill_uniform(Context& ctx, Tensor& t, float lo, float hi, uint64_t seed, uint64_t offset) {
  check_tensor(ctx, "fill_uniform", "t", t);
  fill_uniform_stub(ctx.exec(), t.data<float>(), t.numel(), lo, hi, seed, offset);
}

void fill_normal(Context& ctx, Tensor& t, float mean, float stddev, uint64_t seed, uint64_t offset) {
  check_tensor(ctx, "fill_normal", "t", t);
  fill_normal_stub(ctx.exec(), t.data<float>(), t.numel(), mean, stddev, seed, offset);
}

void fill_value(Context& ctx, Tensor& t, float value) {
  check_tensor(ctx, "fill_value", "t", t);
  fill_value_stub(ctx.exec(), t.data<float>(), t.numel(), value);
}

}  // namespace fovea::ops
