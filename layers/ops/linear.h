// Fully connected layer, torch.nn.functional.linear: y = x W^T + b with x [N, in], W [out, in], b [out],
// y [N, out]; dx = dy W, dW = dy^T x, db = column sums of dy. Outputs overwritten; every reduction in a
// fixed order.
//   reference : cpu_reference/linear.cpp    kernels : kernels/linear.cu (our SGEMM)    cudnn : cuBLASLt
#pragma once
#include <cstdint>
#include <string>

#include "core/dispatch.h"
#include "core/float_formats.h"
#include "core/tensor.h"

namespace fovea {

struct LinearParams {
  int64_t N = 1, in_features = 1, out_features = 1;
  void validate(const char* op = "linear") const;
  std::string str() const;
};

namespace ops {

// ---- entry points (b may be null)
inline constinit DispatchStub<void(const Exec&, const LinearParams&, const float* x, const float* w, const float* b,
                                   float* y)>
    linear_forward_stub{"linear_forward"};
inline constinit DispatchStub<void(const Exec&, const LinearParams&, const float* dy, const float* w, float* dx)>
    linear_backward_data_stub{"linear_backward_data"};
inline constinit DispatchStub<void(const Exec&, const LinearParams&, const float* x, const float* dy, float* dw)>
    linear_backward_weight_stub{"linear_backward_weight"};
inline constinit DispatchStub<void(const Exec&, const LinearParams&, const float* dy, float* db)>
    linear_backward_bias_stub{"linear_backward_bias"};

// ---- at a reduced precision (Context::precision tf32, bf16 or fp16; the semantics are cpu_reference/gemm.h's:
// operands rounded to the type, exact products, FP32 sums, the output and the bias as values of the output type).
// cpu: the reference of that precision; emu and cuda: the tensor-core GEMMs (kernels/linear_tc.cu); cudnn: cuBLASLt
// at that precision (layers/cudnn/cudnn_precision.cpp).
inline constinit DispatchStub<void(const Exec&, Precision, const LinearParams&, const float* x, const float* w,
                                   const float* b, float* y)>
    linear_forward_precision_stub{"linear_forward_precision"};
inline constinit DispatchStub<void(const Exec&, Precision, const LinearParams&, const float* dy, const float* w,
                                   float* dx)>
    linear_backward_data_precision_stub{"linear_backward_data_precision"};
inline constinit DispatchStub<void(const Exec&, Precision, const LinearParams&, const float* x, const float* dy,
                                   float* dw)>
    linear_backward_weight_precision_stub{"linear_backward_weight_precision"};

// Bias over a tensor viewed as [outer, channels, inner]: y[o][c][i] += b[c] (linear: inner = 1; conv: outer = N,
// inner = P*Q); bias_backward overwrites db[c] = sum over o, i of dy[o][c][i], in a fixed order. Building
// blocks of our linear and im2col convolution kernels (slots emu and cuda only), exposed for their tests.
inline constinit DispatchStub<void(const Exec&, float* y, const float* b, int64_t outer, int64_t channels,
                                   int64_t inner)>
    bias_add_stub{"bias_add"};
inline constinit DispatchStub<void(const Exec&, const float* dy, float* db, int64_t outer, int64_t channels,
                                   int64_t inner)>
    bias_backward_stub{"bias_backward"};

// ---- tensor-level ops: x [N,I], w [O,I], b [O] or undefined, y [N,O]; at ctx.precision (the bias gradient is
// a plain FP32 column sum at every precision)
struct Context;
Tensor linear_forward(Context& ctx, const Tensor& x, const Tensor& w, const Tensor& b);
Tensor linear_backward_data(Context& ctx, const Tensor& dy, const Tensor& w);    // dx [N,I]
Tensor linear_backward_weight(Context& ctx, const Tensor& x, const Tensor& dy);  // dw [O,I]
Tensor linear_backward_bias(Context& ctx, const Tensor& dy);                     // db [O]

}  // namespace ops
}  // namespace fovea
