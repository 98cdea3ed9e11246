// Shape and attribute structs shared by the CPU reference, our kernels and the cuDNN backend,
// so that every implementation of an op reads its geometry from the same place.
// Layout is NCHW for activations and KCRS (out, in/groups, kh, kw) for conv weights.
#pragma once
#include <cstdint>
#include <string>

#include "core/hostdevice.h"

namespace fovea {

struct Conv2dParams {
  int64_t N = 1, C = 1, H = 1, W = 1;  // input
  int64_t K = 1, R = 1, S = 1;         // output channels, kernel height, kernel width
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dil_h = 1, dil_w = 1;
  int64_t groups = 1;

  FOVEA_HD int64_t P() const { return (H + 2 * pad_h - dil_h * (R - 1) - 1) / stride_h + 1; }
  FOVEA_HD int64_t Q() const { return (W + 2 * pad_w - dil_w * (S - 1) - 1) / stride_w + 1; }
  FOVEA_HD int64_t C_per_group() const { return C / groups; }
  FOVEA_HD int64_t K_per_group() const { return K / groups; }
  FOVEA_HD int64_t x_size() const { return N * C * H * W; }
  FOVEA_HD int64_t w_size() const { return K * (C / groups) * R * S; }
  FOVEA_HD int64_t y_size() const { return N * K * P() * Q(); }
  // Multiply-adds x 2 of the forward pass (also the FLOPs of dgrad and of wgrad).
  double flops() const { return 2.0 * double(N) * K * P() * Q() * (C / groups) * R * S; }

  // Throws fovea::Error naming `op`, the argument and its value when the geometry is invalid.
  void validate(const char* op = "conv2d") const;
  std::string str() const;
};

struct Pool2dParams {
  int64_t N = 1, C = 1, H = 1, W = 1;
  int64_t kernel_h = 2, kernel_w = 2;
  int64_t stride_h = 2, stride_w = 2;
  int64_t pad_h = 0, pad_w = 0;
  bool count_include_pad = true;  // avgpool only (PyTorch's default is true)

  // PyTorch's floor mode (ceil_mode=False).
  FOVEA_HD int64_t P() const { return (H + 2 * pad_h - kernel_h) / stride_h + 1; }
  FOVEA_HD int64_t Q() const { return (W + 2 * pad_w - kernel_w) / stride_w + 1; }
  FOVEA_HD int64_t x_size() const { return N * C * H * W; }
  FOVEA_HD int64_t y_size() const { return N * C * P() * Q(); }

  void validate(const char* op = "pool2d") const;
  std::string str() const;
};

// ---- appended by the CPU reference (cpu_reference/): hyperparameters shared with the kernels.

// y = x W^T + b with x [N, in_features], W [out_features, in_features], b [out_features], y [N, out_features].
struct LinearParams {
  int64_t N = 1, in_features = 1, out_features = 1;
  void validate(const char* op = "linear") const;
  std::string str() const;
};

// torch.nn.BatchNorm2d over x [N, C, H, W]; statistics per channel over N*H*W values.
// training: normalise with the batch mean and biased variance; update running_mean/var with
// running = (1 - momentum) * running + momentum * batch_stat, the variance being the UNBIASED one.
// !training: normalise with running_mean/var. (PyTorch's momentum=None, a cumulative average, is not supported.)
struct BatchNormParams {
  int64_t N = 1, C = 1, H = 1, W = 1;
  double eps = 1e-5;
  double momentum = 0.1;
  bool training = true;
  FOVEA_HD int64_t x_size() const { return N * C * H * W; }
  void validate(const char* op = "batchnorm2d") const;
  std::string str() const;
};

// torch.nn.LocalResponseNorm(size, alpha, beta, k) over the channels of x [N, C, H, W]:
// y = x / (k + alpha / size * sum_{c' in [c - size/2, c + (size-1)/2]} x_{c'}^2)^beta (PyTorch divides alpha by size).
struct LrnParams {
  int64_t N = 1, C = 1, H = 1, W = 1;
  int64_t size = 5;
  double alpha = 1e-4, beta = 0.75, k = 1.0;
  FOVEA_HD int64_t x_size() const { return N * C * H * W; }
  void validate(const char* op = "lrn") const;
  std::string str() const;
};

// Dropout: element i is kept iff philox_uniform(seed, offset, i) >= p and kept values are scaled by
// 1 / (1 - p); identity when !training. p must be in [0, 1).
struct DropoutParams {
  double p = 0.5;
  uint64_t seed = 0, offset = 0;
  bool training = true;
  void validate(const char* op = "dropout") const;
};

// Augmentation and normalisation of an image batch x [N,C,H,W] (uint8 or float) into float y of the same
// shape: y = (warp(x) * scale - mean[c]) / stddev[c] with one Affine per image (core/augment.h); the
// identity without `warp`, no normalisation without `normalize`. The channel statistics travel by value
// (at most kMaxChannels), so the op needs no device buffer besides the images and warps.
struct AugmentParams {
  static constexpr int kMaxChannels = 8;
  int64_t N = 1, C = 1, H = 1, W = 1;
  float scale = 1.0f;  // 1/255 for uint8 pixels
  bool warp = false, normalize = false;
  float mean[kMaxChannels] = {}, stddev[kMaxChannels] = {};
  FOVEA_HD int64_t size() const { return N * C * H * W; }
  void validate(const char* op = "augment") const;
};

// torch.nn.functional.cross_entropy(logits [N, C], labels int64 [N], reduction='mean', label_smoothing).
struct CrossEntropyParams {
  int64_t N = 1, C = 1;
  double label_smoothing = 0.0;
  void validate(const char* op = "cross_entropy") const;
};

// torch.optim.SGD: d = g + weight_decay * w; buf = d on the first step, else momentum * buf + (1 - dampening) * d;
// d = nesterov ? d + momentum * buf : buf (when momentum != 0); w -= lr * d.
struct SgdParams {
  double lr = 0.01, momentum = 0.0, dampening = 0.0, weight_decay = 0.0;
  bool nesterov = false;
  void validate(const char* op = "sgd") const;
};

// torch.optim.AdamW (amsgrad=False): w *= 1 - lr * weight_decay; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), t the 1-based step count.
struct AdamWParams {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 1e-2;
  void validate(const char* op = "adamw") const;
};

}  // namespace fovea
