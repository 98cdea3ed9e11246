// Elementwise activations and the residual add: the emu/cuda slots of layers/ops/activations.h.
//
// All of them: 1-3 FLOPs (relu, relu6, add) to ~20 (sigmoid/tanh: one expf/tanhf) per element; 8 bytes per element
// forward (read x, write y), 12 backward (read y or x and dy, write dx). Far below the H100's compute
// roofline, so the limit designed against is HBM: >= 85% of 3.35 TB/s on tensors larger than the 50 MB L2,
// through the float4 grid-stride maps of kernels/elementwise.cuh (scalar fallback for unaligned pointers).
#include <cmath>

#include "kernels/common.cuh"
#include "kernels/elementwise.cuh"
#include "layers/ops/activations.h"

namespace fovea::FOVEA_KERNEL_NS {
namespace {

struct ReluOp {
  FOVEA_HD float operator()(float x) const { return x < 0.0f ? 0.0f : x; }  // NaN propagates
};
struct ReluBackwardOp {
  FOVEA_HD float operator()(float y, float dy) const { return y > 0.0f ? dy : 0.0f; }
};
struct Relu6Op {
  FOVEA_HD float operator()(float x) const { return x < 0.0f ? 0.0f : (x > 6.0f ? 6.0f : x); }  // NaN propagates
};
struct Relu6BackwardOp {
  FOVEA_HD float operator()(float x, float dy) const { return x > 0.0f && x < 6.0f ? dy : 0.0f; }
};
struct LeakyReluOp {
  float slope;
  FOVEA_HD float operator()(float x) const { return x > 0.0f ? x : x * slope; }
};
struct LeakyReluBackwardOp {
  float slope;
  FOVEA_HD float operator()(float x, float dy) const { return x > 0.0f ? dy : dy * slope; }
};
struct SigmoidOp {
  FOVEA_HD float operator()(float x) const { return 1.0f / (1.0f + expf(-x)); }
};
struct SigmoidBackwardOp {
  FOVEA_HD float operator()(float y, float dy) const { return dy * (1.0f - y) * y; }
};
struct TanhOp {
  FOVEA_HD float operator()(float x) const { return tanhf(x); }
};
struct TanhBackwardOp {
  FOVEA_HD float operator()(float y, float dy) const { return dy * (1.0f - y * y); }
};
struct AddOp {
  FOVEA_HD float operator()(float a, float b) const { return a + b; }
};

void check_slope(const char* op, float slope) {
  FOVEA_CHECK(std::isfinite(slope), op, ": argument 'slope' must be finite, got ", slope);
}

// Residual backward: one read of dy, one or two writes. HBM-bound (8-12 bytes per element).
__global__ void copy2_vec4_kernel(const float* src, float* a, float* b, int64_t n) {
  const int64_t n4 = n >> 2, stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t t0 = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int64_t i = t0; i < n4; i += stride) {
    const float4 v = reinterpret_cast<const float4*>(src)[i];
    if (a) reinterpret_cast<float4*>(a)[i] = v;
    if (b) reinterpret_cast<float4*>(b)[i] = v;
  }
  const int64_t t = (n4 << 2) + t0;
  if (t < n) {
    if (a) a[t] = src[t];
    if (b) b[t] = src[t];
  }
}
__global__ void copy2_scalar_kernel(const float* src, float* a, float* b, int64_t n) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    if (a) a[i] = src[i];
    if (b) b[i] = src[i];
  }
}

}  // namespace

void relu_forward(const Exec& ex, int64_t n, const float* x, float* y) {
  launch_map1(ex, "relu_forward", x, y, n, ReluOp{});
}
void relu_backward(const Exec& ex, int64_t n, const float* y, const float* dy, float* dx) {
  launch_map2(ex, "relu_backward", y, dy, dx, n, ReluBackwardOp{}, {"y", "dy", "dx"});
}
void relu6_forward(const Exec& ex, int64_t n, const float* x, float* y) {
  launch_map1(ex, "relu6_forward", x, y, n, Relu6Op{});
}
void relu6_backward(const Exec& ex, int64_t n, const float* x, const float* dy, float* dx) {
  launch_map2(ex, "relu6_backward", x, dy, dx, n, Relu6BackwardOp{}, {"x", "dy", "dx"});
}
void leaky_relu_forward(const Exec& ex, int64_t n, float slope, const float* x, float* y) {
  check_slope("leaky_relu_forward", slope);
  launch_map1(ex, "leaky_relu_forward", x, y, n, LeakyReluOp{slope});
}
void leaky_relu_backward(const Exec& ex, int64_t n, float slope, const float* x, const float* dy, float* dx) {
  check_slope("leaky_relu_backward", slope);
  launch_map2(ex, "leaky_relu_backward", x, dy, dx, n, LeakyReluBackwardOp{slope}, {"x", "dy", "dx"});
}
void sigmoid_forward(const Exec& ex, int64_t n, const float* x, float* y) {
  launch_map1(ex, "sigmoid_forward", x, y, n, SigmoidOp{});
}
void sigmoid_backward(const Exec& ex, int64_t n, const float* y, const float* dy, float* dx) {
  launch_map2(ex, "sigmoid_backward", y, dy, dx, n, SigmoidBackwardOp{}, {"y", "dy", "dx"});
}
void tanh_forward(const Exec& ex, int64_t n, const float* x, float* y) {
  launch_map1(ex, "tanh_forward", x, y, n, TanhOp{});
}
void tanh_backward(const Exec& ex, int64_t n, const float* y, const float* dy, float* dx) {
  launch_map2(ex, "tanh_backward", y, dy, dx, n, TanhBackwardOp{}, {"y", "dy", "dx"});
}
void residual_add_forward(const Exec& ex, int64_t n, const float* a, const float* b, float* y) {
  launch_map2(ex, "residual_add_forward", a, b, y, n, AddOp{}, {"a", "b", "y"});
}

void residual_add_backward(const Exec& ex, int64_t n, const float* dy, float* da, float* db) {
  const char* op = "residual_add_backward";
  FOVEA_CHECK(n >= 0, op, ": argument 'n' must be >= 0, got ", n);
  check_ptr(op, "dy", dy);
  FOVEA_CHECK(da || db, op, ": arguments 'da' and 'db' are both null");
  if (da == dy) da = nullptr;  // already holds the gradient
  if (db == dy) db = nullptr;
  if (n == 0 || (!da && !db)) return;
  const bool vec = aligned16(dy) && (!da || aligned16(da)) && (!db || aligned16(db));
  if (vec)
    launch<copy2_vec4_kernel>(op, dim3(grid_stride_blocks(n / 4 + 1, kMapBlock)), dim3(kMapBlock), 0, ex.stream, dy, da,
                              db, n);
  else
    launch<copy2_scalar_kernel>(op, dim3(grid_stride_blocks(n, kMapBlock)), dim3(kMapBlock), 0, ex.stream, dy, da, db,
                                n);
}

const bool registered = ops::relu_forward_stub.define(kThisSlot, relu_forward) &&
                        ops::relu_backward_stub.define(kThisSlot, relu_backward) &&
                        ops::relu6_forward_stub.define(kThisSlot, relu6_forward) &&
                        ops::relu6_backward_stub.define(kThisSlot, relu6_backward) &&
                        ops::leaky_relu_forward_stub.define(kThisSlot, leaky_relu_forward) &&
                        ops::leaky_relu_backward_stub.define(kThisSlot, leaky_relu_backward) &&
                        ops::sigmoid_forward_stub.define(kThisSlot, sigmoid_forward) &&
                        ops::sigmoid_backward_stub.define(kThisSlot, sigmoid_backward) &&
                        ops::tanh_forward_stub.define(kThisSlot, tanh_forward) &&
                        ops::tanh_backward_stub.define(kThisSlot, tanh_backward) &&
                        ops::residual_add_forward_stub.define(kThisSlot, residual_add_forward) &&
                        ops::residual_add_backward_stub.define(kThisSlot, residual_add_backward);

}  // namespace fovea::FOVEA_KERNEL_NS
