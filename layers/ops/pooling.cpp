#include "layers/ops/pooling.h"

#include "core/error.h"
#include "layers/ops/context.h"

namespace fovea {

void Pool2dParams::validate(const char* op) const {
  auto positive = [&](const char* arg, int64_t v) {
    FOVEA_CHECK(v > 0, op, ": argument '", arg, "' must be > 0, got ", v, " (", str(), ")");
  };
  positive("N", N), positive("C", C), positive("H", H), positive("W", W);
  positive("kernel_h", kernel_h), positive("kernel_w", kernel_w);
  positive("stride_h", stride_h), positive("stride_w", stride_w);
  FOVEA_CHECK(pad_h >= 0 && pad_w >= 0, op, ": argument 'pad' must be >= 0, got ", pad_h, ",", pad_w);
  // PyTorch: "pad should be at most half of effective kernel size".
  FOVEA_CHECK(2 * pad_h <= kernel_h && 2 * pad_w <= kernel_w, op, ": argument 'pad'=", pad_h, ",", pad_w,
              " must be at most half the kernel ", kernel_h, ",", kernel_w);
  FOVEA_CHECK(H + 2 * pad_h >= kernel_h && W + 2 * pad_w >= kernel_w, op, ": kernel ", kernel_h, "x", kernel_w,
              " is larger than the padded input ", H + 2 * pad_h, "x", W + 2 * pad_w);
}

std::string Pool2dParams::str() const {
  return cat("x[", N, ",", C, ",", H, ",", W, "] kernel ", kernel_h, ",", kernel_w, " stride ", stride_h, ",", stride_w,
             " pad ", pad_h, ",", pad_w);
}

namespace ops {
namespace {

Shape y_shape(const Pool2dParams& p) {
  return {p.N, p.C, p.P(), p.Q()};
}
// cuDNN's max-pooling backward reads x and y; ours reads the argmax indices.
bool backward_by_values(const Context& ctx) {
  return ctx.exec().slot() == Slot::cudnn && maxpool2d_backward_stub.has(Slot::cudnn);
}

}  // namespace

Pool2dParams pool2d_params(const Shape& x, const Pool2dAttrs& a) {
  FOVEA_CHECK(x.ndim() == 4, "pool2d: argument 'x' must be [N, C, H, W], got ", x.str());
  Pool2dParams p;
  p.N = x[0], p.C = x[1], p.H = x[2], p.W = x[3];
  p.kernel_h = a.kernel_h, p.kernel_w = a.kernel_w, p.stride_h = a.stride_h, p.stride_w = a.stride_w;
  p.pad_h = a.pad_h, p.pad_w = a.pad_w, p.count_include_pad = a.count_include_pad;
  p.validate("pool2d");
  return p;
}

MaxPoolOut maxpool2d_forward(Context& ctx, const Tensor& x, const Pool2dAttrs& a) {
  check_tensor(ctx, "maxpool2d", "x", x);
  const Pool2dParams p = pool2d_params(x.shape(), a);
  MaxPoolOut out;
  out.y = empty_like(ctx, y_shape(p));
  if (backward_by_values(ctx))
    out.x = x;
  else
    out.indices = empty_like(ctx, y_shape(p), DType::int32);
  maxpool2d_forward_stub(ctx.exec(), p, x.data<float>(), out.y.data<float>(),
                         out.indices.defined() ? out.indices.data<int32_t>() : nullptr);
  return out;
}

Tensor maxpool2d_backward(Context& ctx, const Tensor& dy, const MaxPoolOut& fwd, const Shape& x_shape,
                          const Pool2dAttrs& a) {
  check_tensor(ctx, "maxpool2d_backward", "dy", dy);
  const Pool2dParams p = pool2d_params(x_shape, a);
  FOVEA_CHECK(dy.shape() == y_shape(p), "maxpool2d_backward: 'dy' ", dy.shape().str(), " must be ", y_shape(p).str());
  Tensor dx = empty_like(ctx, x_shape);
  if (backward_by_values(ctx)) {
    check_tensor(ctx, "maxpool2d_backward", "x", fwd.x);
    check_tensor(ctx, "maxpool2d_backward", "y", fwd.y);
    FOVEA_CHECK(fwd.x.shape() == x_shape && fwd.y.shape() == dy.shape(),
                "maxpool2d_backward: the forward's x and y do not match x ", x_shape.str(), " and dy ",
                dy.shape().str());
    maxpool2d_backward_stub(ctx.exec(), p, fwd.x.data<float>(), fwd.y.data<float>(), nullptr, dy.data<float>(),
                            dx.data<float>());
  } else {
    check_tensor(ctx, "maxpool2d_backward", "indices", fwd.indices, DType::int32);
    FOVEA_CHECK(fwd.indices.shape() == dy.shape(), "maxpool2d_backward: 'indices' ", fwd.indices.shape().str(),
                " must be ", y_shape(p).str());
    maxpool2d_backward_stub(ctx.exec(), p, nullptr, nullptr, fwd.indices.data<int32_t>(), dy.data<float>(),
                            dx.data<float>());
  }
  return dx;
}

Tensor avgpool2d_forward(Context& ctx, const Tensor& x, const Pool2dAttrs& a) {
  check_tensor(ctx, "avgpool2d", "x", x);
  const Pool2dParams p = pool2d_params(x.shape(), a);
  Tensor y = empty_like(ctx, y_shape(p));
  avgpool2d_forward_stub(ctx.exec(), p, x.data<float>(), y.data<float>());
  return y;
}

Tensor avgpool2d_backward(Context& ctx, const Tensor& dy, const Shape& x_shape, const Pool2dAttrs& a) {
  check_tensor(ctx, "avgpool2d_backward", "dy", dy);
  const Pool2dParams p = pool2d_params(x_shape, a);
  FOVEA_CHECK(dy.shape() == y_shape(p), "avgpool2d_backward: 'dy' ", dy.shape().str(), " must be ", y_shape(p).str());
  Tensor dx = empty_like(ctx, x_shape);
  avgpool2d_backward_stub(ctx.exec(), p, dy.data<float>(), dx.data<float>());
  return dx;
}

Tensor global_avgpool_forward(Context& ctx, const Tensor& x) {
  check_tensor(ctx, "global_avgpool", "x", x);
  FOVEA_CHECK(x.ndim() == 4, "global_avgpool: argument 'x' must be [N, C, H, W], got ", x.shape().str());
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  Tensor y = empty_like(ctx, {N, C});
  global_avgpool_forward_stub(ctx.exec(), N, C, H, W, x.data<float>(), y.data<float>());
  return y;
}

Tensor global_avgpool_backward(Context& ctx, const Tensor& dy, const Shape& x_shape) {
  check_tensor(ctx, "global_avgpool_backward", "dy", dy);
  FOVEA_CHECK(x_shape.ndim() == 4 && dy.shape() == Shape({x_shape[0], x_shape[1]}), "global_avgpool_backward: 'dy' ",
              dy.shape().str(), " does not match x ", x_shape.str());
  Tensor dx = empty_like(ctx, x_shape);
  global_avgpool_backward_stub(ctx.exec(), x_shape[0], x_shape[1], x_shape[2], x_shape[3], dy.data<float>(),
                               dx.data<float>());
  return dx;
}

}  // namespace ops
}  // namespace fovea
