// Implicit-GEMM convolution, forward (fprop): y = conv(x, w) + b.
// Design, cost model and the shared loaders: kernels/conv2d_igemm.cuh; the GEMM view: kernels/conv2d.h.
#include "kernels/conv2d_igemm.cuh"
#include "kernels/conv2d_variants.cuh"

namespace fovea::FOVEA_KERNEL_NS {
namespace {

// B of fprop: the im2col matrix B[(c, r, s)][(n, p, q)] = x[n][c][p*sh - ph + r*dh][q*sw - pw + s*dw].
// kRowThreads threads share each of the BK rows: the filter position (c, r, s) is warp-uniform and
// advanced by carries; each thread owns kCols pixel columns kRowThreads apart, so a warp loads
// consecutive pixels, and precomputes their receptive-field origins once.
template <class Cfg>
struct FpropGatherLoader {
  static constexpr int kRowThreads = Cfg::kThreads / Cfg::BK, kCols = Cfg::BN / kRowThreads;
  int base[kCols];             // offset of x[n][0][ih0][iw0] from the group's first channel
  int ih0[kCols], iw0[kCols];  // receptive-field origin; kFar for columns past the end
  Radix3Walker f;              // (c, r, s) of this thread's row
  int krow;
  float reg[kCols];

  FOVEA_DEVICE_INLINE void init(const ConvGeom& g, int n0, int k_begin, int tid) {
#pragma unroll
    for (int i = 0; i < kCols; ++i) {
      const int col = n0 + tid % kRowThreads + i * kRowThreads;
      if (col < g.Ngemm) {
        const int n = col / g.PQ, pq = col - n * g.PQ, p = pq / g.Q, q = pq - p * g.Q;
        ih0[i] = p * g.sh - g.ph, iw0[i] = q * g.sw - g.pw;
        base[i] = n * g.C * g.HW + ih0[i] * g.W + iw0[i];
      } else {
        ih0[i] = kFar, iw0[i] = kFar, base[i] = 0;
      }
    }
    krow = k_begin + tid / kRowThreads;
    f.init(krow, Cfg::BK, g.R, g.S);
  }
  FOVEA_DEVICE_INLINE void load(const float* __restrict__ xg, const ConvGeom& g, int k_end) {
    const bool row_ok = krow < k_end;
    const int rh = f.mid * g.dh, rw = f.lo * g.dw;
    const int roff = f.hi * g.HW + rh * g.W + rw;
#pragma unroll
    for (int i = 0; i < kCols; ++i) {
      const int h = ih0[i] + rh, w = iw0[i] + rw;
      const bool ok = row_ok && unsigned(h) < unsigned(g.H) && unsigned(w) < unsigned(g.W);
      reg[i] = ok ? xg[base[i] + roff] : 0.0f;
    }
    krow += Cfg::BK;
    f.advance(g.R, g.S);
  }
  template <int LD>
  FOVEA_DEVICE_INLINE void store(float (&S)[Cfg::BK][LD], int tid) const {
#pragma unroll
    for (int i = 0; i < kCols; ++i) S[tid / kRowThreads][tid % kRowThreads + i * kRowThreads] = reg[i];
  }
};

// Spills: on sm_90 only, the 128x128 instantiation with scalar weight loads (C/g*R*S not a multiple
// of 4 and more than 64 output channels per group, e.g. a 3-channel input layer with 128 filters)
// spills 12 bytes under the 128-register bound of 256-thread tiles (gemm_tile.cuh): the scalar
// weight addresses. 3 L1-hit reloads per slab against 512 FMAs per thread.
template <class Cfg, bool kVecW, bool kVecX>
__global__ void FOVEA_LAUNCH_BOUNDS(Cfg::kThreads)
    conv2d_fprop_igemm_kernel(ConvGeom g, const float* __restrict__ x, const float* __restrict__ w,
                              const float* __restrict__ bias, float* __restrict__ out) {
  __shared__ gemm::SharedTiles<Cfg, Cfg::kLdA, gemm::kGatherLd<Cfg>> sm;  // B: gather stores
  const int tid = threadIdx.x;
  int tm, tn;
  gemm::thread_coords<Cfg>(tid, tm, tn);
  const int m0 = blockIdx.y * Cfg::BM, n0 = blockIdx.x * Cfg::BN;
  const int grp = blockIdx.z / g.splits, slice = blockIdx.z % g.splits;
  const int k_begin = slice * g.split_len, k_end = slice_end(g.Kred, g.split_len, k_begin);
  const float* wg = w + grp * g.Kg * g.Kred;  // [Kg][Cg*R*S]: k contiguous
  const float* xg = x + grp * g.Cg * g.HW;

  gemm::DenseSlabLoader<Cfg::BM, Cfg::BK, Cfg::kThreads, true, kVecW> la;
  std::conditional_t<kVecX, PlaneVecLoader<Cfg, false>, FpropGatherLoader<Cfg>> lb;
  lb.init(g, n0, k_begin, tid);
  int k0 = k_begin;
  float acc[Cfg::TM][Cfg::TN] = {};
  gemm::mainloop<Cfg>(
      sm, k_begin, k_end,
      [&] {
        la.load(wg, g.Kred, m0, k0, g.M, k_end, tid);
        lb.load(xg, g, k_end);
        k0 += Cfg::BK;
      },
      [&](int buf) {
        la.store(sm.a[buf], tid);
        lb.store(sm.b[buf], tid);
      },
      tm, tn, acc);
  // y[n][k][pq] for column n*PQ + pq.
  store_tile<Cfg>(acc, out + slice * g.out_size, bias, grp * g.Kg + m0, g.M - m0, n0, g.Ngemm, g.PQ, g.vec_out, tm, tn,
                  [&](int col) {
                    const int n = col / g.PQ;
                    return int64_t(n) * g.K * g.PQ + (col - n * g.PQ);
                  });
}

// out[i] = sum over slices s = 0, 1, ... of ws[s * n + i], plus bias[(i / plane) % channels].
// Per output 4 * splits bytes read (L2-resident while the partials fit in 50 MB) and 4 written:
// memory-bound, a few microseconds next to the GEMM it completes.
__global__ void splitk_reduce_vec4_kernel(const float* __restrict__ ws, int splits, int64_t n4, float* __restrict__ out,
                                          const float* __restrict__ bias, int64_t plane, int64_t channels) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n4; i += stride) {
    float4 s = reinterpret_cast<const float4*>(ws)[i];
    for (int k = 1; k < splits; ++k) {
      const float4 v = reinterpret_cast<const float4*>(ws)[k * n4 + i];
      s.x += v.x, s.y += v.y, s.z += v.z, s.w += v.w;
    }
    if (bias) {
      const float b = bias[(4 * i / plane) % channels];  // plane % 4 == 0: one channel per float4
      s.x += b, s.y += b, s.z += b, s.w += b;
    }
    reinterpret_cast<float4*>(out)[i] = s;
  }
}
__global__ void splitk_reduce_kernel(const float* __restrict__ ws, int splits, int64_t n, float* __restrict__ out,
                                     const float* __restrict__ bias, int64_t plane, int64_t channels) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    float s = ws[i];
    for (int k = 1; k < splits; ++k) s += ws[k * n + i];
    if (bias) s += bias[(i / plane) % channels];
    out[i] = s;
  }
}

}  // namespace

void splitk_reduce(const Exec& ex, const float* ws, int splits, int64_t out_size, float* out, const float* bias,
                   int64_t plane, int64_t channels) {
  const StreamHandle stream = ex.stream;
  constexpr int kBlock = 256;
  const int64_t n = out_size;
  if (n % 4 == 0 && plane % 4 == 0 && aligned16(ws) && aligned16(out)) {
    FOVEA_LAUNCH(splitk_reduce_vec4_kernel, grid_stride_blocks(n / 4, kBlock), kBlock, 0, stream, ws, splits, n / 4,
                 out, bias, plane, channels);
  } else {
    FOVEA_LAUNCH(splitk_reduce_kernel, grid_stride_blocks(n, kBlock), kBlock, 0, stream, ws, splits, n, out, bias,
                 plane, channels);
  }
}

void conv2d_forward_implicit_gemm(const Exec& ex, const Conv2dParams& p, const float* x, const float* w, const float* b,
                                  float* y, const ConvGemmPlan& requested) {
  const StreamHandle stream = ex.stream;
  constexpr const char* op = "conv2d_forward_implicit_gemm";
  p.validate(op);
  check_ptr(op, "x", x), check_ptr(op, "w", w), check_ptr(op, "y", y);
  const ConvGemmPlan plan = resolve_plan(op, ConvOp::forward, p, requested);
  ConvGeom g = make_geom(op, ConvOp::forward, p, plan);
  float* out = gemm_target(ex, op, ConvOp::forward, p, plan, y);
  const float* fused_bias = plan.splits == 1 ? b : nullptr;
  g.vec_out = g.PQ % 4 == 0 && aligned16(out);
  // 16-byte loads: weights when each filter's C/g*R*S taps are whole float4s; the input only for a
  // 1x1 stride-1 unpadded conv (a plain matrix per image) with H*W % 4 == 0.
  const bool vec_w = g.Kred % 4 == 0 && aligned16(w);
  const bool vec_x = vec_w && g.R == 1 && g.S == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0 &&
                     g.HW % 4 == 0 && aligned16(x);
  with_tile(plan, [&](auto cfg) {
    using Cfg = decltype(cfg);
    const dim3 grid = gemm_grid<Cfg>(op, g, p.groups);
    note_flop(conv_flop(p));
    if (vec_x)
      FOVEA_LAUNCH((conv2d_fprop_igemm_kernel<Cfg, true, true>), grid, Cfg::kThreads, 0, stream, g, x, w, fused_bias,
                   out);
    else if (vec_w)
      FOVEA_LAUNCH((conv2d_fprop_igemm_kernel<Cfg, true, false>), grid, Cfg::kThreads, 0, stream, g, x, w, fused_bias,
                   out);
    else
      FOVEA_LAUNCH((conv2d_fprop_igemm_kernel<Cfg, false, false>), grid, Cfg::kThreads, 0, stream, g, x, w, fused_bias,
                   out);
  });
  if (plan.splits > 1) splitk_reduce(ex, out, g.splits, g.out_size, y, b, g.PQ, g.K);
}

}  // namespace fovea::FOVEA_KERNEL_NS
