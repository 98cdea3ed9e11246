// Tensor-level ops: the one table from (op, device, backend) to an implementation.
//   device cpu                  -> cpu_reference/ (fovea::ref)
//   device emu/cuda, custom     -> our kernels (fovea::emu_kernels / fovea::cuda_kernels)
//   device cuda, cudnn          -> cuDNN / cuBLAS (where implemented; else a clear error)
// Every op checks shapes, dtypes and that all tensors are on the context's device, and throws a
// fovea::Error naming the op, the argument and the values. Outputs are new tensors on that device;
// memory comes from the caching allocators, so a training loop does not page-fault every step.
#pragma once
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "core/op_params.h"
#include "core/tensor.h"
#include "kernels/conv2d.h"  // ConvAlgo

namespace fovea::ops {

enum class Backend : uint8_t { custom, cudnn };
Backend parse_backend(std::string_view text);  // "custom" | "cudnn"
const char* backend_name(Backend b);

// Where and how ops run: device, backend, stream, scratch space.
struct Context {
  Device device = kCPU;
  Backend backend = Backend::custom;
  ConvAlgo conv_algo = ConvAlgo::implicit_gemm;  // our kernels' convolution version (all tested)
  bool deterministic = true;                     // only deterministic algorithms (the default everywhere)
  StreamHandle stream = nullptr;
  std::shared_ptr<Workspace> workspace;
  // The device copy of the optimizer's tensor list, uploaded again only when the list changes.
  struct OptimizerList;
  std::shared_ptr<OptimizerList> optimizer_list;

  explicit Context(Device d = kCPU, Backend b = Backend::custom);
};

// ---- convolution: x [N,C,H,W], w [K,C/groups,R,S], b [K] or undefined, y [N,K,P,Q]
struct Conv2dAttrs {
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1, groups = 1;
};
Conv2dParams conv2d_params(const Shape& x, const Shape& w, const Conv2dAttrs& a);  // validated
Tensor conv2d_forward(Context& ctx, const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dAttrs& a);
Tensor conv2d_backward_data(Context& ctx, const Tensor& dy, const Tensor& w, const Shape& x_shape,
                            const Conv2dAttrs& a);
Tensor conv2d_backward_filter(Context& ctx, const Tensor& x, const Tensor& dy, const Shape& w_shape,
                              const Conv2dAttrs& a);
Tensor conv2d_backward_bias(Context& ctx, const Tensor& dy);  // [K]

// ---- pooling (PyTorch floor mode)
struct Pool2dAttrs {
  int64_t kernel_h = 2, kernel_w = 2, stride_h = 2, stride_w = 2, pad_h = 0, pad_w = 0;
  bool count_include_pad = true;
};
Pool2dParams pool2d_params(const Shape& x, const Pool2dAttrs& a);
struct MaxPoolOut {
  Tensor y, indices;  // indices: int32 argmax within each input plane (h*W + w), for backward
};
MaxPoolOut maxpool2d_forward(Context& ctx, const Tensor& x, const Pool2dAttrs& a);
Tensor maxpool2d_backward(Context& ctx, const Tensor& dy, const Tensor& indices, const Shape& x_shape,
                          const Pool2dAttrs& a);
Tensor avgpool2d_forward(Context& ctx, const Tensor& x, const Pool2dAttrs& a);
Tensor avgpool2d_backward(Context& ctx, const Tensor& dy, const Shape& x_shape, const Pool2dAttrs& a);
Tensor global_avgpool_forward(Context& ctx, const Tensor& x);  // [N,C,H,W] -> [N,C]
Tensor global_avgpool_backward(Context& ctx, const Tensor& dy, const Shape& x_shape);

// ---- linear: x [N,I], w [O,I], b [O] or undefined, y [N,O]
Tensor linear_forward(Context& ctx, const Tensor& x, const Tensor& w, const Tensor& b);
Tensor linear_backward_data(Context& ctx, const Tensor& dy, const Tensor& w);    // dx [N,I]
Tensor linear_backward_weight(Context& ctx, const Tensor& x, const Tensor& dy);  // dw [O,I]
Tensor linear_backward_bias(Context& ctx, const Tensor& dy);                     // db [O]

// ---- activations (any shape); backward takes the forward input x (relu, leaky) or output y (sigmoid, tanh)
Tensor relu_forward(Context& ctx, const Tensor& x);
Tensor relu_backward(Context& ctx, const Tensor& dy, const Tensor& x);
Tensor leaky_relu_forward(Context& ctx, const Tensor& x, float slope);
Tensor leaky_relu_backward(Context& ctx, const Tensor& dy, const Tensor& x, float slope);
Tensor sigmoid_forward(Context& ctx, const Tensor& x);
Tensor sigmoid_backward(Context& ctx, const Tensor& dy, const Tensor& y);
Tensor tanh_forward(Context& ctx, const Tensor& x);
Tensor tanh_backward(Context& ctx, const Tensor& dy, const Tensor& y);

// ---- dropout: keep element i iff philox_uniform(seed, offset, i) >= p; kept values scaled by 1/(1-p)
Tensor dropout_forward(Context& ctx, const Tensor& x, float p, uint64_t seed, uint64_t offset);
Tensor dropout_backward(Context& ctx, const Tensor& dy, float p, uint64_t seed, uint64_t offset);

// ---- elementwise
Tensor add(Context& ctx, const Tensor& a, const Tensor& b);  // residual connections

// ---- augmentation on the training device: x uint8 (scaled by 1/255) or float [N,C,H,W], warps float [N,6]
// (one Affine per image, core/augment.h) or undefined (no warp), mean/stddev per channel or empty (no
// normalisation). y = (warp(x) * scale - mean[c]) / stddev[c], float [N,C,H,W].
Tensor augment_forward(Context& ctx, const Tensor& x, const Tensor& warps, const std::vector<float>& mean,
                       const std::vector<float>& stddev);
// Its kernel parameters (validated) for x of this shape and dtype.
AugmentParams augment_params(const Shape& x, DType dtype, bool warp, const std::vector<float>& mean,
                             const std::vector<float>& stddev);

// ---- softmax family over dim 1 of [N,C]
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
// Number of rows whose arg-max equals the label (an int64 count; reads back one number).
int64_t count_correct(Context& ctx, const Tensor& logits, const Tensor& labels);

// ---- mean squared error (mean over all elements, like torch.nn.MSELoss)
struct MseOut {
  Tensor loss, dpred;
};
MseOut mse_loss(Context& ctx, const Tensor& pred, const Tensor& target);

// ---- local response normalisation (torch.nn.LocalResponseNorm(size, alpha, beta, k))
Tensor lrn_forward(Context& ctx, const Tensor& x, const LrnParams& p);
Tensor lrn_backward(Context& ctx, const Tensor& dy, const Tensor& x, const Tensor& y, const LrnParams& p);

// ---- batch norm over [N,C,H,W] (or [N,C])
struct BatchNormOut {
  Tensor y, save_mean, save_invstd;  // batch statistics kept for backward (training mode)
};
// Training: normalise with batch statistics, update running_mean/var in place (momentum, unbiased var).
BatchNormOut batchnorm_forward_train(Context& ctx, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                     Tensor& running_mean, Tensor& running_var, float momentum, float eps);
Tensor batchnorm_forward_eval(Context& ctx, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                              const Tensor& running_mean, const Tensor& running_var, float eps);
struct BatchNormGrads {
  Tensor dx, dgamma, dbeta;
};
BatchNormGrads batchnorm_backward(Context& ctx, const Tensor& dy, const Tensor& x, const Tensor& gamma,
                                  const Tensor& save_mean, const Tensor& save_invstd);

// ---- optimizers: one fused update over all parameters (multi-tensor apply on emu/cuda)
struct ParamSlot {
  Tensor param, grad;
  Tensor state1, state2;  // SGD: momentum buffer (state1); AdamW: exp_avg, exp_avg_sq. Allocated by the caller.
};
void sgd_step(Context& ctx, std::vector<ParamSlot>& params, const SgdParams& p, int64_t step);
void adamw_step(Context& ctx, std::vector<ParamSlot>& params, const AdamWParams& p, int64_t step);

// ---- regularisation (added to grads in place; returns the penalty value)
float l1_l2_penalty(Context& ctx, std::vector<ParamSlot>& params, float l1, float l2);
void max_norm(Context& ctx, Tensor& w, float max_norm_value);  // renormalise each row (dim 0) to norm <= c

// ---- random fill from the Philox stream (seed, offset): same numbers on every device
void fill_uniform(Context& ctx, Tensor& t, float lo, float hi, uint64_t seed, uint64_t offset);
void fill_normal(Context& ctx, Tensor& t, float mean, float stddev, uint64_t seed, uint64_t offset);
void fill_value(Context& ctx, Tensor& t, float value);

}  // namespace fovea::ops
