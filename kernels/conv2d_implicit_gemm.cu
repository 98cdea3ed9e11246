// Implicit-GEMM convolution: forward, data gradient and weight gradient as GEMMs whose operands are
// gathered from the NCHW tensors slab by slab, never materialised (see kernels/conv2d.h for the
// GEMM view of each op and kernels/gemm_tile.cuh for the shared-memory / register tiling).
//
// Cost model (H100: 66.9 TFLOP/s FP32, 3.35 TB/s HBM, 50 MB L2). A BM x BN block tile does
// 2 * BM * BN FLOPs per reduction element and loads BM + BN operand values for it: at 128x128 that
// is 64 bytes of (L1/L2) traffic per 1000 FLOPs. HBM sees each tensor about once: for the CIFAR
// layer 64->64 channels, 16x16, batch 64, 8.4 MB against 1.2 GFLOP, 140 FLOP/byte, far above the
// H100's 20 FLOP/byte balance point. So the kernels are designed against the FMA pipe, aiming at
// 70-80% of the FP32 peak on the 8x8-per-thread tiles: per slab of BK = 8 a thread does 512 FMAs
// and gathers 8 elements at ~8 integer instructions each (< 15% issue overhead); the narrow tiles
// that few output channels need (16/32 rows) pay with lower occupancy of the FMA pipe. Per op:
//   fprop  per output y: 2*C/g*R*S FLOPs; ~4*(C/g*R*S)*(1/BM + 1/BN) bytes from L2, 4 to HBM.
//   dgrad  per output dx: 2*K/g*R*S/(sh*sw) FLOPs on average: a strided dgrad runs one GEMM per
//          stride phase over only the taps that land on the stride grid (conv2d.h); same bytes.
//   wgrad  per output dw: 2*N*P*Q FLOPs; the N*P*Q reduction is split across blocks (split-K) and
//          the slices are added by splitk_reduce_kernel in slice order: 4*splits bytes per dw.
// Few output tiles (small spatial sizes) get split-K in fprop and dgrad as well (conv2d_igemm_plan).
// All sums have a fixed order: bitwise deterministic, no atomics.
#include "kernels/conv2d.h"

#include <climits>
#include <type_traits>

#include "kernels/gemm_tile.cuh"
#include "kernels/reduce.cuh"  // aligned16, grid_stride_blocks

namespace fovea::FOVEA_KERNEL_NS {

namespace {

using gemm::Radix3Walker;

// Geometry in 32-bit integers (make_geom checks that every tensor has fewer than 2^31 elements).
struct ConvGeom {
  int N, C, H, W, K, R, S, P, Q;
  int sh, sw, ph, pw, dh, dw;
  int Cg, Kg, RS, HW, PQ;
  int M, Ngemm, Kred;     // the op's GEMM, per group
  int splits, split_len;  // blockIdx.z = group * splits + slice (x phases for dgrad); slice s covers
                          // reduction elements [s*split_len, (s+1)*split_len)
  int64_t out_size;       // elements of the output; offset between slice partials
  bool vec_out;           // the output's pixel rows allow float4 stores
};

// A coordinate that fails every bounds test after adding any filter offset.
constexpr int kFar = -(1 << 29);

// End of the reduction slice that starts at k_begin (at most k_begin + split_len).
FOVEA_DEVICE_INLINE int slice_end(int kred, int split_len, int k_begin) {
  return kred - k_begin < split_len ? kred : k_begin + split_len;
}

// ---------------------------------------------------------------- operand loaders
// Each loader stages one BK x BM (A) or BK x BN (B) slab per call of load() + store(), walking the
// reduction in order from the block's first slab; load() leaves the values in registers so that
// the caller can issue it before the FMAs of the previous slab.

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

// B of a 1x1, stride-1, unpadded conv (fprop: x; dgrad: dy): B[row][n * plane + pix] = t[n][row][pix],
// a plain matrix per image. With plane % 4 == 0 four consecutive columns share an image, so each
// item is one 16-byte load and one 16-byte shared store. Every item of a thread has the same column.
template <class Cfg, bool kDgrad>
struct PlaneVecLoader {
  static constexpr int kQuads = Cfg::BN / 4, kItems = Cfg::BK * kQuads;
  static constexpr int kPerThread = (kItems + Cfg::kThreads - 1) / Cfg::kThreads;
  static_assert(Cfg::kThreads % kQuads == 0, "one column quad per thread");
  int coff;  // offset of t[n][0][pix]; -1 past the end
  int k;     // first reduction row of the next slab
  int plane;
  float4 reg[kPerThread] = {};  // threads past kItems keep zeros (never stored)

  FOVEA_DEVICE_INLINE void init(const ConvGeom& g, int n0, int k_begin, int tid) {
    plane = kDgrad ? g.PQ : g.HW;
    const int channels = kDgrad ? g.K : g.C;
    const int col = n0 + (tid % kQuads) * 4;
    if (col < g.Ngemm) {
      const int n = col / plane;
      coff = n * channels * plane + (col - n * plane);
    } else {
      coff = -1;
    }
    k = k_begin;
  }
  FOVEA_DEVICE_INLINE void load(const float* __restrict__ t, const ConvGeom&, int k_end) {
#pragma unroll
    for (int l = 0; l < kPerThread; ++l) {
      const int v = threadIdx.x + l * Cfg::kThreads;
      if (kItems % Cfg::kThreads != 0 && v >= kItems) break;
      const int row = k + v / kQuads;
      reg[l] = make_float4(0.f, 0.f, 0.f, 0.f);
      if (coff >= 0 && row < k_end) reg[l] = *reinterpret_cast<const float4*>(t + coff + row * plane);
    }
    k += Cfg::BK;
  }
  template <int LD>
  FOVEA_DEVICE_INLINE void store(float (&S)[Cfg::BK][LD], int tid) const {
#pragma unroll
    for (int l = 0; l < kPerThread; ++l) {
      const int v = tid + l * Cfg::kThreads;
      if (kItems % Cfg::kThreads != 0 && v >= kItems) break;
      *reinterpret_cast<float4*>(&S[v / kQuads][(v % kQuads) * 4]) = reg[l];
    }
  }
};

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

// ---------------------------------------------------------------- main loop and epilogue

// Writes the register tile: row m is channel ch0 + m (valid while m < rows), at out[col_offset(col) +
// channel * chan_stride] for the columns col < cols. float4 stores when `vec` (the launcher checked that
// four consecutive columns from a multiple of 4 are four consecutive floats, 16-byte aligned).
template <class Cfg, class ColOffset>
FOVEA_DEVICE_INLINE void store_tile(const float (&acc)[Cfg::TM][Cfg::TN], float* __restrict__ out,
                                    const float* __restrict__ bias, int ch0, int rows, int n0, int cols,
                                    int chan_stride, bool vec, int tm, int tn, ColOffset col_offset) {
  float bv[Cfg::TM];
#pragma unroll
  for (int i = 0; i < Cfg::TM; ++i) {
    const int m = gemm::tile_row<Cfg>(tm, i);
    bv[i] = bias && m < rows ? bias[ch0 + m] : 0.0f;
  }
  out += int64_t(ch0) * chan_stride;
#pragma unroll
  for (int j4 = 0; j4 < Cfg::TN; j4 += 4) {
    const int col = n0 + gemm::tile_col<Cfg>(tn, j4);
    if (vec) {
      if (col >= cols) continue;
      float* o = out + col_offset(col);
#pragma unroll
      for (int i = 0; i < Cfg::TM; ++i) {
        const int m = gemm::tile_row<Cfg>(tm, i);
        if (m < rows)
          *reinterpret_cast<float4*>(o + int64_t(m) * chan_stride) =
              make_float4(acc[i][j4] + bv[i], acc[i][j4 + 1] + bv[i], acc[i][j4 + 2] + bv[i], acc[i][j4 + 3] + bv[i]);
      }
    } else {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        if (col + e >= cols) break;
        float* o = out + col_offset(col + e);
#pragma unroll
        for (int i = 0; i < Cfg::TM; ++i) {
          const int m = gemm::tile_row<Cfg>(tm, i);
          if (m < rows) o[int64_t(m) * chan_stride] = acc[i][j4 + e] + bv[i];
        }
      }
    }
  }
}

// ---------------------------------------------------------------- kernels

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

// ---------------------------------------------------------------- host side

using Tile128x128 = gemm::TileConfig<128, 128, kConvGemmBK, 8, 8>;  // 256 threads
using Tile64x128 = gemm::TileConfig<64, 128, kConvGemmBK, 8, 8>;    // 128 threads
using Tile32x128 = gemm::TileConfig<32, 128, kConvGemmBK, 4, 8>;    // 128 threads
using Tile16x128 = gemm::TileConfig<16, 128, kConvGemmBK, 4, 8>;    // 64 threads
using Tile64x64 = gemm::TileConfig<64, 64, kConvGemmBK, 8, 4>;      // 128 threads
using Tile32x64 = gemm::TileConfig<32, 64, kConvGemmBK, 4, 4>;      // 128 threads

// Calls f(Cfg{}) for the plan's tile (the list must match kConvGemmTiles in conv2d.h).
template <class F>
void with_tile(const ConvGemmPlan& plan, F&& f) {
  if (plan.bm == 128 && plan.bn == 128) return f(Tile128x128{});
  if (plan.bm == 64 && plan.bn == 128) return f(Tile64x128{});
  if (plan.bm == 32 && plan.bn == 128) return f(Tile32x128{});
  if (plan.bm == 16 && plan.bn == 128) return f(Tile16x128{});
  if (plan.bm == 64 && plan.bn == 64) return f(Tile64x64{});
  if (plan.bm == 32 && plan.bn == 64) return f(Tile32x64{});
  FOVEA_FAIL("conv2d implicit GEMM: no kernel for tile ", plan.bm, "x", plan.bn);
}

ConvGemmPlan resolve_plan(const char* op, ConvOp which, const Conv2dParams& p, const ConvGemmPlan& requested) {
  if (requested.bm == 0 && requested.bn == 0) return conv2d_igemm_plan(which, p);
  FOVEA_CHECK(conv2d_igemm_tile_supported(requested.bm, requested.bn), op, ": tile ", requested.bm, "x", requested.bn,
              " is not one of the tiles in kConvGemmTiles");
  return conv2d_igemm_normalize(which, p, requested);
}

ConvGeom make_geom(const char* op, ConvOp which, const Conv2dParams& p, const ConvGemmPlan& plan) {
  auto check32 = [&](const char* what, int64_t n) {
    FOVEA_CHECK(n < INT_MAX, op, ": ", what, " has ", n,
                " elements; the implicit-GEMM kernels index with 32 bits (< 2^31 elements): use ConvAlgo::direct");
  };
  check32("x", p.x_size()), check32("y", p.y_size()), check32("w", p.w_size());
  const ConvGemmShape s = conv2d_gemm_shape(which, p);
  FOVEA_CHECK(s.batches <= 65535, op, ": ", p.groups, " groups",
              (which == ConvOp::backward_data ? " x stride phases" : ""), " exceed the grid limit of 65535");
  ConvGeom g;
  g.N = int(p.N), g.C = int(p.C), g.H = int(p.H), g.W = int(p.W), g.K = int(p.K), g.R = int(p.R), g.S = int(p.S);
  g.P = int(p.P()), g.Q = int(p.Q());
  g.sh = int(p.stride_h), g.sw = int(p.stride_w), g.ph = int(p.pad_h), g.pw = int(p.pad_w);
  g.dh = int(p.dil_h), g.dw = int(p.dil_w);
  g.Cg = int(p.C_per_group()), g.Kg = int(p.K_per_group());
  g.RS = g.R * g.S, g.HW = g.H * g.W, g.PQ = g.P * g.Q;
  g.M = int(s.M), g.Ngemm = int(s.N), g.Kred = int(s.Kred);
  g.splits = int(plan.splits);
  g.split_len = plan.splits > 1 ? int(conv2d_igemm_split_len(s, plan.splits)) : g.Kred;
  g.out_size = conv2d_output_size(which, p);
  g.vec_out = false;
  return g;
}

// Where the GEMM writes: the output itself, or the workspace partials when the reduction is split.
float* gemm_target(const char* op, ConvOp which, const Conv2dParams& p, const ConvGemmPlan& plan, float* out,
                   void* workspace, size_t workspace_bytes) {
  if (plan.splits == 1) return out;
  const size_t need = conv2d_igemm_workspace_bytes(which, p, plan);
  FOVEA_CHECK(workspace != nullptr && workspace_bytes >= need, op, ": split-K over ", plan.splits,
              " slices needs a workspace of ", need, " bytes, got ", workspace_bytes, " at ", workspace,
              " (conv2d_workspace_bytes)");
  return static_cast<float*>(workspace);
}

void splitk_reduce(const ConvGeom& g, const float* ws, float* out, const float* bias, int64_t plane, int64_t channels,
                   StreamHandle stream) {
  constexpr int kBlock = 256;
  const int64_t n = g.out_size;
  if (n % 4 == 0 && plane % 4 == 0 && aligned16(ws) && aligned16(out)) {
    FOVEA_LAUNCH(splitk_reduce_vec4_kernel, grid_stride_blocks(n / 4, kBlock), kBlock, 0, stream, ws, g.splits, n / 4,
                 out, bias, plane, channels);
  } else {
    FOVEA_LAUNCH(splitk_reduce_kernel, grid_stride_blocks(n, kBlock), kBlock, 0, stream, ws, g.splits, n, out, bias,
                 plane, channels);
  }
}

// x: columns, y: rows of C, z: independent GEMMs (groups, dgrad phases) x reduction slices.
template <class Cfg>
dim3 gemm_grid(const char* op, const ConvGeom& g, int64_t batches) {
  const int64_t gy = (g.M + Cfg::BM - 1) / Cfg::BM;
  FOVEA_CHECK(gy <= 65535, op, ": ", g.M, " channels per group exceed the grid limit");
  return dim3(unsigned((g.Ngemm + Cfg::BN - 1) / Cfg::BN), unsigned(gy), unsigned(batches * g.splits));
}

void check_ptr(const char* op, const char* name, const void* ptr) {
  FOVEA_CHECK(ptr != nullptr, op, ": argument '", name, "' is null");
}

}  // namespace

void conv2d_forward_implicit_gemm(const Conv2dParams& p, const float* x, const float* w, const float* b, float* y,
                                  void* workspace, size_t workspace_bytes, StreamHandle stream,
                                  const ConvGemmPlan& requested) {
  constexpr const char* op = "conv2d_forward_implicit_gemm";
  p.validate(op);
  check_ptr(op, "x", x), check_ptr(op, "w", w), check_ptr(op, "y", y);
  const ConvGemmPlan plan = resolve_plan(op, ConvOp::forward, p, requested);
  ConvGeom g = make_geom(op, ConvOp::forward, p, plan);
  float* out = gemm_target(op, ConvOp::forward, p, plan, y, workspace, workspace_bytes);
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
  if (plan.splits > 1) splitk_reduce(g, out, y, b, g.PQ, g.K, stream);
}

void conv2d_backward_data_implicit_gemm(const Conv2dParams& p, const float* dy, const float* w, float* dx,
                                        void* workspace, size_t workspace_bytes, StreamHandle stream,
                                        const ConvGemmPlan& requested) {
  constexpr const char* op = "conv2d_backward_data_implicit_gemm";
  p.validate(op);
  check_ptr(op, "dy", dy), check_ptr(op, "w", w), check_ptr(op, "dx", dx);
  const ConvGemmPlan plan = resolve_plan(op, ConvOp::backward_data, p, requested);
  ConvGeom g = make_geom(op, ConvOp::backward_data, p, plan);
  float* out = gemm_target(op, ConvOp::backward_data, p, plan, dx, workspace, workspace_bytes);
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
  if (plan.splits > 1) splitk_reduce(g, out, dx, nullptr, g.HW, g.C, stream);
}

void conv2d_backward_filter_implicit_gemm(const Conv2dParams& p, const float* x, const float* dy, float* dw,
                                          void* workspace, size_t workspace_bytes, StreamHandle stream,
                                          const ConvGemmPlan& requested) {
  constexpr const char* op = "conv2d_backward_filter_implicit_gemm";
  p.validate(op);
  check_ptr(op, "x", x), check_ptr(op, "dy", dy), check_ptr(op, "dw", dw);
  const ConvGemmPlan plan = resolve_plan(op, ConvOp::backward_filter, p, requested);
  ConvGeom g = make_geom(op, ConvOp::backward_filter, p, plan);
  float* out = gemm_target(op, ConvOp::backward_filter, p, plan, dw, workspace, workspace_bytes);
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
  if (plan.splits > 1) splitk_reduce(g, out, dw, nullptr, g.Ngemm, g.K, stream);
}

// ---------------------------------------------------------------- dispatch by algorithm

void conv2d_forward(ConvAlgo algo, const Conv2dParams& p, const float* x, const float* w, const float* b, float* y,
                    void* workspace, size_t workspace_bytes, StreamHandle stream) {
  switch (algo) {
    case ConvAlgo::direct: return conv2d_forward_direct(p, x, w, b, y, stream);
    case ConvAlgo::implicit_gemm:
      return conv2d_forward_implicit_gemm(p, x, w, b, y, workspace, workspace_bytes, stream);
    case ConvAlgo::im2col_gemm: return conv2d_forward_im2col(p, x, w, b, y, workspace, workspace_bytes, stream);
  }
  FOVEA_FAIL("conv2d_forward: unknown algorithm ", int(algo));
}

void conv2d_backward_data(ConvAlgo algo, const Conv2dParams& p, const float* dy, const float* w, float* dx,
                          void* workspace, size_t workspace_bytes, StreamHandle stream) {
  switch (algo) {
    case ConvAlgo::direct: return conv2d_backward_data_direct(p, dy, w, dx, stream);
    case ConvAlgo::implicit_gemm:
      return conv2d_backward_data_implicit_gemm(p, dy, w, dx, workspace, workspace_bytes, stream);
    case ConvAlgo::im2col_gemm: return conv2d_backward_data_im2col(p, dy, w, dx, workspace, workspace_bytes, stream);
  }
  FOVEA_FAIL("conv2d_backward_data: unknown algorithm ", int(algo));
}

void conv2d_backward_filter(ConvAlgo algo, const Conv2dParams& p, const float* x, const float* dy, float* dw,
                            void* workspace, size_t workspace_bytes, StreamHandle stream) {
  switch (algo) {
    case ConvAlgo::direct: return conv2d_backward_filter_direct(p, x, dy, dw, stream);
    case ConvAlgo::implicit_gemm:
      return conv2d_backward_filter_implicit_gemm(p, x, dy, dw, workspace, workspace_bytes, stream);
    case ConvAlgo::im2col_gemm: return conv2d_backward_filter_im2col(p, x, dy, dw, workspace, workspace_bytes, stream);
  }
  FOVEA_FAIL("conv2d_backward_filter: unknown algorithm ", int(algo));
}

}  // namespace fovea::FOVEA_KERNEL_NS
