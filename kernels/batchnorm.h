// Batch normalisation over x [N, C, H, W] (kernels/batchnorm.cu), semantics of cpu_reference/batchnorm.h
// (torch.nn.BatchNorm2d): per-channel statistics over N*H*W values; gamma/beta may be nullptr (affine=False);
// training uses the batch mean and biased variance and updates running_mean/var (nullable) with momentum and
// the UNBIASED variance; eval uses running_mean/var. save_mean/save_invstd [C] receive what backward needs.
//
// Deterministic: each channel is split into a fixed number of chunks (a function of the shape only); one block
// per (channel, chunk) reduces its chunk (Welford forward, plain sums backward) in a fixed tree; a second
// kernel merges the chunks of a channel in order, in double. No atomics. Scratch comes from `ws`.
#pragma once
#include "core/memory.h"
#include "kernels/api.h"

#define FOVEA_BATCHNORM_KERNELS                                                                                       \
  void batchnorm2d_forward(const BatchNormParams& p, const float* x, const float* gamma, const float* beta,           \
                           float* running_mean, float* running_var, float* y, float* save_mean, float* save_invstd,   \
                           Workspace& ws, StreamHandle stream);                                                       \
  /* dx, dgamma, dbeta overwritten; each may be nullptr (not all). training: gradient through the batch               \
     statistics; eval: dx = dy * gamma * invstd. save_* are the forward's. */                                         \
  void batchnorm2d_backward(const BatchNormParams& p, const float* x, const float* dy, const float* gamma,            \
                            const float* save_mean, const float* save_invstd, float* dx, float* dgamma, float* dbeta, \
                            Workspace& ws, StreamHandle stream);

FOVEA_DECLARE_KERNELS(FOVEA_BATCHNORM_KERNELS)
