// Fully connected layer on our SGEMM (the emu/cuda slots of layers/ops/linear.h), and the bias kernels of
// linear and conv2d (kernels/bias.cuh).
#include "kernels/bias.cuh"
#include "kernels/reduce.cuh"  // block_sum, aligned16, grid_stride_blocks
#include "kernels/sgemm.cuh"
#include "layers/ops/conv2d.h"
#include "layers/ops/linear.h"

namespace fovea::FOVEA_KERNEL_NS {

namespace {

constexpr int kBiasBlock = 256;

// y[o][c][i] += b[c]. Per element 1 FLOP and 8 bytes (read + write y; b stays in L1): HBM-bound,
// designed for ~85% of 3.35 TB/s. The float4 version needs inner % 4 == 0 (4 elements share a
// channel) and y 16-byte aligned; one channel index per float4.
__global__ void bias_add_vec4_kernel(float* __restrict__ y, const float* __restrict__ b, int64_t n4, int64_t channels,
                                     int64_t inner4) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n4; i += stride) {
    const float bias = b[(i / inner4) % channels];
    float4 v = reinterpret_cast<float4*>(y)[i];
    v.x += bias, v.y += bias, v.z += bias, v.w += bias;
    reinterpret_cast<float4*>(y)[i] = v;
  }
}
__global__ void bias_add_kernel(float* __restrict__ y, const float* __restrict__ b, int64_t n, int64_t channels,
                                int64_t inner) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    y[i] += b[(i / inner) % channels];
}

// db[c] = sum over (o, i) of dy[o][c][i], one block per channel: each thread sums the elements
// j = tid, tid + 256, ... of the channel's outer*inner values in order, then a fixed-shape block
// tree. 4 bytes read per element, so HBM-bound; with few channels (e.g. 16) only that many SMs
// work, acceptable for a tensor read once per step.
__global__ void bias_backward_channel_kernel(const float* __restrict__ dy, float* __restrict__ db, int64_t outer,
                                             int64_t channels, int64_t inner) {
  __shared__ float partial[32];
  const int64_t c = blockIdx.x;
  // (o, i) of element j = tid + k*blockDim, advanced with a carry instead of a division.
  const int64_t step_o = blockDim.x / inner, step_i = blockDim.x % inner;
  int64_t o = threadIdx.x / inner, i = threadIdx.x % inner;
  float sum = 0.0f;
  while (o < outer) {
    sum += dy[(o * channels + c) * inner + i];
    o += step_o, i += step_i;
    if (i >= inner) i -= inner, ++o;
  }
  sum = block_sum(sum, partial);
  if (threadIdx.x == 0) db[c] = sum;
}
// inner == 1 (linear): one thread per channel sums its column over the batch in order; a warp reads
// 32 consecutive channels of a row, so the loads coalesce.
__global__ void bias_backward_column_kernel(const float* __restrict__ dy, float* __restrict__ db, int64_t outer,
                                            int64_t channels) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= channels) return;
  float sum = 0.0f;
  for (int64_t o = 0; o < outer; ++o) sum += dy[o * channels + c];
  db[c] = sum;
}

}  // namespace

void bias_add(const Exec& ex, float* y, const float* b, int64_t outer, int64_t channels, int64_t inner) {
  FOVEA_CHECK(outer >= 0 && channels >= 0 && inner >= 0, "bias_add: sizes must be >= 0, got outer=", outer,
              " channels=", channels, " inner=", inner);
  const int64_t n = outer * channels * inner;
  if (n == 0) return;
  check_ptr("bias_add", "y", y), check_ptr("bias_add", "b", b);
  if (inner % 4 == 0 && aligned16(y)) {
    FOVEA_LAUNCH(bias_add_vec4_kernel, grid_stride_blocks(n / 4, kBiasBlock), kBiasBlock, 0, ex.stream, y, b, n / 4,
                 channels, inner / 4);
  } else {
    FOVEA_LAUNCH(bias_add_kernel, grid_stride_blocks(n, kBiasBlock), kBiasBlock, 0, ex.stream, y, b, n, channels,
                 inner);
  }
}

void bias_backward(const Exec& ex, const float* dy, float* db, int64_t outer, int64_t channels, int64_t inner) {
  FOVEA_CHECK(outer >= 0 && channels >= 0 && inner >= 0, "bias_backward: sizes must be >= 0, got outer=", outer,
              " channels=", channels, " inner=", inner);
  if (channels == 0) return;
  check_ptr("bias_backward", "db", db);
  if (outer * inner != 0) check_ptr("bias_backward", "dy", dy);
  if (inner <= 1 || outer * inner == 0) {
    FOVEA_LAUNCH(bias_backward_column_kernel, grid_1d(channels, kBiasBlock), kBiasBlock, 0, ex.stream, dy, db,
                 inner == 0 ? int64_t(0) : outer, channels);
  } else {
    FOVEA_CHECK(channels <= 0x7fffffff, "bias_backward: ", channels, " channels exceed the grid limit");
    FOVEA_LAUNCH(bias_backward_channel_kernel, unsigned(channels), kBiasBlock, 0, ex.stream, dy, db, outer, channels,
                 inner);
  }
}

void conv2d_backward_bias(const Exec& ex, const Conv2dParams& p, const float* dy, float* db) {
  p.validate("conv2d_backward_bias");
  check_ptr("conv2d_backward_bias", "dy", dy), check_ptr("conv2d_backward_bias", "db", db);
  bias_backward(ex, dy, db, p.N, p.K, p.P() * p.Q());
}

// y[batch, out] = x[batch, in] W[out, in]^T: GEMM NT, M = batch, N = out, K = in; then the bias.
void linear_forward(const Exec& ex, const LinearParams& p, const float* x, const float* w, const float* b, float* y) {
  const char* op = "linear_forward";
  p.validate(op);
  check_ptr(op, "x", x), check_ptr(op, "w", w), check_ptr(op, "y", y);  // b may be null: no bias
  sgemm_tiled(ex, sgemm_params(Trans::N, Trans::T, p.N, p.out_features, p.in_features), x, w, y);
  if (b) bias_add(ex, y, b, p.N, p.out_features, 1);
}

// dx[batch, in] = dy[batch, out] W[out, in]: GEMM NN, M = batch, N = in, K = out.
void linear_backward_data(const Exec& ex, const LinearParams& p, const float* dy, const float* w, float* dx) {
  const char* op = "linear_backward_data";
  p.validate(op);
  check_ptr(op, "dy", dy), check_ptr(op, "w", w), check_ptr(op, "dx", dx);
  sgemm_tiled(ex, sgemm_params(Trans::N, Trans::N, p.N, p.in_features, p.out_features), dy, w, dx);
}

// dW[out, in] = dy[batch, out]^T x[batch, in]: GEMM TN, M = out, N = in, K = batch.
void linear_backward_weight(const Exec& ex, const LinearParams& p, const float* x, const float* dy, float* dw) {
  const char* op = "linear_backward_weight";
  p.validate(op);
  check_ptr(op, "x", x), check_ptr(op, "dy", dy), check_ptr(op, "dw", dw);
  sgemm_tiled(ex, sgemm_params(Trans::T, Trans::N, p.out_features, p.in_features, p.N), dy, x, dw);
}

void linear_backward_bias(const Exec& ex, const LinearParams& p, const float* dy, float* db) {
  const char* op = "linear_backward_bias";
  p.validate(op);
  check_ptr(op, "dy", dy), check_ptr(op, "db", db);
  bias_backward(ex, dy, db, p.N, p.out_features, 1);
}

const bool registered = ops::conv2d_backward_bias_stub.define(kThisSlot, conv2d_backward_bias) &&
                        ops::linear_forward_stub.define(kThisSlot, linear_forward) &&
                        ops::linear_backward_data_stub.define(kThisSlot, linear_backward_data) &&
                        ops::linear_backward_weight_stub.define(kThisSlot, linear_backward_weight) &&
                        ops::linear_backward_bias_stub.define(kThisSlot, linear_backward_bias) &&
                        ops::bias_add_stub.define(kThisSlot, bias_add) &&
                        ops::bias_backward_stub.define(kThisSlot, bias_backward);

}  // namespace fovea::FOVEA_KERNEL_NS
