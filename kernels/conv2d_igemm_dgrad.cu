// Implicit-GEMM convolution, data gradient (dgrad): dx from dy and w, one GEMM per stride phase.
// Design, cost model and the shared loaders: kernels/conv2d_igemm.cuh; the GEMM view: kernels/conv2d.h.
#include "kernels/conv2d_igemm.cuh"
#include "kernels/conv2d_variants.cuh"

namespace fovea::FOVEA_KERNEL_NS {
namespace {

// One phase of a strided dgrad (see conv2d.h): the dx pixels (h0 + sh*i, w0 + sw*j) and the taps
// (r0 + step_r*jr, s0 + step_s*js) that reach them; dy row of pixel row i and tap jr: pb + i - jr*dp.
// Unit stride is the single phase with every tap (h0 = 0, r0 = 0, step 1, dp = dil).
struct DgradPhase {
  int h0, w0, Hp, Wp;
  int r0, s0, step_r, step_s, cnt_r, cnt_s;
  int pb, qb, dp, dq;
  int Ngemm, Kred;
};

// One axis of phase a, the pixels with (x + pad) mod stride == a: first pixel x0, count Xp; taps
// r*dil = a (mod stride): first r0, step, count cnt (0 when the phase receives no tap); dy index of
// (pixel x0 + stride*i, tap r0 + step*j) = pb + i - j*dp (exact: x0 + pad - r0*dil is a multiple of stride).
FOVEA_DEVICE_INLINE void dgrad_phase_axis(int a, int pad, int stride, int dil, int R, int X, int& x0, int& Xp, int& r0,
                                          int& step, int& cnt, int& pb, int& dp) {
  x0 = ((a - pad) % stride + stride) % stride;
  Xp = x0 < X ? (X - x0 + stride - 1) / stride : 0;
  int gcd = stride, t = dil;
  while (t) {
    const int r = gcd % t;
    gcd = t, t = r;
  }
  step = stride / gcd;
  r0 = -1;
  for (int r = 0; r < R && r < step && r0 < 0; ++r)
    if (r * dil % stride == a) r0 = r;
  cnt = r0 < 0 ? 0 : (R - 1 - r0) / step + 1;
  if (r0 < 0) r0 = 0;
  pb = (x0 + pad - r0 * dil) / stride;
  dp = step * dil / stride;
}

FOVEA_DEVICE_INLINE DgradPhase dgrad_phase(const ConvGeom& g, int phase) {
  DgradPhase ph;
  dgrad_phase_axis(phase / g.sw, g.ph, g.sh, g.dh, g.R, g.H, ph.h0, ph.Hp, ph.r0, ph.step_r, ph.cnt_r, ph.pb, ph.dp);
  dgrad_phase_axis(phase % g.sw, g.pw, g.sw, g.dw, g.S, g.W, ph.w0, ph.Wp, ph.s0, ph.step_s, ph.cnt_s, ph.qb, ph.dq);
  ph.Ngemm = g.N * ph.Hp * ph.Wp;
  ph.Kred = g.Kg * ph.cnt_r * ph.cnt_s;
  return ph;
}

// B of dgrad for one phase: B[(k, jr, js)][(n, i, j)] = dy[n][k][pb + i - jr*dp][qb + j - js*dq], zero
// outside dy. Same thread layout as FpropGatherLoader: the tap (k, jr, js) is warp-uniform and
// walked by carries; each thread precomputes its kCols pixels once.
template <class Cfg>
struct DgradGatherLoader {
  static constexpr int kRowThreads = Cfg::kThreads / Cfg::BK, kCols = Cfg::BN / kRowThreads;
  int base[kCols];           // offset of dy[n][0][pb + i][qb + j] (may lie outside the plane)
  int pi[kCols], qj[kCols];  // pb + i, qb + j; kFar for columns past the phase's end
  Radix3Walker f;            // (k, jr, js) of this thread's row
  int krow;
  int cnt_r, cnt_s, dp, dq;  // the phase's taps (copied: the phase itself need not stay live)
  float reg[kCols];

  FOVEA_DEVICE_INLINE void init(const ConvGeom& g, const DgradPhase& ph, int n0, int k_begin, int tid) {
    cnt_r = ph.cnt_r, cnt_s = ph.cnt_s, dp = ph.dp, dq = ph.dq;
    const int plane = ph.Hp * ph.Wp;
#pragma unroll
    for (int i = 0; i < kCols; ++i) {
      const int col = n0 + tid % kRowThreads + i * kRowThreads;
      if (col < ph.Ngemm) {
        const int n = col / plane, rem = col - n * plane, row = rem / ph.Wp;
        pi[i] = ph.pb + row, qj[i] = ph.qb + rem - row * ph.Wp;
        base[i] = n * g.K * g.PQ + pi[i] * g.Q + qj[i];
      } else {
        pi[i] = kFar, qj[i] = kFar, base[i] = 0;
      }
    }
    krow = k_begin + tid / kRowThreads;
    f.init(krow, Cfg::BK, ph.cnt_r, ph.cnt_s);
  }
  FOVEA_DEVICE_INLINE void load(const float* __restrict__ dyg, const ConvGeom& g, int k_end) {
    const bool row_ok = krow < k_end;
    const int rp = f.mid * dp, rq = f.lo * dq;
    const int roff = f.hi * g.PQ - rp * g.Q - rq;
#pragma unroll
    for (int i = 0; i < kCols; ++i) {
      const int p = pi[i] - rp, q = qj[i] - rq;
      const bool ok = row_ok && unsigned(p) < unsigned(g.P) && unsigned(q) < unsigned(g.Q);
      reg[i] = ok ? dyg[base[i] + roff] : 0.0f;
    }
    krow += Cfg::BK;
    f.advance(cnt_r, cnt_s);
  }
  template <int LD>
  FOVEA_DEVICE_INLINE void store(float (&S)[Cfg::BK][LD], int tid) const {
#pragma unroll
    for (int i = 0; i < kCols; ++i) S[tid / kRowThreads][tid % kRowThreads + i * kRowThreads] = reg[i];
  }
};

// A of dgrad for one phase: A[c][(k, jr, js)] = w[k][c][r0 + step_r*jr][s0 + step_s*js] (the group's
// weights, transposed on the fly). Scalar loads: no dimension is contiguous for R*S > 1. Every item
// of a thread has the same reduction column (tid % BK), walked as (k, jr, js) by carries. Weights
// are small and stay in L1/L2.
template <class Cfg>
struct DgradWeightLoader {
  static constexpr int kItems = Cfg::BM * Cfg::BK;
  static constexpr int kPerThread = (kItems + Cfg::kThreads - 1) / Cfg::kThreads;
  Radix3Walker kw;  // (k, jr, js)
  int kidx;
  int cnt_r, cnt_s, tap0, tap_dr, tap_ds;  // tap (jr, js) is at r*S + s = tap0 + jr*tap_dr + js*tap_ds
  float reg[kPerThread] = {};

  FOVEA_DEVICE_INLINE void init(const ConvGeom& g, const DgradPhase& ph, int k_begin, int tid) {
    cnt_r = ph.cnt_r, cnt_s = ph.cnt_s;
    tap0 = ph.r0 * g.S + ph.s0, tap_dr = ph.step_r * g.S, tap_ds = ph.step_s;
    kidx = k_begin + tid % Cfg::BK;
    kw.init(kidx, Cfg::BK, cnt_r, cnt_s);
  }
  FOVEA_DEVICE_INLINE void load(const float* __restrict__ wg, const ConvGeom& g, int m0, int k_end, int tid) {
    const bool k_ok = kidx < k_end;
    const int koff = kw.hi * g.Cg * g.RS + tap0 + tap_dr * kw.mid + tap_ds * kw.lo;
#pragma unroll
    for (int l = 0; l < kPerThread; ++l) {
      const int v = tid + l * Cfg::kThreads;
      if (kItems % Cfg::kThreads != 0 && v >= kItems) break;
      const int m = m0 + v / Cfg::BK;
      reg[l] = k_ok && m < g.M ? wg[koff + m * g.RS] : 0.0f;
    }
    kidx += Cfg::BK;
    kw.advance(cnt_r, cnt_s);
  }
  template <int LD>
  FOVEA_DEVICE_INLINE void store(float (&S)[Cfg::BK][LD], int tid) const {
#pragma unroll
    for (int l = 0; l < kPerThread; ++l) {
      const int v = tid + l * Cfg::kThreads;
      if (kItems % Cfg::kThreads != 0 && v >= kItems) break;
      S[v % Cfg::BK][v / Cfg::BK] = reg[l];
    }
  }
};

// blockIdx.z = (group * splits + slice) * phases + phase, phases = sh * sw.
// Spills: on sm_80 only, the 128x128 gather instantiation spills 64 bytes (reloads 56) under the
// 128-register bound of 256-thread tiles: the phase's tap walkers of both loaders. About 14 L1-hit
// loads per slab against 512 FMAs per thread; the alternative, one block per SM, costs far more.
template <class Cfg, bool kVecDy>
__global__ void FOVEA_LAUNCH_BOUNDS(Cfg::kThreads)
    conv2d_dgrad_igemm_kernel(ConvGeom g, const float* __restrict__ dy, const float* __restrict__ w,
                              float* __restrict__ out) {
  __shared__ gemm::SharedTiles<Cfg, Cfg::kLdA, gemm::kGatherLd<Cfg>> sm;  // B: gather stores
  const int tid = threadIdx.x;
  int tm, tn;
  gemm::thread_coords<Cfg>(tid, tm, tn);
  const int phases = g.sh * g.sw, phase = blockIdx.z % phases, z = blockIdx.z / phases;
  const int grp = z / g.splits, slice = z % g.splits;
  const DgradPhase ph = dgrad_phase(g, phase);
  const int m0 = blockIdx.y * Cfg::BM, n0 = blockIdx.x * Cfg::BN;
  if (n0 >= ph.Ngemm) return;  // the grid covers the largest phase; the whole block leaves together
  const int k_begin = slice * g.split_len, k_end = slice_end(ph.Kred, g.split_len, k_begin);
  const float* wg = w + grp * g.Kg * g.Cg * g.RS;
  const float* dyg = dy + grp * g.Kg * g.PQ;

  float acc[Cfg::TM][Cfg::TN] = {};
  if (k_end > k_begin) {  // else this slice (or the whole phase) has no taps: the tile is zeros
    DgradWeightLoader<Cfg> la;
    std::conditional_t<kVecDy, PlaneVecLoader<Cfg, true>, DgradGatherLoader<Cfg>> lb;
    la.init(g, ph, k_begin, tid);
    if constexpr (kVecDy)
      lb.init(g, n0, k_begin, tid);
    else
      lb.init(g, ph, n0, k_begin, tid);
    gemm::mainloop<Cfg>(
        sm, k_begin, k_end,
        [&] {
          la.load(wg, g, m0, k_end, tid);
          lb.load(dyg, g, k_end);
        },
        [&](int buf) {
          la.store(sm.a[buf], tid);
          lb.store(sm.b[buf], tid);
        },
        tm, tn, acc);
  }
  // dx[n][c][h0 + sh*i][w0 + sw*j] for column (n*Hp + i)*Wp + j of the phase. The phase is worked out
  // again rather than kept in registers through the main loop.
  const DgradPhase pe = dgrad_phase(g, phase);
  const int plane = pe.Hp * pe.Wp;
  store_tile<Cfg>(acc, out + slice * g.out_size, nullptr, grp * g.Cg + m0, g.M - m0, n0, pe.Ngemm, g.HW, g.vec_out, tm,
                  tn, [&](int col) {
                    const int n = col / plane, rem = col - n * plane, i = rem / pe.Wp;
                    return int64_t(n) * g.C * g.HW + (pe.h0 + g.sh * i) * g.W + pe.w0 + g.sw * (rem - i * pe.Wp);
                  });
}

}  // namespace

void conv2d_backward_data_implicit_gemm(const Exec& ex, const Conv2dParams& p, const float* dy, const float* w,
                                        float* dx, const ConvGemmPlan& requested) {
  const StreamHandle stream = ex.stream;
  constexpr const char* op = "conv2d_backward_data_implicit_gemm";
  p.validate(op);
  check_ptr(op, "dy", dy), check_ptr(op, "w", w), check_ptr(op, "dx", dx);
  const ConvGemmPlan plan = resolve_plan(op, ConvOp::backward_data, p, requested);
  ConvGeom g = make_geom(op, ConvOp::backward_data, p, plan);
  float* out = gemm_target(ex, op, ConvOp::backward_data, p, plan, dx);
  const bool unit_stride = g.sh == 1 && g.sw == 1;  // one phase: its columns are the plain pixels
  g.vec_out = unit_stride && g.HW % 4 == 0 && aligned16(out);
  const bool vec_dy = unit_stride && g.R == 1 && g.S == 1 && g.ph == 0 && g.pw == 0 && g.PQ % 4 == 0 && aligned16(dy);
  with_tile(plan, [&](auto cfg) {
    using Cfg = decltype(cfg);
    const dim3 grid = gemm_grid<Cfg>(op, g, p.groups * p.stride_h * p.stride_w);
    note_flop(conv_flop(p));
    if (vec_dy)
      FOVEA_LAUNCH((conv2d_dgrad_igemm_kernel<Cfg, true>), grid, Cfg::kThreads, 0, stream, g, dy, w, out);
    else
      FOVEA_LAUNCH((conv2d_dgrad_igemm_kernel<Cfg, false>), grid, Cfg::kThreads, 0, stream, g, dy, w, out);
  });
  if (plan.splits > 1) splitk_reduce(ex, out, g.splits, g.out_size, dx, nullptr, g.HW, g.C);
}

}  // namespace fovea::FOVEA_KERNEL_NS
