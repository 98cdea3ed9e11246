// Batch normalisation; the emu/cuda slots of layers/ops/batchnorm.h (semantics there).
//
// Forward (training) = three launches: bn_stats (read x once: 4 bytes and ~10 FLOPs of Welford per element),
// bn_finalize (per channel, negligible), bn_apply (read x, write y: 8 bytes, one FMA per element). Backward =
// bn_grad_sums (read x and dy: 8 bytes, ~5 FP64 ops), bn_finalize, bn_grad_apply (read x and dy, write dx: 12
// bytes). All HBM-bound on an H100: the design target is >= 85% of 3.35 TB/s for activations larger than the
// 50 MB L2 (the apply kernels use 16-byte accesses when H*W % 4 == 0 and pointers are aligned; the reduction
// kernels use coalesced scalar loads with ~512 blocks in flight).

#include "kernels/common.cuh"
#include "kernels/reduce.cuh"
#include "layers/ops/batchnorm.h"

namespace fovea::FOVEA_KERNEL_NS {
namespace {

constexpr int kBnBlock = 256;

// Channel c's M = N*H*W values, flat index m = n*HW + hw, split into `chunks` contiguous chunks of chunk_len.
struct BnGeom {
  int64_t C, HW, M, chunks, chunk_len;
};

// A function of the shape only (never of the device), so the reduction tree and the bits are fixed.
BnGeom bn_geom(const BatchNormParams& p) {
  const int64_t M = p.N * p.H * p.W;
  int64_t chunks = (M + 4095) / 4096;          // at least 4096 values per block...
  const int64_t fill = (512 + p.C - 1) / p.C;  // ...and no more blocks than ~512 in all...
  chunks = chunks < fill ? chunks : fill;
  const int64_t exact = (M + (1 << 22) - 1) >> 22;  // ...but <= 2^22 values per chunk: float counts stay exact
  chunks = chunks > exact ? chunks : exact;
  chunks = chunks > 0 ? chunks : 1;
  return {p.C, p.H * p.W, M, chunks, (M + chunks - 1) / chunks};
}

// Calls f(value_index) for this thread's share of chunk `k` of channel `c` (x[(n*C + c)*HW + hw]).
template <class F>
__device__ inline void for_chunk(const BnGeom& g, int64_t c, int64_t k, F&& f) {
  const int64_t begin = k * g.chunk_len, end = begin + g.chunk_len < g.M ? begin + g.chunk_len : g.M;
  int64_t m = begin + threadIdx.x;
  if (m >= end) return;
  int64_t n = m / g.HW, hw = m - n * g.HW;  // advanced incrementally: one division per wrap, not per value
  for (; m < end; m += blockDim.x) {
    f((n * g.C + c) * g.HW + hw);
    hw += blockDim.x;
    if (hw >= g.HW) n += hw / g.HW, hw %= g.HW;
  }
}

// Block (c, k): Welford over chunk k of channel c -> partial[(c*chunks + k)*3 + {count, mean, m2}] (double).
__global__ void bn_stats_kernel(const float* __restrict__ x, BnGeom g, double* __restrict__ partial) {
  __shared__ WelfordD smem[kWarpSize];
  const int64_t c = blockIdx.x / g.chunks, k = blockIdx.x % g.chunks;
  Welford w{0.0f, 0.0f, 0.0f};
  for_chunk(g, c, k, [&](int64_t i) { welford_add(w, x[i]); });
  const WelfordD b = block_welford_to_thread0(w, smem);
  if (threadIdx.x == 0) {
    double* o = partial + int64_t(blockIdx.x) * 3;
    o[0] = b.n, o[1] = b.mean, o[2] = b.m2;
  }
}

// One thread per channel: merge the chunks in order (double), save the statistics, update the running ones,
// and leave y = x * coef[2c] + coef[2c+1] for bn_apply.
__global__ void bn_finalize_forward_kernel(const double* __restrict__ partial, BnGeom g,
                                           const float* __restrict__ gamma, const float* __restrict__ beta,
                                           float* running_mean, float* running_var, float* __restrict__ save_mean,
                                           float* __restrict__ save_invstd, float* __restrict__ coef, double eps,
                                           double momentum, bool training) {
  for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < g.C; c += int64_t(gridDim.x) * blockDim.x) {
    double mean, invstd;
    if (training) {
      double n = 0.0, m2 = 0.0;
      mean = 0.0;
      for (int64_t k = 0; k < g.chunks; ++k) {
        const double* w = partial + (c * g.chunks + k) * 3;
        const double nb = w[0];
        if (nb == 0.0) continue;
        const double d = w[1] - mean, nt = n + nb;
        mean += d * (nb / nt);
        m2 += w[2] + d * d * (n * nb / nt);
        n = nt;
      }
      const double var = m2 / double(g.M);
      invstd = 1.0 / sqrt(var + eps);
      if (running_mean) {
        running_mean[c] = float((1.0 - momentum) * double(running_mean[c]) + momentum * mean);
        running_var[c] =
            float((1.0 - momentum) * double(running_var[c]) + momentum * var * double(g.M) / double(g.M - 1));
      }
    } else {
      mean = running_mean[c];
      invstd = 1.0 / sqrt(double(running_var[c]) + eps);
    }
    if (save_mean) save_mean[c] = float(mean);
    if (save_invstd) save_invstd[c] = float(invstd);
    const double scale = (gamma ? double(gamma[c]) : 1.0) * invstd;
    coef[2 * c] = float(scale);
    coef[2 * c + 1] = float((beta ? double(beta[c]) : 0.0) - mean * scale);
  }
}

// y = x * a[c] + b[c]; 8 bytes per element. Vec: HW % 4 == 0, so a float4 never straddles two channels.
// I: int32_t index math whenever the tensor has fewer than 2^30 elements (64-bit division is ~4x slower).
template <typename I, bool Vec>
__global__ void bn_apply_kernel(const float* __restrict__ x, const float* __restrict__ coef, float* __restrict__ y,
                                I total, I HW, I C) {
  const I stride = I(gridDim.x) * I(blockDim.x), t0 = I(blockIdx.x) * I(blockDim.x) + I(threadIdx.x);
  if (Vec) {
    for (I i = t0; i < total / 4; i += stride) {
      const I c = (4 * i / HW) % C;
      const float a = coef[2 * c], b = coef[2 * c + 1];
      float4 v = reinterpret_cast<const float4*>(x)[i];
      v.x = v.x * a + b, v.y = v.y * a + b, v.z = v.z * a + b, v.w = v.w * a + b;
      reinterpret_cast<float4*>(y)[i] = v;
    }
  } else {
    for (I i = t0; i < total; i += stride) {
      const I c = (i / HW) % C;
      y[i] = x[i] * coef[2 * c] + coef[2 * c + 1];
    }
  }
}

// Block (c, k): sum(dy) and sum(dy * xhat) over chunk k of channel c -> partial[(c*chunks + k)*2 + {0, 1}].
__global__ void bn_grad_sums_kernel(const float* __restrict__ x, const float* __restrict__ dy,
                                    const float* __restrict__ save_mean, const float* __restrict__ save_invstd,
                                    BnGeom g, double* __restrict__ partial) {
  __shared__ double smem[kWarpSize];
  const int64_t c = blockIdx.x / g.chunks, k = blockIdx.x % g.chunks;
  const double mean = save_mean[c], invstd = save_invstd[c];
  // In double: sum(dy * xhat) cancels heavily, and ~3 FP64 ops per element stay far below the H100's FP64 rate.
  double s_dy = 0.0, s_dyx = 0.0;
  for_chunk(g, c, k, [&](int64_t i) {
    const double d = dy[i];
    s_dy += d;
    s_dyx += d * ((double(x[i]) - mean) * invstd);
  });
  s_dy = block_sum(s_dy, smem);
  s_dyx = block_sum(s_dyx, smem);
  if (threadIdx.x == 0) {
    partial[int64_t(blockIdx.x) * 2] = s_dy;
    partial[int64_t(blockIdx.x) * 2 + 1] = s_dyx;
  }
}

// One thread per channel: dgamma, dbeta, and coef[4c..4c+3] = {k, mean(dy), mean, invstd * mean(dy xhat)} for
// training (dx = k ((dy - mean(dy)) - (x - mean) invstd mean(dy xhat))) or {k, 0, 0, 0} for eval (dx = dy k).
__global__ void bn_finalize_backward_kernel(const double* __restrict__ partial, BnGeom g, bool have_sums,
                                            const float* __restrict__ gamma, const float* __restrict__ save_mean,
                                            const float* __restrict__ save_invstd, float* __restrict__ dgamma,
                                            float* __restrict__ dbeta, float* __restrict__ coef, bool training) {
  for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < g.C; c += int64_t(gridDim.x) * blockDim.x) {
    double s_dy = 0.0, s_dyx = 0.0;
    if (have_sums)
      for (int64_t k = 0; k < g.chunks; ++k) {
        s_dy += partial[(c * g.chunks + k) * 2];
        s_dyx += partial[(c * g.chunks + k) * 2 + 1];
      }
    if (dgamma) dgamma[c] = float(s_dyx);
    if (dbeta) dbeta[c] = float(s_dy);
    if (!coef) continue;
    const double invstd = save_invstd[c], k = (gamma ? double(gamma[c]) : 1.0) * invstd;
    coef[4 * c] = float(k);
    coef[4 * c + 1] = training ? float(s_dy / double(g.M)) : 0.0f;
    coef[4 * c + 2] = training ? save_mean[c] : 0.0f;
    coef[4 * c + 3] = training ? float(invstd * (s_dyx / double(g.M))) : 0.0f;
  }
}

__device__ inline float bn_grad(const float* k, float x, float dy, bool training) {
  return training ? k[0] * ((dy - k[1]) - (x - k[2]) * k[3]) : dy * k[0];
}

// dx from x, dy and the per-channel coefficients: 12 bytes per element (8 in eval, where x is not read).
template <typename I, bool Training, bool Vec>
__global__ void bn_grad_apply_kernel(const float* __restrict__ x, const float* __restrict__ dy,
                                     const float* __restrict__ coef, float* __restrict__ dx, I total, I HW, I C) {
  const I stride = I(gridDim.x) * I(blockDim.x), t0 = I(blockIdx.x) * I(blockDim.x) + I(threadIdx.x);
  if (Vec) {
    for (I i = t0; i < total / 4; i += stride) {
      const float* k = coef + 4 * ((4 * i / HW) % C);
      const float4 g = reinterpret_cast<const float4*>(dy)[i];
      const float4 v = Training ? reinterpret_cast<const float4*>(x)[i] : float4{0.0f, 0.0f, 0.0f, 0.0f};
      // A named value, stored whole: g++ would split a braced float4 stored in place into four 4-byte stores,
      // and the emulator's memory metrics would count those instead of one 16-byte store (nvcc makes one either way).
      const float4 r{bn_grad(k, v.x, g.x, Training), bn_grad(k, v.y, g.y, Training), bn_grad(k, v.z, g.z, Training),
                     bn_grad(k, v.w, g.w, Training)};
      reinterpret_cast<float4*>(dx)[i] = r;
    }
  } else {
    for (I i = t0; i < total; i += stride) {
      const float* k = coef + 4 * ((i / HW) % C);
      dx[i] = bn_grad(k, Training ? x[i] : 0.0f, dy[i], Training);
    }
  }
}

// Launches kernel<I, ...> with I = int32_t when the tensor is small enough for 32-bit index math.
constexpr int64_t kIndex32Limit = int64_t(1) << 30;  // with a grid stride <= 2^20, int32 never overflows

template <typename I>
void launch_grad_apply(const Exec& ex, const char* op, bool training, bool vec, const float* x, const float* dy,
                       const float* coef, float* dx, I total, I HW, I C) {
  const dim3 grid(grid_stride_blocks(vec ? total / 4 : total, kBnBlock, 4096)), block(kBnBlock);
  if (training && vec)
    launch<bn_grad_apply_kernel<I, true, true>>(op, grid, block, 0, ex.stream, x, dy, coef, dx, total, HW, C);
  else if (training)
    launch<bn_grad_apply_kernel<I, true, false>>(op, grid, block, 0, ex.stream, x, dy, coef, dx, total, HW, C);
  else if (vec)
    launch<bn_grad_apply_kernel<I, false, true>>(op, grid, block, 0, ex.stream, x, dy, coef, dx, total, HW, C);
  else
    launch<bn_grad_apply_kernel<I, false, false>>(op, grid, block, 0, ex.stream, x, dy, coef, dx, total, HW, C);
}

unsigned channel_grid(int64_t C) {
  return grid_stride_blocks(C, kBnBlock, 64);
}
unsigned apply_grid(int64_t items) {
  return grid_stride_blocks(items, kBnBlock, 4096);
}

}  // namespace

void batchnorm2d_forward(const Exec& ex, const BatchNormParams& p, const float* x, const float* gamma,
                         const float* beta, float* running_mean, float* running_var, float* y, float* save_mean,
                         float* save_invstd) {
  const char* op = "batchnorm2d_forward";
  p.validate(op);
  check_ptr(op, "x", x), check_ptr(op, "y", y);
  FOVEA_CHECK((running_mean == nullptr) == (running_var == nullptr), op,
              ": arguments 'running_mean' and 'running_var' must be both given or both null");
  FOVEA_CHECK(p.training || running_mean, op, ": eval mode needs 'running_mean' and 'running_var', got null");
  const BnGeom g = bn_geom(p);
  const int64_t partial_doubles = p.training ? g.C * g.chunks * 3 : 0;
  double* scratch = workspace_array<double>(ex, partial_doubles + g.C, op);  // + 2*C floats of coefficients
  double* partial = scratch;
  float* coef = reinterpret_cast<float*>(scratch + partial_doubles);
  if (p.training)
    launch<bn_stats_kernel>("batchnorm2d_forward(stats)", dim3(unsigned(g.C * g.chunks)), dim3(kBnBlock), 0, ex.stream,
                            x, g, partial);
  launch<bn_finalize_forward_kernel>("batchnorm2d_forward(finalize)", dim3(channel_grid(g.C)), dim3(kBnBlock), 0,
                                     ex.stream, partial, g, gamma, beta, running_mean, running_var, save_mean,
                                     save_invstd, coef, p.eps, p.momentum, p.training);
  const int64_t total = p.x_size();
  const bool vec = g.HW % 4 == 0 && aligned16(x) && aligned16(y), small = total < kIndex32Limit;
  const dim3 grid(apply_grid(vec ? total / 4 : total)), block(kBnBlock);
  const int32_t t32 = int32_t(small ? total : 0), hw32 = int32_t(small ? g.HW : 0), c32 = int32_t(small ? g.C : 0);
  if (small && vec)
    launch<bn_apply_kernel<int32_t, true>>(op, grid, block, 0, ex.stream, x, coef, y, t32, hw32, c32);
  else if (small)
    launch<bn_apply_kernel<int32_t, false>>(op, grid, block, 0, ex.stream, x, coef, y, t32, hw32, c32);
  else if (vec)
    launch<bn_apply_kernel<int64_t, true>>(op, grid, block, 0, ex.stream, x, coef, y, total, g.HW, g.C);
  else
    launch<bn_apply_kernel<int64_t, false>>(op, grid, block, 0, ex.stream, x, coef, y, total, g.HW, g.C);
}

void batchnorm2d_backward(const Exec& ex, const BatchNormParams& p, const float* x, const float* dy, const float* gamma,
                          const float* save_mean, const float* save_invstd, float* dx, float* dgamma, float* dbeta) {
  const char* op = "batchnorm2d_backward";
  p.validate(op);
  check_ptr(op, "x", x), check_ptr(op, "dy", dy);
  check_ptr(op, "save_mean", save_mean), check_ptr(op, "save_invstd", save_invstd);
  FOVEA_CHECK(dx || dgamma || dbeta, op, ": arguments 'dx', 'dgamma' and 'dbeta' are all null");
  const BnGeom g = bn_geom(p);
  const bool need_sums = dgamma || dbeta || (dx && p.training);
  const int64_t partial_doubles = need_sums ? g.C * g.chunks * 2 : 0;
  double* scratch = workspace_array<double>(ex, partial_doubles + (dx ? 2 * g.C : 0), op);  // + 4*C floats
  double* partial = scratch;
  float* coef = dx ? reinterpret_cast<float*>(scratch + partial_doubles) : nullptr;
  if (need_sums)
    launch<bn_grad_sums_kernel>("batchnorm2d_backward(sums)", dim3(unsigned(g.C * g.chunks)), dim3(kBnBlock), 0,
                                ex.stream, x, dy, save_mean, save_invstd, g, partial);
  launch<bn_finalize_backward_kernel>("batchnorm2d_backward(finalize)", dim3(channel_grid(g.C)), dim3(kBnBlock), 0,
                                      ex.stream, partial, g, need_sums, gamma, save_mean, save_invstd, dgamma, dbeta,
                                      coef, p.training);
  if (!dx) return;
  const int64_t total = p.x_size();
  const bool vec = g.HW % 4 == 0 && aligned16(x) && aligned16(dy) && aligned16(dx);
  if (total < kIndex32Limit)
    launch_grad_apply<int32_t>(ex, op, p.training, vec, x, dy, coef, dx, int32_t(total), int32_t(g.HW), int32_t(g.C));
  else
    launch_grad_apply<int64_t>(ex, op, p.training, vec, x, dy, coef, dx, total, g.HW, g.C);
}

const bool registered = ops::batchnorm2d_forward_stub.define(kThisSlot, batchnorm2d_forward) &&
                        ops::batchnorm2d_backward_stub.define(kThisSlot, batchnorm2d_backward);

}  // namespace fovea::FOVEA_KERNEL_NS
