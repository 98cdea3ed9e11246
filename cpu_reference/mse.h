// Mean squared error, torch.nn.functional.mse_loss(x, target, reduction='mean') = mean((x - t)^2)
// over n elements (no 1/2 factor).
#pragma once
#include <cstdint>

namespace fovea::ref {

float mse_forward(int64_t n, const float* x, const float* target);
// dx = dloss * 2 (x - t) / n (overwritten).
void mse_backward(int64_t n, const float* x, const float* target, float dloss, float* dx);

}  // namespace fovea::ref
