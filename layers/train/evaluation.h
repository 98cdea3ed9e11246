// Evaluation behind `fovea eval` and the end of every training epoch: the loss, the accuracy and the confusion
// matrix of a model over a dataset, accumulated on the model's device and read back once at the end.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "layers/data/data.h"
#include "layers/nn/models.h"
#include "layers/ops/ops.h"

namespace fovea::nn {

struct EvalResult {
  double loss = 0, accuracy = 0;
  int64_t count = 0;
  int64_t skipped = 0;  // folder datasets with skip_bad: files that did not decode (not in count)
  std::vector<std::vector<int64_t>> confusion;  // [true class][predicted class]
  std::vector<double> per_class_accuracy() const;
};

// Eval mode, no gradients; batches of `batch` through the model on ctx's device. The prediction of a row is
// torch.argmax of its logits (the first maximum; a NaN counts as the maximum). The host waits for the device
// twice, at the end (the sums and the confusion matrix); batches are uploaded without waiting.
// `progress` (when set) is called after each batch is issued with the examples issued so far and the total.
EvalResult evaluate(Model& model, ops::Context& ctx, const data::Dataset& ds, const data::Normalization& norm,
                    int64_t batch, const std::function<void(int64_t done, int64_t total)>& progress = nullptr);

// The images moved by (dx, dy) pixels (right and down for positive values), zeros shifted in (black in
// pixel space, before normalisation). A copy.
data::Dataset shift_images(const data::Dataset& ds, int dx, int dy);

}  // namespace fovea::nn
