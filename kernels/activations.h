// Elementwise activations and the residual add (kernels/activations.cu), semantics of
// cpu_reference/activations.h (PyTorch): n floats of any shape; y may alias x and dx may alias dy.
#pragma once
#include <cstdint>

#include "kernels/api.h"

#define FOVEA_ACTIVATION_KERNELS                                                                                     \
  /* y = max(x, 0) (NaN propagates). Backward: dx = y > 0 ? dy : 0 (y: forward input or output). */                  \
  void relu_forward(int64_t n, const float* x, float* y, StreamHandle stream);                                       \
  void relu_backward(int64_t n, const float* y, const float* dy, float* dx, StreamHandle stream);                    \
  /* y = x > 0 ? x : slope * x. Backward reads the forward INPUT x. */                                               \
  void leaky_relu_forward(int64_t n, float slope, const float* x, float* y, StreamHandle stream);                    \
  void leaky_relu_backward(int64_t n, float slope, const float* x, const float* dy, float* dx, StreamHandle stream); \
  /* y = 1 / (1 + exp(-x)). Backward reads the forward OUTPUT y: dx = dy * (1 - y) * y. */                           \
  void sigmoid_forward(int64_t n, const float* x, float* y, StreamHandle stream);                                    \
  void sigmoid_backward(int64_t n, const float* y, const float* dy, float* dx, StreamHandle stream);                 \
  /* y = tanh(x). Backward reads the forward OUTPUT y: dx = dy * (1 - y * y). */                                     \
  void tanh_forward(int64_t n, const float* x, float* y, StreamHandle stream);                                       \
  void tanh_backward(int64_t n, const float* y, const float* dy, float* dx, StreamHandle stream);                    \
  /* Residual connection y = a + b; backward copies dy to da and db (either may be nullptr, not both). */            \
  void residual_add_forward(int64_t n, const float* a, const float* b, float* y, StreamHandle stream);               \
  void residual_add_backward(int64_t n, const float* dy, float* da, float* db, StreamHandle stream);

FOVEA_DECLARE_KERNELS(FOVEA_ACTIVATION_KERNELS)
