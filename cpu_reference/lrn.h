// Local response normalisation across channels, exactly torch.nn.LocalResponseNorm(size, alpha, beta, k)
// on x [N, C, H, W]:
//   s[c] = k + alpha / size * sum_{c' = c - size/2}^{c + (size-1)/2} x[c']^2   (zero outside [0, C))
//   y[c] = x[c] * s[c]^-beta
// (PyTorch averages the squares over the window: alpha is divided by size.)
#pragma once
#include "layers/ops/lrn.h"

namespace fovea::ref {

void lrn_forward(const LrnParams& p, const float* x, float* y);
// dx[i] = dy[i] s[i]^-beta - 2 alpha beta / size * x[i] * sum_{j: i in window(j)} dy[j] x[j] s[j]^(-beta-1);
// s is recomputed from x (no saved state).
void lrn_backward(const LrnParams& p, const float* x, const float* dy, float* dx);

}  // namespace fovea::ref
