// Pooling kernels (kernels/pooling.cu): max pooling with argmax indices, average pooling (count_include_pad
// either way), global average pooling, forward and backward. Semantics and layouts are those of
// cpu_reference/pooling.h: x [N, C, H, W] -> y [N, C, P, Q] (Pool2dParams, floor mode); idx holds the flat
// index h * W + w of each window's maximum inside its (n, c) plane (int64 like PyTorch, or int32).
//
// Backward passes are gathers: each input element sums the windows that cover it in a fixed order (no
// atomics), so dx is deterministic and, for max pooling, bitwise equal to the reference's ordered scatter.
// Every launcher validates the geometry and throws fovea::Error naming the op; dx and y are overwritten.
#pragma once
#include <cstdint>

#include "kernels/api.h"

#define FOVEA_POOLING_KERNELS                                                                                          \
  /* y = window max; idx (may be nullptr) = argmax; ties -> first in scan order; a NaN wins. */                        \
  void maxpool2d_forward(const Pool2dParams& p, const float* x, float* y, int64_t* idx, StreamHandle stream);          \
  void maxpool2d_forward(const Pool2dParams& p, const float* x, float* y, int32_t* idx, StreamHandle stream);          \
  /* dx[n,c,h,w] = sum of dy over the windows covering (h, w) whose idx == h*W + w. Indices outside their              \
     window (never produced by the forward) contribute nothing; the reference would throw. */                          \
  void maxpool2d_backward(const Pool2dParams& p, const float* dy, const int64_t* idx, float* dx, StreamHandle stream); \
  void maxpool2d_backward(const Pool2dParams& p, const float* dy, const int32_t* idx, float* dx, StreamHandle stream); \
  /* PyTorch's avg_pool2d: divisor = padded window size if p.count_include_pad, else real pixels. */                   \
  void avgpool2d_forward(const Pool2dParams& p, const float* x, float* y, StreamHandle stream);                        \
  void avgpool2d_backward(const Pool2dParams& p, const float* dy, float* dx, StreamHandle stream);                     \
  /* Global average pooling x [N, C, H, W] -> y [N, C]: a warp per (n, c) plane. */                                    \
  void global_avgpool_forward(int64_t N, int64_t C, int64_t H, int64_t W, const float* x, float* y,                    \
                              StreamHandle stream);                                                                    \
  void global_avgpool_backward(int64_t N, int64_t C, int64_t H, int64_t W, const float* dy, float* dx,                 \
                               StreamHandle stream);

FOVEA_DECLARE_KERNELS(FOVEA_POOLING_KERNELS)
