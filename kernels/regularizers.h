// Weight penalties and the max-norm constraint on the device (fovea::ref::l1_penalty & co. on the CPU).
#pragma once
#include "kernels/api.h"

#define FOVEA_REGULARIZER_KERNELS                                                                           \
  /* grad += l1 * sign(w) + l2 * w (grad may be nullptr); penalty[0] (device scalar) =                      \
     l1 * sum|w| + l2 / 2 * sum w^2, summed in a fixed order (block partials in `partials`, 256 floats). */ \
  void elastic_net_penalty(int64_t n, const float* w, float l1, float l2, float* grad, float* partials,     \
                           float* penalty, StreamHandle stream);                                            \
  /* Each row of w [rows, cols] with L2 norm > max_norm is scaled by max_norm / (norm + 1e-7). */           \
  void max_norm_rows(int64_t rows, int64_t cols, float* w, float max_norm, StreamHandle stream);
FOVEA_DECLARE_KERNELS(FOVEA_REGULARIZER_KERNELS)
