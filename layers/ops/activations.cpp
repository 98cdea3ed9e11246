#include "layers/ops/activations.h"

#include "core/error.h"
#include "layers/ops/context.h"
#include "layers/ops/registry.h"

namespace fovea::ops {
namespace {

Tensor unary(Context& ctx, const DispatchStub<UnaryFn>& stub, const char* op, const Tensor& x) {
  check_tensor(ctx, op, "x", x);
  Tensor y = empty_like(ctx, x.shape());
  stub(ctx.exec(), x.numel(), x.data<float>(), y.data<float>());
  return y;
}

Tensor unary_backward(Context& ctx, const DispatchStub<UnaryBackwardFn>& stub, const char* op, const Tensor& dy,
                      const Tensor& saved) {
  check_tensor(ctx, op, "dy", dy);
  check_tensor(ctx, op, "saved", saved);
  check_same_shape(op, "dy", dy, "saved", saved);
  Tensor dx = empty_like(ctx, dy.shape());
  stub(ctx.exec(), dy.numel(), saved.data<float>(), dy.data<float>(), dx.data<float>());
  return dx;
}

}  // namespace

Tensor relu_forward(Context& ctx, const Tensor& x) {
  return unary(ctx, relu_forward_stub, "relu", x);
}
Tensor relu_backward(Context& ctx, const Tensor& dy, const Tensor& x) {
  return unary_backward(ctx, relu_backward_stub, "relu_backward", dy, x);
}
Tensor relu6_forward(Context& ctx, const Tensor& x) {
  return unary(ctx, relu6_forward_stub, "relu6", x);
}
Tensor relu6_backward(Context& ctx, const Tensor& dy, const Tensor& x) {
  return unary_backward(ctx, relu6_backward_stub, "relu6_backward", dy, x);
}
Tensor sigmoid_forward(Context& ctx, const Tensor& x) {
  return unary(ctx, sigmoid_forward_stub, "sigmoid", x);
}
Tensor sigmoid_backward(Context& ctx, const Tensor& dy, const Tensor& y) {
  return unary_backward(ctx, sigmoid_backward_stub, "sigmoid_backward", dy, y);
}
Tensor tanh_forward(Context& ctx, const Tensor& x) {
  return unary(ctx, tanh_forward_stub, "tanh", x);
}
Tensor tanh_backward(Context& ctx, const Tensor& dy, const Tensor& y) {
  return unary_backward(ctx, tanh_backward_stub, "tanh_backward", dy, y);
}

Tensor leaky_relu_forward(Context& ctx, const Tensor& x, float slope) {
  check_tensor(ctx, "leaky_relu", "x", x);
  Tensor y = empty_like(ctx, x.shape());
  leaky_relu_forward_stub(ctx.exec(), x.numel(), slope, x.data<float>(), y.data<float>());
  return y;
}

Tensor leaky_relu_backward(Context& ctx, const Tensor& dy, const Tensor& x, float slope) {
  check_tensor(ctx, "leaky_relu_backward", "dy", dy);
  check_tensor(ctx, "leaky_relu_backward", "x", x);
  check_same_shape("leaky_relu_backward", "dy", dy, "x", x);
  Tensor dx = empty_like(ctx, x.shape());
  leaky_relu_backward_stub(ctx.exec(), x.numel(), slope, x.data<float>(), dy.data<float>(), dx.data<float>());
  return dx;
}

Tensor add(Context& ctx, const Tensor& a, const Tensor& b) {
  check_tensor(ctx, "add", "a", a);
  check_tensor(ctx, "add", "b", b);
  check_same_shape("add", "a", a, "b", b);
  Tensor y = empty_like(ctx, a.shape());
  residual_add_forward_stub(ctx.exec(), a.numel(), a.data<float>(), b.data<float>(), y.data<float>());
  return y;
}

}  // namespace fovea::ops

// ---------------------------------------------------------------- registry entries

namespace fovea::ops {
namespace {

const std::vector<Sample> kElementwiseSamples = {
    {"one", {{"x", {1}}}},
    {"odd", {{"x", {3, 5}}}},
    {"image", {{"x", {2, 3, 7, 9}}}},
    {"off_float4", {{"x", {4099}}}},
    {"cifar_n64", {{"x", {64, 64, 32, 32}}}, {}, true},
};

std::pair<double, double> elementwise_cost(const OpArgs& a, double flops_per_element) {
  const double n = double(a.tensor("x").numel());
  return {flops_per_element * n, 8.0 * n};
}

// relu, sigmoid, tanh: one input x, one output y; backward reads x (relu) or y (sigmoid, tanh).
OpInfo unary(std::string name, std::string doc, Tensor (*fwd)(Context&, const Tensor&),
             Tensor (*bwd)(Context&, const Tensor&, const Tensor&), bool backward_reads_output, std::string torch,
             std::vector<const StubInfo*> stubs, double flops) {
  OpInfo op;
  op.name = std::move(name);
  op.doc = std::move(doc);
  op.inputs = {{.name = "x", .doc = "any shape"}};
  op.outputs = {"y"};
  op.forward = [fwd](Context& ctx, const OpArgs& a) -> NamedTensors { return {{"y", fwd(ctx, a.tensor("x"))}}; };
  op.backward = [bwd, backward_reads_output](Context& ctx, const OpArgs& a, const NamedTensors& out) -> NamedTensors {
    return {{"dx", bwd(ctx, a.tensor("dy"), backward_reads_output ? out.at(0).second : a.tensor("x"))}};
  };
  op.torch = std::move(torch);
  op.samples = kElementwiseSamples;
  op.stubs = std::move(stubs);
  op.cost = [flops](const OpArgs& a) { return elementwise_cost(a, flops); };
  return op;
}

const RegisterOp relu_op{unary("relu", "max(x, 0), NaN propagates; torch.nn.functional.relu", relu_forward,
                               relu_backward, false, "y = F.relu(x)", {&relu_forward_stub, &relu_backward_stub}, 1)};
const RegisterOp relu6_op{unary("relu6", "min(max(x, 0), 6), NaN propagates; torch.nn.functional.relu6 (MobileNetV2)",
                                relu6_forward, relu6_backward, false, "y = F.relu6(x)",
                                {&relu6_forward_stub, &relu6_backward_stub}, 2)};
const RegisterOp sigmoid_op{unary("sigmoid", "1 / (1 + exp(-x)); torch.sigmoid", sigmoid_forward, sigmoid_backward,
                                  true, "y = torch.sigmoid(x)", {&sigmoid_forward_stub, &sigmoid_backward_stub}, 20)};
const RegisterOp tanh_op{unary("tanh", "tanh(x); torch.tanh", tanh_forward, tanh_backward, true, "y = torch.tanh(x)",
                               {&tanh_forward_stub, &tanh_backward_stub}, 20)};

const RegisterOp leaky_relu_op{{
    .name = "leaky_relu",
    .doc = "x > 0 ? x : slope * x; torch.nn.functional.leaky_relu",
    .inputs = {{.name = "x", .doc = "any shape"}},
    .attrs = {{"slope", AttrType::number, "0.01", "negative_slope"}},
    .outputs = {"y"},
    .forward = [](Context& ctx, const OpArgs& a) -> NamedTensors {
      return {{"y", leaky_relu_forward(ctx, a.tensor("x"), float(a.number("slope")))}};
    },
    .backward = [](Context& ctx, const OpArgs& a, const NamedTensors&) -> NamedTensors {
      return {{"dx", leaky_relu_backward(ctx, a.tensor("dy"), a.tensor("x"), float(a.number("slope")))}};
    },
    .torch = "y = F.leaky_relu(x, slope)",
    .samples = kElementwiseSamples,
    .stubs = {&leaky_relu_forward_stub, &leaky_relu_backward_stub},
    .cost = [](const OpArgs& a) { return elementwise_cost(a, 2); },
}};

const RegisterOp add_op{{
    .name = "add",
    .doc = "a + b of the same shape (residual connections)",
    .inputs = {{.name = "a", .doc = "any shape"}, {.name = "b", .doc = "the shape of a"}},
    .outputs = {"y"},
    .forward = [](Context& ctx, const OpArgs& a) -> NamedTensors {
      return {{"y", add(ctx, a.tensor("a"), a.tensor("b"))}};
    },
    .backward = [](Context& ctx, const OpArgs& a, const NamedTensors&) -> NamedTensors {
      // Both inputs receive dy: one stub call writes both copies.
      const Tensor& dy = a.tensor("dy");
      check_tensor(ctx, "add_backward", "dy", dy);
      Tensor da = empty_like(ctx, dy.shape()), db = empty_like(ctx, dy.shape());
      residual_add_backward_stub(ctx.exec(), dy.numel(), dy.data<float>(), da.data<float>(), db.data<float>());
      return {{"da", da}, {"db", db}};
    },
    .torch = "y = a + b",
    .samples = {{"one", {{"a", {1}}, {"b", {1}}}},
                {"image", {{"a", {2, 3, 7, 9}}, {"b", {2, 3, 7, 9}}}},
                {"cifar_n64", {{"a", {64, 64, 32, 32}}, {"b", {64, 64, 32, 32}}}, {}, true}},
    .stubs = {&residual_add_forward_stub, &residual_add_backward_stub},
    .cost =
        [](const OpArgs& a) {
          const double n = double(a.tensor("a").numel());
          return std::pair{n, 12.0 * n};
        },
}};

}  // namespace
}  // namespace fovea::ops
