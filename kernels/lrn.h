// Local response normalisation across channels (kernels/lrn.cu), exactly cpu_reference/lrn.h and
// torch.nn.LocalResponseNorm(size, alpha, beta, k) on x [N, C, H, W]:
//   s[c] = k + alpha / size * sum_{c' = c - size/2}^{c + (size-1)/2} x[c']^2  (zero outside [0, C));  y = x s^-beta
#pragma once
#include "core/memory.h"
#include "kernels/api.h"

#define FOVEA_LRN_KERNELS                                                                                       \
  void lrn_forward(const LrnParams& p, const float* x, float* y, StreamHandle stream);                          \
  /* dx[i] = dy[i] s[i]^-beta - 2 alpha beta / size * x[i] * sum_{j: i in window(j)} dy[j] x[j] s[j]^(-beta-1); \
     s recomputed from x. Scratch: p.x_size() floats from ws. dx must not alias x. */                           \
  void lrn_backward(const LrnParams& p, const float* x, const float* dy, float* dx, Workspace& ws, StreamHandle stream);

FOVEA_DECLARE_KERNELS(FOVEA_LRN_KERNELS)
