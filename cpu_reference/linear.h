// Fully connected layer, torch.nn.functional.linear: y = x W^T + b with x [N, I], W [O, I], b [O],
// y [N, O] (LinearParams: N, in_features = I, out_features = O). sgemm, split over OpenMP threads.
#pragma once
#include "layers/ops/linear.h"

namespace fovea::ref {

// b may be nullptr (no bias).
void linear_forward(const LinearParams& p, const float* x, const float* w, const float* b, float* y);
// dx [N, I] = dy W (overwritten).
void linear_backward_data(const LinearParams& p, const float* dy, const float* w, float* dx);
// dw [O, I] = dy^T x (overwritten).
void linear_backward_weight(const LinearParams& p, const float* x, const float* dy, float* dw);
// db [O] = sum over n of dy (overwritten).
void linear_backward_bias(const LinearParams& p, const float* dy, float* db);

}  // namespace fovea::ref
