// Elementwise activations on n floats (any shape), PyTorch semantics, and the residual add.
// Backward functions overwrite dx; in-place use (y == x, dx == dy) is allowed.
#pragma once
#include <cstdint>

namespace fovea::ref {

// y = max(x, 0). Backward: dx = dy where y > 0, else 0 (PyTorch: gradient 0 at x == 0).
// `y` may be the forward input or output: x > 0 exactly when y > 0.
void relu_forward(int64_t n, const float* x, float* y);
void relu_backward(int64_t n, const float* y, const float* dy, float* dx);

// y = min(max(x, 0), 6) (ReLU6; NaN propagates). Backward: dx = dy where 0 < x < 6, else 0 (PyTorch's
// hardtanh_backward: gradient 0 at both kinks). `x` may be the forward input or output.
void relu6_forward(int64_t n, const float* x, float* y);
void relu6_backward(int64_t n, const float* x, const float* dy, float* dx);

// y = x > 0 ? x : slope * x. Backward reads the forward INPUT x: dx = x > 0 ? dy : slope * dy.
void leaky_relu_forward(int64_t n, float slope, const float* x, float* y);
void leaky_relu_backward(int64_t n, float slope, const float* x, const float* dy, float* dx);

// y = 1 / (1 + exp(-x)). Backward reads the forward OUTPUT y: dx = dy * (1 - y) * y.
void sigmoid_forward(int64_t n, const float* x, float* y);
void sigmoid_backward(int64_t n, const float* y, const float* dy, float* dx);

// y = tanh(x). Backward reads the forward OUTPUT y: dx = dy * (1 - y * y).
void tanh_forward(int64_t n, const float* x, float* y);
void tanh_backward(int64_t n, const float* y, const float* dy, float* dx);

// Residual connection y = a + b. Backward passes dy to both inputs: da = dy, db = dy
// (either output may be nullptr when that input needs no gradient).
void residual_add_forward(int64_t n, const float* a, const float* b, float* y);
void residual_add_backward(int64_t n, const float* dy, float* da, float* db);

}  // namespace fovea::ref
