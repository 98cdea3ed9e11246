// Local response normalisation; the emu/cuda slots of layers/ops/lrn.h (semantics there).
//
// One thread per element, threads of a warp on consecutive pixels of one channel (coalesced). The window sum
// is computed directly (size loads, fixed order: no sliding-sum cancellation). Per element: forward `size`
// loads + 1 store, ~2*size + 20 FLOPs (one powf); backward pass 1: 2 loads + 1 store + size loads and one
// powf; pass 2: 2*size + 2 loads + 1 store and one powf. Each x is re-read by `size` neighbouring channels:
// those re-reads are served by L1/L2 (a block's channel window is a few KB), so the design limit is HBM
// traffic of ~8 bytes per element forward (~28 backward) with L2 bandwidth (~size x that) as the
// secondary limit; on an H100 a size-5 LRN should run at >= 70% of 3.35 TB/s.
#include "layers/ops/lrn.h"

#include "kernels/common.cuh"
#include "kernels/reduce.cuh"

namespace fovea::FOVEA_KERNEL_NS {
namespace {

constexpr int kLrnBlock = 256;

// Index math in I: int32_t whenever the tensor has fewer than 2^30 elements (64-bit division is ~4x slower).
template <typename I>
struct LrnConsts {
  I C, HW, before, after;                    // window of channel c: [c - before, c + after]
  float k, alpha_over_size, neg_beta, coef;  // coef = 2 alpha beta / size
};

// s = k + alpha/size * sum of squares over the channel window of element (n, c, hw); `col` points at x[n, 0, hw].
template <typename I>
__device__ inline float lrn_scale(const float* col, I c, const LrnConsts<I>& k) {
  const I c0 = c - k.before > 0 ? c - k.before : 0, c1 = c + k.after < k.C - 1 ? c + k.after : k.C - 1;
  float s = 0.0f;
  for (I j = c0; j <= c1; ++j) {
    const float v = col[j * k.HW];
    s += v * v;
  }
  return k.k + k.alpha_over_size * s;
}

template <typename I>
__device__ inline void split(I i, const LrnConsts<I>& k, I& n, I& c, I& hw) {
  const I t = i / k.HW;
  hw = i - t * k.HW, c = t % k.C, n = t / k.C;
}

template <typename I>
__global__ void lrn_forward_kernel(const float* __restrict__ x, float* __restrict__ y, I total, LrnConsts<I> k) {
  const I stride = I(gridDim.x) * I(blockDim.x);
  for (I i = I(blockIdx.x) * I(blockDim.x) + I(threadIdx.x); i < total; i += stride) {
    I n, c, hw;
    split(i, k, n, c, hw);
    const float s = lrn_scale(x + n * k.C * k.HW + hw, c, k);
    y[i] = x[i] * powf(s, k.neg_beta);
  }
}

// Pass 1: t = dy * x * s^(-beta-1).
template <typename I>
__global__ void lrn_backward_t_kernel(const float* __restrict__ x, const float* __restrict__ dy, float* __restrict__ t,
                                      I total, LrnConsts<I> k) {
  const I stride = I(gridDim.x) * I(blockDim.x);
  for (I i = I(blockIdx.x) * I(blockDim.x) + I(threadIdx.x); i < total; i += stride) {
    I n, c, hw;
    split(i, k, n, c, hw);
    const float s = lrn_scale(x + n * k.C * k.HW + hw, c, k);
    t[i] = dy[i] * x[i] * (powf(s, k.neg_beta) / s);
  }
}

// Pass 2: dx = dy s^-beta - coef x sum_{j in [c - after, c + before]} t[j] (the channels whose window holds c).
template <typename I>
__global__ void lrn_backward_dx_kernel(const float* __restrict__ x, const float* __restrict__ dy,
                                       const float* __restrict__ t, float* __restrict__ dx, I total, LrnConsts<I> k) {
  const I stride = I(gridDim.x) * I(blockDim.x);
  for (I i = I(blockIdx.x) * I(blockDim.x) + I(threadIdx.x); i < total; i += stride) {
    I n, c, hw;
    split(i, k, n, c, hw);
    const I base = n * k.C * k.HW + hw;
    const float s = lrn_scale(x + base, c, k);
    const I j0 = c - k.after > 0 ? c - k.after : 0, j1 = c + k.before < k.C - 1 ? c + k.before : k.C - 1;
    float acc = 0.0f;
    for (I j = j0; j <= j1; ++j) acc += t[base + j * k.HW];
    dx[i] = dy[i] * powf(s, k.neg_beta) - k.coef * x[i] * acc;
  }
}

constexpr int64_t kIndex32Limit = int64_t(1) << 30;  // with a grid stride <= 2^20, int32 never overflows

template <typename I>
LrnConsts<I> lrn_consts(const LrnParams& p) {
  return {I(p.C),         I(p.H * p.W),
          I(p.size / 2),  I((p.size - 1) / 2),
          float(p.k),     float(p.alpha / double(p.size)),
          float(-p.beta), float(2.0 * p.alpha * p.beta / double(p.size))};
}

}  // namespace

void lrn_forward(const Exec& ex, const LrnParams& p, const float* x, float* y) {
  const char* op = "lrn_forward";
  p.validate(op);
  check_ptr(op, "x", x), check_ptr(op, "y", y);
  const int64_t total = p.x_size();
  const dim3 grid(grid_stride_blocks(total, kLrnBlock, 4096));
  if (total < kIndex32Limit)
    launch<lrn_forward_kernel<int32_t>>(op, grid, dim3(kLrnBlock), 0, ex.stream, x, y, int32_t(total),
                                        lrn_consts<int32_t>(p));
  else
    launch<lrn_forward_kernel<int64_t>>(op, grid, dim3(kLrnBlock), 0, ex.stream, x, y, total, lrn_consts<int64_t>(p));
}

void lrn_backward(const Exec& ex, const LrnParams& p, const float* x, const float* dy, float* dx) {
  const char* op = "lrn_backward";
  p.validate(op);
  check_ptr(op, "x", x), check_ptr(op, "dy", dy), check_ptr(op, "dx", dx);
  const int64_t total = p.x_size();
  float* t = workspace_array<float>(ex, total, op);
  const dim3 grid(grid_stride_blocks(total, kLrnBlock, 4096));
  if (total < kIndex32Limit) {
    const LrnConsts<int32_t> k = lrn_consts<int32_t>(p);
    launch<lrn_backward_t_kernel<int32_t>>(op, grid, dim3(kLrnBlock), 0, ex.stream, x, dy, t, int32_t(total), k);
    launch<lrn_backward_dx_kernel<int32_t>>(op, grid, dim3(kLrnBlock), 0, ex.stream, x, dy, t, dx, int32_t(total), k);
  } else {
    const LrnConsts<int64_t> k = lrn_consts<int64_t>(p);
    launch<lrn_backward_t_kernel<int64_t>>(op, grid, dim3(kLrnBlock), 0, ex.stream, x, dy, t, total, k);
    launch<lrn_backward_dx_kernel<int64_t>>(op, grid, dim3(kLrnBlock), 0, ex.stream, x, dy, t, dx, total, k);
  }
}

const bool registered =
    ops::lrn_forward_stub.define(kThisSlot, lrn_forward) && ops::lrn_backward_stub.define(kThisSlot, lrn_backward);

}  // namespace fovea::FOVEA_KERNEL_NS
