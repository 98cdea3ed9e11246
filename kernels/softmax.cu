// Row softmax, log-softmax and fused softmax + cross-entropy; the emu/cuda slots of
// layers/ops/softmax.h (semantics there).
//
// Per element: forward 4 bytes read + 4 written, one expf (~20 FLOPs with the max/sum); backward 8 read +
// 4 written (the row sum accumulates in double: 1-2 FP64 ops per element, far below the H100's FP64 rate);
// cross-entropy forward 4 read (+ 12 bytes per row), backward 4 read + 4 written with one expf. All are HBM-bound on an
// H100 (~5 FLOP/byte, well under the ~20 FLOP/byte fp32 ridge); the design target is >= 85% of 3.35 TB/s when N*C*4
// bytes exceeds the 50 MB L2:
//   warp_per_row (C <= 1024): a warp owns a row, each lane keeps ceil(C/32) (rounded up to a power of two)
//     values in registers, so x is read from HBM exactly once; coalesced lane-strided loads; 4 rows per
//     128-thread block, grid-stride over rows. Reductions are xor-butterfly shuffles (lane-uniform bits).
//   block_per_row (any C): a 256-thread block owns a row: one pass of online max/sum (one expf per
//     element), a fixed-order block merge, then a second pass writing y (the re-read usually hits L2: a
//     row of 64K classes is 256 KB). Few rows with huge C leave SMs idle: acceptable for classifier heads.
// No atomics anywhere: results are bitwise reproducible for every schedule.

#include <type_traits>

#include "kernels/common.cuh"
#include "kernels/reduce.cuh"
#include "layers/ops/softmax.h"

namespace fovea::FOVEA_KERNEL_NS {
namespace {

constexpr int kRowsPerWarpBlock = 4;
constexpr int kWarpRowBlock = kRowsPerWarpBlock * kWarpSize;
constexpr int kBlockRowBlock = 256;

template <int K>
__device__ inline void load_lane_slice(const float* row, int64_t C, int lane, float (&v)[K], float fill) {
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int64_t c = lane + int64_t(k) * kWarpSize;
    v[k] = c < C ? row[c] : fill;
  }
}

template <int K>
__device__ inline MaxSum warp_row_max_sum(const float (&v)[K], int64_t C, int lane) {
  float m = -INFINITY;
#pragma unroll
  for (int k = 0; k < K; ++k) m = v[k] > m ? v[k] : m;
  m = warp_max(m);
  float s = 0.0f;
#pragma unroll
  for (int k = 0; k < K; ++k)
    if (lane + int64_t(k) * kWarpSize < C) s += expf(v[k] - m);
  return {m, warp_sum(s)};
}

// One thread's online max / sum of exp over its strided elements of a row.
__device__ inline MaxSum thread_row_max_sum(const float* row, int64_t C) {
  MaxSum t{-INFINITY, 0.0f};
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float v = row[c];
    if (v > t.m) {
      t.s = t.s * expf(t.m - v) + 1.0f;
      t.m = v;
    } else {
      t.s += expf(v - t.m);
    }
  }
  return t;
}

// ------------------------------------------------------------------ softmax / log-softmax forward

template <int K, bool Log>
__global__ void softmax_forward_warp_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t N, int64_t C) {
  const int lane = threadIdx.x % kWarpSize;
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x / kWarpSize);
  for (int64_t r = int64_t(blockIdx.x) * (blockDim.x / kWarpSize) + threadIdx.x / kWarpSize; r < N; r += warps) {
    float v[K];
    load_lane_slice(x + r * C, C, lane, v, -INFINITY);
    const MaxSum ms = warp_row_max_sum(v, C, lane);
    const float log_s = logf(ms.s);
    float* out = y + r * C;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int64_t c = lane + int64_t(k) * kWarpSize;
      if (c < C) out[c] = Log ? (v[k] - ms.m) - log_s : expf(v[k] - ms.m) / ms.s;
    }
  }
}

template <bool Log>
__global__ void softmax_forward_block_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t N, int64_t C) {
  __shared__ MaxSum smem[kWarpSize];
  for (int64_t r = blockIdx.x; r < N; r += gridDim.x) {
    const float* row = x + r * C;
    const MaxSum ms = block_max_sum(thread_row_max_sum(row, C), smem);
    const float log_s = logf(ms.s);
    float* out = y + r * C;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
      out[c] = Log ? (row[c] - ms.m) - log_s : expf(row[c] - ms.m) / ms.s;
  }
}

// ------------------------------------------------------------------ softmax / log-softmax backward

// softmax: dx = y (dy - sum(dy y)); log-softmax: dx = dy - exp(y) sum(dy).
template <int K, bool Log>
__global__ void softmax_backward_warp_kernel(const float* __restrict__ y, const float* __restrict__ dy,
                                             float* __restrict__ dx, int64_t N, int64_t C) {
  const int lane = threadIdx.x % kWarpSize;
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x / kWarpSize);
  for (int64_t r = int64_t(blockIdx.x) * (blockDim.x / kWarpSize) + threadIdx.x / kWarpSize; r < N; r += warps) {
    float yv[K], gv[K];
    load_lane_slice(y + r * C, C, lane, yv, 0.0f);
    load_lane_slice(dy + r * C, C, lane, gv, 0.0f);
    double sd = 0.0;  // double: dy - sum cancels, and the reference sums in double
#pragma unroll
    for (int k = 0; k < K; ++k) sd += Log ? double(gv[k]) : double(gv[k]) * double(yv[k]);  // padding holds zeros
    const float s = float(warp_sum(sd));
    float* out = dx + r * C;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int64_t c = lane + int64_t(k) * kWarpSize;
      if (c < C) out[c] = Log ? gv[k] - expf(yv[k]) * s : yv[k] * (gv[k] - s);
    }
  }
}

template <bool Log>
__global__ void softmax_backward_block_kernel(const float* __restrict__ y, const float* __restrict__ dy,
                                              float* __restrict__ dx, int64_t N, int64_t C) {
  __shared__ double smem[kWarpSize];
  for (int64_t r = blockIdx.x; r < N; r += gridDim.x) {
    const float *yr = y + r * C, *gr = dy + r * C;
    double sd = 0.0;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) sd += Log ? double(gr[c]) : double(gr[c]) * double(yr[c]);
    const float s = float(block_sum(sd, smem));
    float* out = dx + r * C;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) out[c] = Log ? gr[c] - expf(yr[c]) * s : yr[c] * (gr[c] - s);
  }
}

// ------------------------------------------------------------------ cross-entropy

struct CeConsts {
  float one_minus_eps, eps, off, scale;  // off = eps / C; scale = dloss / N (backward)
  bool smoothing;
};

// The reference's formula in float: lse = m + log(s); loss = (1 - eps)(lse - x[label]) + eps (lse - mean(x)).
__device__ inline float ce_row_loss(float m, float s, float sum_x, float x_label, int64_t C, const CeConsts& k) {
  const float lse = m + logf(s);
  float loss = k.one_minus_eps * (lse - x_label);
  if (k.smoothing) loss += k.eps * (lse - sum_x / float(C));
  return loss;
}
__device__ inline bool label_ok(int64_t label, int64_t C) {
  return label >= 0 && label < C;
}

template <int K>
__global__ void ce_forward_warp_kernel(const float* __restrict__ logits, const int64_t* __restrict__ labels,
                                       float* __restrict__ row_loss, int64_t N, int64_t C, CeConsts k) {
  const int lane = threadIdx.x % kWarpSize;
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x / kWarpSize);
  for (int64_t r = int64_t(blockIdx.x) * (blockDim.x / kWarpSize) + threadIdx.x / kWarpSize; r < N; r += warps) {
    const float* row = logits + r * C;
    float v[K];
    load_lane_slice(row, C, lane, v, -INFINITY);
    const MaxSum ms = warp_row_max_sum(v, C, lane);
    float sx = 0.0f;
    if (k.smoothing) {
#pragma unroll
      for (int k2 = 0; k2 < K; ++k2)
        if (lane + int64_t(k2) * kWarpSize < C) sx += v[k2];
      sx = warp_sum(sx);
    }
    if (lane == 0) {
      const int64_t label = labels[r];
      row_loss[r] = label_ok(label, C) ? ce_row_loss(ms.m, ms.s, sx, row[label], C, k) : NAN;
    }
  }
}

__global__ void ce_forward_block_kernel(const float* __restrict__ logits, const int64_t* __restrict__ labels,
                                        float* __restrict__ row_loss, int64_t N, int64_t C, CeConsts k) {
  __shared__ MaxSum smem[kWarpSize];
  __shared__ float smem_sum[kWarpSize];
  for (int64_t r = blockIdx.x; r < N; r += gridDim.x) {
    const float* row = logits + r * C;
    const MaxSum ms = block_max_sum(thread_row_max_sum(row, C), smem);
    float sx = 0.0f;
    if (k.smoothing) {
      for (int64_t c = threadIdx.x; c < C; c += blockDim.x) sx += row[c];
      sx = block_sum(sx, smem_sum);
    }
    if (threadIdx.x == 0) {
      const int64_t label = labels[r];
      row_loss[r] = label_ok(label, C) ? ce_row_loss(ms.m, ms.s, sx, row[label], C, k) : NAN;
    }
  }
}

// loss = sum(row_loss) / N: one block, double accumulation, fixed order.
__global__ void ce_mean_kernel(const float* __restrict__ row_loss, int64_t N, float* __restrict__ loss) {
  __shared__ double smem[kWarpSize];
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x) s += double(row_loss[i]);
  s = block_sum(s, smem);
  if (threadIdx.x == 0) *loss = float(s / double(N));
}

template <int K>
__global__ void ce_backward_warp_kernel(const float* __restrict__ logits, const int64_t* __restrict__ labels,
                                        float* __restrict__ dlogits, int64_t N, int64_t C, CeConsts k) {
  const int lane = threadIdx.x % kWarpSize;
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x / kWarpSize);
  for (int64_t r = int64_t(blockIdx.x) * (blockDim.x / kWarpSize) + threadIdx.x / kWarpSize; r < N; r += warps) {
    float v[K];
    load_lane_slice(logits + r * C, C, lane, v, -INFINITY);
    const MaxSum ms = warp_row_max_sum(v, C, lane);
    const int64_t label = labels[r];
    const float bad = label_ok(label, C) ? 0.0f : NAN;
    float* out = dlogits + r * C;
#pragma unroll
    for (int k2 = 0; k2 < K; ++k2) {
      const int64_t c = lane + int64_t(k2) * kWarpSize;
      if (c < C) {
        const float q = c == label ? k.off + k.one_minus_eps : k.off;
        out[c] = (expf(v[k2] - ms.m) / ms.s - q) * k.scale + bad;
      }
    }
  }
}

__global__ void ce_backward_block_kernel(const float* __restrict__ logits, const int64_t* __restrict__ labels,
                                         float* __restrict__ dlogits, int64_t N, int64_t C, CeConsts k) {
  __shared__ MaxSum smem[kWarpSize];
  for (int64_t r = blockIdx.x; r < N; r += gridDim.x) {
    const float* row = logits + r * C;
    const MaxSum ms = block_max_sum(thread_row_max_sum(row, C), smem);
    const int64_t label = labels[r];
    const float bad = label_ok(label, C) ? 0.0f : NAN;
    float* out = dlogits + r * C;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      const float q = c == label ? k.off + k.one_minus_eps : k.off;
      out[c] = (expf(row[c] - ms.m) / ms.s - q) * k.scale + bad;
    }
  }
}

// ------------------------------------------------------------------ host side

template <int K>
using IntC = std::integral_constant<int, K>;

// Calls f(IntC<K>) with K = values per lane for a warp-per-row kernel on rows of C <= 1024.
template <class F>
void with_lane_values(int64_t C, F&& f) {
  if (C <= 32)
    f(IntC<1>{});
  else if (C <= 64)
    f(IntC<2>{});
  else if (C <= 128)
    f(IntC<4>{});
  else if (C <= 256)
    f(IntC<8>{});
  else if (C <= 512)
    f(IntC<16>{});
  else
    f(IntC<32>{});
}

bool use_warp_per_row(const char* op, int64_t C, RowAlgo algo) {
  FOVEA_CHECK(algo != RowAlgo::warp_per_row || C <= kWarpPerRowMaxC, op,
              ": algo warp_per_row takes C <= ", kWarpPerRowMaxC, ", got C=", C);
  return algo == RowAlgo::warp_per_row || (algo == RowAlgo::automatic && C <= kWarpPerRowMaxC);
}

void check_rows(const char* op, int64_t N, int64_t C) {
  FOVEA_CHECK(N > 0, op, ": argument 'N' must be > 0, got ", N);
  FOVEA_CHECK(C > 0, op, ": argument 'C' must be > 0, got ", C);
}

dim3 warp_row_grid(int64_t N) {
  return dim3(grid_stride_blocks(N, kRowsPerWarpBlock, 8192));
}
dim3 block_row_grid(int64_t N) {
  return dim3(unsigned(N < 8192 ? N : 8192));
}

template <bool Log>
void softmax_fwd(const Exec& ex, const char* op, int64_t N, int64_t C, const float* x, float* y, RowAlgo algo) {
  check_rows(op, N, C), check_ptr(op, "x", x), check_ptr(op, "y", y);
  if (use_warp_per_row(op, C, algo))
    with_lane_values(C, [&](auto kc) {
      launch<softmax_forward_warp_kernel<decltype(kc)::value, Log>>(op, warp_row_grid(N), dim3(kWarpRowBlock), 0,
                                                                    ex.stream, x, y, N, C);
    });
  else
    launch<softmax_forward_block_kernel<Log>>(op, block_row_grid(N), dim3(kBlockRowBlock), 0, ex.stream, x, y, N, C);
}

template <bool Log>
void softmax_bwd(const Exec& ex, const char* op, int64_t N, int64_t C, const float* y, const float* dy, float* dx,
                 RowAlgo algo) {
  check_rows(op, N, C), check_ptr(op, "y", y), check_ptr(op, "dy", dy), check_ptr(op, "dx", dx);
  if (use_warp_per_row(op, C, algo))
    with_lane_values(C, [&](auto kc) {
      launch<softmax_backward_warp_kernel<decltype(kc)::value, Log>>(op, warp_row_grid(N), dim3(kWarpRowBlock), 0,
                                                                     ex.stream, y, dy, dx, N, C);
    });
  else
    launch<softmax_backward_block_kernel<Log>>(op, block_row_grid(N), dim3(kBlockRowBlock), 0, ex.stream, y, dy, dx, N,
                                               C);
}

CeConsts ce_consts(const CrossEntropyParams& p, float dloss) {
  const double eps = p.label_smoothing;
  return {float(1.0 - eps), float(eps), float(eps / double(p.C)), float(double(dloss) / double(p.N)), eps > 0.0};
}

}  // namespace

void softmax_forward(const Exec& ex, RowAlgo algo, int64_t N, int64_t C, const float* x, float* y) {
  softmax_fwd<false>(ex, "softmax_forward", N, C, x, y, algo);
}
void log_softmax_forward(const Exec& ex, RowAlgo algo, int64_t N, int64_t C, const float* x, float* y) {
  softmax_fwd<true>(ex, "log_softmax_forward", N, C, x, y, algo);
}
void softmax_backward(const Exec& ex, RowAlgo algo, int64_t N, int64_t C, const float* y, const float* dy, float* dx) {
  softmax_bwd<false>(ex, "softmax_backward", N, C, y, dy, dx, algo);
}
void log_softmax_backward(const Exec& ex, RowAlgo algo, int64_t N, int64_t C, const float* y, const float* dy,
                          float* dx) {
  softmax_bwd<true>(ex, "log_softmax_backward", N, C, y, dy, dx, algo);
}

void cross_entropy_forward(const Exec& ex, RowAlgo algo, const CrossEntropyParams& p, const float* logits,
                           const int64_t* labels, float* row_loss, float* loss) {
  const char* op = "cross_entropy_forward";
  p.validate(op);
  check_ptr(op, "logits", logits), check_ptr(op, "labels", labels), check_ptr(op, "row_loss", row_loss);
  const CeConsts k = ce_consts(p, 1.0f);
  if (use_warp_per_row(op, p.C, algo))
    with_lane_values(p.C, [&](auto kc) {
      launch<ce_forward_warp_kernel<decltype(kc)::value>>(op, warp_row_grid(p.N), dim3(kWarpRowBlock), 0, ex.stream,
                                                          logits, labels, row_loss, p.N, p.C, k);
    });
  else
    launch<ce_forward_block_kernel>(op, block_row_grid(p.N), dim3(kBlockRowBlock), 0, ex.stream, logits, labels,
                                    row_loss, p.N, p.C, k);
  if (loss)
    launch<ce_mean_kernel>("cross_entropy_forward(mean)", dim3(1), dim3(256), 0, ex.stream, row_loss, p.N, loss);
}

void cross_entropy_backward(const Exec& ex, RowAlgo algo, const CrossEntropyParams& p, const float* logits,
                            const int64_t* labels, float dloss, float* dlogits) {
  const char* op = "cross_entropy_backward";
  p.validate(op);
  check_ptr(op, "logits", logits), check_ptr(op, "labels", labels), check_ptr(op, "dlogits", dlogits);
  const CeConsts k = ce_consts(p, dloss);
  if (use_warp_per_row(op, p.C, algo))
    with_lane_values(p.C, [&](auto kc) {
      launch<ce_backward_warp_kernel<decltype(kc)::value>>(op, warp_row_grid(p.N), dim3(kWarpRowBlock), 0, ex.stream,
                                                           logits, labels, dlogits, p.N, p.C, k);
    });
  else
    launch<ce_backward_block_kernel>(op, block_row_grid(p.N), dim3(kBlockRowBlock), 0, ex.stream, logits, labels,
                                     dlogits, p.N, p.C, k);
}

const bool registered = ops::softmax_forward_stub.define(kThisSlot, softmax_forward) &&
                        ops::softmax_backward_stub.define(kThisSlot, softmax_backward) &&
                        ops::log_softmax_forward_stub.define(kThisSlot, log_softmax_forward) &&
                        ops::log_softmax_backward_stub.define(kThisSlot, log_softmax_backward) &&
                        ops::cross_entropy_forward_stub.define(kThisSlot, cross_entropy_forward) &&
                        ops::cross_entropy_backward_stub.define(kThisSlot, cross_entropy_backward);

}  // namespace fovea::FOVEA_KERNEL_NS
