#include "layers/nn/loss.h"

#include <fmt/core.h>

#include "core/error.h"

namespace fovea::nn {

CrossEntropyLoss::CrossEntropyLoss(float label_smoothing) : smoothing_(label_smoothing) {
  FOVEA_CHECK(label_smoothing >= 0.0f && label_smoothing <= 1.0f,
              "cross_entropy: label_smoothing must be in [0, 1], got ", label_smoothing);
}

std::string CrossEntropyLoss::describe() const {
  return smoothing_ > 0 ? fmt::format("cross_entropy (label smoothing {})", smoothing_) : "cross_entropy";
}

LossOut CrossEntropyLoss::compute(ops::Context& ctx, const Tensor& logits, const Tensor& labels) const {
  ops::CrossEntropyOut o = ops::cross_entropy(ctx, logits, labels, smoothing_);
  return {o.loss, o.dlogits};
}

LossOut MSELoss::compute(ops::Context& ctx, const Tensor& pred, const Tensor& target) const {
  ops::MseOut o = ops::mse_loss(ctx, pred, target);
  return {o.loss, o.dpred};
}

float loss_value(const Tensor& loss) {
  FOVEA_CHECK(loss.defined() && loss.numel() == 1 && loss.dtype() == DType::float32,
              "loss: expected a float32 scalar, got ", loss.defined() ? loss.str() : std::string("undefined"));
  return loss.to_vector<float>()[0];
}

}  // namespace fovea::nn
