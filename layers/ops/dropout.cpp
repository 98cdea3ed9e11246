#include "layers/ops/dropout.h"

#include "core/error.h"
#include "layers/ops/context.h"
#include "layers/ops/registry.h"

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

// ---------------------------------------------------------------- registry entry

namespace fovea::ops {
namespace {

struct DropoutAttrs {
  float p;
  uint64_t seed, offset;
};
DropoutAttrs dropout_attrs(const OpArgs& a) {
  const int64_t seed = a.integer("seed"), offset = a.integer("offset");
  FOVEA_CHECK(seed >= 0 && offset >= 0, "op dropout: attributes 'seed' and 'offset' must be >= 0, got ", seed, " and ",
              offset);
  return {float(a.number("p")), uint64_t(seed), uint64_t(offset)};
}

const RegisterOp dropout_op{{
    .name = "dropout",
    .doc = "training-mode dropout with fovea's counter-based mask: element i kept iff "
           "philox_uniform(seed, offset, i) >= p, kept values scaled by 1 / (1 - p)",
    .inputs = {{.name = "x", .doc = "any shape"}},
    .attrs = {{"p", AttrType::number, "0.5", "probability of zeroing an element, in [0, 1)"},
              {"seed", AttrType::integer, "1", "Philox seed of the mask"},
              {"offset", AttrType::integer, "0", "Philox stream offset of the mask (fovea: the training step)"}},
    .outputs = {"y"},
    .forward = [](Context& ctx, const OpArgs& a) -> NamedTensors {
      const DropoutAttrs d = dropout_attrs(a);
      return {{"y", dropout_forward(ctx, a.tensor("x"), d.p, d.seed, d.offset)}};
    },
    .backward = [](Context& ctx, const OpArgs& a, const NamedTensors&) -> NamedTensors {
      const DropoutAttrs d = dropout_attrs(a);
      return {{"dx", dropout_backward(ctx, a.tensor("dy"), d.p, d.seed, d.offset)}};
    },
    // philox_uniform: the script's own implementation of core/philox.h (Philox4x32-10).
    .torch = "keep = philox_uniform(seed, offset, x.numel()).reshape(x.shape) >= np.float32(p)\n"
             "y = x * keep.to(x.dtype) * float(np.float32(1.0 / (1.0 - p)))",
    .samples = {{"one", {{"x", {1}}}},
                {"odd", {{"x", {3, 5}}}, {{"p", "0.25"}, {"seed", "7"}, {"offset", "3"}}},
                {"image", {{"x", {2, 3, 7, 9}}}, {{"p", "0.5"}, {"seed", "123456789"}, {"offset", "42"}}},
                {"cifar_n64", {{"x", {64, 64, 32, 32}}}, {}, true}},
    .stubs = {&dropout_forward_stub, &dropout_backward_stub},
    .cost =
        [](const OpArgs& a) {
          const double n = double(a.tensor("x").numel());
          return std::pair{n, 8.0 * n};
        },
}};

}  // namespace
}  // namespace fovea::ops
