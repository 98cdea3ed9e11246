// ReLU, ReLU6, LeakyReLU, Sigmoid, Tanh, Dropout.
#include <fmt/core.h>

#include "core/error.h"
#include "layers/nn/layers.h"

namespace fovea::nn {
namespace {

struct TensorSaved : Saved {
  Tensor t;  // the forward input (relu, leaky relu) or output (sigmoid, tanh)
};

Output saving(bool training, Tensor y, Tensor keep) {
  if (!training) return {y, nullptr};
  auto s = std::make_unique<TensorSaved>();
  s->t = std::move(keep);
  return {std::move(y), std::move(s)};
}

struct DropoutSaved : Saved {
  uint64_t seed = 0, offset = 0;
};

// splitmix64: decorrelates the per-layer dropout seeds derived from one model seed.
uint64_t mix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

Output ReLU::forward_impl(ops::Context& ctx, const Tensor& x) {
  ops::Context c = local_context(ctx);
  return saving(training_, ops::relu_forward(c, x), x);
}
Tensor ReLU::backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) {
  if (!propagate_down) return Tensor();
  ops::Context c = local_context(ctx);
  return ops::relu_backward(c, dy, dynamic_cast<TensorSaved&>(saved).t);
}

Output ReLU6::forward_impl(ops::Context& ctx, const Tensor& x) {
  ops::Context c = local_context(ctx);
  return saving(training_, ops::relu6_forward(c, x), x);
}
Tensor ReLU6::backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) {
  if (!propagate_down) return Tensor();
  ops::Context c = local_context(ctx);
  return ops::relu6_backward(c, dy, dynamic_cast<TensorSaved&>(saved).t);
}

std::string LeakyReLU::describe() const {
  return fmt::format("leaky_relu {}", slope_);
}
Output LeakyReLU::forward_impl(ops::Context& ctx, const Tensor& x) {
  ops::Context c = local_context(ctx);
  return saving(training_, ops::leaky_relu_forward(c, x, slope_), x);
}
Tensor LeakyReLU::backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) {
  if (!propagate_down) return Tensor();
  ops::Context c = local_context(ctx);
  return ops::leaky_relu_backward(c, dy, dynamic_cast<TensorSaved&>(saved).t, slope_);
}

Output Sigmoid::forward_impl(ops::Context& ctx, const Tensor& x) {
  ops::Context c = local_context(ctx);
  Tensor y = ops::sigmoid_forward(c, x);
  return saving(training_, y, y);
}
Tensor Sigmoid::backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) {
  if (!propagate_down) return Tensor();
  ops::Context c = local_context(ctx);
  return ops::sigmoid_backward(c, dy, dynamic_cast<TensorSaved&>(saved).t);
}

Output Tanh::forward_impl(ops::Context& ctx, const Tensor& x) {
  ops::Context c = local_context(ctx);
  Tensor y = ops::tanh_forward(c, x);
  return saving(training_, y, y);
}
Tensor Tanh::backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) {
  if (!propagate_down) return Tensor();
  ops::Context c = local_context(ctx);
  return ops::tanh_backward(c, dy, dynamic_cast<TensorSaved&>(saved).t);
}

Dropout::Dropout(float p) : p_(p) {
  FOVEA_CHECK(p >= 0.0f && p < 1.0f, "dropout: probability must be in [0, 1), got ", p);
}
std::string Dropout::describe() const {
  return fmt::format("dropout {}", p_);
}
void Dropout::set_rng(uint64_t seed, uint64_t step) {
  seed_ = mix(seed ^ mix(salt_));
  step_ = step;
}

Output Dropout::forward_impl(ops::Context& ctx, const Tensor& x) {
  if (!training_) return {x, nullptr};
  ops::Context c = local_context(ctx);
  auto s = std::make_unique<DropoutSaved>();
  s->seed = seed_;
  s->offset = step_;
  Tensor y = p_ == 0.0f ? x : ops::dropout_forward(c, x, p_, s->seed, s->offset);
  return {y, std::move(s)};
}
Tensor Dropout::backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) {
  if (!propagate_down) return Tensor();
  if (p_ == 0.0f) return dy;
  ops::Context c = local_context(ctx);
  auto& s = dynamic_cast<DropoutSaved&>(saved);
  return ops::dropout_backward(c, dy, p_, s.seed, s.offset);
}

}  // namespace fovea::nn
