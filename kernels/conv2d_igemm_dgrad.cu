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

// ---------------------------------------------------------------- the weight copy (A of every phase)
// A of dgrad for one phase is A[c][(k, jr, js)] = w[k][c][r0 + step_r*jr][s0 + step_s*js]: w read
// transposed, and w[k][c][r][s] has no dimension that is contiguous along c when R*S > 1 (a warp's
// scalar loads took 8-17 sectors per request against 4). As cuDNN does, the launcher first copies w
// into the call's workspace in the layout the GEMM reads: per group, the stride phases' taps one
// after another (phase by phase along each axis, ah then aw), each phase a dense matrix of
// Kg * cnt_r * cnt_s rows (k, jr, js) by Cg contiguous channels. The dgrad kernel then loads A as an
// m-contiguous matrix (DgradWeightLoader): a warp reads 32 consecutive channels (4 sectors, 1 shared
// wavefront). No spatial flip: the kernel indexes taps as they are (correlation form).
// Cost: one extra launch, K*C/g*R*S floats of workspace, one read and one write of the weights
// (coalesced both ways through a shared-memory tile); for R*S == 1 w already is that layout and
// neither the copy nor the workspace is needed. The values are copied, not combined: the GEMM sums
// the same numbers in the same order as before, so the results are bitwise unchanged.

FOVEA_DEVICE_INLINE int gcd_int(int a, int b) {
  while (b) {
    const int r = a % b;
    a = b, b = r;
  }
  return a;
}
// Taps r < R (dilation dil) of the phases before phase a along one axis: those with r*dil mod stride < a.
FOVEA_DEVICE_INLINE int taps_before_phase(int a, int R, int stride, int dil) {
  int n = 0;
  for (int r = 0; r < R; ++r) n += r * dil % stride < a;
  return n;
}
// Offset of phase (ah, aw)'s matrix in a group's block of the weight copy, in taps (x Kg * Cg floats).
FOVEA_DEVICE_INLINE int dgrad_phase_tap_offset(const ConvGeom& g, int ah, int aw, int cnt_r) {
  return taps_before_phase(ah, g.R, g.sh, g.dh) * g.S + cnt_r * taps_before_phase(aw, g.S, g.sw, g.dw);
}
// Along one axis, tap r belongs to phase r*dil mod stride, whose taps are r0, r0 + step, ... (r0 = r mod step):
// r's rank there and the phase's tap count.
FOVEA_DEVICE_INLINE void dgrad_tap_rank(int r, int R, int stride, int dil, int& phase, int& rank, int& count) {
  const int step = stride / gcd_int(stride, dil), r0 = r % step;
  phase = r * dil % stride, rank = r / step, count = (R - 1 - r0) / step + 1;
}

// One block per (k, 32 channels, 32 taps) of w viewed as K matrices [Cg][R*S]: loads them (consecutive
// threads, consecutive floats: one contiguous span when R*S <= 32), then each warp writes one tap's 32
// channels to the row of the copy that tap has in its phase (128 contiguous bytes). The tile's rows are
// padded to an odd length so that the column reads of the write phase hit 32 banks.
constexpr int kWeightCopyThreads = 256, kWeightCopyTile = 32;
__global__ void conv2d_dgrad_weight_copy_kernel(ConvGeom g, const float* __restrict__ w, float* __restrict__ wt) {
  constexpr int T = kWeightCopyTile;
  __shared__ float tile[T * (T + 1)];
  const int c_tiles = (g.Cg + T - 1) / T, t_tiles = (g.RS + T - 1) / T;
  const int t0 = int(blockIdx.x % t_tiles) * T, c0 = int(blockIdx.x / t_tiles % c_tiles) * T;
  const int k = int(blockIdx.x / t_tiles / c_tiles);
  const int cn = min(T, g.Cg - c0), tn = min(T, g.RS - t0), ld = tn | 1;
  const float* src = w + (k * g.Cg + c0) * g.RS + t0;
  for (int e = threadIdx.x; e < cn * tn; e += blockDim.x) {
    const int i = e / tn, j = e - i * tn;
    tile[i * ld + j] = src[i * g.RS + j];
  }
  __syncthreads();
  const int grp = k / g.Kg, kk = k - grp * g.Kg, lane = threadIdx.x % 32;
  for (int j = threadIdx.x / 32; j < tn; j += blockDim.x / 32) {
    const int tap = t0 + j, r = tap / g.S, s = tap - r * g.S;
    int ah, jr, cnt_r, aw, js, cnt_s;
    dgrad_tap_rank(r, g.R, g.sh, g.dh, ah, jr, cnt_r);
    dgrad_tap_rank(s, g.S, g.sw, g.dw, aw, js, cnt_s);
    const int row = (grp * g.RS + dgrad_phase_tap_offset(g, ah, aw, cnt_r)) * g.Kg + (kk * cnt_r + jr) * cnt_s + js;
    if (lane < cn) wt[row * g.Cg + c0 + lane] = tile[lane * ld + j];
  }
}

void launch_dgrad_weight_copy(const Exec& ex, const ConvGeom& g, const float* w, float* wt) {
  const int64_t blocks = int64_t(g.K) * ((g.Cg + kWeightCopyTile - 1) / kWeightCopyTile) *
                         ((g.RS + kWeightCopyTile - 1) / kWeightCopyTile);
  FOVEA_CHECK(blocks < INT_MAX, "conv2d dgrad weight copy: ", blocks, " blocks exceed the grid limit");
  FOVEA_LAUNCH(conv2d_dgrad_weight_copy_kernel, dim3(unsigned(blocks)), kWeightCopyThreads, 0, ex.stream, g, w, wt);
}

// A of dgrad for one phase from the weight copy: A[c][row] = a[row * Cg + c] (a: the phase's matrix). Every tile has
// a multiple of BM threads, so each thread keeps one channel column c = m0 + tid % BM and loads the rows tid / BM,
// tid / BM + kThreads / BM, ... of each slab: a warp reads 32 consecutive channels of one row (16 of two rows for
// BM = 16) and stores them to one shared row, conflict-free.
template <class Cfg>
struct DgradWeightLoader {
  static_assert(Cfg::kThreads % Cfg::BM == 0 && Cfg::BK % (Cfg::kThreads / Cfg::BM) == 0, "one column per thread");
  static constexpr int kRowStep = Cfg::kThreads / Cfg::BM, kPerThread = Cfg::BK / kRowStep;
  // Two registers, as few as the 128x128 tile's 128-register bound allows: the offset of this thread's element
  // in the next slab's first row, and that row (far past any k_end for a column past the group's channels).
  int off, row;
  float reg[kPerThread];

  FOVEA_DEVICE_INLINE void init(const ConvGeom& g, int a_off, int m0, int k_begin, int tid) {
    const int m = m0 + tid % Cfg::BM;
    row = k_begin + tid / Cfg::BM;
    off = a_off + row * g.Cg + m;
    if (m >= g.M) row = 1 << 30;
  }
  FOVEA_DEVICE_INLINE void load(const float* __restrict__ wt, const ConvGeom& g, int k_end) {
#pragma unroll
    for (int l = 0; l < kPerThread; ++l) reg[l] = row + l * kRowStep < k_end ? wt[off + l * kRowStep * g.Cg] : 0.0f;
    row += Cfg::BK, off += Cfg::BK * g.Cg;
  }
  template <int LD>
  FOVEA_DEVICE_INLINE void store(float (&S)[Cfg::BK][LD], int tid) const {
#pragma unroll
    for (int l = 0; l < kPerThread; ++l) S[tid / Cfg::BM + l * kRowStep][tid % Cfg::BM] = reg[l];
  }
};

// blockIdx.z = (group * splits + slice) * phases + phase, phases = sh * sw.
// Spills: the 128x128 gather instantiation, under the 128-register bound of 256-thread tiles, stores 88
// bytes and reloads 100 on sm_80, 16 and 8 on sm_90 (64 / 56 and none when it walked w transposed). Its
// main loop (SASS, ../shared/tools/sass) has 12 L1-hit spill loads per slab on sm_80 and 2 loads + 2
// stores on sm_90, against 512 FFMAs, in 675 / 682 instructions per slab (710 / 727 before: the weight
// copy's loader needs fewer integer instructions). One block per SM instead would cost far more.
template <class Cfg, bool kVecDy>
__global__ void FOVEA_LAUNCH_BOUNDS(Cfg::kThreads)
    conv2d_dgrad_igemm_kernel(ConvGeom g, const float* __restrict__ dy, const float* __restrict__ wt,
                              float* __restrict__ out) {
  // A rows unpadded: the weight copy's m-contiguous stores fill one row per warp (two for BM = 16: 16 banks
  // apart), conflict-free; B: gather stores.
  __shared__ gemm::SharedTiles<Cfg, Cfg::BM, gemm::kGatherLd<Cfg>> sm;
  const int tid = threadIdx.x;
  int tm, tn;
  gemm::thread_coords<Cfg>(tid, tm, tn);
  const int phases = g.sh * g.sw, phase = blockIdx.z % phases, z = blockIdx.z / phases;
  const int grp = z / g.splits, slice = z % g.splits;
  const DgradPhase ph = dgrad_phase(g, phase);
  const int m0 = blockIdx.y * Cfg::BM, n0 = blockIdx.x * Cfg::BN;
  if (n0 >= ph.Ngemm) return;  // the grid covers the largest phase; the whole block leaves together
  const int k_begin = slice * g.split_len, k_end = slice_end(ph.Kred, g.split_len, k_begin);
  // The phase's A: [Kred of the phase][Cg] in the group's block of the weight copy (see above).
  const int a_off = (grp * g.RS + dgrad_phase_tap_offset(g, phase / g.sw, phase % g.sw, ph.cnt_r)) * g.Kg * g.Cg;
  const float* dyg = dy + grp * g.Kg * g.PQ;

  float acc[Cfg::TM][Cfg::TN] = {};
  if (k_end > k_begin) {  // else this slice (or the whole phase) has no taps: the tile is zeros
    DgradWeightLoader<Cfg> la;
    std::conditional_t<kVecDy, PlaneVecLoader<Cfg, true>, DgradGatherLoader<Cfg>> lb;
    la.init(g, a_off, m0, k_begin, tid);
    if constexpr (kVecDy)
      lb.init(g, n0, k_begin, tid);
    else
      lb.init(g, ph, n0, k_begin, tid);
    gemm::mainloop<Cfg>(
        sm, k_begin, k_end,
        [&] {
          la.load(wt, g, k_end);
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
  // The GEMM reads the weight copy (see above), made first on the same stream; w itself when R*S == 1.
  float* copy = nullptr;
  float* out = gemm_target(ex, op, ConvOp::backward_data, p, plan, dx, &copy);
  if (copy) launch_dgrad_weight_copy(ex, g, w, copy);
  const float* wt = copy ? copy : w;
  const bool unit_stride = g.sh == 1 && g.sw == 1;  // one phase: its columns are the plain pixels
  g.vec_out = unit_stride && g.HW % 4 == 0 && aligned16(out);
  const bool vec_dy = unit_stride && g.R == 1 && g.S == 1 && g.ph == 0 && g.pw == 0 && g.PQ % 4 == 0 && aligned16(dy);
  with_tile(plan, [&](auto cfg) {
    using Cfg = decltype(cfg);
    const dim3 grid = gemm_grid<Cfg>(op, g, p.groups * p.stride_h * p.stride_w);
    note_flop(conv_flop(p));
    if (vec_dy)
      FOVEA_LAUNCH((conv2d_dgrad_igemm_kernel<Cfg, true>), grid, Cfg::kThreads, 0, stream, g, dy, wt, out);
    else
      FOVEA_LAUNCH((conv2d_dgrad_igemm_kernel<Cfg, false>), grid, Cfg::kThreads, 0, stream, g, dy, wt, out);
  });
  if (plan.splits > 1) splitk_reduce(ex, out, g.splits, g.out_size, dx, nullptr, g.HW, g.C);
}

void conv2d_dgrad_weight_copy(const Exec& ex, const Conv2dParams& p, const float* w, float* wt) {
  constexpr const char* op = "conv2d_dgrad_weight_copy";
  p.validate(op);
  check_ptr(op, "w", w), check_ptr(op, "wt", wt);
  ConvGemmPlan plan;
  plan.bm = kConvGemmTiles[0][0], plan.bn = kConvGemmTiles[0][1];
  launch_dgrad_weight_copy(ex, make_geom(op, ConvOp::backward_data, p, plan), w, wt);
}

}  // namespace fovea::FOVEA_KERNEL_NS
