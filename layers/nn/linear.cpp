// Linear and Flatten.
#include <fmt/core.h>

#include "core/error.h"
#include "layers/nn/layers.h"

namespace fovea::nn {
namespace {
struct LinearSaved : Saved {
  Tensor x;
};
}  // namespace

Linear::Linear(int64_t in_features, int64_t out_features, bool bias, InitSpec init)
    : in_(in_features), out_(out_features), bias_(bias), init_(init) {
  FOVEA_CHECK(in_features > 0 && out_features > 0, "linear: features must be > 0, got ", in_features, " -> ",
              out_features);
  add_param("weight", Tensor::zeros({out_features, in_features}));
  if (bias) add_param("bias", Tensor::zeros({out_features}));
}

std::string Linear::describe() const {
  return fmt::format("linear {}->{}{}", in_, out_, bias_ ? "" : " no-bias");
}

Shape Linear::output_shape(const Shape& in) const {
  FOVEA_CHECK(in.ndim() == 2 && in[1] == in_, "linear: expects [N, ", in_, "], got ", in.str());
  return Shape{in[0], out_};
}

void Linear::reset_parameters(ops::Context& ctx, uint64_t seed, uint64_t& counter) {
  init_weight(ctx, params_[0].value, init_, seed, counter++);
  if (bias_) init_bias(ctx, params_[1].value, init_, in_, seed, counter++);
}

Output Linear::forward_impl(ops::Context& ctx, const Tensor& x) {
  ops::Context c = local_context(ctx);
  Tensor y = ops::linear_forward(c, x, params_[0].value, bias_ ? params_[1].value : Tensor());
  if (!training_) return {y, nullptr};
  auto s = std::make_unique<LinearSaved>();
  s->x = x;
  return {y, std::move(s)};
}

Tensor Linear::backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) {
  ops::Context c = local_context(ctx);
  auto& s = dynamic_cast<LinearSaved&>(saved);
  if (params_[0].trainable) accumulate_grad(c, params_[0], ops::linear_backward_weight(c, s.x, dy));
  if (bias_ && params_[1].trainable) accumulate_grad(c, params_[1], ops::linear_backward_bias(c, dy));
  if (!propagate_down) return Tensor();
  return ops::linear_backward_data(c, dy, params_[0].value);
}

// ---------------------------------------------------------------- Flatten

Shape Flatten::output_shape(const Shape& in) const {
  FOVEA_CHECK(in.ndim() >= 2, "flatten: expects at least [N, F], got ", in.str());
  int64_t features = 1;
  for (int i = 1; i < in.ndim(); ++i) features *= in[i];
  return Shape{in[0], features};
}

Output Flatten::forward_impl(ops::Context&, const Tensor& x) {
  Tensor y = x.reshape(output_shape(x.shape()));
  return {y, training_ ? std::make_unique<Saved>() : nullptr};
}

Tensor Flatten::backward_impl(ops::Context&, const Tensor& dy, Saved& saved, bool propagate_down) {
  if (!propagate_down) return Tensor();
  return dy.reshape(saved.x_shape);
}

}  // namespace fovea::nn
