#include "layers/ops/linear.h"

#include "core/error.h"
#include "layers/ops/context.h"
#include "layers/ops/registry.h"

namespace fovea {

void LinearParams::validate(const char* op) const {
  auto positive = [&](const char* arg, int64_t v) {
    FOVEA_CHECK(v > 0, op, ": argument '", arg, "' must be > 0, got ", v, " (", str(), ")");
  };
  positive("N", N), positive("in_features", in_features), positive("out_features", out_features);
}

std::string LinearParams::str() const {
  return cat("x[", N, ",", in_features, "] w[", out_features, ",", in_features, "]");
}

namespace ops {
namespace {

LinearParams linear_params(const char* op, const Tensor& x, const Tensor& w) {
  FOVEA_CHECK(x.ndim() == 2, op, ": argument 'x' must be [N, in_features], got ", x.shape().str());
  FOVEA_CHECK(w.ndim() == 2, op, ": argument 'w' must be [out_features, in_features], got ", w.shape().str());
  FOVEA_CHECK(x.size(1) == w.size(1), op, ": x has ", x.size(1), " features but w expects ", w.size(1), " (x ",
              x.shape().str(), ", w ", w.shape().str(), ")");
  LinearParams p;
  p.N = x.size(0), p.in_features = x.size(1), p.out_features = w.size(0);
  p.validate(op);
  return p;
}

}  // namespace

Tensor linear_forward(Context& ctx, const Tensor& x, const Tensor& w, const Tensor& b) {
  check_tensor(ctx, "linear", "x", x);
  check_tensor(ctx, "linear", "w", w);
  const LinearParams p = linear_params("linear", x, w);
  if (b.defined()) {
    check_tensor(ctx, "linear", "b", b);
    FOVEA_CHECK(b.numel() == p.out_features, "linear: argument 'b' must have ", p.out_features, " elements, got ",
                b.shape().str());
  }
  Tensor y = empty_like(ctx, {p.N, p.out_features});
  if (ctx.precision != Precision::fp32)
    linear_forward_precision_stub(ctx.exec(), ctx.precision, p, x.data<float>(), w.data<float>(), data_or_null(b),
                                  y.data<float>());
  else
    linear_forward_stub(ctx.exec(), p, x.data<float>(), w.data<float>(), data_or_null(b), y.data<float>());
  return y;
}

Tensor linear_backward_data(Context& ctx, const Tensor& dy, const Tensor& w) {
  check_tensor(ctx, "linear_backward_data", "dy", dy);
  check_tensor(ctx, "linear_backward_data", "w", w);
  FOVEA_CHECK(dy.ndim() == 2 && w.ndim() == 2 && dy.size(1) == w.size(0), "linear_backward_data: 'dy' ",
              dy.shape().str(), " does not match 'w' ", w.shape().str());
  LinearParams p;
  p.N = dy.size(0), p.in_features = w.size(1), p.out_features = w.size(0);
  Tensor dx = empty_like(ctx, {p.N, p.in_features});
  if (ctx.precision != Precision::fp32)
    linear_backward_data_precision_stub(ctx.exec(), ctx.precision, p, dy.data<float>(), w.data<float>(),
                                        dx.data<float>());
  else
    linear_backward_data_stub(ctx.exec(), p, dy.data<float>(), w.data<float>(), dx.data<float>());
  return dx;
}

Tensor linear_backward_weight(Context& ctx, const Tensor& x, const Tensor& dy) {
  check_tensor(ctx, "linear_backward_weight", "x", x);
  check_tensor(ctx, "linear_backward_weight", "dy", dy);
  FOVEA_CHECK(x.ndim() == 2 && dy.ndim() == 2 && x.size(0) == dy.size(0), "linear_backward_weight: 'x' ",
              x.shape().str(), " does not match 'dy' ", dy.shape().str());
  LinearParams p;
  p.N = x.size(0), p.in_features = x.size(1), p.out_features = dy.size(1);
  Tensor dw = empty_like(ctx, {p.out_features, p.in_features});
  if (ctx.precision != Precision::fp32)
    linear_backward_weight_precision_stub(ctx.exec(), ctx.precision, p, x.data<float>(), dy.data<float>(),
                                          dw.data<float>());
  else
    linear_backward_weight_stub(ctx.exec(), p, x.data<float>(), dy.data<float>(), dw.data<float>());
  return dw;
}

Tensor linear_backward_bias(Context& ctx, const Tensor& dy) {
  check_tensor(ctx, "linear_backward_bias", "dy", dy);
  FOVEA_CHECK(dy.ndim() == 2, "linear_backward_bias: 'dy' must be [N, out_features], got ", dy.shape().str());
  LinearParams p;
  p.N = dy.size(0), p.out_features = dy.size(1);
  Tensor db = empty_like(ctx, {p.out_features});
  linear_backward_bias_stub(ctx.exec(), p, dy.data<float>(), db.data<float>());
  return db;
}

}  // namespace ops
}  // namespace fovea

// ---------------------------------------------------------------- registry entry

namespace fovea::ops {
namespace {

const RegisterOp linear_op{{
    .name = "linear",
    .doc = "fully connected layer, torch.nn.functional.linear: y = x w^T + b",
    .inputs = {{.name = "x", .doc = "[N, in]"},
               {.name = "w", .doc = "[out, in]"},
               {.name = "b", .optional = true, .doc = "[out]"}},
    .outputs = {"y"},
    .forward = [](Context& ctx, const OpArgs& a) -> NamedTensors {
      return {{"y", linear_forward(ctx, a.tensor("x"), a.tensor("w"), a.optional("b"))}};
    },
    .backward = [](Context& ctx, const OpArgs& a, const NamedTensors&) -> NamedTensors {
      const Tensor& dy = a.tensor("dy");
      NamedTensors g{{"dx", linear_backward_data(ctx, dy, a.tensor("w"))},
                     {"dw", linear_backward_weight(ctx, a.tensor("x"), dy)}};
      if (a.has("b")) g.push_back({"db", linear_backward_bias(ctx, dy)});
      return g;
    },
    .torch = "y = F.linear(x, w, b)",
    .samples = {{"n1_1x1", {{"x", {1, 1}}, {"w", {1, 1}}, {"b", {1}}}},
                {"odd_no_bias", {{"x", {3, 7}}, {"w", {5, 7}}}},
                {"off_the_tile", {{"x", {33, 65}}, {"w", {17, 65}}, {"b", {17}}}},
                {"mnist_fc1_n64", {{"x", {64, 9216}}, {"w", {128, 9216}}, {"b", {128}}}, {}, true},
                {"cifar_head_n128", {{"x", {128, 512}}, {"w", {10, 512}}, {"b", {10}}}, {}, true}},
    .stubs = {&linear_forward_stub, &linear_backward_data_stub, &linear_backward_weight_stub,
              &linear_backward_bias_stub},
    .precision_stubs = {&linear_forward_precision_stub, &linear_backward_data_precision_stub,
                        &linear_backward_weight_precision_stub},
    .cost =
        [](const OpArgs& a) {
          const double N = double(a.tensor("x").size(0)), I = double(a.tensor("x").size(1)),
                       O = double(a.tensor("w").size(0));
          return std::pair{2 * N * I * O, 4 * (N * I + O * I + N * O)};
        },
}};

}  // namespace
}  // namespace fovea::ops
