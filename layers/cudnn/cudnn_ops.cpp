// Pooling, activations, add, softmax and batch norm on cuDNN's legacy API: the cudnn slots of
// layers/ops/pooling.h, activations.h, softmax.h and batchnorm.h.
#include "layers/cudnn/cudnn_common.h"

namespace fovea::cudnn {

using namespace detail;

namespace {

// Handle for the context's device with the checks every op starts with.
struct Call {
  DeviceGuard guard;
  cudnnHandle_t h;
  Call(const Exec& ctx, const char* op) : guard((require_cuda(ctx, op), ctx.device.index)), h(cudnn_handle(ctx)) {}
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

cudnnPoolingMode_t max_mode(const Exec& ctx) {
  return ctx.deterministic ? CUDNN_POOLING_MAX_DETERMINISTIC : CUDNN_POOLING_MAX;
}
cudnnPoolingMode_t avg_mode(const Pool2dParams& p) {
  return p.count_include_pad ? CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING
                             : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING;
}

// ---------------------------------------------------------------- pooling

// cuDNN keeps no argmax: the op hands backward the forward's x and y instead (idx is null here).
void maxpool2d_forward(const Exec& ctx, const Pool2dParams& p, const float* x, float* y, int32_t* /*idx*/) {
  const char* op = "maxpool2d";
  Call c(ctx, op);
  const PoolGeometry g = pool_geometry(p, op);
  const cudnnPoolingDescriptor_t pd = pool_desc(max_mode(ctx), p);
  check_pool_output(pd, g.x, p, op);
  FOVEA_CUDNN_CHECK(cudnnPoolingForward(c.h, pd, &kOne, g.x, x, &kZero, g.y, y));
}

void maxpool2d_backward(const Exec& ctx, const Pool2dParams& p, const float* x, const float* y, const int32_t* /*idx*/,
                        const float* dy, float* dx) {
  const char* op = "maxpool2d_backward";
  FOVEA_CHECK(x && y, op, ": backend cudnn needs the forward's x and y");
  Call c(ctx, op);
  const PoolGeometry g = pool_geometry(p, op);
  const cudnnPoolingDescriptor_t pd = pool_desc(max_mode(ctx), p);
  FOVEA_CUDNN_CHECK(cudnnPoolingBackward(c.h, pd, &kOne, g.y, y, g.y, dy, g.x, x, &kZero, g.x, dx));
}

void avgpool2d_forward(const Exec& ctx, const Pool2dParams& p, const float* x, float* y) {
  const char* op = "avgpool2d";
  Call c(ctx, op);
  const PoolGeometry g = pool_geometry(p, op);
  const cudnnPoolingDescriptor_t pd = pool_desc(avg_mode(p), p);
  check_pool_output(pd, g.x, p, op);
  FOVEA_CUDNN_CHECK(cudnnPoolingForward(c.h, pd, &kOne, g.x, x, &kZero, g.y, y));
}

// Average pooling's gradient does not depend on x or y, which cuDNN's backward still takes: dy and dx
// stand in for them (same shapes; their values are not used).
void avgpool2d_backward(const Exec& ctx, const Pool2dParams& p, const float* dy, float* dx) {
  const char* op = "avgpool2d_backward";
  Call c(ctx, op);
  const PoolGeometry g = pool_geometry(p, op);
  const cudnnPoolingDescriptor_t pd = pool_desc(avg_mode(p), p);
  FOVEA_CUDNN_CHECK(cudnnPoolingBackward(c.h, pd, &kOne, g.y, dy, g.y, dy, g.x, dx, &kZero, g.x, dx));
}

// Global average pooling: one H x W window per plane.
void global_avgpool_forward(const Exec& ctx, int64_t N, int64_t C, int64_t H, int64_t W, const float* x, float* y) {
  const char* op = "global_avgpool";
  Call c(ctx, op);
  to_int(N * C * H * W, op, "x elements");
  const int n = to_int(N, op, "N"), ch = to_int(C, op, "C"), h = to_int(H, op, "H"), w = to_int(W, op, "W");
  FOVEA_CUDNN_CHECK(cudnnPoolingForward(c.h, global_pool_desc(h, w), &kOne, tensor_desc(n, ch, h, w), x, &kZero,
                                        tensor_desc(n, ch, 1, 1), y));
}

void global_avgpool_backward(const Exec& ctx, int64_t N, int64_t C, int64_t H, int64_t W, const float* dy, float* dx) {
  const char* op = "global_avgpool_backward";
  Call c(ctx, op);
  to_int(N * C * H * W, op, "x elements");
  const int n = to_int(N, op, "N"), ch = to_int(C, op, "C"), h = to_int(H, op, "H"), w = to_int(W, op, "W");
  const cudnnTensorDescriptor_t xd = tensor_desc(n, ch, h, w), yd = tensor_desc(n, ch, 1, 1);
  FOVEA_CUDNN_CHECK(cudnnPoolingBackward(c.h, global_pool_desc(h, w), &kOne, yd, dy, yd, dy, xd, dx, &kZero, xd, dx));
}

// ---------------------------------------------------------------- activations, add

void activation_forward(const Exec& ctx, cudnnActivationMode_t mode, int64_t n, const float* x, float* y,
                        const char* op) {
  Call c(ctx, op);
  const cudnnActivationDescriptor_t ad = activation_desc(mode);
  for_each_chunk(n, [&](int64_t off, int64_t, cudnnTensorDescriptor_t d) {
    FOVEA_CUDNN_CHECK(cudnnActivationForward(c.h, ad, &kOne, d, x + off, &kZero, d, y + off));
  });
}

// cuDNN's backward takes both the forward input and output. Ours keep one of them, which is enough:
// relu's gate (x > 0) is the same test on x or on y = relu(x); sigmoid's and tanh's derivatives are
// functions of y. So the saved tensor is passed for both.
void activation_backward(const Exec& ctx, cudnnActivationMode_t mode, int64_t n, const float* saved, const float* dy,
                         float* dx, const char* op) {
  Call c(ctx, op);
  const cudnnActivationDescriptor_t ad = activation_desc(mode);
  for_each_chunk(n, [&](int64_t off, int64_t, cudnnTensorDescriptor_t d) {
    FOVEA_CUDNN_CHECK(
        cudnnActivationBackward(c.h, ad, &kOne, d, saved + off, d, dy + off, d, saved + off, &kZero, d, dx + off));
  });
}

// leaky(x) = (1 - s) relu(x) + s x: a scaled relu, then cudnnAddTensor adds s x. For x > 0 the two
// products round separately (about one ulp from x); x <= 0 gives s x exactly as PyTorch.
void leaky_relu_forward(const Exec& ctx, int64_t n, float slope, const float* x, float* y) {
  Call c(ctx, "leaky_relu");
  const cudnnActivationDescriptor_t ad = activation_desc(CUDNN_ACTIVATION_RELU);
  const float keep = 1.0f - slope;
  for_each_chunk(n, [&](int64_t off, int64_t, cudnnTensorDescriptor_t d) {
    FOVEA_CUDNN_CHECK(cudnnActivationForward(c.h, ad, &keep, d, x + off, &kZero, d, y + off));
    FOVEA_CUDNN_CHECK(cudnnAddTensor(c.h, &slope, d, x + off, &kOne, d, y + off));
  });
}

// dx = (1 - s) [x > 0] dy + s dy.
void leaky_relu_backward(const Exec& ctx, int64_t n, float slope, const float* x, const float* dy, float* dx) {
  Call c(ctx, "leaky_relu_backward");
  const cudnnActivationDescriptor_t ad = activation_desc(CUDNN_ACTIVATION_RELU);
  const float keep = 1.0f - slope;
  for_each_chunk(n, [&](int64_t off, int64_t, cudnnTensorDescriptor_t d) {
    FOVEA_CUDNN_CHECK(
        cudnnActivationBackward(c.h, ad, &keep, d, x + off, d, dy + off, d, x + off, &kZero, d, dx + off));
    FOVEA_CUDNN_CHECK(cudnnAddTensor(c.h, &slope, d, dy + off, &kOne, d, dx + off));
  });
}

void add(const Exec& ctx, int64_t n, const float* a, const float* b, float* y) {
  Call c(ctx, "add");
  const cudnnOpTensorDescriptor_t od = add_desc();
  for_each_chunk(n, [&](int64_t off, int64_t, cudnnTensorDescriptor_t d) {
    FOVEA_CUDNN_CHECK(cudnnOpTensor(c.h, od, &kOne, d, a + off, &kOne, d, b + off, &kZero, d, y + off));
  });
}

// ---------------------------------------------------------------- softmax family: [N, C] as [N, C, 1, 1], over C

cudnnTensorDescriptor_t rows_desc(int64_t N, int64_t C, const char* op) {
  to_int(N * C, op, "elements");
  return tensor_desc(to_int(N, op, "N"), to_int(C, op, "C"), 1, 1);
}

template <cudnnSoftmaxAlgorithm_t kAlgo>
void softmax_fwd(const Exec& ctx, RowAlgo, int64_t N, int64_t C, const float* x, float* y) {
  const char* op = kAlgo == CUDNN_SOFTMAX_LOG ? "log_softmax" : "softmax";
  Call c(ctx, op);
  const cudnnTensorDescriptor_t d = rows_desc(N, C, op);
  FOVEA_CUDNN_CHECK(cudnnSoftmaxForward(c.h, kAlgo, CUDNN_SOFTMAX_MODE_CHANNEL, &kOne, d, x, &kZero, d, y));
}

template <cudnnSoftmaxAlgorithm_t kAlgo>
void softmax_bwd(const Exec& ctx, RowAlgo, int64_t N, int64_t C, const float* y, const float* dy, float* dx) {
  const char* op = kAlgo == CUDNN_SOFTMAX_LOG ? "log_softmax_backward" : "softmax_backward";
  Call c(ctx, op);
  const cudnnTensorDescriptor_t d = rows_desc(N, C, op);
  FOVEA_CUDNN_CHECK(cudnnSoftmaxBackward(c.h, kAlgo, CUDNN_SOFTMAX_MODE_CHANNEL, &kOne, d, y, d, dy, &kZero, d, dx));
}

// ---------------------------------------------------------------- batch norm (spatial: statistics over N, H, W)

void check_bn_eps(double eps, const char* op) {
  FOVEA_CHECK(eps >= CUDNN_BN_MIN_EPSILON, op, ": cuDNN needs eps >= ", CUDNN_BN_MIN_EPSILON, ", got ", eps);
}

struct BnDescs {
  cudnnTensorDescriptor_t x, param;  // [N, C, H, W] and cudnnDeriveBNTensorDescriptor's [1, C, 1, 1]
};
BnDescs bn_descs(const BatchNormParams& p, const char* op) {
  to_int(p.x_size(), op, "x elements");
  const int C = to_int(p.C, op, "C");
  return {tensor_desc(to_int(p.N, op, "N"), C, to_int(p.H, op, "H"), to_int(p.W, op, "W")), tensor_desc(1, C, 1, 1)};
}

// Training: cuDNN updates the running variance with the unbiased batch variance, as PyTorch does, and
// saves 1/sqrt(biased variance + eps). Eval: the running statistics.
void batchnorm2d_forward(const Exec& ctx, const BatchNormParams& p, const float* x, const float* gamma,
                         const float* beta, float* running_mean, float* running_var, float* y, float* save_mean,
                         float* save_invstd) {
  const char* op = "batchnorm2d";
  Call c(ctx, op);
  check_bn_eps(p.eps, op);
  const BnDescs d = bn_descs(p, op);
  if (p.training)
    FOVEA_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(c.h, CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero, d.x, x, d.x,
                                                             y, d.param, gamma, beta, p.momentum, running_mean,
                                                             running_var, p.eps, save_mean, save_invstd));
  else
    FOVEA_CUDNN_CHECK(cudnnBatchNormalizationForwardInference(c.h, CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero, d.x, x, d.x,
                                                              y, d.param, gamma, beta, running_mean, running_var,
                                                              p.eps));
}

// The saved mean and 1/sqrt(var + eps) are passed, so cuDNN does not recompute them and the eps it is
// given (which the backward's params do not carry) does not enter the result.
void batchnorm2d_backward(const Exec& ctx, const BatchNormParams& p, const float* x, const float* dy,
                          const float* gamma, const float* save_mean, const float* save_invstd, float* dx,
                          float* dgamma, float* dbeta) {
  const char* op = "batchnorm2d_backward";
  FOVEA_CHECK(dx && dgamma && dbeta, op, ": backend cudnn computes dx, dgamma and dbeta together");
  Call c(ctx, op);
  const BnDescs d = bn_descs(p, op);
  constexpr double kEps = 1e-5;
  FOVEA_CUDNN_CHECK(cudnnBatchNormalizationBackward(c.h, CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero, &kOne, &kZero, d.x, x,
                                                    d.x, dy, d.x, dx, d.param, gamma, dgamma, dbeta, kEps, save_mean,
                                                    save_invstd));
}

const bool registered =
    ops::maxpool2d_forward_stub.define(Slot::cudnn, maxpool2d_forward) &&
    ops::maxpool2d_backward_stub.define(Slot::cudnn, maxpool2d_backward) &&
    ops::avgpool2d_forward_stub.define(Slot::cudnn, avgpool2d_forward) &&
    ops::avgpool2d_backward_stub.define(Slot::cudnn, avgpool2d_backward) &&
    ops::global_avgpool_forward_stub.define(Slot::cudnn, global_avgpool_forward) &&
    ops::global_avgpool_backward_stub.define(Slot::cudnn, global_avgpool_backward) &&
    ops::relu_forward_stub.define(Slot::cudnn,
                                  [](const Exec& e, int64_t n, const float* x, float* y) {
                                    activation_forward(e, CUDNN_ACTIVATION_RELU, n, x, y, "relu");
                                  }) &&
    ops::relu_backward_stub.define(Slot::cudnn,
                                   [](const Exec& e, int64_t n, const float* s, const float* dy, float* dx) {
                                     activation_backward(e, CUDNN_ACTIVATION_RELU, n, s, dy, dx, "relu_backward");
                                   }) &&
    ops::sigmoid_forward_stub.define(Slot::cudnn,
                                     [](const Exec& e, int64_t n, const float* x, float* y) {
                                       activation_forward(e, CUDNN_ACTIVATION_SIGMOID, n, x, y, "sigmoid");
                                     }) &&
    ops::sigmoid_backward_stub.define(Slot::cudnn,
                                      [](const Exec& e, int64_t n, const float* s, const float* dy, float* dx) {
                                        activation_backward(e, CUDNN_ACTIVATION_SIGMOID, n, s, dy, dx,
                                                            "sigmoid_backward");
                                      }) &&
    ops::tanh_forward_stub.define(Slot::cudnn,
                                  [](const Exec& e, int64_t n, const float* x, float* y) {
                                    activation_forward(e, CUDNN_ACTIVATION_TANH, n, x, y, "tanh");
                                  }) &&
    ops::tanh_backward_stub.define(Slot::cudnn,
                                   [](const Exec& e, int64_t n, const float* s, const float* dy, float* dx) {
                                     activation_backward(e, CUDNN_ACTIVATION_TANH, n, s, dy, dx, "tanh_backward");
                                   }) &&
    ops::leaky_relu_forward_stub.define(Slot::cudnn, leaky_relu_forward) &&
    ops::leaky_relu_backward_stub.define(Slot::cudnn, leaky_relu_backward) &&
    ops::residual_add_forward_stub.define(Slot::cudnn, add) &&
    ops::softmax_forward_stub.define(Slot::cudnn, softmax_fwd<CUDNN_SOFTMAX_ACCURATE>) &&
    ops::softmax_backward_stub.define(Slot::cudnn, softmax_bwd<CUDNN_SOFTMAX_ACCURATE>) &&
    ops::log_softmax_forward_stub.define(Slot::cudnn, softmax_fwd<CUDNN_SOFTMAX_LOG>) &&
    ops::log_softmax_backward_stub.define(Slot::cudnn, softmax_bwd<CUDNN_SOFTMAX_LOG>) &&
    ops::batchnorm2d_forward_stub.define(Slot::cudnn, batchnorm2d_forward) &&
    ops::batchnorm2d_backward_stub.define(Slot::cudnn, batchnorm2d_backward);

}  // namespace
}  // namespace fovea::cudnn
