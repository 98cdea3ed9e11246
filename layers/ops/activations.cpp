#include "layers/ops/activations.h"

#include "core/error.h"
#include "layers/ops/context.h"

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
