#include "layers/ops/lrn.h"

#include <cmath>

#include "core/error.h"
#include "layers/ops/context.h"

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
