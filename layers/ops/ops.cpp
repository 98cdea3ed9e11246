// The op table: cpu -> fovea::ref, emu/cuda -> our kernels (FOVEA_KERNEL_CALL picks the build),
// cudnn -> layers/cudnn_*.cpp where implemented.
#include "layers/ops/ops.h"

#include <cmath>

#include "core/philox.h"
#include "cpu_reference/activations.h"
#include "cpu_reference/augment.h"
#include "cpu_reference/batchnorm.h"
#include "cpu_reference/conv2d.h"
#include "cpu_reference/dropout.h"
#include "cpu_reference/linear.h"
#include "cpu_reference/lrn.h"
#include "cpu_reference/mse.h"
#include "cpu_reference/optimizers.h"
#include "cpu_reference/pooling.h"
#include "cpu_reference/regularizers.h"
#include "cpu_reference/softmax.h"
#include "kernels/activations.h"
#include "kernels/augment.h"
#include "kernels/batchnorm.h"
#include "kernels/conv2d.h"
#include "kernels/dropout.h"
#include "kernels/fill.h"
#include "kernels/linear.h"
#include "kernels/lrn.h"
#include "kernels/metrics.h"
#include "kernels/mse.h"
#include "kernels/optimizer.h"
#include "kernels/pooling.h"
#include "kernels/regularizers.h"
#include "kernels/softmax.h"
#include "layers/cudnn/cudnn_backend.h"  // backend cudnn: FOVEA_CUDNN_DISPATCH

namespace fovea::ops {

Backend parse_backend(std::string_view text) {
  if (text == "custom") return Backend::custom;
  if (text == "cudnn") return Backend::cudnn;
  FOVEA_FAIL("backend: '", text, "' is not a backend (expected custom or cudnn)");
}

const char* backend_name(Backend b) {
  return b == Backend::custom ? "custom" : "cudnn";
}

Context::Context(Device d, Backend b) : device(d), backend(b), workspace(std::make_shared<Workspace>(d)) {
  FOVEA_CHECK(b == Backend::custom || d.type == DeviceType::cuda, "backend cudnn runs on device cuda only, not ",
              d.str());
#if !FOVEA_HAVE_CUDNN
  FOVEA_CHECK(
      b == Backend::custom,
      "backend cudnn requested but this build of fovea has no cuDNN (not found at build time or FOVEA_WITH_CUDNN=OFF)");
#endif
}

namespace {

bool on_cpu(const Context& ctx) {
  return ctx.device.type == DeviceType::cpu;
}

void check_tensor(const Context& ctx, const char* op, const char* arg, const Tensor& t, DType dtype = DType::float32) {
  FOVEA_CHECK(t.defined(), op, ": argument '", arg, "' is missing");
  FOVEA_CHECK(t.device() == ctx.device, op, ": argument '", arg, "' is on ", t.device().str(), " but the op runs on ",
              ctx.device.str(), " (copy it explicitly with .to())");
  FOVEA_CHECK(t.dtype() == dtype, op, ": argument '", arg, "' must be ", dtype_name(dtype), ", got ", t.str());
}

void check_same_shape(const char* op, const char* a, const Tensor& x, const char* b, const Tensor& y) {
  FOVEA_CHECK(x.shape() == y.shape(), op, ": '", a, "' has shape ", x.shape().str(), " but '", b, "' has shape ",
              y.shape().str());
}

// Ops that cuDNN does not offer (dropout, cross-entropy, MSE, LRN, optimizers, fills) run our kernels
// under backend cudnn too, as PyTorch's cudnn backend does.

Tensor like(const Context& ctx, const Shape& s, DType t = DType::float32) {
  return Tensor::empty(s, t, ctx.device);
}

const float* f(const Tensor& t) {
  return t.defined() ? t.data<float>() : nullptr;
}
float* f(Tensor& t) {
  return t.defined() ? t.data<float>() : nullptr;
}

}  // namespace

// ---------------------------------------------------------------- convolution

Conv2dParams conv2d_params(const Shape& x, const Shape& w, const Conv2dAttrs& a) {
  FOVEA_CHECK(x.ndim() == 4, "conv2d: argument 'x' must be [N, C, H, W], got ", x.str());
  FOVEA_CHECK(w.ndim() == 4, "conv2d: argument 'w' must be [K, C/groups, R, S], got ", w.str());
  Conv2dParams p;
  p.N = x[0], p.C = x[1], p.H = x[2], p.W = x[3];
  p.K = w[0], p.R = w[2], p.S = w[3];
  p.stride_h = a.stride_h, p.stride_w = a.stride_w, p.pad_h = a.pad_h, p.pad_w = a.pad_w;
  p.dil_h = a.dil_h, p.dil_w = a.dil_w, p.groups = a.groups;
  p.validate("conv2d");
  FOVEA_CHECK(w[1] * a.groups == x[1], "conv2d: argument 'w' has ", w[1], " input channels per group but x has ", x[1],
              " channels and groups=", a.groups, " (w ", w.str(), ", x ", x.str(), ")");
  return p;
}

Tensor conv2d_forward(Context& ctx, const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dAttrs& a) {
  check_tensor(ctx, "conv2d", "x", x);
  check_tensor(ctx, "conv2d", "w", w);
  const Conv2dParams p = conv2d_params(x.shape(), w.shape(), a);
  if (b.defined()) {
    check_tensor(ctx, "conv2d", "b", b);
    FOVEA_CHECK(b.numel() == p.K, "conv2d: argument 'b' must have ", p.K, " elements, got ", b.shape().str());
  }
  FOVEA_CUDNN_DISPATCH("conv2d", conv2d_forward(ctx, p, x, w, b));
  Tensor y = like(ctx, {p.N, p.K, p.P(), p.Q()});
  if (on_cpu(ctx))
    ref::conv2d_forward(p, f(x), f(w), f(b), f(y));
  else
    FOVEA_KERNEL_CALL(ctx.device, conv2d_forward, ctx.conv_algo, p, f(x), f(w), f(b), f(y), *ctx.workspace, ctx.stream);
  return y;
}

Tensor conv2d_backward_data(Context& ctx, const Tensor& dy, const Tensor& w, const Shape& x_shape,
                            const Conv2dAttrs& a) {
  check_tensor(ctx, "conv2d_backward_data", "dy", dy);
  check_tensor(ctx, "conv2d_backward_data", "w", w);
  const Conv2dParams p = conv2d_params(x_shape, w.shape(), a);
  FOVEA_CHECK(dy.shape() == Shape({p.N, p.K, p.P(), p.Q()}), "conv2d: argument 'dy' must have shape ",
              Shape({p.N, p.K, p.P(), p.Q()}).str(), ", got ", dy.shape().str());
  FOVEA_CUDNN_DISPATCH("conv2d_backward_data", conv2d_backward_data(ctx, p, dy, w));
  Tensor dx = like(ctx, x_shape);
  if (on_cpu(ctx))
    ref::conv2d_backward_data(p, f(dy), f(w), f(dx));
  else
    FOVEA_KERNEL_CALL(ctx.device, conv2d_backward_data, ctx.conv_algo, p, f(dy), f(w), f(dx), *ctx.workspace,
                      ctx.stream);
  return dx;
}

Tensor conv2d_backward_filter(Context& ctx, const Tensor& x, const Tensor& dy, const Shape& w_shape,
                              const Conv2dAttrs& a) {
  check_tensor(ctx, "conv2d_backward_filter", "x", x);
  check_tensor(ctx, "conv2d_backward_filter", "dy", dy);
  const Conv2dParams p = conv2d_params(x.shape(), w_shape, a);
  FOVEA_CHECK(dy.shape() == Shape({p.N, p.K, p.P(), p.Q()}), "conv2d: argument 'dy' must have shape ",
              Shape({p.N, p.K, p.P(), p.Q()}).str(), ", got ", dy.shape().str());
  FOVEA_CUDNN_DISPATCH("conv2d_backward_filter", conv2d_backward_filter(ctx, p, x, dy));
  Tensor dw = like(ctx, w_shape);
  if (on_cpu(ctx))
    ref::conv2d_backward_filter(p, f(x), f(dy), f(dw));
  else
    FOVEA_KERNEL_CALL(ctx.device, conv2d_backward_filter, ctx.conv_algo, p, f(x), f(dy), f(dw), *ctx.workspace,
                      ctx.stream);
  return dw;
}

Tensor conv2d_backward_bias(Context& ctx, const Tensor& dy) {
  check_tensor(ctx, "conv2d_backward_bias", "dy", dy);
  FOVEA_CHECK(dy.ndim() == 4, "conv2d_backward_bias: argument 'dy' must be [N, K, P, Q], got ", dy.shape().str());
  FOVEA_CUDNN_DISPATCH("conv2d_backward_bias", conv2d_backward_bias(ctx, dy));
  Conv2dParams p;  // only N, K and the output size matter
  p.N = dy.size(0), p.K = p.C = dy.size(1), p.H = dy.size(2), p.W = dy.size(3);
  Tensor db = like(ctx, {p.K});
  if (on_cpu(ctx))
    ref::conv2d_backward_bias(p, f(dy), f(db));
  else
    FOVEA_KERNEL_CALL(ctx.device, conv2d_backward_bias, p, f(dy), f(db), ctx.stream);
  return db;
}

// ---------------------------------------------------------------- pooling

Pool2dParams pool2d_params(const Shape& x, const Pool2dAttrs& a) {
  FOVEA_CHECK(x.ndim() == 4, "pool2d: argument 'x' must be [N, C, H, W], got ", x.str());
  Pool2dParams p;
  p.N = x[0], p.C = x[1], p.H = x[2], p.W = x[3];
  p.kernel_h = a.kernel_h, p.kernel_w = a.kernel_w, p.stride_h = a.stride_h, p.stride_w = a.stride_w;
  p.pad_h = a.pad_h, p.pad_w = a.pad_w, p.count_include_pad = a.count_include_pad;
  p.validate("pool2d");
  return p;
}

MaxPoolOut maxpool2d_forward(Context& ctx, const Tensor& x, const Pool2dAttrs& a) {
  check_tensor(ctx, "maxpool2d", "x", x);
  const Pool2dParams p = pool2d_params(x.shape(), a);
  FOVEA_CUDNN_DISPATCH("maxpool2d", maxpool2d_forward(ctx, p, x));
  MaxPoolOut out{like(ctx, {p.N, p.C, p.P(), p.Q()}), like(ctx, {p.N, p.C, p.P(), p.Q()}, DType::int32)};
  int32_t* idx = out.indices.data<int32_t>();
  if (on_cpu(ctx))
    ref::maxpool2d_forward(p, f(x), f(out.y), idx);
  else
    FOVEA_KERNEL_CALL(ctx.device, maxpool2d_forward, p, f(x), f(out.y), idx, ctx.stream);
  return out;
}

Tensor maxpool2d_backward(Context& ctx, const Tensor& dy, const Tensor& indices, const Shape& x_shape,
                          const Pool2dAttrs& a) {
  check_tensor(ctx, "maxpool2d_backward", "dy", dy);
  check_tensor(ctx, "maxpool2d_backward", "indices", indices, DType::int32);
  const Pool2dParams p = pool2d_params(x_shape, a);
  FOVEA_CHECK(dy.shape() == Shape({p.N, p.C, p.P(), p.Q()}) && indices.shape() == dy.shape(),
              "maxpool2d_backward: 'dy' ", dy.shape().str(), " and 'indices' ", indices.shape().str(), " must be ",
              Shape({p.N, p.C, p.P(), p.Q()}).str());
  FOVEA_CUDNN_DISPATCH("maxpool2d_backward", maxpool2d_backward(ctx, p, dy, indices));
  Tensor dx = like(ctx, x_shape);
  const int32_t* idx = indices.data<int32_t>();
  if (on_cpu(ctx))
    ref::maxpool2d_backward(p, f(dy), idx, f(dx));
  else
    FOVEA_KERNEL_CALL(ctx.device, maxpool2d_backward, p, f(dy), idx, f(dx), ctx.stream);
  return dx;
}

Tensor avgpool2d_forward(Context& ctx, const Tensor& x, const Pool2dAttrs& a) {
  check_tensor(ctx, "avgpool2d", "x", x);
  const Pool2dParams p = pool2d_params(x.shape(), a);
  FOVEA_CUDNN_DISPATCH("avgpool2d", avgpool2d_forward(ctx, p, x));
  Tensor y = like(ctx, {p.N, p.C, p.P(), p.Q()});
  if (on_cpu(ctx))
    ref::avgpool2d_forward(p, f(x), f(y));
  else
    FOVEA_KERNEL_CALL(ctx.device, avgpool2d_forward, p, f(x), f(y), ctx.stream);
  return y;
}

Tensor avgpool2d_backward(Context& ctx, const Tensor& dy, const Shape& x_shape, const Pool2dAttrs& a) {
  check_tensor(ctx, "avgpool2d_backward", "dy", dy);
  const Pool2dParams p = pool2d_params(x_shape, a);
  FOVEA_CHECK(dy.shape() == Shape({p.N, p.C, p.P(), p.Q()}), "avgpool2d_backward: 'dy' ", dy.shape().str(), " must be ",
              Shape({p.N, p.C, p.P(), p.Q()}).str());
  FOVEA_CUDNN_DISPATCH("avgpool2d_backward", avgpool2d_backward(ctx, p, dy));
  Tensor dx = like(ctx, x_shape);
  if (on_cpu(ctx))
    ref::avgpool2d_backward(p, f(dy), f(dx));
  else
    FOVEA_KERNEL_CALL(ctx.device, avgpool2d_backward, p, f(dy), f(dx), ctx.stream);
  return dx;
}

Tensor global_avgpool_forward(Context& ctx, const Tensor& x) {
  check_tensor(ctx, "global_avgpool", "x", x);
  FOVEA_CHECK(x.ndim() == 4, "global_avgpool: argument 'x' must be [N, C, H, W], got ", x.shape().str());
  FOVEA_CUDNN_DISPATCH("global_avgpool", global_avgpool_forward(ctx, x));
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  Tensor y = like(ctx, {N, C});
  if (on_cpu(ctx))
    ref::global_avgpool_forward(N, C, H, W, f(x), f(y));
  else
    FOVEA_KERNEL_CALL(ctx.device, global_avgpool_forward, N, C, H, W, f(x), f(y), ctx.stream);
  return y;
}

Tensor global_avgpool_backward(Context& ctx, const Tensor& dy, const Shape& x_shape) {
  check_tensor(ctx, "global_avgpool_backward", "dy", dy);
  FOVEA_CHECK(x_shape.ndim() == 4 && dy.shape() == Shape({x_shape[0], x_shape[1]}), "global_avgpool_backward: 'dy' ",
              dy.shape().str(), " does not match x ", x_shape.str());
  FOVEA_CUDNN_DISPATCH("global_avgpool_backward", global_avgpool_backward(ctx, dy, x_shape));
  Tensor dx = like(ctx, x_shape);
  if (on_cpu(ctx))
    ref::global_avgpool_backward(x_shape[0], x_shape[1], x_shape[2], x_shape[3], f(dy), f(dx));
  else
    FOVEA_KERNEL_CALL(ctx.device, global_avgpool_backward, x_shape[0], x_shape[1], x_shape[2], x_shape[3], f(dy), f(dx),
                      ctx.stream);
  return dx;
}

// ---------------------------------------------------------------- linear

static LinearParams linear_params(const char* op, const Tensor& x, const Tensor& w) {
  FOVEA_CHECK(x.ndim() == 2, op, ": argument 'x' must be [N, in_features], got ", x.shape().str());
  FOVEA_CHECK(w.ndim() == 2, op, ": argument 'w' must be [out_features, in_features], got ", w.shape().str());
  FOVEA_CHECK(x.size(1) == w.size(1), op, ": x has ", x.size(1), " features but w expects ", w.size(1), " (x ",
              x.shape().str(), ", w ", w.shape().str(), ")");
  LinearParams p;
  p.N = x.size(0), p.in_features = x.size(1), p.out_features = w.size(0);
  p.validate(op);
  return p;
}

Tensor linear_forward(Context& ctx, const Tensor& x, const Tensor& w, const Tensor& b) {
  check_tensor(ctx, "linear", "x", x);
  check_tensor(ctx, "linear", "w", w);
  const LinearParams p = linear_params("linear", x, w);
  if (b.defined()) {
    check_tensor(ctx, "linear", "b", b);
    FOVEA_CHECK(b.numel() == p.out_features, "linear: argument 'b' must have ", p.out_features, " elements, got ",
                b.shape().str());
  }
  FOVEA_CUDNN_DISPATCH("linear", linear_forward(ctx, x, w, b));
  Tensor y = like(ctx, {p.N, p.out_features});
  if (on_cpu(ctx))
    ref::linear_forward(p, f(x), f(w), f(b), f(y));
  else
    FOVEA_KERNEL_CALL(ctx.device, linear_forward, p, f(x), f(w), f(b), f(y), ctx.stream);
  return y;
}

Tensor linear_backward_data(Context& ctx, const Tensor& dy, const Tensor& w) {
  check_tensor(ctx, "linear_backward_data", "dy", dy);
  check_tensor(ctx, "linear_backward_data", "w", w);
  FOVEA_CHECK(dy.ndim() == 2 && w.ndim() == 2 && dy.size(1) == w.size(0), "linear_backward_data: 'dy' ",
              dy.shape().str(), " does not match 'w' ", w.shape().str());
  FOVEA_CUDNN_DISPATCH("linear_backward_data", linear_backward_data(ctx, dy, w));
  LinearParams p;
  p.N = dy.size(0), p.in_features = w.size(1), p.out_features = w.size(0);
  Tensor dx = like(ctx, {p.N, p.in_features});
  if (on_cpu(ctx))
    ref::linear_backward_data(p, f(dy), f(w), f(dx));
  else
    FOVEA_KERNEL_CALL(ctx.device, linear_backward_data, p, f(dy), f(w), f(dx), ctx.stream);
  return dx;
}

Tensor linear_backward_weight(Context& ctx, const Tensor& x, const Tensor& dy) {
  check_tensor(ctx, "linear_backward_weight", "x", x);
  check_tensor(ctx, "linear_backward_weight", "dy", dy);
  FOVEA_CHECK(x.ndim() == 2 && dy.ndim() == 2 && x.size(0) == dy.size(0), "linear_backward_weight: 'x' ",
              x.shape().str(), " does not match 'dy' ", dy.shape().str());
  FOVEA_CUDNN_DISPATCH("linear_backward_weight", linear_backward_weight(ctx, x, dy));
  LinearParams p;
  p.N = x.size(0), p.in_features = x.size(1), p.out_features = dy.size(1);
  Tensor dw = like(ctx, {p.out_features, p.in_features});
  if (on_cpu(ctx))
    ref::linear_backward_weight(p, f(x), f(dy), f(dw));
  else
    FOVEA_KERNEL_CALL(ctx.device, linear_backward_weight, p, f(x), f(dy), f(dw), ctx.stream);
  return dw;
}

Tensor linear_backward_bias(Context& ctx, const Tensor& dy) {
  check_tensor(ctx, "linear_backward_bias", "dy", dy);
  FOVEA_CHECK(dy.ndim() == 2, "linear_backward_bias: 'dy' must be [N, out_features], got ", dy.shape().str());
  FOVEA_CUDNN_DISPATCH("linear_backward_bias", linear_backward_bias(ctx, dy));
  LinearParams p;
  p.N = dy.size(0), p.out_features = dy.size(1);
  Tensor db = like(ctx, {p.out_features});
  if (on_cpu(ctx))
    ref::linear_backward_bias(p, f(dy), f(db));
  else
    FOVEA_KERNEL_CALL(ctx.device, linear_backward_bias, p, f(dy), f(db), ctx.stream);
  return db;
}

// ---------------------------------------------------------------- activations

#define FOVEA_UNARY(NAME, OPNAME)                                                                     \
  Tensor NAME##_forward(Context& ctx, const Tensor& x) {                                              \
    check_tensor(ctx, OPNAME, "x", x);                                                                \
    FOVEA_CUDNN_DISPATCH(OPNAME, NAME##_forward(ctx, x));                                             \
    Tensor y = like(ctx, x.shape());                                                                  \
    if (on_cpu(ctx))                                                                                  \
      ref::NAME##_forward(x.numel(), f(x), f(y));                                                     \
    else                                                                                              \
      FOVEA_KERNEL_CALL(ctx.device, NAME##_forward, x.numel(), f(x), f(y), ctx.stream);               \
    return y;                                                                                         \
  }                                                                                                   \
  Tensor NAME##_backward(Context& ctx, const Tensor& dy, const Tensor& saved) {                       \
    check_tensor(ctx, OPNAME "_backward", "dy", dy);                                                  \
    check_tensor(ctx, OPNAME "_backward", "saved", saved);                                            \
    check_same_shape(OPNAME "_backward", "dy", dy, "saved", saved);                                   \
    FOVEA_CUDNN_DISPATCH(OPNAME "_backward", NAME##_backward(ctx, dy, saved));                        \
    Tensor dx = like(ctx, dy.shape());                                                                \
    if (on_cpu(ctx))                                                                                  \
      ref::NAME##_backward(dy.numel(), f(saved), f(dy), f(dx));                                       \
    else                                                                                              \
      FOVEA_KERNEL_CALL(ctx.device, NAME##_backward, dy.numel(), f(saved), f(dy), f(dx), ctx.stream); \
    return dx;                                                                                        \
  }
FOVEA_UNARY(relu, "relu")
FOVEA_UNARY(sigmoid, "sigmoid")
FOVEA_UNARY(tanh, "tanh")
#undef FOVEA_UNARY

Tensor leaky_relu_forward(Context& ctx, const Tensor& x, float slope) {
  check_tensor(ctx, "leaky_relu", "x", x);
  FOVEA_CUDNN_DISPATCH("leaky_relu", leaky_relu_forward(ctx, x, slope));
  Tensor y = like(ctx, x.shape());
  if (on_cpu(ctx))
    ref::leaky_relu_forward(x.numel(), slope, f(x), f(y));
  else
    FOVEA_KERNEL_CALL(ctx.device, leaky_relu_forward, x.numel(), slope, f(x), f(y), ctx.stream);
  return y;
}

Tensor leaky_relu_backward(Context& ctx, const Tensor& dy, const Tensor& x, float slope) {
  check_tensor(ctx, "leaky_relu_backward", "dy", dy);
  check_tensor(ctx, "leaky_relu_backward", "x", x);
  check_same_shape("leaky_relu_backward", "dy", dy, "x", x);
  FOVEA_CUDNN_DISPATCH("leaky_relu_backward", leaky_relu_backward(ctx, dy, x, slope));
  Tensor dx = like(ctx, x.shape());
  if (on_cpu(ctx))
    ref::leaky_relu_backward(x.numel(), slope, f(x), f(dy), f(dx));
  else
    FOVEA_KERNEL_CALL(ctx.device, leaky_relu_backward, x.numel(), slope, f(x), f(dy), f(dx), ctx.stream);
  return dx;
}

// ---------------------------------------------------------------- dropout, add

Tensor dropout_forward(Context& ctx, const Tensor& x, float p, uint64_t seed, uint64_t offset) {
  check_tensor(ctx, "dropout", "x", x);
  DropoutParams dp;
  dp.p = p, dp.seed = seed, dp.offset = offset, dp.training = true;
  dp.validate("dropout");
  Tensor y = like(ctx, x.shape());
  if (on_cpu(ctx))
    ref::dropout_forward(dp, x.numel(), f(x), f(y));
  else
    FOVEA_KERNEL_CALL(ctx.device, dropout_forward, dp, x.numel(), f(x), f(y), ctx.stream);
  return y;
}

Tensor dropout_backward(Context& ctx, const Tensor& dy, float p, uint64_t seed, uint64_t offset) {
  check_tensor(ctx, "dropout_backward", "dy", dy);
  DropoutParams dp;
  dp.p = p, dp.seed = seed, dp.offset = offset, dp.training = true;
  dp.validate("dropout");
  Tensor dx = like(ctx, dy.shape());
  if (on_cpu(ctx))
    ref::dropout_backward(dp, dy.numel(), f(dy), f(dx));
  else
    FOVEA_KERNEL_CALL(ctx.device, dropout_backward, dp, dy.numel(), f(dy), f(dx), ctx.stream);
  return dx;
}

// ---------------------------------------------------------------- augmentation

AugmentParams augment_params(const Shape& x, DType dtype, bool warp, const std::vector<float>& mean,
                             const std::vector<float>& stddev) {
  const char* op = "augment";
  FOVEA_CHECK(dtype == DType::uint8 || dtype == DType::float32, op, ": argument 'x' must be uint8 or float32, got ",
              dtype_name(dtype));
  FOVEA_CHECK(x.ndim() == 4, op, ": argument 'x' must be [N, C, H, W], got ", x.str());
  AugmentParams p;
  p.N = x[0], p.C = x[1], p.H = x[2], p.W = x[3];
  p.scale = dtype == DType::uint8 ? 1.0f / 255.0f : 1.0f;
  p.warp = warp;
  FOVEA_CHECK(mean.size() == stddev.size() && (mean.empty() || int64_t(mean.size()) == p.C), op, ": ", mean.size(),
              " means and ", stddev.size(), " deviations for ", p.C,
              " channels (give one of each per channel, or none)");
  p.normalize = !mean.empty();
  FOVEA_CHECK(p.C <= AugmentParams::kMaxChannels, op, ": argument 'x' has ", p.C, " channels, at most ",
              AugmentParams::kMaxChannels, " are supported");
  for (size_t c = 0; c < mean.size(); ++c) p.mean[c] = mean[c], p.stddev[c] = stddev[c];
  p.validate(op);
  return p;
}

Tensor augment_forward(Context& ctx, const Tensor& x, const Tensor& warps, const std::vector<float>& mean,
                       const std::vector<float>& stddev) {
  const char* op = "augment";
  FOVEA_CHECK(x.defined(), op, ": argument 'x' is missing");
  check_tensor(ctx, op, "x", x, x.dtype());
  const AugmentParams p = augment_params(x.shape(), x.dtype(), warps.defined(), mean, stddev);
  if (p.warp) {
    check_tensor(ctx, op, "warps", warps);
    FOVEA_CHECK(warps.shape() == Shape({p.N, 6}), op, ": argument 'warps' must be [", p.N, ", 6], got ",
                warps.shape().str());
  }
  Tensor y = like(ctx, x.shape());
  const auto* w = p.warp ? reinterpret_cast<const Affine*>(warps.data<float>()) : nullptr;
  if (x.dtype() == DType::uint8) {
    if (on_cpu(ctx))
      ref::augment_forward(p, x.data<uint8_t>(), w, f(y));
    else
      FOVEA_KERNEL_CALL(ctx.device, augment_forward, p, x.data<uint8_t>(), w, f(y), ctx.stream);
  } else {
    if (on_cpu(ctx))
      ref::augment_forward(p, f(x), w, f(y));
    else
      FOVEA_KERNEL_CALL(ctx.device, augment_forward, p, f(x), w, f(y), ctx.stream);
  }
  return y;
}

Tensor add(Context& ctx, const Tensor& a, const Tensor& b) {
  check_tensor(ctx, "add", "a", a);
  check_tensor(ctx, "add", "b", b);
  check_same_shape("add", "a", a, "b", b);
  FOVEA_CUDNN_DISPATCH("add", add(ctx, a, b));
  Tensor y = like(ctx, a.shape());
  if (on_cpu(ctx))
    ref::residual_add_forward(a.numel(), f(a), f(b), f(y));
  else
    FOVEA_KERNEL_CALL(ctx.device, residual_add_forward, a.numel(), f(a), f(b), f(y), ctx.stream);
  return y;
}

// ---------------------------------------------------------------- softmax family

static void check_rows(const char* op, const Tensor& x) {
  FOVEA_CHECK(x.ndim() == 2, op, ": argument must be [N, C], got ", x.shape().str());
}

Tensor softmax_forward(Context& ctx, const Tensor& x) {
  check_tensor(ctx, "softmax", "x", x);
  check_rows("softmax", x);
  FOVEA_CUDNN_DISPATCH("softmax", softmax_forward(ctx, x));
  Tensor y = like(ctx, x.shape());
  if (on_cpu(ctx))
    ref::softmax_forward(x.size(0), x.size(1), f(x), f(y));
  else
    FOVEA_KERNEL_CALL(ctx.device, softmax_forward, x.size(0), x.size(1), f(x), f(y), ctx.stream);
  return y;
}

Tensor softmax_backward(Context& ctx, const Tensor& dy, const Tensor& y) {
  check_tensor(ctx, "softmax_backward", "dy", dy);
  check_tensor(ctx, "softmax_backward", "y", y);
  check_rows("softmax_backward", y);
  check_same_shape("softmax_backward", "dy", dy, "y", y);
  FOVEA_CUDNN_DISPATCH("softmax_backward", softmax_backward(ctx, dy, y));
  Tensor dx = like(ctx, y.shape());
  if (on_cpu(ctx))
    ref::softmax_backward(y.size(0), y.size(1), f(y), f(dy), f(dx));
  else
    FOVEA_KERNEL_CALL(ctx.device, softmax_backward, y.size(0), y.size(1), f(y), f(dy), f(dx), ctx.stream);
  return dx;
}

Tensor log_softmax_forward(Context& ctx, const Tensor& x) {
  check_tensor(ctx, "log_softmax", "x", x);
  check_rows("log_softmax", x);
  FOVEA_CUDNN_DISPATCH("log_softmax", log_softmax_forward(ctx, x));
  Tensor y = like(ctx, x.shape());
  if (on_cpu(ctx))
    ref::log_softmax_forward(x.size(0), x.size(1), f(x), f(y));
  else
    FOVEA_KERNEL_CALL(ctx.device, log_softmax_forward, x.size(0), x.size(1), f(x), f(y), ctx.stream);
  return y;
}

Tensor log_softmax_backward(Context& ctx, const Tensor& dy, const Tensor& y) {
  check_tensor(ctx, "log_softmax_backward", "dy", dy);
  check_tensor(ctx, "log_softmax_backward", "y", y);
  check_rows("log_softmax_backward", y);
  check_same_shape("log_softmax_backward", "dy", dy, "y", y);
  FOVEA_CUDNN_DISPATCH("log_softmax_backward", log_softmax_backward(ctx, dy, y));
  Tensor dx = like(ctx, y.shape());
  if (on_cpu(ctx))
    ref::log_softmax_backward(y.size(0), y.size(1), f(y), f(dy), f(dx));
  else
    FOVEA_KERNEL_CALL(ctx.device, log_softmax_backward, y.size(0), y.size(1), f(y), f(dy), f(dx), ctx.stream);
  return dx;
}

CrossEntropyOut cross_entropy(Context& ctx, const Tensor& logits, const Tensor& labels, float label_smoothing) {
  check_tensor(ctx, "cross_entropy", "logits", logits);
  check_tensor(ctx, "cross_entropy", "labels", labels, DType::int64);
  check_rows("cross_entropy", logits);
  FOVEA_CHECK(labels.ndim() == 1 && labels.size(0) == logits.size(0), "cross_entropy: 'labels' ", labels.shape().str(),
              " must be [N] for logits ", logits.shape().str());
  CrossEntropyParams p;
  p.N = logits.size(0), p.C = logits.size(1), p.label_smoothing = label_smoothing;
  p.validate("cross_entropy");
  CrossEntropyOut out{like(ctx, {1}), like(ctx, logits.shape())};
  const int64_t* lab = labels.data<int64_t>();
  if (on_cpu(ctx)) {
    out.loss.data<float>()[0] = ref::cross_entropy_forward(p, f(logits), lab);
    ref::cross_entropy_backward(p, f(logits), lab, 1.0f, f(out.dlogits));
  } else {
    // Out-of-range labels give a NaN loss on the device (kernels cannot throw); training stops on it.
    Tensor row_loss = like(ctx, {p.N});
    FOVEA_KERNEL_CALL(ctx.device, cross_entropy_forward, p, f(logits), lab, f(row_loss), f(out.loss), ctx.stream);
    FOVEA_KERNEL_CALL(ctx.device, cross_entropy_backward, p, f(logits), lab, 1.0f, f(out.dlogits), ctx.stream);
  }
  return out;
}

// ---------------------------------------------------------------- MSE, LRN

MseOut mse_loss(Context& ctx, const Tensor& pred, const Tensor& target) {
  check_tensor(ctx, "mse_loss", "pred", pred);
  check_tensor(ctx, "mse_loss", "target", target);
  check_same_shape("mse_loss", "pred", pred, "target", target);
  MseOut out{like(ctx, {1}), like(ctx, pred.shape())};
  const int64_t n = pred.numel();
  if (on_cpu(ctx)) {
    out.loss.data<float>()[0] = ref::mse_forward(n, f(pred), f(target));
    ref::mse_backward(n, f(pred), f(target), 1.0f, f(out.dpred));
  } else {
    FOVEA_KERNEL_CALL(ctx.device, mse_forward, n, f(pred), f(target), f(out.loss), *ctx.workspace, ctx.stream);
    FOVEA_KERNEL_CALL(ctx.device, mse_backward, n, f(pred), f(target), 1.0f, f(out.dpred), ctx.stream);
  }
  return out;
}

static LrnParams lrn_params(const Tensor& x, const LrnParams& attrs) {
  FOVEA_CHECK(x.ndim() == 4, "lrn: argument 'x' must be [N, C, H, W], got ", x.shape().str());
  LrnParams p = attrs;
  p.N = x.size(0), p.C = x.size(1), p.H = x.size(2), p.W = x.size(3);
  p.validate("lrn");
  return p;
}

Tensor lrn_forward(Context& ctx, const Tensor& x, const LrnParams& attrs) {
  check_tensor(ctx, "lrn", "x", x);
  const LrnParams p = lrn_params(x, attrs);
  Tensor y = like(ctx, x.shape());
  if (on_cpu(ctx))
    ref::lrn_forward(p, f(x), f(y));
  else
    FOVEA_KERNEL_CALL(ctx.device, lrn_forward, p, f(x), f(y), ctx.stream);
  return y;
}

Tensor lrn_backward(Context& ctx, const Tensor& dy, const Tensor& x, const Tensor& /*y*/, const LrnParams& attrs) {
  check_tensor(ctx, "lrn_backward", "dy", dy);
  check_tensor(ctx, "lrn_backward", "x", x);
  check_same_shape("lrn_backward", "dy", dy, "x", x);
  const LrnParams p = lrn_params(x, attrs);
  Tensor dx = like(ctx, x.shape());
  if (on_cpu(ctx))
    ref::lrn_backward(p, f(x), f(dy), f(dx));
  else
    FOVEA_KERNEL_CALL(ctx.device, lrn_backward, p, f(x), f(dy), f(dx), *ctx.workspace, ctx.stream);
  return dx;
}

// ---------------------------------------------------------------- batch norm

static BatchNormParams bn_params(const char* op, const Tensor& x, bool training, float momentum, float eps) {
  FOVEA_CHECK(x.ndim() == 4 || x.ndim() == 2, op, ": argument 'x' must be [N, C, H, W] or [N, C], got ",
              x.shape().str());
  BatchNormParams p;
  p.N = x.size(0), p.C = x.size(1);
  p.H = x.ndim() == 4 ? x.size(2) : 1;
  p.W = x.ndim() == 4 ? x.size(3) : 1;
  p.eps = eps, p.momentum = momentum, p.training = training;
  p.validate(op);
  return p;
}

static void check_channels(const char* op, const char* arg, const Tensor& t, int64_t C) {
  FOVEA_CHECK(t.numel() == C, op, ": argument '", arg, "' must have ", C, " elements (one per channel), got ",
              t.shape().str());
}

BatchNormOut batchnorm_forward_train(Context& ctx, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                     Tensor& running_mean, Tensor& running_var, float momentum, float eps) {
  const char* op = "batchnorm2d";
  check_tensor(ctx, op, "x", x);
  const BatchNormParams p = bn_params(op, x, true, momentum, eps);
  for (auto [arg, t] : {std::pair<const char*, const Tensor*>{"gamma", &gamma},
                        {"beta", &beta},
                        {"running_mean", &running_mean},
                        {"running_var", &running_var}}) {
    check_tensor(ctx, op, arg, *t);
    check_channels(op, arg, *t, p.C);
  }
  FOVEA_CUDNN_DISPATCH(op, batchnorm_forward_train(ctx, x, gamma, beta, running_mean, running_var, momentum, eps));
  BatchNormOut out{like(ctx, x.shape()), like(ctx, {p.C}), like(ctx, {p.C})};
  if (on_cpu(ctx))
    ref::batchnorm2d_forward(p, f(x), f(gamma), f(beta), f(running_mean), f(running_var), f(out.y), f(out.save_mean),
                             f(out.save_invstd));
  else
    FOVEA_KERNEL_CALL(ctx.device, batchnorm2d_forward, p, f(x), f(gamma), f(beta), f(running_mean), f(running_var),
                      f(out.y), f(out.save_mean), f(out.save_invstd), *ctx.workspace, ctx.stream);
  return out;
}

Tensor batchnorm_forward_eval(Context& ctx, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                              const Tensor& running_mean, const Tensor& running_var, float eps) {
  const char* op = "batchnorm2d";
  check_tensor(ctx, op, "x", x);
  const BatchNormParams p = bn_params(op, x, false, 0.1f, eps);
  for (auto [arg, t] : {std::pair<const char*, const Tensor*>{"gamma", &gamma},
                        {"beta", &beta},
                        {"running_mean", &running_mean},
                        {"running_var", &running_var}}) {
    check_tensor(ctx, op, arg, *t);
    check_channels(op, arg, *t, p.C);
  }
  FOVEA_CUDNN_DISPATCH(op, batchnorm_forward_eval(ctx, x, gamma, beta, running_mean, running_var, eps));
  Tensor y = like(ctx, x.shape());
  // Eval mode reads the running statistics and never writes them.
  float* rm = const_cast<float*>(f(running_mean));
  float* rv = const_cast<float*>(f(running_var));
  if (on_cpu(ctx))
    ref::batchnorm2d_forward(p, f(x), f(gamma), f(beta), rm, rv, f(y), nullptr, nullptr);
  else
    FOVEA_KERNEL_CALL(ctx.device, batchnorm2d_forward, p, f(x), f(gamma), f(beta), rm, rv, f(y), nullptr, nullptr,
                      *ctx.workspace, ctx.stream);
  return y;
}

BatchNormGrads batchnorm_backward(Context& ctx, const Tensor& dy, const Tensor& x, const Tensor& gamma,
                                  const Tensor& save_mean, const Tensor& save_invstd) {
  const char* op = "batchnorm2d_backward";
  check_tensor(ctx, op, "dy", dy);
  check_tensor(ctx, op, "x", x);
  check_same_shape(op, "dy", dy, "x", x);
  const BatchNormParams p = bn_params(op, x, true, 0.1f, 1e-5f);
  for (auto [arg, t] : {std::pair<const char*, const Tensor*>{"gamma", &gamma},
                        {"save_mean", &save_mean},
                        {"save_invstd", &save_invstd}}) {
    check_tensor(ctx, op, arg, *t);
    check_channels(op, arg, *t, p.C);
  }
  FOVEA_CUDNN_DISPATCH(op, batchnorm_backward(ctx, dy, x, gamma, save_mean, save_invstd));
  BatchNormGrads g{like(ctx, x.shape()), like(ctx, {p.C}), like(ctx, {p.C})};
  if (on_cpu(ctx))
    ref::batchnorm2d_backward(p, f(x), f(dy), f(gamma), f(save_mean), f(save_invstd), f(g.dx), f(g.dgamma), f(g.dbeta));
  else
    FOVEA_KERNEL_CALL(ctx.device, batchnorm2d_backward, p, f(x), f(dy), f(gamma), f(save_mean), f(save_invstd), f(g.dx),
                      f(g.dgamma), f(g.dbeta), *ctx.workspace, ctx.stream);
  return g;
}

// ---------------------------------------------------------------- metrics

int64_t count_correct(Context& ctx, const Tensor& logits, const Tensor& labels) {
  check_tensor(ctx, "count_correct", "logits", logits);
  check_tensor(ctx, "count_correct", "labels", labels, DType::int64);
  check_rows("count_correct", logits);
  FOVEA_CHECK(labels.ndim() == 1 && labels.size(0) == logits.size(0), "count_correct: 'labels' ", labels.shape().str(),
              " must be [N] for logits ", logits.shape().str());
  const int64_t N = logits.size(0), C = logits.size(1);
  if (!on_cpu(ctx)) {
    int64_t correct = 0;
    auto call = [&](auto fn) { correct = fn(f(logits), labels.data<int64_t>(), N, C, *ctx.workspace, ctx.stream); };
#if FOVEA_HAVE_CUDA
    if (ctx.device.type == DeviceType::cuda)
      call(cuda_kernels::count_correct);
    else
#endif
      call(emu_kernels::count_correct);
    return correct;
  }
  const float* x = f(logits);
  const int64_t* y = labels.data<int64_t>();
  int64_t correct = 0;
  for (int64_t n = 0; n < N; ++n) {
    int64_t best = 0;  // torch.argmax: the first maximum; NaN counts as the maximum
    for (int64_t c = 1; c < C; ++c) {
      const float v = x[n * C + c], b = x[n * C + best];
      if (!std::isnan(b) && (v > b || std::isnan(v))) best = c;
    }
    correct += best == y[n];
  }
  return correct;
}

// ---------------------------------------------------------------- optimizers

struct Context::OptimizerList {
  std::vector<OptimizerTensor> host;
  Buffer device;
  int64_t chunks = 0;
};

static void check_slots(Context& ctx, const char* op, std::vector<ParamSlot>& params, bool state1, bool state2) {
  for (size_t i = 0; i < params.size(); ++i) {
    ParamSlot& s = params[i];
    const std::string name = cat(op, " parameter ", i);
    check_tensor(ctx, name.c_str(), "param", s.param);
    check_tensor(ctx, name.c_str(), "grad", s.grad);
    check_same_shape(name.c_str(), "param", s.param, "grad", s.grad);
    if (state1) {
      check_tensor(ctx, name.c_str(), "state1", s.state1);
      check_same_shape(name.c_str(), "param", s.param, "state1", s.state1);
    }
    if (state2) {
      check_tensor(ctx, name.c_str(), "state2", s.state2);
      check_same_shape(name.c_str(), "param", s.param, "state2", s.state2);
    }
  }
}

// The descriptor list on the device, uploaded (an explicit, small copy) only when the tensors change.
static const Context::OptimizerList& optimizer_list(Context& ctx, std::vector<ParamSlot>& params, const char* op,
                                                    bool state1, bool state2) {
  std::vector<OptimizerTensor> host;
  for (ParamSlot& s : params)
    host.push_back(
        {f(s.param), f(s.grad), state1 ? f(s.state1) : nullptr, state2 ? f(s.state2) : nullptr, s.param.numel(), 0});
  const int64_t chunks = plan_optimizer_chunks(host.data(), int64_t(host.size()), op, state1, state2);
  auto& cache = ctx.optimizer_list;
  const bool same =
      cache && cache->host.size() == host.size() &&
      std::equal(host.begin(), host.end(), cache->host.begin(), [](auto& a, auto& b) {
        return a.w == b.w && a.grad == b.grad && a.state0 == b.state0 && a.state1 == b.state1 && a.n == b.n;
      });
  if (!same) {
    cache = std::make_shared<Context::OptimizerList>();
    cache->host = host;
    cache->chunks = chunks;
    if (!host.empty()) {
      cache->device = Buffer(host.size() * sizeof(OptimizerTensor), ctx.device);
      copy_bytes(cache->device.data(), ctx.device, host.data(), kCPU, host.size() * sizeof(OptimizerTensor),
                 ctx.stream);
    }
  }
  return *cache;
}

void sgd_step(Context& ctx, std::vector<ParamSlot>& params, const SgdParams& p, int64_t step) {
  p.validate("sgd");
  const bool momentum = p.momentum != 0;
  check_slots(ctx, "sgd", params, momentum, false);
  if (on_cpu(ctx)) {
    for (ParamSlot& s : params) ref::sgd_step(p, s.param.numel(), f(s.param), f(s.grad), f(s.state1), step);
    return;
  }
  const auto& list = optimizer_list(ctx, params, "sgd", momentum, false);
  if (list.chunks == 0) return;
  FOVEA_KERNEL_CALL(ctx.device, sgd_step_multi, p, list.device.as<OptimizerTensor>(), int64_t(list.host.size()),
                    list.chunks, step, ctx.stream);
}

void adamw_step(Context& ctx, std::vector<ParamSlot>& params, const AdamWParams& p, int64_t step) {
  p.validate("adamw");
  check_slots(ctx, "adamw", params, true, true);
  if (on_cpu(ctx)) {
    for (ParamSlot& s : params)
      ref::adamw_step(p, s.param.numel(), f(s.param), f(s.grad), f(s.state1), f(s.state2), step);
    return;
  }
  const auto& list = optimizer_list(ctx, params, "adamw", true, true);
  if (list.chunks == 0) return;
  FOVEA_KERNEL_CALL(ctx.device, adamw_step_multi, p, list.device.as<OptimizerTensor>(), int64_t(list.host.size()),
                    list.chunks, step, ctx.stream);
}

// ---------------------------------------------------------------- regularisation

float l1_l2_penalty(Context& ctx, std::vector<ParamSlot>& params, float l1, float l2) {
  FOVEA_CHECK(l1 >= 0 && l2 >= 0, "penalty: coefficients must be >= 0, got l1=", l1, " l2=", l2);
  double total = 0;
  for (ParamSlot& s : params) {
    check_tensor(ctx, "penalty", "param", s.param);
    check_tensor(ctx, "penalty", "grad", s.grad);
    check_same_shape("penalty", "param", s.param, "grad", s.grad);
    const int64_t n = s.param.numel();
    if (on_cpu(ctx)) {
      total += ref::elastic_net_penalty(n, f(s.param), l1, l2, f(s.grad));
    } else {
      float* partials = static_cast<float*>(ctx.workspace->get(257 * sizeof(float)));
      FOVEA_KERNEL_CALL(ctx.device, elastic_net_penalty, n, f(s.param), l1, l2, f(s.grad), partials, partials + 256,
                        ctx.stream);
      float value = 0;
      copy_bytes(&value, kCPU, partials + 256, ctx.device, sizeof(float), ctx.stream);  // one number back
      total += value;
    }
  }
  return float(total);
}

void max_norm(Context& ctx, Tensor& w, float max_norm_value) {
  check_tensor(ctx, "max_norm", "w", w);
  FOVEA_CHECK(w.ndim() >= 2, "max_norm: 'w' must have at least 2 dimensions (rows = output units), got ",
              w.shape().str());
  const int64_t rows = w.size(0), cols = w.numel() / rows;
  if (on_cpu(ctx))
    ref::max_norm_constraint(rows, cols, f(w), max_norm_value);
  else
    FOVEA_KERNEL_CALL(ctx.device, max_norm_rows, rows, cols, f(w), max_norm_value, ctx.stream);
}

// ---------------------------------------------------------------- fills

void fill_uniform(Context& ctx, Tensor& t, float lo, float hi, uint64_t seed, uint64_t offset) {
  check_tensor(ctx, "fill_uniform", "t", t);
  float* y = f(t);
  const int64_t n = t.numel();
  if (on_cpu(ctx)) {
    for (int64_t i = 0; i < n; ++i) y[i] = lo + (hi - lo) * philox_uniform(seed, offset, uint64_t(i));
  } else {
    FOVEA_KERNEL_CALL(ctx.device, fill_uniform, y, n, lo, hi, seed, offset, ctx.stream);
  }
}

void fill_normal(Context& ctx, Tensor& t, float mean, float stddev, uint64_t seed, uint64_t offset) {
  check_tensor(ctx, "fill_normal", "t", t);
  float* y = f(t);
  const int64_t n = t.numel();
  if (on_cpu(ctx)) {
    for (int64_t i = 0; i < n; ++i) y[i] = mean + stddev * philox_normal(seed, offset, uint64_t(i));
  } else {
    FOVEA_KERNEL_CALL(ctx.device, fill_normal, y, n, mean, stddev, seed, offset, ctx.stream);
  }
}

void fill_value(Context& ctx, Tensor& t, float value) {
  check_tensor(ctx, "fill_value", "t", t);
  float* y = f(t);
  const int64_t n = t.numel();
  if (on_cpu(ctx)) {
    for (int64_t i = 0; i < n; ++i) y[i] = value;
  } else {
    FOVEA_KERNEL_CALL(ctx.device, fill_value, y, n, value, ctx.stream);
  }
}

}  // namespace fovea::ops
