// Dropout with the counter-based mask of cpu_reference/dropout.h (kernels/dropout.cu): element i is kept iff
// philox_uniform(seed, offset, i) >= float(p), kept values scaled by float(1 / (1 - p)); a copy when
// !p.training. The mask is a pure function of (seed, offset, i): bit-identical to the reference on every
// device and schedule, and the backward recomputes it (no mask storage). y may alias x, dx may alias dy.
#pragma once
#include <cstdint>

#include "kernels/api.h"

#define FOVEA_DROPOUT_KERNELS                                                                             \
  void dropout_forward(const DropoutParams& p, int64_t n, const float* x, float* y, StreamHandle stream); \
  /* dx = dy * mask * scale with the mask of the forward call with the same params. */                    \
  void dropout_backward(const DropoutParams& p, int64_t n, const float* dy, float* dx, StreamHandle stream);

FOVEA_DECLARE_KERNELS(FOVEA_DROPOUT_KERNELS)
