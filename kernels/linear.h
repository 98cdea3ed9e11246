// Fully connected layer on our SGEMM (kernels/linear.cu), and the bias kernels shared with conv2d.
//   y  = x W^T + b     x [batch, in], W [out, in], b [out], y [batch, out]
//   dx = dy W          dx [batch, in]
//   dW = dy^T x        dW [out, in]
//   db = column sums of dy over the batch
// Outputs are overwritten. Every reduction has a fixed order (no atomics): bitwise deterministic.
#pragma once
#include <cstdint>

#include "core/op_params.h"
#include "kernels/api.h"

#define FOVEA_LINEAR_KERNELS                                                                                           \
  /* LinearParams (core/op_params.h): N = batch, in_features, out_features; as fovea::ref::linear_*. */                \
  /* y = x W^T + b; b may be null. */                                                                                  \
  void linear_forward(const LinearParams& p, const float* x, const float* w, const float* b, float* y,                 \
                      StreamHandle stream);                                                                            \
  void linear_backward_data(const LinearParams& p, const float* dy, const float* w, float* dx, StreamHandle stream);   \
  void linear_backward_weight(const LinearParams& p, const float* x, const float* dy, float* dw, StreamHandle stream); \
  void linear_backward_bias(const LinearParams& p, const float* dy, float* db, StreamHandle stream);                   \
  /* Bias over a tensor viewed as [outer, channels, inner]: y[o][c][i] += b[c] (linear: inner = 1;     */              \
  /* conv: outer = N, inner = P*Q). bias_backward overwrites db[c] = sum over o, i of dy[o][c][i].     */              \
  void bias_add(float* y, const float* b, int64_t outer, int64_t channels, int64_t inner, StreamHandle stream);        \
  void bias_backward(const float* dy, float* db, int64_t outer, int64_t channels, int64_t inner, StreamHandle stream); \
  /* db[k] = sum over n, p, q of dy[n][k][p][q] (fovea::ref::conv2d_backward_bias). */                                 \
  void conv2d_backward_bias(const Conv2dParams& p, const float* dy, float* db, StreamHandle stream);

FOVEA_DECLARE_KERNELS(FOVEA_LINEAR_KERNELS)
