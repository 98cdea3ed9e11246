// Implicit-GEMM convolution, weight gradient (wgrad): dw from x and dy, split-K over the pixels.
// Design, cost model and the shared loaders: kernels/conv2d_igemm.cuh; the GEMM view: kernels/conv2d.h.
#include "kernels/conv2d_igemm.cuh"
#include "kernels/conv2d_variants.cuh"

namespace fovea::FOVEA_KERNEL_NS {
namespace {

// A of wgrad: A[k][(n, p, q)] = dy[n][k][p][q]; contiguous along the reduction within an image, so
// 16-byte loads when P*Q % 4 == 0 (four consecutive pixels never straddle images). Every item of a
// thread has the same reduction column, walked as (n, pq) by carries.
template <class Cfg, bool kVec>
struct WgradGradLoader {
  static constexpr int kWidth = kVec ? 4 : 1, kSpan = Cfg::BK / kWidth;
  static constexpr int kItems = Cfg::BM * kSpan;
  static constexpr int kPerThread = (kItems + Cfg::kThreads - 1) / Cfg::kThreads;
  Radix3Walker px;  // (n, 0, pq)
  int kidx;
  float reg[kPerThread][kWidth] = {};

  FOVEA_DEVICE_INLINE void init(const ConvGeom& g, int k_begin, int tid) {
    kidx = k_begin + (tid % kSpan) * kWidth;
    px.init(kidx, Cfg::BK, 1, g.PQ);
  }
  FOVEA_DEVICE_INLINE void load(const float* __restrict__ dyg, const ConvGeom& g, int m0, int k_end, int tid) {
    const bool k_ok = kidx < k_end;
    const int koff = px.hi * g.K * g.PQ + px.lo;
#pragma unroll
    for (int l = 0; l < kPerThread; ++l) {
      const int v = tid + l * Cfg::kThreads;
      if (kItems % Cfg::kThreads != 0 && v >= kItems) break;
      const int m = m0 + v / kSpan;
      const bool ok = k_ok && m < g.M;
      if constexpr (kVec) {
        float4 t = make_float4(0.f, 0.f, 0.f, 0.f);
        if (ok) t = *reinterpret_cast<const float4*>(dyg + koff + m * g.PQ);
        reg[l][0] = t.x, reg[l][1] = t.y, reg[l][2] = t.z, reg[l][3] = t.w;
      } else {
        reg[l][0] = ok ? dyg[koff + m * g.PQ] : 0.0f;
      }
    }
    kidx += Cfg::BK;
    px.advance(1, g.PQ);
  }
  template <int LD>
  FOVEA_DEVICE_INLINE void store(float (&S)[Cfg::BK][LD], int tid) const {
#pragma unroll
    for (int l = 0; l < kPerThread; ++l) {
      const int v = tid + l * Cfg::kThreads;
      if (kItems % Cfg::kThreads != 0 && v >= kItems) break;
#pragma unroll
      for (int e = 0; e < kWidth; ++e) S[(v % kSpan) * kWidth + e][v / kSpan] = reg[l][e];
    }
  }
};

// B of wgrad: B[(n, p, q)][(c, r, s)] = x[n][c][p*sh - ph + r*dh][q*sw - pw + s*dw]. Here the
// reduction runs along pixels, so BK consecutive threads take BK consecutive rows (pixels: nearby
// addresses) of the same columns; each thread owns kCols filter columns, precomputed once, and
// walks its pixel (n, p, q) by carries.
template <class Cfg>
struct WgradInputLoader {
  static constexpr int kColThreads = Cfg::kThreads / Cfg::BK, kCols = Cfg::BN / kColThreads;
  int coff[kCols];           // offset of x[.][c][r*dh][s*dw] relative to the pixel origin
  int rh[kCols], rw[kCols];  // r*dh, s*dw; kFar for columns past the end
  Radix3Walker px;           // (n, p, q) of this thread's row
  int kidx;
  float reg[kCols];

  FOVEA_DEVICE_INLINE void init(const ConvGeom& g, int n0, int k_begin, int tid) {
#pragma unroll
    for (int i = 0; i < kCols; ++i) {
      const int col = n0 + tid / Cfg::BK + i * kColThreads;
      if (col < g.Ngemm) {
        const int c = col / g.RS, rs = col - c * g.RS, r = rs / g.S, s = rs - r * g.S;
        rh[i] = r * g.dh, rw[i] = s * g.dw;
        coff[i] = c * g.HW + rh[i] * g.W + rw[i];
      } else {
        rh[i] = kFar, rw[i] = kFar, coff[i] = 0;
      }
    }
    kidx = k_begin + tid % Cfg::BK;
    px.init(kidx, Cfg::BK, g.P, g.Q);
  }
  FOVEA_DEVICE_INLINE void load(const float* __restrict__ xg, const ConvGeom& g, int k_end) {
    const bool row_ok = kidx < k_end;
    const int ih0 = px.mid * g.sh - g.ph, iw0 = px.lo * g.sw - g.pw;
    const int roff = px.hi * g.C * g.HW + ih0 * g.W + iw0;
#pragma unroll
    for (int i = 0; i < kCols; ++i) {
      const int h = ih0 + rh[i], w = iw0 + rw[i];
      const bool ok = row_ok && unsigned(h) < unsigned(g.H) && unsigned(w) < unsigned(g.W);
      reg[i] = ok ? xg[roff + coff[i]] : 0.0f;
    }
    kidx += Cfg::BK;
    px.advance(g.P, g.Q);
  }
  template <int LD>
  FOVEA_DEVICE_INLINE void store(float (&S)[Cfg::BK][LD], int tid) const {
#pragma unroll
    for (int i = 0; i < kCols; ++i) S[tid % Cfg::BK][tid / Cfg::BK + i * kColThreads] = reg[i];
  }
};

// Spills: on sm_80 only, the 128x128 instantiation with scalar dy loads (P*Q not a multiple of 4)
// spills 20 bytes under the 128-register bound (gemm_tile.cuh); 5 L1-hit reloads per slab.
template <class Cfg, bool kVecDy>
__global__ void FOVEA_LAUNCH_BOUNDS(Cfg::kThreads)
    conv2d_wgrad_igemm_kernel(ConvGeom g, const float* __restrict__ x, const float* __restrict__ dy,
                              float* __restrict__ out) {
  __shared__ gemm::SharedTiles<Cfg> sm;
  const int tid = threadIdx.x;
  int tm, tn;
  gemm::thread_coords<Cfg>(tid, tm, tn);
  const int m0 = blockIdx.y * Cfg::BM, n0 = blockIdx.x * Cfg::BN;
  const int grp = blockIdx.z / g.splits, slice = blockIdx.z % g.splits;
  const int k_begin = slice * g.split_len, k_end = slice_end(g.Kred, g.split_len, k_begin);
  const float* dyg = dy + grp * g.Kg * g.PQ;
  const float* xg = x + grp * g.Cg * g.HW;

  WgradGradLoader<Cfg, kVecDy> la;
  WgradInputLoader<Cfg> lb;
  la.init(g, k_begin, tid);
  lb.init(g, n0, k_begin, tid);
  float acc[Cfg::TM][Cfg::TN] = {};
  gemm::mainloop<Cfg>(
      sm, k_begin, k_end,
      [&] {
        la.load(dyg, g, m0, k_end, tid);
        lb.load(xg, g, k_end);
      },
      [&](int buf) {
        la.store(sm.a[buf], tid);
        lb.store(sm.b[buf], tid);
      },
      tm, tn, acc);
  // dw[k][crs]: row-major, column crs.
  store_tile<Cfg>(acc, out + slice * g.out_size, nullptr, grp * g.Kg + m0, g.M - m0, n0, g.Ngemm, g.Ngemm, g.vec_out,
                  tm, tn, [](int col) { return int64_t(col); });
}

}  // namespace

void conv2d_backward_filter_implicit_gemm(const Exec& ex, const Conv2dParams& p, const float* x, const float* dy,
                                          float* dw, const ConvGemmPlan& requested) {
  const StreamHandle stream = ex.stream;
  constexpr const char* op = "conv2d_backward_filter_implicit_gemm";
  p.validate(op);
  check_ptr(op, "x", x), check_ptr(op, "dy", dy), check_ptr(op, "dw", dw);
  const ConvGemmPlan plan = resolve_plan(op, ConvOp::backward_filter, p, requested);
  ConvGeom g = make_geom(op, ConvOp::backward_filter, p, plan);
  float* out = gemm_target(ex, op, ConvOp::backward_filter, p, plan, dw);
  g.vec_out = g.Ngemm % 4 == 0 && aligned16(out);
  const bool vec_dy = g.PQ % 4 == 0 && aligned16(dy);
  with_tile(plan, [&](auto cfg) {
    using Cfg = decltype(cfg);
    const dim3 grid = gemm_grid<Cfg>(op, g, p.groups);
    note_flop(conv_flop(p));
    if (vec_dy)
      FOVEA_LAUNCH((conv2d_wgrad_igemm_kernel<Cfg, true>), grid, Cfg::kThreads, 0, stream, g, x, dy, out);
    else
      FOVEA_LAUNCH((conv2d_wgrad_igemm_kernel<Cfg, false>), grid, Cfg::kThreads, 0, stream, g, x, dy, out);
  });
  if (plan.splits > 1) splitk_reduce(ex, out, g.splits, g.out_size, dw, nullptr, g.Ngemm, g.K);
}

}  // namespace fovea::FOVEA_KERNEL_NS
