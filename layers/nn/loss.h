// Losses: the value (mean over the batch, a float32 [1] on the device) and its gradient with respect
// to the prediction, in one call (the fused softmax - target of cross-entropy).
#pragma once
#include <memory>
#include <string>

#include "layers/ops/ops.h"

namespace fovea::nn {

struct LossOut {
  Tensor loss;   // float32 [1] on the device
  Tensor dpred;  // d loss / d prediction, the prediction's shape
};

class Loss {
 public:
  virtual ~Loss() = default;
  virtual std::string describe() const = 0;
  // target: int64 class labels [N] (cross-entropy) or a float tensor of the prediction's shape (MSE).
  virtual LossOut compute(ops::Context& ctx, const Tensor& pred, const Tensor& target) const = 0;
};

// torch.nn.CrossEntropyLoss(label_smoothing=s) on logits [N, C] and int64 labels [N].
class CrossEntropyLoss : public Loss {
 public:
  explicit CrossEntropyLoss(float label_smoothing = 0.0f);
  std::string describe() const override;
  LossOut compute(ops::Context& ctx, const Tensor& logits, const Tensor& labels) const override;

 private:
  float smoothing_;
};

// torch.nn.MSELoss(): the mean of (pred - target)^2 over all elements.
class MSELoss : public Loss {
 public:
  std::string describe() const override { return "mse"; }
  LossOut compute(ops::Context& ctx, const Tensor& pred, const Tensor& target) const override;
};

// Reads the loss value back to the host (one float).
float loss_value(const Tensor& loss);

}  // namespace fovea::nn
