// The layers: PyTorch semantics and parameter names, so a fovea checkpoint loads into the same
// torch.nn.Sequential. Implementations: layers/nn/conv.cpp, linear.cpp, pool.cpp, activation.cpp,
// norm.cpp; the contract in layers/nn/layer.h.
#pragma once
#include <cstdint>
#include <string>

#include "layers/nn/init.h"
#include "layers/nn/layer.h"

namespace fovea::nn {

// ---- layers/nn/conv.cpp
struct Conv2dOptions {
  int64_t in_channels = 1, out_channels = 1, kernel_h = 3, kernel_w = 3;
  ops::Conv2dAttrs attrs;
  bool bias = true;
  InitSpec init;
};
// weight [K, C/groups, R, S], bias [K]
class Conv2d : public Layer {
 public:
  explicit Conv2d(const Conv2dOptions& o);
  const char* kind() const override { return "conv2d"; }
  std::string describe() const override;
  Shape output_shape(const Shape& in) const override;
  void reset_parameters(ops::Context& ctx, uint64_t seed, uint64_t& counter) override;
  const Conv2dOptions& options() const { return o_; }

 protected:
  Output forward_impl(ops::Context& ctx, const Tensor& x) override;
  Tensor backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) override;

 private:
  Conv2dOptions o_;
};

// ResNet's parameter-free "option A" shortcut (He et al. 2016, CIFAR): x[:, :, ::stride, ::stride] with
// the channels zero-padded from C to K (the input lands in channels [(K-C)/2, (K-C)/2 + C), as in the
// common CIFAR ResNet code). Computed as a 1x1 strided convolution with a fixed 0/1 weight, so it runs
// on every device and backend with the conv ops; the weight is a constant, not a parameter.
class ZeroPadShortcut : public Layer {
 public:
  ZeroPadShortcut(int64_t in_channels, int64_t out_channels, int64_t stride);
  const char* kind() const override { return "zero_pad_shortcut"; }
  std::string describe() const override;
  Shape output_shape(const Shape& in) const override;

 protected:
  Output forward_impl(ops::Context& ctx, const Tensor& x) override;
  Tensor backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) override;

 private:
  int64_t in_, out_, stride_;
  Tensor w_;
};

// ---- layers/nn/linear.cpp: x [N, in] -> [N, out]; weight [out, in], bias [out]
class Linear : public Layer {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, InitSpec init = {});
  const char* kind() const override { return "linear"; }
  std::string describe() const override;
  Shape output_shape(const Shape& in) const override;
  void reset_parameters(ops::Context& ctx, uint64_t seed, uint64_t& counter) override;

 protected:
  Output forward_impl(ops::Context& ctx, const Tensor& x) override;
  Tensor backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) override;

 private:
  int64_t in_, out_;
  bool bias_;
  InitSpec init_;
};

// [N, C, H, W] -> [N, C*H*W] (a view: no copy)
class Flatten : public Layer {
 public:
  const char* kind() const override { return "flatten"; }
  std::string describe() const override { return "flatten"; }
  Shape output_shape(const Shape& in) const override;

 protected:
  Output forward_impl(ops::Context& ctx, const Tensor& x) override;
  Tensor backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) override;
};

// ---- layers/nn/pool.cpp
class MaxPool2d : public Layer {
 public:
  explicit MaxPool2d(const ops::Pool2dAttrs& a) : a_(a) {}
  const char* kind() const override { return "maxpool2d"; }
  std::string describe() const override;
  Shape output_shape(const Shape& in) const override;

 protected:
  Output forward_impl(ops::Context& ctx, const Tensor& x) override;
  Tensor backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) override;

 private:
  ops::Pool2dAttrs a_;
};

class AvgPool2d : public Layer {
 public:
  explicit AvgPool2d(const ops::Pool2dAttrs& a) : a_(a) {}
  const char* kind() const override { return "avgpool2d"; }
  std::string describe() const override;
  Shape output_shape(const Shape& in) const override;

 protected:
  Output forward_impl(ops::Context& ctx, const Tensor& x) override;
  Tensor backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) override;

 private:
  ops::Pool2dAttrs a_;
};

// torch.nn.AdaptiveAvgPool2d((out_h, out_w)): [N, C, H, W] -> [N, C, out_h, out_w]
class AdaptiveAvgPool2d : public Layer {
 public:
  AdaptiveAvgPool2d(int64_t out_h, int64_t out_w) : oh_(out_h), ow_(out_w) {}
  const char* kind() const override { return "adaptive_avgpool2d"; }
  std::string describe() const override;
  Shape output_shape(const Shape& in) const override;

 protected:
  Output forward_impl(ops::Context& ctx, const Tensor& x) override;
  Tensor backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) override;

 private:
  int64_t oh_, ow_;
};

// [N, C, H, W] -> [N, C] (the mean of each plane)
class GlobalAvgPool : public Layer {
 public:
  const char* kind() const override { return "global_avgpool"; }
  std::string describe() const override { return "global_avgpool"; }
  Shape output_shape(const Shape& in) const override;

 protected:
  Output forward_impl(ops::Context& ctx, const Tensor& x) override;
  Tensor backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) override;
};

// ---- layers/nn/activation.cpp (any shape)
class ReLU : public Layer {
 public:
  const char* kind() const override { return "relu"; }
  std::string describe() const override { return "relu"; }
  Shape output_shape(const Shape& in) const override { return in; }

 protected:
  Output forward_impl(ops::Context& ctx, const Tensor& x) override;
  Tensor backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) override;
};

// torch.nn.ReLU6: min(max(x, 0), 6) (MobileNetV2)
class ReLU6 : public Layer {
 public:
  const char* kind() const override { return "relu6"; }
  std::string describe() const override { return "relu6"; }
  Shape output_shape(const Shape& in) const override { return in; }

 protected:
  Output forward_impl(ops::Context& ctx, const Tensor& x) override;
  Tensor backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) override;
};

class LeakyReLU : public Layer {
 public:
  explicit LeakyReLU(float slope = 0.01f) : slope_(slope) {}
  const char* kind() const override { return "leaky_relu"; }
  std::string describe() const override;
  Shape output_shape(const Shape& in) const override { return in; }

 protected:
  Output forward_impl(ops::Context& ctx, const Tensor& x) override;
  Tensor backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) override;

 private:
  float slope_;
};

class Sigmoid : public Layer {
 public:
  const char* kind() const override { return "sigmoid"; }
  std::string describe() const override { return "sigmoid"; }
  Shape output_shape(const Shape& in) const override { return in; }

 protected:
  Output forward_impl(ops::Context& ctx, const Tensor& x) override;
  Tensor backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) override;
};

class Tanh : public Layer {
 public:
  const char* kind() const override { return "tanh"; }
  std::string describe() const override { return "tanh"; }
  Shape output_shape(const Shape& in) const override { return in; }

 protected:
  Output forward_impl(ops::Context& ctx, const Tensor& x) override;
  Tensor backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) override;
};

// Training: keeps element i iff philox_uniform(seed, step, i) >= p, scales kept values by 1/(1-p);
// eval: the identity. The seed is the model's dropout seed mixed with this layer's `salt` (its
// position), the offset is the training step, so each step and layer draws a fresh mask that is
// still a pure function of (seed, step).
class Dropout : public Layer {
 public:
  explicit Dropout(float p = 0.5f);
  const char* kind() const override { return "dropout"; }
  std::string describe() const override;
  Shape output_shape(const Shape& in) const override { return in; }
  void set_rng(uint64_t seed, uint64_t step) override;
  void set_salt(uint64_t salt) { salt_ = salt; }

 protected:
  Output forward_impl(ops::Context& ctx, const Tensor& x) override;
  Tensor backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) override;

 private:
  float p_;
  uint64_t salt_ = 0, seed_ = 0, step_ = 0;
};

// ---- layers/nn/norm.cpp
// torch.nn.BatchNorm2d (or BatchNorm1d on [N, C]): weight (gamma) [C], bias (beta) [C];
// states running_mean, running_var.
class BatchNorm2d : public Layer {
 public:
  explicit BatchNorm2d(int64_t channels, float eps = 1e-5f, float momentum = 0.1f);
  const char* kind() const override { return "batchnorm2d"; }
  std::string describe() const override;
  Shape output_shape(const Shape& in) const override;
  void reset_parameters(ops::Context& ctx, uint64_t seed, uint64_t& counter) override;

 protected:
  Output forward_impl(ops::Context& ctx, const Tensor& x) override;
  Tensor backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) override;

 private:
  int64_t c_;
  float eps_, momentum_;
  Tensor zeros_;  // the frozen backward's mean and beta: made once per device, not per step
};

// torch.nn.LocalResponseNorm(size, alpha, beta, k) across channels.
class LocalResponseNorm : public Layer {
 public:
  explicit LocalResponseNorm(int64_t size = 5, double alpha = 1e-4, double beta = 0.75, double k = 1.0);
  const char* kind() const override { return "lrn"; }
  std::string describe() const override;
  Shape output_shape(const Shape& in) const override;

 protected:
  Output forward_impl(ops::Context& ctx, const Tensor& x) override;
  Tensor backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) override;

 private:
  LrnParams params_for(const Shape& x) const;
  int64_t size_;
  double alpha_, beta_, k_;
};

}  // namespace fovea::nn
