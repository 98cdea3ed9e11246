// Elementwise activations and the residual add, PyTorch semantics, on n floats of any shape:
//   relu        y = max(x, 0) (NaN propagates); backward dx = y > 0 ? dy : 0 (y: forward input or output)
//   relu6       y = min(max(x, 0), 6) (NaN propagates); backward dx = 0 < x < 6 ? dy : 0 (PyTorch's
//               hardtanh gate; x: forward input or output, the same test on either)
//   leaky_relu  y = x > 0 ? x : slope * x; backward reads the forward INPUT x
//   sigmoid     y = 1 / (1 + exp(-x)); backward reads the forward OUTPUT y: dx = dy * (1 - y) * y
//   tanh        y = tanh(x); backward reads the forward OUTPUT y: dx = dy * (1 - y * y)
//   add         y = a + b (residual connections); backward copies dy to da and db (either may be null)
// y may alias x and dx may alias dy.
//   reference : cpu_reference/activations.cpp  kernels : kernels/activations.cu  cudnn : layers/cudnn/cudnn_ops.cpp
#pragma once
#include <cstdint>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace fovea::ops {

// ---- entry points
using UnaryFn = void(const Exec&, int64_t n, const float* x, float* y);
using UnaryBackwardFn = void(const Exec&, int64_t n, const float* saved, const float* dy, float* dx);
inline constinit DispatchStub<UnaryFn> relu_forward_stub{"relu_forward"};
inline constinit DispatchStub<UnaryBackwardFn> relu_backward_stub{"relu_backward"};
inline constinit DispatchStub<UnaryFn> relu6_forward_stub{"relu6_forward"};
inline constinit DispatchStub<UnaryBackwardFn> relu6_backward_stub{"relu6_backward"};
inline constinit DispatchStub<UnaryFn> sigmoid_forward_stub{"sigmoid_forward"};
inline constinit DispatchStub<UnaryBackwardFn> sigmoid_backward_stub{"sigmoid_backward"};
inline constinit DispatchStub<UnaryFn> tanh_forward_stub{"tanh_forward"};
inline constinit DispatchStub<UnaryBackwardFn> tanh_backward_stub{"tanh_backward"};
inline constinit DispatchStub<void(const Exec&, int64_t n, float slope, const float* x, float* y)>
    leaky_relu_forward_stub{"leaky_relu_forward"};
inline constinit DispatchStub<void(const Exec&, int64_t n, float slope, const float* x, const float* dy, float* dx)>
    leaky_relu_backward_stub{"leaky_relu_backward"};
inline constinit DispatchStub<void(const Exec&, int64_t n, const float* a, const float* b, float* y)>
    residual_add_forward_stub{"residual_add_forward"};
inline constinit DispatchStub<void(const Exec&, int64_t n, const float* dy, float* da, float* db)>
    residual_add_backward_stub{"residual_add_backward"};

// ---- tensor-level ops; backward takes the forward input x (relu, leaky) or output y (sigmoid, tanh)
struct Context;
Tensor relu_forward(Context& ctx, const Tensor& x);
Tensor relu_backward(Context& ctx, const Tensor& dy, const Tensor& x);
Tensor relu6_forward(Context& ctx, const Tensor& x);
Tensor relu6_backward(Context& ctx, const Tensor& dy, const Tensor& x);
Tensor leaky_relu_forward(Context& ctx, const Tensor& x, float slope);
Tensor leaky_relu_backward(Context& ctx, const Tensor& dy, const Tensor& x, float slope);
Tensor sigmoid_forward(Context& ctx, const Tensor& x);
Tensor sigmoid_backward(Context& ctx, const Tensor& dy, const Tensor& y);
Tensor tanh_forward(Context& ctx, const Tensor& x);
Tensor tanh_backward(Context& ctx, const Tensor& dy, const Tensor& y);
Tensor add(Context& ctx, const Tensor& a, const Tensor& b);

}  // namespace fovea::ops
