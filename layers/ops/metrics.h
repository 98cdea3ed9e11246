// Metrics of training and evaluation loops.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace fovea::ops {

struct Context;
// Number of rows whose arg-max equals the label (torch.argmax: the first maximum; a NaN counts as the
// maximum). Reads back one number.
int64_t count_correct(Context& ctx, const Tensor& logits, const Tensor& labels);

}  // namespace fovea::ops
