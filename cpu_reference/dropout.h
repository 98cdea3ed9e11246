// Dropout with a counter-based mask (core/philox.h): element i is kept iff
// philox_uniform(seed, offset, i) >= p, kept values are scaled by 1 / (1 - p); identity when
// !training. The mask is a pure function of (seed, offset, i), so backward recomputes it (no mask
// storage) and cpu, emu and cuda drop the same elements.
#pragma once
#include <cstdint>

#include "layers/ops/dropout.h"

namespace fovea::ref {

void dropout_forward(const DropoutParams& p, int64_t n, const float* x, float* y);
// dx = dy * mask / (1 - p) with the mask of the forward call with the same params.
void dropout_backward(const DropoutParams& p, int64_t n, const float* dy, float* dx);
// The scale applied to kept elements, 1 / (1 - p) rounded to float (as PyTorch).
float dropout_scale(const DropoutParams& p);

}  // namespace fovea::ref
