// Bias kernels shared by linear and the im2col convolution (kernels/linear.cu). Only .cu files include this.
#pragma once
#include <cstdint>

#include "core/dispatch.h"

namespace fovea::FOVEA_KERNEL_NS {
// Bias over a tensor viewed as [outer, channels, inner]: y[o][c][i] += b[c] (linear: inner = 1; conv:
// outer = N, inner = P*Q). bias_backward overwrites db[c] = sum over o, i of dy[o][c][i], in a fixed order.
void bias_add(const Exec& ex, float* y, const float* b, int64_t outer, int64_t channels, int64_t inner);
void bias_backward(const Exec& ex, const float* dy, float* db, int64_t outer, int64_t channels, int64_t inner);
}  // namespace fovea::FOVEA_KERNEL_NS
