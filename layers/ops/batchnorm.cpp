#include "layers/ops/batchnorm.h"

#include <cmath>

#include "core/error.h"
#include "layers/ops/context.h"

namespace fovea {

void BatchNormParams::validate(const char* op) const {
  auto positive = [&](const char* arg, int64_t v) {
    FOVEA_CHECK(v > 0, op, ": argument '", arg, "' must be > 0, got ", v, " (", str(), ")");
  };
  positive("N", N), positive("C", C), positive("H", H), positive("W", W);
  FOVEA_CHECK(std::isfinite(eps) && eps > 0.0, op, ": argument 'eps' must be finite and > 0, got ", eps);
  FOVEA_CHECK(momentum >= 0.0 && momentum <= 1.0, op, ": argument 'momentum' must be in [0, 1], got ", momentum);
  // PyTorch: "Expected more than 1 value per channel when training".
  FOVEA_CHECK(!training || N * H * W > 1, op, ": training needs more than 1 value per channel, got N*H*W=", N * H * W,
              " (", str(), ")");
}

std::string BatchNormParams::str() const {
  return cat("x[", N, ",", C, ",", H, ",", W, "] eps ", eps, " momentum ", momentum, training ? " training" : " eval");
}

namespace ops {
namespace {

BatchNormParams bn_params(const char* op, const Tensor& x, bool training, float momentum, float eps) {
  FOVEA_CHECK(x.ndim() == 4 || x.ndim() == 2, op, ": argument 'x' must be [N, C, H, W] or [N, C], got ",
              x.shape().str());
  BatchNormParams p;
  p.N = x.size(0), p.C = x.size(1);
  p.H = x.ndim() == 4 ? x.size(2) : 1;
  p.W = x.ndim() == 4 ? x.size(3) : 1;
  p.eps = eps, p.momentum = momentum, p.training = training;
  p.validate(op);
  return p;
}

void check_channels(const Context& ctx, const char* op, std::initializer_list<std::pair<const char*, const Tensor*>> ts,
                    int64_t C) {
  for (auto [arg, t] : ts) {
    check_tensor(ctx, op, arg, *t);
    FOVEA_CHECK(t->numel() == C, op, ": argument '", arg, "' must have ", C, " elements (one per channel), got ",
                t->shape().str());
  }
}

}  // namespace

BatchNormOut batchnorm_forward_train(Context& ctx, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                     Tensor& running_mean, Tensor& running_var, float momentum, float eps) {
  const char* op = "batchnorm2d";
  check_tensor(ctx, op, "x", x);
  const BatchNormParams p = bn_params(op, x, true, momentum, eps);
  check_channels(ctx, op,
                 {{"gamma", &gamma}, {"beta", &beta}, {"running_mean", &running_mean}, {"running_var", &running_var}},
                 p.C);
  BatchNormOut out{empty_like(ctx, x.shape()), empty_like(ctx, {p.C}), empty_like(ctx, {p.C})};
  batchnorm2d_forward_stub(ctx.exec(), p, x.data<float>(), gamma.data<float>(), beta.data<float>(),
                           running_mean.data<float>(), running_var.data<float>(), out.y.data<float>(),
                           out.save_mean.data<float>(), out.save_invstd.data<float>());
  return out;
}

Tensor batchnorm_forward_eval(Context& ctx, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                              const Tensor& running_mean, const Tensor& running_var, float eps) {
  const char* op = "batchnorm2d";
  check_tensor(ctx, op, "x", x);
  const BatchNormParams p = bn_params(op, x, false, 0.1f, eps);
  check_channels(ctx, op,
                 {{"gamma", &gamma}, {"beta", &beta}, {"running_mean", &running_mean}, {"running_var", &running_var}},
                 p.C);
  Tensor y = empty_like(ctx, x.shape());
  // Eval mode reads the running statistics and never writes them.
  batchnorm2d_forward_stub(ctx.exec(), p, x.data<float>(), gamma.data<float>(), beta.data<float>(),
                           const_cast<float*>(running_mean.data<float>()),
                           const_cast<float*>(running_var.data<float>()), y.data<float>(), nullptr, nullptr);
  return y;
}

BatchNormGrads batchnorm_backward(Context& ctx, const Tensor& dy, const Tensor& x, const Tensor& gamma,
                                  const Tensor& save_mean, const Tensor& save_invstd) {
  const char* op = "batchnorm2d_backward";
  check_tensor(ctx, op, "dy", dy);
  check_tensor(ctx, op, "x", x);
  check_same_shape(op, "dy", dy, "x", x);
  const BatchNormParams p = bn_params(op, x, true, 0.1f, 1e-5f);
  check_channels(ctx, op, {{"gamma", &gamma}, {"save_mean", &save_mean}, {"save_invstd", &save_invstd}}, p.C);
  BatchNormGrads g{empty_like(ctx, x.shape()), empty_like(ctx, {p.C}), empty_like(ctx, {p.C})};
  batchnorm2d_backward_stub(ctx.exec(), p, x.data<float>(), dy.data<float>(), gamma.data<float>(),
                            save_mean.data<float>(), save_invstd.data<float>(), g.dx.data<float>(),
                            g.dgamma.data<float>(), g.dbeta.data<float>());
  return g;
}

}  // namespace ops
}  // namespace fovea
