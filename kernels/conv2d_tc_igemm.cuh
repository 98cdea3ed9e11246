// Implicit-GEMM convolutions on the tensor cores (kernels/conv2d_tc.h): fprop, dgrad and wgrad on NHWC activations
// and KRSC filters, at TF32 (FP32 tensors), BF16 or FP16 (16-bit tensors) with FP32 accumulation and the output
// rounded once. The kernel templates live in this header so that tests can instantiate them with a planted bug
// (tests/tc_gemm_planted_kernels.cu); kernels/conv2d_tc_igemm.cu instantiates the correct ones.
//
// Design (model: CUTLASS's SM80 implicit-GEMM convolution, include/cutlass/conv/threadblock/
// implicit_gemm_multistage.h and its tile access iterators conv2d_fprop_activation_tile_access_iterator_analytic.h
// (per-thread row coordinates decoded once, one predicate per access) and ..._optimized.h (the per-k-tile advance
// precomputed, no division in the main loop); the ideas, not the code).
// fprop of group g is the GEMM
//     y[m][g Kg + k] = sum over (r, s, c) of A[m][(r, s, c)] * B[k][(r, s, c)],   m = (n, p, q), k < Kg,
// where A[m][(r, s, c)] = x[n][p stride_h - pad_h + r dil_h][q stride_w - pad_w + s dil_w][g Cg + c] (zero outside
// the image) is never formed: each k-tile of A is gathered from x as it is staged. B is the filter as stored: Kg rows
// of R S Cg elements, k-contiguous. dgrad is the same kernel with the other index map (Pass::dgrad): m = (n, h, w)
// over dx, the reduction over (r, s, k), A gathered from dy at ((h + pad_h - r dil_h) / stride_h, ...) where that
// division is exact and inside dy, B the filter rearranged as [g][c][r][s][k] (kernels/conv2d_tc_igemm.cu). A stride
// above 1 (model: CUTLASS's strided dgrad, the conv::StrideSupport::kStrided specialization of its dgrad tile
// iterators, and our FP32 kernels/conv2d_igemm_dgrad.cu) splits dx into stride_h x stride_w phases: phase
// (ah, aw) holds the pixels with (h + pad_h) mod stride_h = ah (and likewise w), which only the taps with
// r dil_h mod stride_h = ah reach, each at a whole dy pixel (dgrad_phase_axis). Each phase is one launch of this
// kernel as a dgrad at unit stride over its own taps (every step-th tap, step = stride / gcd(stride, dil): at most
// ceil(R / step) per axis), with pad and dilation rewritten so that dy's row is base + i - j dstep, its B rows that
// phase's block of the rearranged filter, its output rows placed in dx by OutRows; a phase no tap reaches writes
// zeros. No zero taps are gathered: the mma work is the useful R S / (stride_h stride_w) share, up to the phases' tile
// rounding (TcConvEmu.StridedDgradRunsOnlyTheTapsOfEachPhase). Each output's sum runs over its taps in the old order
// with the zero terms left out (the k-steps may group them differently: the last bits may differ from the zero-
// gathering kernel; exact operands give the reference's bits). Unit stride is the one phase with every tap: the same
// launch as without phases. wgrad: below.
// The block tile, warps, pipeline, ldmatrix fragments, XOR-swizzled shared layout (free of bank conflicts, argued
// there) and warp-level mma are the multistage GEMM's (kernels/tc_gemm_multistage.cuh, multistage_mainloop: one
// 128 x kBN output tile per block, 4 warps of 64 x kBN / 2, 3 stages of 128-byte k-tiles). The tile width kBN is
// chosen on the host from the GEMM's columns per group (conv_tile_n): 32 when Kg (dgrad: Cg) <= 32, 64 when <= 64,
// else 128. A narrow tile is the same warps and k-steps with fewer n8 mma tiles per warp (64-wide: 4 instead of 8;
// 32-wide: 2, one ldmatrix.x4 of B per k-step) and a 64- or 32-row B k-tile (the same copy plan and swizzle, 4 or 2
// copies per thread): every output adds the same mma k-steps in the same order, so every width gives the same bits
// (tests: TcConv.NarrowTileEqualsTheWideTileBitwise). What differs from the GEMM is the staging of A:
//   - cp.async path (the gathered tensor's group channels Tg a multiple of 16 bytes' worth of elements: 8 for
//     BF16/FP16, 4 for TF32; 16-byte aligned): the reduction index (r, s, c) runs c fastest, so a 16-byte chunk of a
//     k-tile is 8 (4) consecutive channels of one pixel: one 16-byte cp.async from NHWC memory, with src-size 0
//     (zero fill) where the pixel falls in the padding, outside the image, past the reduction or past M. A thread
//     copies one chunk position of 8 rows (16 apart), as the GEMM's copy plan (ActivationPlan): the (n, oh, ow) of
//     its rows and the tap (r, s) and channel of its chunk are decoded once per block, at the block's first k-tile
//     (divisions); then the walk advances the chunk's (r, s, c) by kBK with precomputed steps and one carry per digit,
//     and moves every row's pixel (h, w) and offset in T by the same deltas: per copy two bounds checks and an
//     address, per k-tile and row three adds, no division.
//   - element path (any channel count, e.g. the first layer's C = 3, or unaligned data): element loads and shared
//     stores at the same point of the pipeline, consecutive threads along c. Correct, not fast: every element is
//     decoded on its own and the tensor cores wait for the loads.
//   - B (the filter rows) by 16-byte cp.async when its rows are 16-byte aligned (R S Tg a multiple of 8 or 4
//     elements), else by element loads (the GEMM's copy_tile / load_tile).
// Epilogue: out = from_float(acc + b[col]), b (FP32, fprop only, may be null) first rounded to the output type (the
// reference reads the bias as a value of the output type), from registers.
// Split-K (as the GEMM's and wgrad's: kernels/tc_gemm_multistage.cuh): where the output has few block tiles and the
// reduction many k-tiles (ResNet-9's 4 x 4 layers, 512 -> 512, at batch 1..8: 4 tiles of 128 x 128 on a GPU of 108-132
// SMs, 72 BF16 k-tiles), the k-tiles are cut into S parts, S = ops::conv2d_tc_igemm_splits (kernels/conv2d_tc.h:
// tc_split_k_parts of tiles = M tiles x column tiles (at conv_tile_n's width) x groups and k-tiles = ceil(Kred / kBK);
// the shape only, never the device; there 9 parts of 8). Grid z = groups x S; part s stages k-tiles [s per, (s + 1)
// per) (the activation plan starts at its first, kt0) and writes its FP32 sums, unscaled and without the bias, to
// partial[s][M][ldo] in the workspace, in the output's layout; split_k_reduce adds the parts in order 0, 1, ..., adds
// the bias rounded to the output type and rounds once: out = round(sum + round(b)), the reference's semantics. S = 1
// (every shape with 264 or more tiles or under 16 k-tiles) takes the unsplit epilogue: the same bits as before split-K.
//
// Cost model, per block and k-tile: the GEMM's (kernels/tc_gemm_multistage.cuh): 16 KiB + kBN x 128 B by cp.async,
// 64 + kBN / 2 ldmatrix.x4, 4 kBN mma.sync (128-wide: 32 KiB, 128, 512; 64-wide: 24 KiB, 96, 256; 32-wide: 20 KiB,
// 80, 128); plus the A addressing, ~9 instructions per 16-byte copy (two bounds checks, the address and its select;
// the row's 3 adds). The GEMM is N P Q by Kg by R S Cg (dgrad: N H W by Cg by R S Kg). Below kBN columns the block
// computes kBN - Kg columns of zeros: conv_tile_n takes the narrowest width that holds Kg, so at ResNet CIFAR's Kg =
// 16, 32, 64 the tile is 32, 32, 64 wide and issues 1/4, 1/4, 1/2 the mma of the 128-wide one (useful: half at Kg = 16,
// all at 32 and 64), checked on the emulator's mma.sync count (TcConvEmu.MmaCountFollowsTheTileWidth). The A k-tile
// and its addressing are the same at every width, so a narrow tile spends more A staging per mma: 64 FLOP per staged
// byte at 128, 43 at 64, 26 at 32. Against the wider tile at the same Kg (<= 32) the 32-wide one loses nothing: the
// same A traffic and gather instructions, the same useful mma, half the mma, fewer ldmatrix, fewer registers (124-126
// against 160-166, ptxas, library, sm_80/sm_90, no spills) and 60 instead of 72 KiB of shared memory (still 3 blocks
// per H100 SM, 2 per A100 SM). Its k-tile in SASS (sm_80, element paths compiled out, as below): BF16 fprop 224
// instructions (sm_90 227), of which 154 integer, 32 HMMA (14%), 20 LDSM, 10 LDGSTS; against 279 for the 64-wide tile.
// What it buys depends on what bounds the loop: per warp and k-tile the 64-wide tile issues 279 instructions and 64
// HMMA.16816, the 32-wide one 224 and 32. An A100 SM sub-partition retires one HMMA.16816 per ~8 cycles (312 TFLOP/s,
// 108 SMs, 1.41 GHz): the 64-wide loop is bound by its 512 tensor cycles, the 32-wide one by ~256 tensor / 224 issue,
// up to 2x. On an H100 (~4 cycles per HMMA at the dense peak, less with mma.sync) both loops are bound by issue (279
// against 256 tensor cycles; 224 against 128): ~1.25x, and the gather's integer work (69% of the 32-wide loop) is the
// limit; amortizing it over more mma (a taller M tile per block at Kg = 16, or several images' rows per warp) would be
// the next step: not done. A GPU run decides (scripts/gpu_check.sh's precision rows). Global traffic: x is read about R
// S / (stride_h stride_w) times (once per filter tap, from L2 after the first), the filter once per block. Split-K adds
// S M ldo 4 bytes of partials written and read back (S M N 4 x 2 bytes of traffic, from L2 at these sizes: ResNet-9's 4
// x 4 layer at batch 8, M = 128, N = 512, 9 parts: 2.25 MiB each way) and a second, memory-bound launch; it buys S
// times the blocks (there 36 instead of 4, each 8 k-tiles instead of 72). The staging per k-tile is unchanged: each
// part decodes its rows' plan once, as the unsplit block does.
//
// Machine code (nvcc 13, ../shared/tools/sass/sass.sh; README, "Tensor cores"; registers from ptxas -v; measured on
// commit 604a52a): 128-wide 239-244 registers, 64-wide 160-166, no spills, on sm_80 and sm_90 (wgrad 194-228, its fast
// path 224-228). At 128 threads a 64-wide block takes ~21 K registers and 72 KiB of shared memory: 3 blocks per SM on
// an H100 (2 on an A100's 164 KiB), against 2 (1) of the 128-wide tile. One k-tile of the cp.async path, read from the
// SASS of a build with the element paths compiled out (async_a and async_b taken as true; the library's static loops
// also hold the untaken element paths: sm_80 BF16 fprop 1104 instructions, dgrad 1098), sm_80 (sm_90): BF16 fprop 388
// (396) instructions, of which 203 integer, 128 HMMA.16816.F32.BF16 (33%), 32 LDSM.16.M88.4, 16 LDGSTS.E.BYPASS.128
// (A's with the zero-fill predicate, B's .ZFILL); dgrad the same 388 (396): every dgrad launch is a unit-stride phase,
// one walk; 64-wide 279 (281), 170 integer, 64 HMMA (23%); TF32 fprop 668 (678; 128 HMMA.1688.F32.TF32, 19%: cvt.rna
// on every fragment register), 64-wide 486 (488). Before the incremental walk (commit 36ad30a): 636, 681 (dgrad), 514,
// 894, 721. The multistage GEMM's k-tile is about 400: the gather's addressing no longer costs more than the GEMM's
// plain copies. Per A copy about 6 instructions remain (two bounds checks, the address, the select of a safe source for
// a zero-filled copy), plus the row's 3 adds per k-tile. At the 64-wide tile integer instructions are still 61% of the
// loop: at Kg = 16 the kernel may still be bound by issue rather than by the tensor cores (a GPU run decides).
//
// Order of the sums: each output adds its mma k-steps in reduction order; where fprop or dgrad split K, each part adds
// its own k-steps in order from zero and the parts are added in part order (a different order from the unsplit sum:
// the last bits may differ; on exact operands both equal the reference), fixed by the shape; wgrad's split-K partials
// likewise. Nothing depends on scheduling: bitwise the same run to run and under every emulator schedule.
#pragma once
#include <type_traits>

#include "kernels/conv2d_tc.h"  // conv2d_tc_igemm_splits
#include "kernels/tc_gemm_multistage.cuh"
#include "layers/ops/conv2d.h"

namespace fovea::FOVEA_KERNEL_NS::tcg {

// Which convolution the gathered operand A serves: its index map from an output row and a filter tap to a pixel.
//   fprop: A[(n, p, q)][(r, s, c)] = x[n][p stride_h - pad_h + r dil_h][q stride_w - pad_w + s dil_w][g Cg + c]
//   dgrad: A[(n, h, w)][(r, s, k)] = dy[n][h + pad_h - r dil_h][w + pad_w - s dil_w][g Kg + k], zero outside dy (the
//          transposed convolution at unit stride; a strided dgrad is launched as unit-stride phases whose pad and
//          dilation are rewritten: launch_conv_dgrad in kernels/conv2d_tc_igemm.cu, checked on the host)
enum class Pass : int { fprop, dgrad };

// The GEMM view of a pass, checked to fit int32 (element counts below 2^31) by the launchers.
struct ConvArgs {
  int TH, TW, TC, Tg;  // the gathered tensor T (x, or dy), NHWC; a group's slice is Tg channels from g Tg
  int OH, OW;          // output rows m = (n, oh, ow) over OH x OW (P x Q, or H x W)
  int R, S, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
  int cols;  // GEMM columns per group (Kg, or Cg): B is `cols` rows of Kred elements per group
  int ldo;   // output channels (K, or C): the output is M rows of ldo, the group's columns from g cols
  int M;     // N OH OW
  int Kred;  // R S Tg
};

// Where the GEMM's output rows lie in the output tensor: row m = (n, i, j) over N x OH x OW is pixel
// (h0 + sh i, w0 + sw j) of an H x W image n, M = N H W rows in all. The identity {0, 0, 1, 1, OH, OW, M} except for a
// stride phase of dgrad (launch_conv_dgrad in kernels/conv2d_tc_igemm.cu: the pixels h = h0 + stride_h i, w = w0 +
// stride_w j of dx).
struct OutRows {
  int h0, w0, sh, sw, H, W, M;
};
inline OutRows identity_rows(const ConvArgs& c) {
  return {0, 0, 1, 1, c.OH, c.OW, c.M};
}

// Whether coordinate t of the gathered tensor lies inside [0, extent): the one check of every pass, since dgrad runs at
// unit stride only (a stride phase, launch_conv_dgrad in kernels/conv2d_tc_igemm.cu), where dy's pixel is the row's
// base plus the tap's offset.
FOVEA_DEVICE_INLINE bool inside(int t, int extent) {
  return unsigned(t) < unsigned(extent);
}

// The row's base for output coordinate o: T's pixel is base + tap_offset (dgrad: at unit stride, stride unused).
template <Pass kPass>
FOVEA_DEVICE_INLINE int row_base(int o, int stride, int pad) {
  return kPass == Pass::fprop ? o * stride - pad : o + pad;
}
template <Pass kPass>
FOVEA_DEVICE_INLINE int tap_offset(int r, int dil) {
  return kPass == Pass::fprop ? r * dil : -r * dil;
}

// A walk (ActivationPlan, WgradPlan) at k-tile `at` asked for k-tile kt: they must agree (stage() runs once per
// k-tile, in order); the emulator traps where they do not. Then the walk moves on.
FOVEA_DEVICE_INLINE void walk_step(int& at, int kt) {
#if defined(FOVEA_EMU)
  if (kt != at) __trap();  // the walk is at another k-tile: stage() called out of order
  ++at;
#else
  (void)at, (void)kt;
#endif
}

// One thread's share of an A k-tile on the cp.async path: chunk position `chunk` of rows row0 + 16 i, and the walk
// of the chunk's reduction index kk = kt kBK + chunk kChunk over the k-tiles (model: CUTLASS's "optimized" SM80
// activation iterators, which precompute per-k-tile advances; the idea, not the code). kk is kept as (r, s, ch), its
// tap and first channel (Tg is a multiple of the chunk: one tap per chunk), and a k-tile advances it by
// kBK = (step_r S + step_s) Tg + step_c with one carry per digit: no division after the first k-tile. Each row keeps
// its tap's pixel as coordinates (h, w) and as an offset in T, moved by the same deltas for every row.
template <class P>
struct ActivationPlan {
  static constexpr int kRowStep = Ms<P>::kThreads / 8;
  static constexpr int kCopies = Ms<P>::kTile / kRowStep;
  int chunk, row0;
  int h[kCopies];         // the row's base plus the tap's offset (row_base): far below 0 for a row past M
  int w[kCopies];         //
  unsigned off[kCopies];  // ((n TH + h) TW + w) TC + t_off + ch, modulo 2^32 (h, w may be outside T)
  int r, s, ch;           // the next k-tile's kk: r >= R past the reduction
  int step_r, step_s, step_c;
  int kt;  // the k-tile the walk is at (walk_step; read on the emulator only)
};

// The tap's part of a row's offset (the row's h and w moved by dh, dw): (dh TW + dw) TC + ch.
FOVEA_DEVICE_INLINE unsigned tap_delta(const ConvArgs& c, int dh, int dw, int ch) {
  return (unsigned(dh) * c.TW + unsigned(dw)) * c.TC + unsigned(ch);
}

// The plan of thread tid for the block's rows from m0 (group channels from t_off), its walk at k-tile kt0 (the
// divisions of the walk happen here, once).
template <class P, Pass kPass>
FOVEA_DEVICE_INLINE ActivationPlan<P> activation_plan(const ConvArgs& c, int m0, int t_off, int tid, int kt0 = 0) {
  using A = ActivationPlan<P>;
  constexpr int kBK = Ms<P>::kBK;
  A a;
  a.row0 = tid / 8, a.chunk = tid % 8;
  // S = 0 (an empty reduction, as a dgrad stride phase that no tap reaches): nothing is staged; decode as S = 1.
  const int S = c.S > 0 ? c.S : 1;
  const int kk = kt0 * kBK + a.chunk * Ms<P>::kChunk, rs = kk / c.Tg;
  a.r = rs / S, a.s = rs - a.r * S, a.ch = kk - rs * c.Tg;
  const int q = kBK / c.Tg;
  a.step_r = q / S, a.step_s = q - a.step_r * S, a.step_c = kBK - q * c.Tg;
  const int dh = tap_offset<kPass>(a.r, c.dil_h), dw = tap_offset<kPass>(a.s, c.dil_w);
  const int OHW = c.OH * c.OW;
#pragma unroll
  for (int i = 0; i < A::kCopies; ++i) {
    const int m = m0 + a.row0 + i * A::kRowStep;
    const int n = m / OHW, o = m - n * OHW, oh = o / c.OW, ow = o - oh * c.OW;
    const int h0 = row_base<kPass>(oh, c.stride_h, c.pad_h), w0 = row_base<kPass>(ow, c.stride_w, c.pad_w);
    a.h[i] = (m < c.M ? h0 : -(1 << 29)) + dh;
    a.w[i] = w0 + dw;
    a.off[i] = ((unsigned(n) * c.TH + unsigned(h0)) * c.TW + unsigned(w0)) * c.TC + unsigned(t_off) +
               tap_delta(c, dh, dw, a.ch);
  }
  a.kt = kt0;
  return a;
}

// Issues the cp.async copies of A's k-tile kt into S, zero-filling outside T, past the reduction and past M, and
// advances the walk to k-tile kt + 1: called once per k-tile, in order, from the plan's kt0. Per copy two bounds
// checks and the address (fprop, and dgrad, which runs at unit stride: the pixel's offset is linear in the tap's); per
// k-tile and row, three adds.
template <class P, Pass kPass>
FOVEA_DEVICE_INLINE void copy_activation_tile(unsigned char* S, ActivationPlan<P>& a, const ConvArgs& c,
                                              const typename P::Raw* __restrict__ t, int kt) {
  using A = ActivationPlan<P>;
  walk_step(a.kt, kt);
  const bool k_in = a.r < c.R;
  const int dh = tap_offset<kPass>(a.r, c.dil_h), dw = tap_offset<kPass>(a.s, c.dil_w);
  unsigned char* dst = S + swizzle(a.row0, a.chunk);  // + 2048 bytes per copy: the same swizzle (16 rows apart)
#pragma unroll
  for (int i = 0; i < A::kCopies; ++i) {
    const bool in = k_in && inside(a.h[i], c.TH) && inside(a.w[i], c.TW);
    tc::cp_async<16>(dst + i * A::kRowStep * 128, in ? t + a.off[i] : t, in ? 16 : 0);
  }
  const int ch = a.ch;
  a.ch += a.step_c, a.s += a.step_s, a.r += a.step_r;
  if (a.ch >= c.Tg) a.ch -= c.Tg, ++a.s;
  if (a.s >= c.S) a.s -= c.S, ++a.r;
  const int ddh = tap_offset<kPass>(a.r, c.dil_h) - dh, ddw = tap_offset<kPass>(a.s, c.dil_w) - dw;
  const unsigned doff = tap_delta(c, ddh, ddw, a.ch - ch);
#pragma unroll
  for (int i = 0; i < A::kCopies; ++i) a.h[i] += ddh, a.w[i] += ddw, a.off[i] += doff;
}

// Stages A's k-tile kt by element loads and shared stores (any Tg, any alignment), zeros where the copy path fills.
template <class P, Pass kPass>
FOVEA_DEVICE_INLINE void load_activation_tile(unsigned char* S, const ConvArgs& c,
                                              const typename P::Raw* __restrict__ t, int t_off, int m0, int kt,
                                              int tid) {
  using Raw = typename P::Raw;
  using M = Ms<P>;
  const int OHW = c.OH * c.OW;
  for (int e = tid; e < M::kTile * M::kBK; e += M::kThreads) {
    const int row = e / M::kBK, k = e % M::kBK;
    const int m = m0 + row, kk = kt * M::kBK + k;
    Raw v = Raw(0);
    if (m < c.M && kk < c.Kred) {
      const int n = m / OHW, o = m - n * OHW, oh = o / c.OW, ow = o - oh * c.OW;
      const int rs = kk / c.Tg, ch = kk - rs * c.Tg, r = rs / c.S, s = rs - r * c.S;
      const int th = row_base<kPass>(oh, c.stride_h, c.pad_h) + tap_offset<kPass>(r, c.dil_h);
      const int tw = row_base<kPass>(ow, c.stride_w, c.pad_w) + tap_offset<kPass>(s, c.dil_w);
      if (inside(th, c.TH) && inside(tw, c.TW)) v = t[((n * c.TH + th) * c.TW + tw) * c.TC + t_off + ch];
    }
    *reinterpret_cast<Raw*>(S + swizzle(row, k / M::kChunk) + (k % M::kChunk) * int(sizeof(Raw))) = v;
  }
}

// out[row(m)][g cols + j] = sum over the reduction of A[m][.] B[j][.] (+ bias[g cols + j]) for the block's 128 x kBN
// tile, row(m) the output row of GEMM row m (OutRows). grid (M tiles, cols tiles, groups x splits), 128 threads,
// Ms<P, kBN>::kSmemBytes of dynamic shared memory; part s of a group takes k-tiles [s per, (s + 1) per) (none where
// that is past the reduction: the part writes zeros). splits == 1: the epilogue writes out; else the part's FP32 sums,
// unscaled and without the bias, to partial[s][rows.M][ldo] (split_k_reduce finishes out).
template <class P, Pass kPass, Plant kPlant, int kBN>
__global__ void __launch_bounds__(128)
    conv2d_tc_igemm_kernel(ConvArgs c, OutRows rows, bool async_a, bool async_b, int splits, int per,
                           const typename P::Raw* __restrict__ t, const typename P::Raw* __restrict__ b_rows,
                           const float* __restrict__ bias, typename P::Raw* __restrict__ out,
                           float* __restrict__ partial) {
  using Raw = typename P::Raw;
  using M = Ms<P, kBN>;
  FOVEA_DYNAMIC_SHARED(unsigned char, smem);

  const int tid = threadIdx.x;
  const int m0 = blockIdx.x * M::kTile, n0 = blockIdx.y * kBN;
  const int g = int(blockIdx.z) / splits, split = int(blockIdx.z) % splits;
  const int ktiles = (c.Kred + M::kBK - 1) / M::kBK, kt0 = split * per;
  const int tiles = ktiles - kt0 < per ? (ktiles - kt0 > 0 ? ktiles - kt0 : 0) : per;
  const int t_off = g * c.Tg, o_off = g * c.cols;
  const Raw* bg = b_rows + int64_t(o_off) * c.Kred;

  // multistage_mainloop stages k-tiles 0, 1, ... of the part once each, in order: plan_a's walk starts at the part's
  // first, kt0, and follows (checked on the emulator).
  ActivationPlan<P> plan_a = activation_plan<P, kPass>(c, m0, t_off, tid, kt0);
  const CopyPlan<P, kBN> plan_b = copy_plan<P, kBN>(bg, c.Kred, n0, c.cols, tid);
  auto stage = [&](unsigned char* S, int kt) {
    kt += kt0;
    if (async_a)
      copy_activation_tile<P, kPass>(S, plan_a, c, t, kt);
    else
      load_activation_tile<P, kPass>(S, c, t, t_off, m0, kt, tid);
    if (async_b)
      copy_tile<P>(S + M::kOperandBytes, plan_b, kt, c.Kred);
    else
      load_tile<P, kBN>(S + M::kOperandBytes, bg, c.Kred, false, n0, c.cols, kt, c.Kred, tid);
  };

  float acc[4][kBN / 16][4] = {};
  multistage_mainloop<P, kPlant>(smem, tiles, stage, acc);

  const int OHW = c.OH * c.OW;
  auto row = [&](int m) -> int64_t {  // OutRows: uniform branch, the identity everywhere but a dgrad stride phase
    if (rows.sh == 1 && rows.sw == 1) return m;
    const int n = m / OHW, o = m - n * OHW, i = o / c.OW, j = o - i * c.OW;
    return (int64_t(n) * rows.H + rows.h0 + rows.sh * i) * rows.W + rows.w0 + rows.sw * j;
  };
  if (splits > 1) {  // the part's FP32 sums, in the output's layout
    float* part = partial + int64_t(split) * rows.M * c.ldo;
    for_each_accumulator(acc, [&](int bm, int bn, float a) {
      const int m = m0 + bm, j = n0 + bn;
      if (m < c.M && j < c.cols) part[row(m) * c.ldo + o_off + j] = a;
    });
    return;
  }
  for_each_accumulator(acc, [&](int bm, int bn, float a) {
    const int m = m0 + bm, j = n0 + bn;
    if (m >= c.M || j >= c.cols) return;
    const float v = bias ? a + P::to_float(P::from_float(bias[o_off + j])) : a;
    out[row(m) * c.ldo + o_off + j] = P::from_float(v);
  });
}

inline void check_int32(const char* op, const Conv2dParams& p) {
  p.validate(op);
  constexpr int64_t kMax = INT32_MAX;
  FOVEA_CHECK(p.x_size() <= kMax && p.y_size() <= kMax && p.w_size() <= kMax, op, ": ", p.str(),
              ": tensors of 2^31 elements or more are not supported by the tensor-core convolution");
  FOVEA_CHECK(p.groups <= 65535, op, ": groups = ", p.groups, " is above the grid's 65535");
}

// The GEMM view of p for a pass (p checked).
template <Pass kPass>
ConvArgs conv_args(const char* op, const Conv2dParams& p) {
  check_int32(op, p);
  ConvArgs c;
  const bool f = kPass == Pass::fprop;
  c.TH = int(f ? p.H : p.P()), c.TW = int(f ? p.W : p.Q()), c.TC = int(f ? p.C : p.K);
  c.Tg = int(f ? p.C_per_group() : p.K_per_group());
  c.OH = int(f ? p.P() : p.H), c.OW = int(f ? p.Q() : p.W);
  c.R = int(p.R), c.S = int(p.S);
  c.stride_h = int(p.stride_h), c.stride_w = int(p.stride_w), c.pad_h = int(p.pad_h), c.pad_w = int(p.pad_w);
  c.dil_h = int(p.dil_h), c.dil_w = int(p.dil_w);
  c.cols = int(f ? p.K_per_group() : p.C_per_group()), c.ldo = int(f ? p.K : p.C);
  c.M = int(p.N) * c.OH * c.OW, c.Kred = c.R * c.S * c.Tg;
  return c;
}

// One axis of dgrad's stride phase a (0 <= a < stride): the dx pixels x with (x + pad) mod stride == a are x0 + stride
// i, i < count; the taps that reach them are those with r dil mod stride == a, r0 + step j for j < taps (taps 0: the
// phase receives none, its pixels are zeros); pixel i and tap j read dy at base + i - j dstep (exact: x0 + pad - r0 dil
// is a multiple of stride). Unit stride: the one phase x0 = 0, count X, r0 = 0, step 1, taps R, base pad, dstep dil.
struct DgradPhaseAxis {
  int x0, count, r0, step, taps, base, dstep;
};
FOVEA_HD_INLINE int gcd_int(int a, int b) {
  while (b) {
    const int t = a % b;
    a = b, b = t;
  }
  return a;
}
inline DgradPhaseAxis dgrad_phase_axis(int a, int pad, int stride, int dil, int R, int X) {
  DgradPhaseAxis p;
  p.x0 = ((a - pad) % stride + stride) % stride;
  p.count = p.x0 < X ? (X - p.x0 + stride - 1) / stride : 0;
  p.step = stride / gcd_int(stride, dil);  // r dil mod stride repeats every step taps
  p.r0 = -1;
  for (int r = 0; r < R && r < p.step && p.r0 < 0; ++r)
    if (r * dil % stride == a) p.r0 = r;
  p.taps = p.r0 < 0 ? 0 : (R - 1 - p.r0) / p.step + 1;
  if (p.r0 < 0) p.r0 = 0;
  p.base = (p.x0 + pad - p.r0 * dil) / stride;
  p.dstep = p.step * dil / stride;
  return p;
}
// Taps r < R of the phases before phase a along one axis (those with r dil mod stride < a): where phase a's filter
// rows start in dgrad's rearranged filter (filter_for_dgrad, kernels/conv2d_tc_igemm.cu).
FOVEA_HD_INLINE int dgrad_taps_before(int a, int R, int stride, int dil) {
  int n = 0;
  for (int r = 0; r < R; ++r) n += r * dil % stride < a;
  return n;
}

// The block tile's width for `cols` GEMM columns per group (K/g for fprop, C/g for dgrad): 32 up to 32 columns, 64 up
// to 64 (a wider tile would spend half or more of its mma on zero columns), else 128 (the most mma per byte staged:
// 512 per 32 KiB, against 256 per 24 KiB at 64 and 128 per 20 KiB at 32). The narrowest tile that holds the columns:
// it never adds zero columns, only staging per mma (see the cost model). A function of the shape only: the sums do not
// depend on it.
inline int conv_tile_n(int cols) {
  return int(ops::conv2d_tc_tile_n(cols));  // kernels/conv2d_tc.h: the split-K rule counts the same tiles
}

// P's precision (the split-K rule and the workspace are sized per precision: kernels/conv2d_tc.h).
template <class P>
constexpr Precision precision_of() {
  return std::is_same_v<P, Tf32> ? Precision::tf32 : std::is_same_v<P, Bf16> ? Precision::bf16 : Precision::fp16;
}

template <class P, Pass kPass, Plant kPlant, int kBN>
void launch_conv_igemm_tile(const char* op, const ConvArgs& c, const OutRows& rows, int groups, int splits,
                            const typename P::Raw* t, const typename P::Raw* b_rows, const float* bias,
                            typename P::Raw* out, float* partial, double flops, StreamHandle stream) {
  using M = Ms<P, kBN>;
  constexpr int kE = int(sizeof(typename P::Raw));
  // 16-byte chunks of channels: every pixel's group channels start 16-byte aligned.
  const bool async_a = aligned16(t) && (c.Tg * kE) % 16 == 0 && (c.TC * kE) % 16 == 0;
  const bool async_b = aligned16(b_rows) && (c.Kred * kE) % 16 == 0;
  const int ktiles = (c.Kred + M::kBK - 1) / M::kBK, per = (ktiles + splits - 1) / splits;
  FOVEA_CHECK(int64_t(groups) * splits <= 65535, op, ": groups x splits = ", int64_t(groups) * splits,
              " is above the grid's 65535");
  FOVEA_CHECK(splits == 1 || partial, op, ": split-K in ", splits, " parts needs its partials' workspace");
  // dgrad's gather assumes unit stride (launch_conv_dgrad in kernels/conv2d_tc_igemm.cu rewrites every strided dgrad
  // into unit-stride phases)
  FOVEA_CHECK(kPass == Pass::fprop || (c.stride_h == 1 && c.stride_w == 1), op, ": dgrad's implicit GEMM at stride ",
              c.stride_h, " x ", c.stride_w, ": only unit stride (one stride phase) is supported");
  const dim3 grid(unsigned((c.M + M::kTile - 1) / M::kTile), unsigned((c.cols + kBN - 1) / kBN),
                  unsigned(groups * splits));
  const cudaError_t err = cudaFuncSetAttribute(conv2d_tc_igemm_kernel<P, kPass, kPlant, kBN>,
                                               cudaFuncAttributeMaxDynamicSharedMemorySize, M::kSmemBytes);
  FOVEA_CHECK(err == cudaSuccess, op, ": cudaFuncSetAttribute(MaxDynamicSharedMemorySize, ", M::kSmemBytes,
              ") failed: ", cudaGetErrorString(err), " (the device needs ", M::kSmemBytes / 1024,
              " KiB of shared memory per block: sm_80+)");
  note_flop(flops);
  FOVEA_LAUNCH((conv2d_tc_igemm_kernel<P, kPass, kPlant, kBN>), grid, M::kThreads, M::kSmemBytes, stream, c, rows,
               async_a, async_b, splits, per, t, b_rows, bias, out, partial);
}

// The second launch of a split: the parts in order 0, 1, ..., the bias, one rounding; out is M rows of ldo.
template <class P>
void launch_conv_split_reduce(int splits, int64_t M, int ldo, const float* partial, const float* bias,
                              typename P::Raw* out, StreamHandle stream) {
  const int64_t n = M * ldo;
  FOVEA_LAUNCH(split_k_reduce<P>, split_k_reduce_grid(n), 256, 0, stream, partial, splits, n, M, int64_t(ldo),
               int64_t(ldo), n, 1.0f, 0.0f, bias, out);
}

// out (its rows placed by `rows`) = the pass's GEMM: t gathered (NHWC), b_rows the cols x Kred rows of each group,
// bias (FP32, may be null); the block tile 128 x conv_tile_n(cols). splits > 1 (ops::conv2d_tc_igemm_splits): the
// parts' FP32 sums to partial (splits x rows.M x ldo floats), for launch_conv_split_reduce.
template <class P, Pass kPass, Plant kPlant = Plant::none>
void launch_conv_igemm_parts(const char* op, const ConvArgs& c, const OutRows& rows, int groups, int splits,
                             const typename P::Raw* t, const typename P::Raw* b_rows, const float* bias,
                             typename P::Raw* out, float* partial, double flops, StreamHandle stream) {
  if (c.M == 0 || c.cols == 0) return;
  const int tile_n = conv_tile_n(c.cols);
  if (tile_n == 32)
    launch_conv_igemm_tile<P, kPass, kPlant, 32>(op, c, rows, groups, splits, t, b_rows, bias, out, partial, flops,
                                                 stream);
  else if (tile_n == 64)
    launch_conv_igemm_tile<P, kPass, kPlant, 64>(op, c, rows, groups, splits, t, b_rows, bias, out, partial, flops,
                                                 stream);
  else
    launch_conv_igemm_tile<P, kPass, kPlant, 128>(op, c, rows, groups, splits, t, b_rows, bias, out, partial, flops,
                                                  stream);
}

// The whole GEMM (rows: the identity), the reduce after it where it splits.
template <class P, Pass kPass, Plant kPlant = Plant::none>
void launch_conv_igemm(const char* op, const ConvArgs& c, int groups, int splits, const typename P::Raw* t,
                       const typename P::Raw* b_rows, const float* bias, typename P::Raw* out, float* partial,
                       double flops, StreamHandle stream) {
  if (c.M == 0 || c.cols == 0) return;
  launch_conv_igemm_parts<P, kPass, kPlant>(op, c, identity_rows(c), groups, splits, t, b_rows, bias, out, partial,
                                            flops, stream);
  if (splits > 1) launch_conv_split_reduce<P>(splits, c.M, c.ldo, partial, bias, out, stream);
}

// y (N P Q x K, NHWC) = conv(x (NHWC), w (KRSC)) + b at P's precision; b may be null. partial: the split-K partials
// (ops::conv2d_tc_igemm_partial_floats floats; may be null where that is 0).
template <class P, Plant kPlant = Plant::none>
void launch_conv_fprop(const char* op, const Conv2dParams& p, const typename P::Raw* x, const typename P::Raw* w,
                       const float* b, typename P::Raw* y, float* partial, StreamHandle stream) {
  const ConvArgs c = conv_args<Pass::fprop>(op, p);
  check_ptr(op, "x", x), check_ptr(op, "w", w), check_ptr(op, "y", y);
  const int splits = int(ops::conv2d_tc_igemm_splits(ConvOp::forward, precision_of<P>(), p));
  launch_conv_igemm<P, Pass::fprop, kPlant>(op, c, int(p.groups), splits, x, w, b, y, partial, p.flops(), stream);
}

// ------------------------------------------------------------------ wgrad
// dw[g Kg + k][(r, s, c)] = sum over m = (n, p, q) of dy[m][g Kg + k] * A[m][(r, s, c)] with A fprop's gather of x:
// the GEMM dy_g^T A_g, M = Kg, N = R S Cg, reduced over N P Q. Both operands are contiguous along M or N, not along
// the reduction. Two paths, chosen on the host (conv2d_tc_wgrad_fast):
//   - fast path (BF16/FP16, Kg and Cg multiples of 8, K and C too, x and dy 16-byte aligned; copy_wgrad_tiles): both
//     operands staged as they lie in memory, a k-tile = 64 reduction rows x 128 elements (256 bytes) per operand,
//     16 KiB each as on the k-major path, by 16-byte cp.async with zero fill (past N P Q, past Kg or R S Cg, taps in
//     the padding). Shared layout swizzle_t: chunk c (0..15) of row r at c ^ (r % 8): a cp.async phase (8 lanes: 8
//     chunks of one half row) and an ldmatrix phase (8 consecutive rows at one logical chunk) each touch 8 distinct
//     16-byte slots of a 128-byte line: one wavefront. Fragments by ldmatrix.x4.trans (multistage_mainloop's
//     kTrans): the same mma operands as the k-major layout, so the same bits (tests: TcConvEmu.WgradFastPath*).
//   - element path (TF32: ldmatrix.trans transposes 16-bit elements, a TF32 element is 32 bits; odd channel counts
//     such as the first layer's C = 3; unaligned data): the k-major layout filled by element loads, dy by the GEMM's
//     load_tile (consecutive threads along k), x by load_wgrad_x_tile (consecutive threads along c). Correct, not
//     fast: no cp.async, the tensor cores wait for the loads, and the transposing shared stores conflict (up to
//     4-way). Kept as the fast path's bitwise reference.
// Cost model of the fast path, per block and k-tile: the GEMM's (32 KiB by 16 cp.async per thread, 128
// ldmatrix.x4, 512 mma.sync: checked on the emulator's metrics, TcConvEmu.WgradFastPathFreeOfBankConflicts), plus the
// x addressing: each of a thread's 8 rows per k-tile checks two bounds and steps its pixel and offsets by 8 rows
// (five adds, two carries); the chunk's tap (r, s) and channel are decoded once per block (WgradPlan). ptxas (nvcc
// 13): 224 registers on sm_80, 228 on sm_90, no spills (element path 221 / 212, TF32 194 / 201). SASS (sm_90, the
// library's loop): 1137 -> 426 instructions per k-tile with the walk (integer 755 -> 216, and 51 -> 14 integer
// opcodes the sm_90 disassembler leaves undecoded; 128 HMMA.16816.F32.BF16, 11.3% -> 30%; 32 LDSM.16.MT88.4; 16
// LDGSTS.E.BYPASS.128); sm_80 1091 -> 424 (796 -> 239 integer).
// Split-K (conv2d_tc.h, conv2d_tc_wgrad_splits): split s of the reduction's k-tiles writes FP32 partials to
// partial[s][K][R S Cg]; split_k_reduce (kernels/tc_gemm_multistage.cuh) sums them in split order and rounds once:
// deterministic.
// The block tile stays 128 x 128: wgrad's narrow dimension at ResNet CIFAR's Kg = 16..64 is its M (the Kg rows of
// dy^T), which a 64-wide N tile does not shrink (that would take a 64-row M tile: not done).

// Stages k-tile kt of the x operand: element (j, e) = A[kt kBK + e][cols0 + j] into row j, element e of the k-tile.
template <class P>
FOVEA_DEVICE_INLINE void load_wgrad_x_tile(unsigned char* S, const ConvArgs& c, const typename P::Raw* __restrict__ x,
                                           int t_off, int cols0, int kt, int tid) {
  using Raw = typename P::Raw;
  using M = Ms<P>;
  const int OHW = c.OH * c.OW;
  for (int e = tid; e < M::kTile * M::kBK; e += M::kThreads) {
    const int j = e % M::kTile, kr = e / M::kTile;
    const int col = cols0 + j, m = kt * M::kBK + kr;
    Raw v = Raw(0);
    if (col < c.Kred && m < c.M) {
      const int n = m / OHW, o = m - n * OHW, oh = o / c.OW, ow = o - oh * c.OW;
      const int rs = col / c.Tg, ch = col - rs * c.Tg, r = rs / c.S, s = rs - r * c.S;
      const int th = oh * c.stride_h - c.pad_h + r * c.dil_h, tw = ow * c.stride_w - c.pad_w + s * c.dil_w;
      if (inside(th, c.TH) && inside(tw, c.TW)) v = x[((n * c.TH + th) * c.TW + tw) * c.TC + t_off + ch];
    }
    *reinterpret_cast<Raw*>(S + swizzle(j, kr / M::kChunk) + (kr % M::kChunk) * int(sizeof(Raw))) = v;
  }
}

// The fast path's copies of one thread (kTrans; BF16/FP16 only, where Kg and Cg are multiples of 8 and x, dy, K and C
// 16-byte aligned: conv2d_tc_wgrad_fast): both operands are staged in their natural, reduction-major layout, 64
// reduction rows of 128 elements per k-tile, by 16-byte cp.async with zero fill, and read by ldmatrix.trans
// (multistage_mainloop's kTrans). Thread t copies chunk t % 16 of reduction rows t / 16 + 8 i (i < 8) of each operand:
// 8 lanes write the 8 chunks of one half row, one wavefront under swizzle_t. The x chunk's tap (r, s) and channel are
// fixed for the block (cols0 + 8 chunk), decoded once. The rows' (n, p, q) are walked, not decoded: the thread's
// rows m, m + 8, ... run on across k-tiles (kBK = 64 = 8 copies of 8 rows), so the plan holds its next row as its
// pixel (th, tw) and offset in x (and in dy), and each copy adds the precomputed split of 8 rows, (images OH +
// step_p) OW + step_q, with one carry per digit (q past OW, p past OH): no division after the first k-tile.
struct WgradPlan {
  int chunk, row0;
  int k;               // dy's column (rows0 + 8 chunk); its copies zero-fill where k >= Kg
  bool k_in, col_in;   // the chunk inside Kg, inside R S Cg
  int m;               // the thread's next row, m = (n, p, q)
  unsigned dy;         // m ldo + k: the row's chunk in dy_g
  int th, tw;          // its pixel in x: p stride_h + r dil_h - pad_h, q stride_w + s dil_w - pad_w
  int th_end, tw_end;  // th and tw at p = OH, q = OW: where the walk carries
  unsigned xo;         // its chunk's offset in x: ((n TH + th) TW + tw) TC + t_off + the chunk's first channel
  int step_h, step_w;  // 8 rows = (images OH + step_p) OW + step_q: step_p stride_h, step_q stride_w
  unsigned step_xo;    // and in x: images TH TW TC + (step_p stride_h TW + step_q stride_w) TC
  int kt;              // the k-tile the walk is at (walk_step; read on the emulator only)
};

// The plan of thread tid for the block's tile (rows0: dy's columns, cols0: x's (r, s, c) columns), at k-tile kt0.
template <class P>
FOVEA_DEVICE_INLINE WgradPlan wgrad_plan(const ConvArgs& c, int t_off, int rows0, int cols0, int kt0, int tid) {
  static_assert(Ms<P>::kBK == 64, "a k-tile is 8 steps of 8 rows");
  WgradPlan a;
  a.chunk = tid % 16, a.row0 = tid / 16;
  a.k = rows0 + 8 * a.chunk;
  const int col = cols0 + 8 * a.chunk;
  a.k_in = a.k < c.cols, a.col_in = col < c.Kred;
  const int S = c.S > 0 ? c.S : 1;        // S = 0: an empty reduction, nothing is staged
  const int rs = col / c.Tg, r = rs / S;  // Tg is a multiple of 8: the chunk is 8 channels of one tap
  const int hb = r * c.dil_h - c.pad_h, wb = (rs - r * S) * c.dil_w - c.pad_w;
  a.m = kt0 * 64 + a.row0;
  a.dy = unsigned(a.m) * c.ldo + unsigned(a.k);
  const int OHW = c.OH * c.OW, n = a.m / OHW, o = a.m - n * OHW, p = o / c.OW, q = o - p * c.OW;
  a.th = p * c.stride_h + hb, a.tw = q * c.stride_w + wb;
  a.th_end = c.OH * c.stride_h + hb, a.tw_end = c.OW * c.stride_w + wb;
  a.xo = ((unsigned(n) * c.TH + unsigned(a.th)) * c.TW + unsigned(a.tw)) * c.TC + unsigned(t_off + col - rs * c.Tg);
  const int images = 8 / OHW, o8 = 8 - images * OHW, step_p = o8 / c.OW, step_q = o8 - step_p * c.OW;
  a.step_h = step_p * c.stride_h, a.step_w = step_q * c.stride_w;
  a.step_xo = (unsigned(images) * c.TH * c.TW + unsigned(a.step_h) * c.TW + unsigned(a.step_w)) * c.TC;
  a.kt = kt0;
  return a;
}

// Issues the cp.async copies of k-tile kt of both operands into S (dy_g's rows, then x's gathered rows) and advances
// the walk to k-tile kt + 1: called once per k-tile, in order, from the plan's kt0.
template <class P>
FOVEA_DEVICE_INLINE void copy_wgrad_tiles(unsigned char* S, WgradPlan& a, const ConvArgs& c,
                                          const typename P::Raw* __restrict__ x,
                                          const typename P::Raw* __restrict__ dyg, int kt) {
  using M = Ms<P>;
  walk_step(a.kt, kt);
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int row = a.row0 + 8 * i;
    const bool m_in = a.m < c.M;
    tc::cp_async<16>(S + swizzle_t(row, a.chunk), m_in && a.k_in ? dyg + a.dy : dyg, m_in && a.k_in ? 16 : 0);
    const bool in = m_in && a.col_in && unsigned(a.th) < unsigned(c.TH) && unsigned(a.tw) < unsigned(c.TW);
    tc::cp_async<16>(S + M::kOperandBytes + swizzle_t(row, a.chunk), in ? x + a.xo : x, in ? 16 : 0);
    // the next row: q + step_q < 2 OW, p + step_p + 1 < 2 OH, so one carry each
    a.m += 8, a.dy += 8u * c.ldo, a.th += a.step_h, a.tw += a.step_w, a.xo += a.step_xo;
    if (a.tw >= a.tw_end) {  // q wraps: q - OW, p + 1
      a.tw -= c.OW * c.stride_w, a.th += c.stride_h;
      a.xo += (unsigned(c.stride_h) * c.TW - unsigned(c.OW * c.stride_w)) * c.TC;
    }
    if (a.th >= a.th_end) {  // p wraps: p - OH, n + 1
      a.th -= c.OH * c.stride_h;
      a.xo += (unsigned(c.TH) - unsigned(c.OH * c.stride_h)) * c.TW * c.TC;
    }
  }
}

// c: the fprop view (conv_args<Pass::fprop>). grid (R S Cg tiles, Kg tiles, groups x splits); split s takes k-tiles
// [s per, (s + 1) per) of the N P Q reduction. kTrans: the fast path above, else the element path (the reference
// the fast path is tested against bitwise).
template <class P, bool kTrans = false, Plant kPlant = Plant::none>
__global__ void __launch_bounds__(128)
    conv2d_tc_wgrad_kernel(ConvArgs c, int splits, int per, const typename P::Raw* __restrict__ x,
                           const typename P::Raw* __restrict__ dy, float* __restrict__ partial) {
  using M = Ms<P>;
  FOVEA_DYNAMIC_SHARED(unsigned char, smem);

  const int tid = threadIdx.x;
  const int cols0 = blockIdx.x * M::kTile, rows0 = blockIdx.y * M::kTile;
  const int g = int(blockIdx.z) / splits, split = int(blockIdx.z) % splits;
  const int ktiles = (c.M + M::kBK - 1) / M::kBK, kt0 = split * per;
  const int tiles = ktiles - kt0 < per ? (ktiles - kt0 > 0 ? ktiles - kt0 : 0) : per;
  const typename P::Raw* dyg = dy + g * c.cols;  // dy[m][g Kg + k]: k-contiguous rows of ldo

  WgradPlan plan{};  // the fast path's walk over the reduction rows from k-tile kt0, staged in order (see above)
  if constexpr (kTrans) plan = wgrad_plan<P>(c, g * c.Tg, rows0, cols0, kt0, tid);
  auto stage = [&](unsigned char* S, int kt) {
    if constexpr (kTrans) {
      copy_wgrad_tiles<P>(S, plan, c, x, dyg, kt0 + kt);
    } else {
      load_tile<P>(S, dyg, c.ldo, true, rows0, c.cols, kt0 + kt, c.M, tid);
      load_wgrad_x_tile<P>(S + M::kOperandBytes, c, x, g * c.Tg, cols0, kt0 + kt, tid);
    }
  };

  float acc[4][8][4] = {};
  multistage_mainloop<P, kPlant, kTrans>(smem, tiles, stage, acc);

  float* out = partial + (int64_t(split) * c.ldo + int64_t(g) * c.cols) * c.Kred;
  for_each_accumulator(acc, [&](int bm, int bn, float a) {
    const int k = rows0 + bm, col = cols0 + bn;
    if (k < c.cols && col < c.Kred) out[int64_t(k) * c.Kred + col] = a;
  });
}

// Whether wgrad takes the fast path (kTrans) for these pointers and this view: 16-bit types, group channels of x and
// dy in whole 16-byte chunks, 16-byte aligned.
template <class P>
inline bool conv2d_tc_wgrad_fast(const ConvArgs& c, const void* x, const void* dy) {
  constexpr int kE = int(sizeof(typename P::Raw));
  return kE == 2 && aligned16(x) && aligned16(dy) && (c.Tg * kE) % 16 == 0 && (c.TC * kE) % 16 == 0 &&
         (c.cols * kE) % 16 == 0 && (c.ldo * kE) % 16 == 0;
}

}  // namespace fovea::FOVEA_KERNEL_NS::tcg
