#include "layers/ops/lrn.h"

#include <cmath>

#include "core/error.h"
#include "layers/ops/context.h"
#include "layers/ops/registry.h"

namespace fovea {

void LrnParams::validate(const char* op) const {
  auto positive = [&](const char* arg, int64_t v) {
    FOVEA_CHECK(v > 0, op, ": argument '", arg, "' must be > 0, got ", v, " (", str(), ")");
  };
  auto finite_nonneg = [&](const char* arg, double v) {
    FOVEA_CHECK(std::isfinite(v) && v >= 0.0, op, ": argument '", arg, "' must be finite and >= 0, got ", v);
  };
  positive("N", N), positive("C", C), positive("H", H), positive("W", W), positive("size", size);
  finite_nonneg("alpha", alpha), finite_nonneg("beta", beta);
  FOVEA_CHECK(std::isfinite(k) && k > 0.0, op, ": argument 'k' must be finite and > 0, got ", k);
}

std::string LrnParams::str() const {
  return cat("x[", N, ",", C, ",", H, ",", W, "] size ", size, " alpha ", alpha, " beta ", beta, " k ", k);
}

namespace ops {
namespace {
LrnParams lrn_params(const Tensor& x, const LrnParams& attrs) {
  FOVEA_CHECK(x.ndim() == 4, "lrn: argument 'x' must be [N, C, H, W], got ", x.shape().str());
  LrnParams p = attrs;
  p.N = x.size(0), p.C = x.size(1), p.H = x.size(2), p.W = x.size(3);
  p.validate("lrn");
  return p;
}
}  // namespace

Tensor lrn_forward(Context& ctx, const Tensor& x, const LrnParams& attrs) {
  check_tensor(ctx, "lrn", "x", x);
  const LrnParams p = lrn_params(x, attrs);
  Tensor y = empty_like(ctx, x.shape());
  lrn_forward_stub(ctx.exec(), p, x.data<float>(), y.data<float>());
  return y;
}

Tensor lrn_backward(Context& ctx, const Tensor& dy, const Tensor& x, const Tensor& /*y*/, const LrnParams& attrs) {
  check_tensor(ctx, "lrn_backward", "dy", dy);
  check_tensor(ctx, "lrn_backward", "x", x);
  check_same_shape("lrn_backward", "dy", dy, "x", x);
  const LrnParams p = lrn_params(x, attrs);
  Tensor dx = empty_like(ctx, x.shape());
  lrn_backward_stub(ctx.exec(), p, x.data<float>(), dy.data<float>(), dx.data<float>());
  return dx;
}

}  // namespace ops
}  // namespace fovea

// ---------------------------------------------------------------- registry entry

namespace fovea::ops {
namespace {

LrnParams lrn_attrs(const OpArgs& a) {
  LrnParams p;
  p.size = a.integer("size"), p.alpha = a.number("alpha"), p.beta = a.number("beta"), p.k = a.number("k");
  return p;
}

const RegisterOp lrn_op{{
    .name = "lrn",
    .doc = "local response normalisation across channels, torch.nn.functional.local_response_norm",
    .inputs = {{.name = "x", .doc = "[N, C, H, W]"}},
    .attrs = {{"size", AttrType::integer, "5", "channels in the window"},
              {"alpha", AttrType::number, "0.0001", "scale (divided by size, as PyTorch does)"},
              {"beta", AttrType::number, "0.75", "exponent"},
              {"k", AttrType::number, "1", "additive constant"}},
    .outputs = {"y"},
    .forward = [](Context& ctx, const OpArgs& a) -> NamedTensors {
      return {{"y", lrn_forward(ctx, a.tensor("x"), lrn_attrs(a))}};
    },
    .backward = [](Context& ctx, const OpArgs& a, const NamedTensors& out) -> NamedTensors {
      return {{"dx", lrn_backward(ctx, a.tensor("dy"), a.tensor("x"), out.at(0).second, lrn_attrs(a))}};
    },
    .torch = "y = F.local_response_norm(x, size, alpha=alpha, beta=beta, k=k)",
    .samples = {{"n1_c1", {{"x", {1, 1, 3, 3}}}, {{"size", "3"}}},
                {"odd", {{"x", {2, 7, 5, 3}}}, {{"size", "4"}, {"alpha", "0.5"}, {"beta", "0.6"}, {"k", "2"}}},
                {"cifar_full", {{"x", {2, 32, 16, 16}}}, {{"size", "3"}, {"alpha", "5e-05"}}},
                {"cifar_full_n100", {{"x", {100, 32, 16, 16}}}, {{"size", "3"}, {"alpha", "5e-05"}}, true}},
    .stubs = {&lrn_forward_stub, &lrn_backward_stub},
    .cost =
        [](const OpArgs& a) {
          const double n = double(a.tensor("x").numel());
          return std::pair{double(a.integer("size") * 2 + 10) * n, 8.0 * n};
        },
}};

}  // namespace
}  // namespace fovea::ops
