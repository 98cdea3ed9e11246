// 2-D pooling over x [N, C, H, W] -> y [N, C, P, Q] (Pool2dParams, PyTorch's floor mode):
// max pooling with argmax indices, average pooling (count_include_pad either way), global average.
#pragma once
#include <cstdint>

#include "layers/ops/pooling.h"

namespace fovea::ref {

// y = max over each window; padding never wins (it is -inf, as in PyTorch). idx[n][c][p][q] is the
// flat index h * W + w of the maximum inside its (n, c) plane, like torch's return_indices=True.
// Ties go to the first maximum in window scan order (row by row); a NaN in the window wins.
// idx may be nullptr (inference).
void maxpool2d_forward(const Pool2dParams& p, const float* x, float* y, int64_t* idx);
void maxpool2d_forward(const Pool2dParams& p, const float* x, float* y, int32_t* idx);
// dx = scatter-add of dy into the argmax positions (overwritten). Indices outside [0, H*W) throw.
void maxpool2d_backward(const Pool2dParams& p, const float* dy, const int64_t* idx, float* dx);
void maxpool2d_backward(const Pool2dParams& p, const float* dy, const int32_t* idx, float* dx);

// y = mean over each window. The divisor is the window size including padding when
// p.count_include_pad (PyTorch's default), else the number of real pixels in the window.
void avgpool2d_forward(const Pool2dParams& p, const float* x, float* y);
void avgpool2d_backward(const Pool2dParams& p, const float* dy, float* dx);

// Global average pooling x [N, C, H, W] -> y [N, C] (= adaptive_avg_pool2d(x, 1)).
void global_avgpool_forward(int64_t N, int64_t C, int64_t H, int64_t W, const float* x, float* y);
void global_avgpool_backward(int64_t N, int64_t C, int64_t H, int64_t W, const float* dy, float* dx);

// Adaptive average pooling to [OH, OW] (AdaptivePool2dParams' bins), sums in double. Backward
// overwrites dx with the sum over the bins holding each pixel of dy / the bin's size.
void adaptive_avgpool2d_forward(const AdaptivePool2dParams& p, const float* x, float* y);
void adaptive_avgpool2d_backward(const AdaptivePool2dParams& p, const float* dy, float* dx);

}  // namespace fovea::ref
