// Mean squared error (kernels/mse.cu), semantics of cpu_reference/mse.h: torch.nn.functional.mse_loss with
// reduction='mean' over n elements (no 1/2 factor).
#pragma once
#include <cstdint>

#include "core/memory.h"
#include "kernels/api.h"

#define FOVEA_MSE_KERNELS                                                                                            \
  /* loss[0] (a device scalar) = mean((x - target)^2). Deterministic two-pass sum: per-block partials in ws          \
     (at most 1024 floats), then one block adds them in a fixed order (double). */                                   \
  void mse_forward(int64_t n, const float* x, const float* target, float* loss, Workspace& ws, StreamHandle stream); \
  /* dx = dloss * 2 (x - target) / n (overwritten; dx may alias x or target). */                                     \
  void mse_backward(int64_t n, const float* x, const float* target, float dloss, float* dx, StreamHandle stream);

FOVEA_DECLARE_KERNELS(FOVEA_MSE_KERNELS)
