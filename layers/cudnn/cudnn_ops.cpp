// Pooling, activations, add, softmax and batch norm on cuDNN's legacy API.
#include "layers/cudnn/cudnn_common.h"

namespace fovea::cudnn {

using namespace detail;

namespace {

// Handle for the context's device with the checks every op starts with.
struct Call {
  DeviceGuard guard;
  cudnnHandle_t h;
  Call(const ops::Context& ctx, const char* op)
      : guard((require_cuda(ctx, op), ctx.device.index)), h(cudnn_handle(ctx)) {}
};

struct PoolGeometry {
  cudnnTensorDescriptor_t x, y;
};
PoolGeometry pool_geometry(const Pool2dParams& p, const char* op) {
  to_int(p.x_size(), op, "x elements");
  to_int(p.y_size(), op, "y elements");
  const int N = to_int(p.N, op, "N"), C = to_int(p.C, op, "C");
  return {tensor_desc(N, C, to_int(p.H, op, "H"), to_int(p.W, op, "W")),
          tensor_desc(N, C, to_int(p.P(), op, "P"), to_int(p.Q(), op, "Q"))};
}

// cuDNN's pooled size must be PyTorch's floor-mode size; checked once per descriptor pair.
void check_pool_output(cudnnPoolingDescriptor_t pd, cudnnTensorDescriptor_t xd, const Pool2dParams& p, const char* op) {
  int n = 0, c = 0, h = 0, w = 0;
  FOVEA_CUDNN_CHECK(cudnnGetPooling2dForwardOutputDim(pd, xd, &n, &c, &h, &w));
  FOVEA_CHECK(n == p.N && c == p.C && h == p.P() && w == p.Q(), op, ": cuDNN pools to [", n, ", ", c, ", ", h, ", ", w,
              "] for ", p.str(), ", expected [", p.N, ", ", p.C, ", ", p.P(), ", ", p.Q(), "]");
}

cudnnPoolingMode_t max_mode(const ops::Context& ctx) {
  return ctx.deterministic ? CUDNN_POOLING_MAX_DETERMINISTIC : CUDNN_POOLING_MAX;
}
cudnnPoolingMode_t avg_mode(const Pool2dParams& p) {
  return p.count_include_pad ? CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING
                             : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING;
}

void copy_device(void* dst, const void* src, size_t bytes, const ops::Context& ctx) {
  FOVEA_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_of(ctx)));
}

}  // namespace

// ---------------------------------------------------------------- pooling

ops::MaxPoolOut maxpool2d_forward(ops::Context& ctx, const Pool2dParams& p, const Tensor& x) {
  const char* op = "maxpool2d";
  Call c(ctx, op);
  const PoolGeometry g = pool_geometry(p, op);
  const cudnnPoolingDescriptor_t pd = pool_desc(max_mode(ctx), p);
  check_pool_output(pd, g.x, p, op);
  // The indices' allocation: [N + rows, C, P, Q] int32; the first N rows (the view handed out) hold y's
  // bits, the rest x's, for cudnnPoolingBackward.
  const int64_t plane = p.C * p.P() * p.Q();
  const int64_t rows = (p.x_size() + plane - 1) / plane;
  Tensor stash = Tensor::empty({p.N + rows, p.C, p.P(), p.Q()}, DType::int32, ctx.device);
  ops::MaxPoolOut out{Tensor::empty({p.N, p.C, p.P(), p.Q()}, DType::float32, ctx.device), stash.narrow(0, p.N)};
  FOVEA_CUDNN_CHECK(cudnnPoolingForward(c.h, pd, &kOne, g.x, fp(x), &kZero, g.y, fp(out.y)));
  float* saved = reinterpret_cast<float*>(stash.data<int32_t>());
  copy_device(saved, fp(out.y), size_t(p.y_size()) * sizeof(float), ctx);
  copy_device(saved + p.y_size(), fp(x), size_t(p.x_size()) * sizeof(float), ctx);
  return out;
}

Tensor maxpool2d_backward(ops::Context& ctx, const Pool2dParams& p, const Tensor& dy, const Tensor& indices) {
  const char* op = "maxpool2d_backward";
  Call c(ctx, op);
  const PoolGeometry g = pool_geometry(p, op);
  const cudnnPoolingDescriptor_t pd = pool_desc(max_mode(ctx), p);
  const float* y = reinterpret_cast<const float*>(indices.data<int32_t>());
  const float* x = y + p.y_size();
  Tensor dx = Tensor::empty({p.N, p.C, p.H, p.W}, DType::float32, ctx.device);
  FOVEA_CUDNN_CHECK(cudnnPoolingBackward(c.h, pd, &kOne, g.y, y, g.y, fp(dy), g.x, x, &kZero, g.x, fp(dx)));
  return dx;
}

Tensor avgpool2d_forward(ops::Context& ctx, const Pool2dParams& p, const Tensor& x) {
  const char* op = "avgpool2d";
  Call c(ctx, op);
  const PoolGeometry g = pool_geometry(p, op);
  const cudnnPoolingDescriptor_t pd = pool_desc(avg_mode(p), p);
  check_pool_output(pd, g.x, p, op);
  Tensor y = Tensor::empty({p.N, p.C, p.P(), p.Q()}, DType::float32, ctx.device);
  FOVEA_CUDNN_CHECK(cudnnPoolingForward(c.h, pd, &kOne, g.x, fp(x), &kZero, g.y, fp(y)));
  return y;
}

// Average pooling's gradient does not depend on x or y, which cuDNN's backward still takes: dy and dx
// stand in for them (same shapes; their values are not used).
Tensor avgpool2d_backward(ops::Context& ctx, const Pool2dParams& p, const Tensor& dy) {
  const char* op = "avgpool2d_backward";
  Call c(ctx, op);
  const PoolGeometry g = pool_geometry(p, op);
  const cudnnPoolingDescriptor_t pd = pool_desc(avg_mode(p), p);
  Tensor dx = Tensor::empty({p.N, p.C, p.H, p.W}, DType::float32, ctx.device);
  FOVEA_CUDNN_CHECK(cudnnPoolingBackward(c.h, pd, &kOne, g.y, fp(dy), g.y, fp(dy), g.x, fp(dx), &kZero, g.x, fp(dx)));
  return dx;
}

// Global average pooling: one H x W window per plane.
Tensor global_avgpool_forward(ops::Context& ctx, const Tensor& x) {
  const char* op = "global_avgpool";
  Call c(ctx, op);
  check_numel(x, op, "x");
  const int N = int(x.size(0)), C = int(x.size(1)), H = int(x.size(2)), W = int(x.size(3));
  Tensor y = Tensor::empty({x.size(0), x.size(1)}, DType::float32, ctx.device);
  FOVEA_CUDNN_CHECK(cudnnPoolingForward(c.h, global_pool_desc(H, W), &kOne, tensor_desc(N, C, H, W), fp(x), &kZero,
                                        tensor_desc(N, C, 1, 1), fp(y)));
  return y;
}

Tensor global_avgpool_backward(ops::Context& ctx, const Tensor& dy, const Shape& x_shape) {
  const char* op = "global_avgpool_backward";
  Call c(ctx, op);
  const int N = to_int(x_shape[0], op, "N"), C = to_int(x_shape[1], op, "C");
  const int H = to_int(x_shape[2], op, "H"), W = to_int(x_shape[3], op, "W");
  to_int(x_shape.numel(), op, "x elements");
  Tensor dx = Tensor::empty(x_shape, DType::float32, ctx.device);
  const cudnnTensorDescriptor_t xd = tensor_desc(N, C, H, W), yd = tensor_desc(N, C, 1, 1);
  FOVEA_CUDNN_CHECK(
      cudnnPoolingBackward(c.h, global_pool_desc(H, W), &kOne, yd, fp(dy), yd, fp(dy), xd, fp(dx), &kZero, xd, fp(dx)));
  return dx;
}

// ---------------------------------------------------------------- activations, add

namespace {

Tensor activation_forward(ops::Context& ctx, cudnnActivationMode_t mode, const Tensor& x, const char* op) {
  Call c(ctx, op);
  Tensor y = Tensor::empty(x.shape(), DType::float32, ctx.device);
  const cudnnActivationDescriptor_t ad = activation_desc(mode);
  const float* xp = fp(x);
  float* yp = fp(y);
  for_each_chunk(x.numel(), [&](int64_t off, int64_t, cudnnTensorDescriptor_t d) {
    FOVEA_CUDNN_CHECK(cudnnActivationForward(c.h, ad, &kOne, d, xp + off, &kZero, d, yp + off));
  });
  return y;
}

// cuDNN's backward takes both the forward input and output. Ours keep one of them, which is enough:
// relu's gate (x > 0) is the same test on x or on y = relu(x); sigmoid's and tanh's derivatives are
// functions of y. So the saved tensor is passed for both.
Tensor activation_backward(ops::Context& ctx, cudnnActivationMode_t mode, const Tensor& dy, const Tensor& saved,
                           const char* op) {
  Call c(ctx, op);
  Tensor dx = Tensor::empty(dy.shape(), DType::float32, ctx.device);
  const cudnnActivationDescriptor_t ad = activation_desc(mode);
  const float* s = fp(saved);
  const float* g = fp(dy);
  float* out = fp(dx);
  for_each_chunk(dy.numel(), [&](int64_t off, int64_t, cudnnTensorDescriptor_t d) {
    FOVEA_CUDNN_CHECK(
        cudnnActivationBackward(c.h, ad, &kOne, d, s + off, d, g + off, d, s + off, &kZero, d, out + off));
  });
  return dx;
}

}  // namespace

Tensor relu_forward(ops::Context& ctx, const Tensor& x) {
  return activation_forward(ctx, CUDNN_ACTIVATION_RELU, x, "relu");
}
Tensor relu_backward(ops::Context& ctx, const Tensor& dy, const Tensor& x) {
  return activation_backward(ctx, CUDNN_ACTIVATION_RELU, dy, x, "relu_backward");
}
Tensor sigmoid_forward(ops::Context& ctx, const Tensor& x) {
  return activation_forward(ctx, CUDNN_ACTIVATION_SIGMOID, x, "sigmoid");
}
Tensor sigmoid_backward(ops::Context& ctx, const Tensor& dy, const Tensor& y) {
  return activation_backward(ctx, CUDNN_ACTIVATION_SIGMOID, dy, y, "sigmoid_backward");
}
Tensor tanh_forward(ops::Context& ctx, const Tensor& x) {
  return activation_forward(ctx, CUDNN_ACTIVATION_TANH, x, "tanh");
}
Tensor tanh_backward(ops::Context& ctx, const Tensor& dy, const Tensor& y) {
  return activation_backward(ctx, CUDNN_ACTIVATION_TANH, dy, y, "tanh_backward");
}

// leaky(x) = (1 - s) relu(x) + s x: a scaled relu, then cudnnAddTensor adds s x. For x > 0 the two
// products round separately (about one ulp from x); x <= 0 gives s x exactly as PyTorch.
Tensor leaky_relu_forward(ops::Context& ctx, const Tensor& x, float slope) {
  Call c(ctx, "leaky_relu");
  Tensor y = Tensor::empty(x.shape(), DType::float32, ctx.device);
  const cudnnActivationDescriptor_t ad = activation_desc(CUDNN_ACTIVATION_RELU);
  const float keep = 1.0f - slope;
  const float* xp = fp(x);
  float* yp = fp(y);
  for_each_chunk(x.numel(), [&](int64_t off, int64_t, cudnnTensorDescriptor_t d) {
    FOVEA_CUDNN_CHECK(cudnnActivationForward(c.h, ad, &keep, d, xp + off, &kZero, d, yp + off));
    FOVEA_CUDNN_CHECK(cudnnAddTensor(c.h, &slope, d, xp + off, &kOne, d, yp + off));
  });
  return y;
}

// dx = (1 - s) [x > 0] dy + s dy.
Tensor leaky_relu_backward(ops::Context& ctx, const Tensor& dy, const Tensor& x, float slope) {
  Call c(ctx, "leaky_relu_backward");
  Tensor dx = Tensor::empty(x.shape(), DType::float32, ctx.device);
  const cudnnActivationDescriptor_t ad = activation_desc(CUDNN_ACTIVATION_RELU);
  const float keep = 1.0f - slope;
  const float* xp = fp(x);
  const float* g = fp(dy);
  float* out = fp(dx);
  for_each_chunk(x.numel(), [&](int64_t off, int64_t, cudnnTensorDescriptor_t d) {
    FOVEA_CUDNN_CHECK(
        cudnnActivationBackward(c.h, ad, &keep, d, xp + off, d, g + off, d, xp + off, &kZero, d, out + off));
    FOVEA_CUDNN_CHECK(cudnnAddTensor(c.h, &slope, d, g + off, &kOne, d, out + off));
  });
  return dx;
}

Tensor add(ops::Context& ctx, const Tensor& a, const Tensor& b) {
  Call c(ctx, "add");
  Tensor y = Tensor::empty(a.shape(), DType::float32, ctx.device);
  const cudnnOpTensorDescriptor_t od = add_desc();
  const float* ap = fp(a);
  const float* bp = fp(b);
  float* yp = fp(y);
  for_each_chunk(a.numel(), [&](int64_t off, int64_t, cudnnTensorDescriptor_t d) {
    FOVEA_CUDNN_CHECK(cudnnOpTensor(c.h, od, &kOne, d, ap + off, &kOne, d, bp + off, &kZero, d, yp + off));
  });
  return y;
}

// ---------------------------------------------------------------- softmax family

namespace {

Tensor softmax_fwd(ops::Context& ctx, const Tensor& x, cudnnSoftmaxAlgorithm_t algo, const char* op) {
  Call c(ctx, op);
  const cudnnTensorDescriptor_t d = nchw_desc(x, op, "x");  // [N, C] as [N, C, 1, 1]: softmax over C
  Tensor y = Tensor::empty(x.shape(), DType::float32, ctx.device);
  FOVEA_CUDNN_CHECK(cudnnSoftmaxForward(c.h, algo, CUDNN_SOFTMAX_MODE_CHANNEL, &kOne, d, fp(x), &kZero, d, fp(y)));
  return y;
}

Tensor softmax_bwd(ops::Context& ctx, const Tensor& dy, const Tensor& y, cudnnSoftmaxAlgorithm_t algo, const char* op) {
  Call c(ctx, op);
  const cudnnTensorDescriptor_t d = nchw_desc(y, op, "y");
  Tensor dx = Tensor::empty(y.shape(), DType::float32, ctx.device);
  FOVEA_CUDNN_CHECK(
      cudnnSoftmaxBackward(c.h, algo, CUDNN_SOFTMAX_MODE_CHANNEL, &kOne, d, fp(y), d, fp(dy), &kZero, d, fp(dx)));
  return dx;
}

}  // namespace

Tensor softmax_forward(ops::Context& ctx, const Tensor& x) {
  return softmax_fwd(ctx, x, CUDNN_SOFTMAX_ACCURATE, "softmax");
}
Tensor softmax_backward(ops::Context& ctx, const Tensor& dy, const Tensor& y) {
  return softmax_bwd(ctx, dy, y, CUDNN_SOFTMAX_ACCURATE, "softmax_backward");
}
Tensor log_softmax_forward(ops::Context& ctx, const Tensor& x) {
  return softmax_fwd(ctx, x, CUDNN_SOFTMAX_LOG, "log_softmax");
}
Tensor log_softmax_backward(ops::Context& ctx, const Tensor& dy, const Tensor& y) {
  return softmax_bwd(ctx, dy, y, CUDNN_SOFTMAX_LOG, "log_softmax_backward");
}

// ---------------------------------------------------------------- batch norm (spatial: statistics over N, H, W)

namespace {

void check_bn_eps(float eps, const char* op) {
  FOVEA_CHECK(double(eps) >= CUDNN_BN_MIN_EPSILON, op, ": cuDNN needs eps >= ", CUDNN_BN_MIN_EPSILON, ", got ", eps);
}

// The per-channel descriptor of cudnnDeriveBNTensorDescriptor for spatial mode: [1, C, 1, 1].
cudnnTensorDescriptor_t bn_param_desc(const Tensor& x, const char* op) {
  return tensor_desc(1, to_int(x.size(1), op, "C"), 1, 1);
}

}  // namespace

ops::BatchNormOut batchnorm_forward_train(ops::Context& ctx, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                          Tensor& running_mean, Tensor& running_var, float momentum, float eps) {
  const char* op = "batchnorm2d";
  Call c(ctx, op);
  check_bn_eps(eps, op);
  const cudnnTensorDescriptor_t xd = nchw_desc(x, op, "x"), pd = bn_param_desc(x, op);
  ops::BatchNormOut out{Tensor::empty(x.shape(), DType::float32, ctx.device),
                        Tensor::empty({x.size(1)}, DType::float32, ctx.device),
                        Tensor::empty({x.size(1)}, DType::float32, ctx.device)};
  // cuDNN updates the running variance with the unbiased batch variance, as PyTorch does, and saves
  // 1/sqrt(biased variance + eps).
  FOVEA_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
      c.h, CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero, xd, fp(x), xd, fp(out.y), pd, fp(gamma), fp(beta), double(momentum),
      fp(running_mean), fp(running_var), double(eps), fp(out.save_mean), fp(out.save_invstd)));
  return out;
}

Tensor batchnorm_forward_eval(ops::Context& ctx, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                              const Tensor& running_mean, const Tensor& running_var, float eps) {
  const char* op = "batchnorm2d";
  Call c(ctx, op);
  check_bn_eps(eps, op);
  const cudnnTensorDescriptor_t xd = nchw_desc(x, op, "x"), pd = bn_param_desc(x, op);
  Tensor y = Tensor::empty(x.shape(), DType::float32, ctx.device);
  FOVEA_CUDNN_CHECK(cudnnBatchNormalizationForwardInference(c.h, CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero, xd, fp(x), xd,
                                                            fp(y), pd, fp(gamma), fp(beta), fp(running_mean),
                                                            fp(running_var), double(eps)));
  return y;
}

// The saved mean and 1/sqrt(var + eps) are passed, so cuDNN does not recompute them and the eps it is
// given (which ops::batchnorm_backward does not know) does not enter the result.
ops::BatchNormGrads batchnorm_backward(ops::Context& ctx, const Tensor& dy, const Tensor& x, const Tensor& gamma,
                                       const Tensor& save_mean, const Tensor& save_invstd) {
  const char* op = "batchnorm2d_backward";
  Call c(ctx, op);
  const cudnnTensorDescriptor_t xd = nchw_desc(x, op, "x"), pd = bn_param_desc(x, op);
  ops::BatchNormGrads g{Tensor::empty(x.shape(), DType::float32, ctx.device),
                        Tensor::empty({x.size(1)}, DType::float32, ctx.device),
                        Tensor::empty({x.size(1)}, DType::float32, ctx.device)};
  constexpr double kEps = 1e-5;
  FOVEA_CUDNN_CHECK(cudnnBatchNormalizationBackward(c.h, CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero, &kOne, &kZero, xd,
                                                    fp(x), xd, fp(dy), xd, fp(g.dx), pd, fp(gamma), fp(g.dgamma),
                                                    fp(g.dbeta), kEps, fp(save_mean), fp(save_invstd)));
  return g;
}

}  // namespace fovea::cudnn
