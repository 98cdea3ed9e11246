// BatchNorm2d and LocalResponseNorm.
#include <fmt/core.h>

#include "core/error.h"
#include "layers/nn/layers.h"

namespace fovea::nn {
namespace {

struct BatchNormSaved : Saved {
  Tensor x, mean, invstd;
};
// A frozen batch norm is the affine map of eval mode: its backward needs no saved activations.
struct FrozenBatchNormSaved : Saved {};
struct LrnSaved : Saved {
  Tensor x, y;
};

}  // namespace

BatchNorm2d::BatchNorm2d(int64_t channels, float eps, float momentum) : c_(channels), eps_(eps), momentum_(momentum) {
  FOVEA_CHECK(channels > 0, "batchnorm2d: channels must be > 0, got ", channels);
  FOVEA_CHECK(eps > 0, "batchnorm2d: eps must be > 0, got ", eps);
  FOVEA_CHECK(momentum >= 0 && momentum <= 1, "batchnorm2d: momentum must be in [0, 1], got ", momentum);
  add_param("weight", Tensor::zeros({channels}));
  add_param("bias", Tensor::zeros({channels}));
  states_.push_back({"running_mean", Tensor::zeros({channels})});
  states_.push_back({"running_var", Tensor::zeros({channels})});
}

std::string BatchNorm2d::describe() const {
  return fmt::format("batchnorm2d {}", c_);
}

Shape BatchNorm2d::output_shape(const Shape& in) const {
  FOVEA_CHECK((in.ndim() == 4 || in.ndim() == 2) && in[1] == c_, "batchnorm2d: expects [N, ", c_, ", H, W] or [N, ", c_,
              "], got ", in.str());
  return in;
}

void BatchNorm2d::reset_parameters(ops::Context& ctx, uint64_t, uint64_t& counter) {
  ops::fill_value(ctx, params_[0].value, 1.0f);
  ops::fill_value(ctx, params_[1].value, 0.0f);
  ops::fill_value(ctx, states_[0].value, 0.0f);
  ops::fill_value(ctx, states_[1].value, 1.0f);
  counter += 2;
}

Output BatchNorm2d::forward_impl(ops::Context& ctx, const Tensor& x) {
  ops::Context c = local_context(ctx);
  for (StateTensor& s : states_)
    FOVEA_CHECK(s.value.device() == ctx.device, "batchnorm2d: state '", s.name, "' is on ", s.value.device().str(),
                ", context on ", ctx.device.str());
  // Frozen (both parameters): eval mode while the model trains, as PyTorch users set model.eval() on a frozen
  // backbone: the running statistics normalise and stay as they were loaded.
  const bool frozen = !params_[0].trainable && !params_[1].trainable;
  if (!training_ || frozen) {
    Tensor y =
        ops::batchnorm_forward_eval(c, x, params_[0].value, params_[1].value, states_[0].value, states_[1].value, eps_);
    return {y, training_ ? std::make_unique<FrozenBatchNormSaved>() : nullptr};
  }
  ops::BatchNormOut o = ops::batchnorm_forward_train(c, x, params_[0].value, params_[1].value, states_[0].value,
                                                     states_[1].value, momentum_, eps_);
  auto s = std::make_unique<BatchNormSaved>();
  s->x = x;
  s->mean = o.save_mean;
  s->invstd = o.save_invstd;
  return {o.y, std::move(s)};
}

Tensor BatchNorm2d::backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) {
  ops::Context c = local_context(ctx);
  if (dynamic_cast<FrozenBatchNormSaved*>(&saved)) {
    if (!propagate_down) return Tensor();
    // dx = dy * gamma / sqrt(running_var + eps): eval mode's forward on dy with mean and beta zero.
    if (!zeros_.defined() || zeros_.device() != ctx.device)
      zeros_ = Tensor::zeros({c_}, DType::float32, ctx.device, ctx.stream);
    return ops::batchnorm_forward_eval(c, dy, params_[0].value, zeros_, zeros_, states_[1].value, eps_);
  }
  auto& s = dynamic_cast<BatchNormSaved&>(saved);
  ops::BatchNormGrads g = ops::batchnorm_backward(c, dy, s.x, params_[0].value, s.mean, s.invstd);
  accumulate_grad(c, params_[0], g.dgamma);
  accumulate_grad(c, params_[1], g.dbeta);
  return propagate_down ? g.dx : Tensor();
}

// ---------------------------------------------------------------- LocalResponseNorm

LocalResponseNorm::LocalResponseNorm(int64_t size, double alpha, double beta, double k)
    : size_(size), alpha_(alpha), beta_(beta), k_(k) {
  params_for(Shape{1, 1, 1, 1});  // validates the hyperparameters
}

LrnParams LocalResponseNorm::params_for(const Shape& x) const {
  FOVEA_CHECK(x.ndim() == 4, "lrn: input must be [N, C, H, W], got ", x.str());
  LrnParams p;
  p.N = x[0];
  p.C = x[1];
  p.H = x[2];
  p.W = x[3];
  p.size = size_;
  p.alpha = alpha_;
  p.beta = beta_;
  p.k = k_;
  p.validate("lrn");
  return p;
}

std::string LocalResponseNorm::describe() const {
  return fmt::format("lrn size {} alpha {} beta {} k {}", size_, alpha_, beta_, k_);
}

Shape LocalResponseNorm::output_shape(const Shape& in) const {
  params_for(in);
  return in;
}

Output LocalResponseNorm::forward_impl(ops::Context& ctx, const Tensor& x) {
  ops::Context c = local_context(ctx);
  Tensor y = ops::lrn_forward(c, x, params_for(x.shape()));
  if (!training_) return {y, nullptr};
  auto s = std::make_unique<LrnSaved>();
  s->x = x;
  s->y = y;
  return {y, std::move(s)};
}

Tensor LocalResponseNorm::backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) {
  if (!propagate_down) return Tensor();
  ops::Context c = local_context(ctx);
  auto& s = dynamic_cast<LrnSaved&>(saved);
  return ops::lrn_backward(c, dy, s.x, s.y, params_for(s.x.shape()));
}

}  // namespace fovea::nn
