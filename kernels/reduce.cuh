// Device helpers shared by the non-GEMM kernels: deterministic warp/block reductions, Welford merging,
// grid sizing and alignment tests for the vectorised paths. Included by kernels/*.cu after common.cuh.
//
// Determinism: every reduction here combines values in an order fixed by the thread layout, never by
// timing, and uses no atomics, so a kernel gives bitwise-identical results run to run and under every
// emulator schedule order. The xor butterfly leaves the same bits in every lane because each step adds
// a + b in one lane and b + a in its partner, and float addition is commutative.
#pragma once
#include <cmath>
#include <cstdint>

#include "core/memory.h"
#include "kernels/common.cuh"

namespace fovea::FOVEA_KERNEL_NS {

constexpr unsigned kFullWarpMask = 0xffffffffu;
constexpr int kWarpSize = 32;

// Blocks for a grid-stride loop over `items` work items: one item per thread up to `max_blocks`
// blocks (8 x 256-thread blocks per SM on a 132-SM H100 keeps ~2 MB of loads in flight; more blocks
// only add scheduling and, on the emulator, launch cost).
inline unsigned grid_stride_blocks(int64_t items, int block, int64_t max_blocks = 1056) {
  int64_t g = (items + block - 1) / block;
  if (g > max_blocks) g = max_blocks;
  return unsigned(g < 1 ? 1 : g);
}

FOVEA_HD_INLINE bool aligned16(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) & 15u) == 0;
}

// Scratch for a launcher: `count` values of T from the caller's workspace, which must live on the device this
// build of the kernels runs on (its memory is what the kernels read).
template <typename T>
T* workspace_array(const Exec& ex, int64_t count, const char* op) {
#if defined(__CUDACC__)
  constexpr DeviceType kKernelDevice = DeviceType::cuda;
#else
  constexpr DeviceType kKernelDevice = DeviceType::emu;
#endif
  FOVEA_CHECK(ex.workspace, op, ": needs scratch memory but the call has no workspace (Exec::workspace)");
  FOVEA_CHECK(ex.workspace->device().type == kKernelDevice, op, ": the workspace is on ", ex.workspace->device().str(),
              ", but this kernel runs on ", Device(kKernelDevice).str());
  const size_t bytes = size_t(count) * sizeof(T);
  FOVEA_CHECK(bytes <= ex.workspace->limit(), op, ": needs ", bytes, " bytes of scratch, but the workspace on ",
              ex.workspace->device().str(), " holds at most ", ex.workspace->limit());
  return static_cast<T*>(ex.workspace->get(bytes));
}

// All 32 lanes must call these (full mask); every lane gets the result.
template <typename T>
__device__ inline T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFullWarpMask, v, o);
  return v;
}
__device__ inline float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) {
    const float other = __shfl_xor_sync(kFullWarpMask, v, o);
    v = other > v ? other : v;
  }
  return v;
}

// Sum over a 1-D block whose size is a multiple of 32; every thread gets the same bits. `smem` holds
// at least 32 values. Every warp reduces the per-warp partials in the same order, so no broadcast
// barrier is needed; the leading barrier lets a kernel call this repeatedly with the same `smem`.
template <typename T>
__device__ inline T block_sum(T v, T* smem) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize, warps = blockDim.x / kWarpSize;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  return warp_sum(lane < warps ? smem[lane] : T(0));
}
__device__ inline float block_max(float v, float* smem) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize, warps = blockDim.x / kWarpSize;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  return warp_max(lane < warps ? smem[lane] : -INFINITY);
}

// Running maximum and sum of exp(x - max), merged exactly as the online-softmax recurrence.
struct MaxSum {
  float m, s;
};
__device__ inline MaxSum max_sum_merge(MaxSum a, MaxSum b) {
  if (a.m == -INFINITY) return b;
  if (b.m == -INFINITY) return a;
  if (a.m >= b.m) return {a.m, a.s + b.s * expf(b.m - a.m)};
  return {b.m, b.s + a.s * expf(a.m - b.m)};
}
// Merging (a, b) and (b, a) is bitwise the same (the larger maximum always leads, ties keep a.s + b.s),
// so the xor butterfly stays deterministic and lane-uniform.
__device__ inline MaxSum warp_max_sum(MaxSum v) {
  for (int o = 16; o > 0; o >>= 1) {
    MaxSum other{__shfl_xor_sync(kFullWarpMask, v.m, o), __shfl_xor_sync(kFullWarpMask, v.s, o)};
    v = max_sum_merge(v, other);
  }
  return v;
}
__device__ inline MaxSum block_max_sum(MaxSum v, MaxSum* smem) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize, warps = blockDim.x / kWarpSize;
  v = warp_max_sum(v);
  __syncthreads();
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  return warp_max_sum(lane < warps ? smem[lane] : MaxSum{-INFINITY, 0.0f});
}

// Welford state (count, mean, sum of squared deviations): a thread accumulates its (few) values in float with
// welford_add; states are merged (Chan et al.) in double, so that the block's mean and variance carry no more
// than a rounding of float each, whatever the tree. The merge is not symmetric in its bits, so reductions use
// a fixed tree (shfl_down, lane 0 holds the result).
struct Welford {
  float n, mean, m2;
};
struct WelfordD {
  double n, mean, m2;
};
__device__ inline void welford_add(Welford& w, float x) {
  w.n += 1.0f;
  const float d = x - w.mean;
  w.mean += d / w.n;
  w.m2 += d * (x - w.mean);
}
__device__ inline WelfordD welford_merge(WelfordD a, WelfordD b) {
  if (b.n == 0.0) return a;
  if (a.n == 0.0) return b;
  const double n = a.n + b.n, d = b.mean - a.mean, fb = b.n / n;
  return {n, a.mean + d * fb, a.m2 + b.m2 + d * d * a.n * fb};
}
// Result valid in lane 0 only.
__device__ inline WelfordD warp_welford_to_lane0(WelfordD w) {
  for (int o = 16; o > 0; o >>= 1) {
    WelfordD other{__shfl_down_sync(kFullWarpMask, w.n, o), __shfl_down_sync(kFullWarpMask, w.mean, o),
                   __shfl_down_sync(kFullWarpMask, w.m2, o)};
    w = welford_merge(w, other);
  }
  return w;
}
// Result valid in thread 0 only. `smem` holds at least 32 states.
__device__ inline WelfordD block_welford_to_thread0(Welford t, WelfordD* smem) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize, warps = blockDim.x / kWarpSize;
  WelfordD w = warp_welford_to_lane0(WelfordD{t.n, t.mean, t.m2});
  __syncthreads();
  if (lane == 0) smem[warp] = w;
  __syncthreads();
  if (warp == 0) w = warp_welford_to_lane0(lane < warps ? smem[lane] : WelfordD{0.0, 0.0, 0.0});
  return w;
}

}  // namespace fovea::FOVEA_KERNEL_NS
