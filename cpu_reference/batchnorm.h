// torch.nn.BatchNorm2d on x [N, C, H, W], per-channel statistics over N*H*W (BatchNormParams).
// gamma/beta [C] may be nullptr (affine=False: gamma 1, beta 0). save_mean/save_invstd [C] are
// what backward needs: training -> the batch mean and 1/sqrt(biased var + eps); eval -> the running
// mean and 1/sqrt(running_var + eps).
#pragma once
#include "layers/ops/batchnorm.h"

namespace fovea::ref {

// training: y = (x - mean) * invstd * gamma + beta with batch statistics; running_mean/var [C]
// updated in place with momentum and the UNBIASED variance (they may be nullptr: no tracking).
// eval: uses running_mean/var (required). save_mean/save_invstd may be nullptr.
void batchnorm2d_forward(const BatchNormParams& p, const float* x, const float* gamma, const float* beta,
                         float* running_mean, float* running_var, float* y, float* save_mean, float* save_invstd);

// From the forward's saved statistics. training: the gradient flows through the batch mean and
// variance; eval: the statistics are constants (dx = dy * gamma * invstd). dx, dgamma, dbeta are
// overwritten; dgamma/dbeta may be nullptr (affine=False), dx may be nullptr (no input gradient).
void batchnorm2d_backward(const BatchNormParams& p, const float* x, const float* dy, const float* gamma,
                          const float* save_mean, const float* save_invstd, float* dx, float* dgamma, float* dbeta);

}  // namespace fovea::ref
