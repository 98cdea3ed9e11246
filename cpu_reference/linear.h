// Fully connected layer, torch.nn.functional.linear: y = x W^T + b with x [N, I], W [O, I], b [O],
// y [N, O] (LinearParams: N, in_features = I, out_features = O). sgemm, split over OpenMP threads.
#pragma once
#include "core/float_formats.h"
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

// The GEMMs above at a tensor-core precision (cpu_reference/gemm.h): operands rounded, exact products, FP32
// accumulation, outputs (and the bias, a value of the output type) rounded as stored.
void linear_forward(const LinearParams& p, Precision prec, const float* x, const float* w, const float* b, float* y);
void linear_backward_data(const LinearParams& p, Precision prec, const float* dy, const float* w, float* dx);
void linear_backward_weight(const LinearParams& p, Precision prec, const float* x, const float* dy, float* dw);

}  // namespace fovea::ref
