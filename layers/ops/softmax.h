// Row softmax, log-softmax and the fused softmax + cross-entropy over x [N, C] (PyTorch's dim=1; int64
// labels; label_smoothing; mean reduction). Numerically stable (the row maximum is subtracted).
//   reference : cpu_reference/softmax.cpp     kernels : kernels/softmax.cu     cudnn : layers/cudnn/cudnn_ops.cpp
#pragma once
#include <cstdint>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace fovea {

// torch.nn.functional.cross_entropy(logits [N, C], labels int64 [N], reduction='mean', label_smoothing).
struct CrossEntropyParams {
  int64_t N = 1, C = 1;
  double label_smoothing = 0.0;
  void validate(const char* op = "cross_entropy") const;
};

// Our two row kernels, kept side by side: a warp per row holding the row in registers (C <= 1024) and a
// block per row for any C; `automatic` picks the first up to kWarpPerRowMaxC. The reference ignores it.
enum class RowAlgo { automatic, warp_per_row, block_per_row };
inline constexpr int64_t kWarpPerRowMaxC = 1024;

namespace ops {

// ---- entry points. Backward: softmax dx = y * (dy - sum_c dy * y); log_softmax dx = dy - exp(y) * sum_c dy
// (y the forward output).
using RowFn = void(const Exec&, RowAlgo, int64_t N, int64_t C, const float* x, float* y);
using RowBackwardFn = void(const Exec&, RowAlgo, int64_t N, int64_t C, const float* y, const float* dy, float* dx);
inline constinit DispatchStub<RowFn> softmax_forward_stub{"softmax_forward"};
inline constinit DispatchStub<RowBackwardFn> softmax_backward_stub{"softmax_backward"};
inline constinit DispatchStub<RowFn> log_softmax_forward_stub{"log_softmax_forward"};
inline constinit DispatchStub<RowBackwardFn> log_softmax_backward_stub{"log_softmax_backward"};
// row_loss[n] = -sum_c q[n][c] log_softmax(logits)[n][c], q = (1 - eps) onehot(label) + eps / C; loss[0] (a
// device scalar) = mean over rows, summed in a fixed order. A label outside [0, C) makes its row (and the
// mean) NaN on a device (a kernel cannot throw); the reference throws.
inline constinit DispatchStub<void(const Exec&, RowAlgo, const CrossEntropyParams&, const float* logits,
                                   const int64_t* labels, float* row_loss, float* loss)>
    cross_entropy_forward_stub{"cross_entropy_forward"};
// dlogits = dloss * (softmax(logits) - q) / N (overwritten): the fused softmax + loss gradient.
inline constinit DispatchStub<void(const Exec&, RowAlgo, const CrossEntropyParams&, const float* logits,
                                   const int64_t* labels, float dloss, float* dlogits)>
    cross_entropy_backward_stub{"cross_entropy_backward"};

// ---- tensor-level ops over dim 1 of [N,C]
struct Context;
Tensor softmax_forward(Context& ctx, const Tensor& x);
Tensor softmax_backward(Context& ctx, const Tensor& dy, const Tensor& y);
Tensor log_softmax_forward(Context& ctx, const Tensor& x);
Tensor log_softmax_backward(Context& ctx, const Tensor& dy, const Tensor& y);
struct CrossEntropyOut {
  Tensor loss;     // float32 [1] on the device: mean over the batch
  Tensor dlogits;  // gradient of the mean loss, [N,C]
};
// logits [N,C] float32, labels [N] int64; fused softmax - target.
CrossEntropyOut cross_entropy(Context& ctx, const Tensor& logits, const Tensor& labels, float label_smoothing = 0);

}  // namespace ops
}  // namespace fovea
