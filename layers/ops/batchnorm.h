// Batch normalisation, torch.nn.BatchNorm2d over x [N,C,H,W] (or [N,C]): per-channel statistics over
// N*H*W values. training: normalise with the batch mean and biased variance; update running_mean/var with
// running = (1 - momentum) * running + momentum * batch_stat, the variance being the UNBIASED one.
// eval: normalise with running_mean/var. gamma/beta may be null (affine=False). save_mean/save_invstd
// [C] are what backward needs (1/sqrt(biased var + eps)), interchangeable between implementations.
// (PyTorch's momentum=None, a cumulative average, is not supported.)
//   reference : cpu_reference/batchnorm.cpp   kernels : kernels/batchnorm.cu   cudnn : layers/cudnn/cudnn_ops.cpp
#pragma once
#include <cstdint>
#include <string>

#include "core/dispatch.h"
#include "core/hostdevice.h"
#include "core/tensor.h"

namespace fovea {

struct BatchNormParams {
  int64_t N = 1, C = 1, H = 1, W = 1;
  double eps = 1e-5;
  double momentum = 0.1;
  bool training = true;
  FOVEA_HD int64_t x_size() const { return N * C * H * W; }
  void validate(const char* op = "batchnorm2d") const;
  std::string str() const;
};

namespace ops {

// ---- entry points. Forward: running_mean/var may be null in training (no tracking); required in eval;
// save_* may be null. Backward: dx, dgamma, dbeta overwritten, each may be null (not all); training: the
// gradient through the batch statistics; eval: dx = dy * gamma * invstd. Scratch from ex.workspace.
inline constinit DispatchStub<void(const Exec&, const BatchNormParams&, const float* x, const float* gamma,
                                   const float* beta, float* running_mean, float* running_var, float* y,
                                   float* save_mean, float* save_invstd)>
    batchnorm2d_forward_stub{"batchnorm2d_forward"};
inline constinit DispatchStub<void(const Exec&, const BatchNormParams&, const float* x, const float* dy,
                                   const float* gamma, const float* save_mean, const float* save_invstd, float* dx,
                                   float* dgamma, float* dbeta)>
    batchnorm2d_backward_stub{"batchnorm2d_backward"};

// ---- tensor-level ops
struct Context;
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

}  // namespace ops
}  // namespace fovea
