// Mean squared error; the emu/cuda slots of layers/ops/mse.h (semantics there).
#include "layers/ops/mse.h"

#include "kernels/common.cuh"
#include "kernels/elementwise.cuh"
#include "kernels/reduce.cuh"

namespace fovea::FOVEA_KERNEL_NS {
namespace {

constexpr int kMseBlock = 256;
constexpr int64_t kMaxPartials = 1024;

// Pass 1: block b sums (x - t)^2 over its grid-stride share. Per element 8 bytes read, 3 FLOPs: HBM-bound,
// >= 85% of 3.35 TB/s with 16-byte loads (scalar fallback when unaligned) and <= 1024 blocks.
template <bool Vec>
__global__ void mse_partial_kernel(const float* __restrict__ x, const float* __restrict__ t,
                                   float* __restrict__ partials, int64_t n) {
  __shared__ float smem[kWarpSize];
  const int64_t stride = int64_t(gridDim.x) * blockDim.x, t0 = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  float s = 0.0f;
  if (Vec) {
    const int64_t n4 = n >> 2;
    for (int64_t i = t0; i < n4; i += stride) {
      const float4 a = reinterpret_cast<const float4*>(x)[i], b = reinterpret_cast<const float4*>(t)[i];
      const float dx = a.x - b.x, dy = a.y - b.y, dz = a.z - b.z, dw = a.w - b.w;
      s += (dx * dx + dy * dy) + (dz * dz + dw * dw);
    }
    const int64_t i = (n4 << 2) + t0;
    if (i < n) s += (x[i] - t[i]) * (x[i] - t[i]);
  } else {
    for (int64_t i = t0; i < n; i += stride) s += (x[i] - t[i]) * (x[i] - t[i]);
  }
  s = block_sum(s, smem);
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

// Pass 2: one block adds the partials in a fixed order, in double. A few KB: launch-latency bound.
__global__ void mse_finish_kernel(const float* __restrict__ partials, int64_t count, int64_t n,
                                  float* __restrict__ loss) {
  __shared__ double smem[kWarpSize];
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) s += double(partials[i]);
  s = block_sum(s, smem);
  if (threadIdx.x == 0) *loss = float(s / double(n));
}

struct MseBackwardOp {
  float scale;
  FOVEA_HD float operator()(float x, float t) const { return (x - t) * scale; }
};

}  // namespace

void mse_forward(const Exec& ex, int64_t n, const float* x, const float* target, float* loss) {
  const char* op = "mse_forward";
  FOVEA_CHECK(n > 0, op, ": argument 'n' must be > 0, got ", n);
  check_ptr(op, "x", x), check_ptr(op, "target", target), check_ptr(op, "loss", loss);
  const bool vec = aligned16(x) && aligned16(target);
  // The grid depends on n only, so the summation order (and the bits) does not change between runs.
  const unsigned blocks = grid_stride_blocks(vec ? n / 4 + 1 : n, kMseBlock, kMaxPartials);
  float* partials = workspace_array<float>(ex, blocks, op);
  if (vec)
    launch<mse_partial_kernel<true>>(op, dim3(blocks), dim3(kMseBlock), 0, ex.stream, x, target, partials, n);
  else
    launch<mse_partial_kernel<false>>(op, dim3(blocks), dim3(kMseBlock), 0, ex.stream, x, target, partials, n);
  launch<mse_finish_kernel>(op, dim3(1), dim3(kMseBlock), 0, ex.stream, partials, int64_t(blocks), n, loss);
}

// dx = (x - t) * (2 dloss / n): 8 bytes read + 4 written per element, HBM-bound (elementwise.cuh).
void mse_backward(const Exec& ex, int64_t n, const float* x, const float* target, float dloss, float* dx) {
  const char* op = "mse_backward";
  FOVEA_CHECK(n > 0, op, ": argument 'n' must be > 0, got ", n);
  launch_map2(ex, op, x, target, dx, n, MseBackwardOp{float(2.0 * double(dloss) / double(n))}, {"x", "target", "dx"});
}

const bool registered =
    ops::mse_forward_stub.define(kThisSlot, mse_forward) && ops::mse_backward_stub.define(kThisSlot, mse_backward);

}  // namespace fovea::FOVEA_KERNEL_NS
