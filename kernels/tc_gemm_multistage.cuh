// Tensor-core GEMM (kernels/tc_gemm.h): the optimised version, a multistage cp.async pipeline. The kernel template
// lives in this header so that tests can instantiate it with a planted bug (tests/tc_gemm_planted_kernels.cu);
// kernels/tc_gemm_multistage.cu instantiates the correct one per precision and registers it.
//
// Design (model: CUTLASS's SM80 multistage GEMM, gemm/threadblock/mma_multistage.h, with the warp-level
// ldmatrix iterators of warp/mma_tensor_op_tile_iterator_sm80.h and the XOR-swizzled "crosswise" shared layouts of
// layout/tensor_op_multiplicand_sm75.h; the ideas, not the code):
//   - A block of 4 warps (2 x 2) computes a 128 x 128 tile of C; each warp a 64 x 64 tile as 4 x 8 mma tiles
//     (m16 x n8): 128 FP32 accumulators per thread. (multistage_mainloop also serves a 128 x 64 tile, warps of
//     64 x 32, for the implicit-GEMM convolutions' narrow outputs: kernels/conv2d_tc_igemm.cuh.)
//   - K is walked in k-tiles of 128 bytes per row (64 BF16/FP16 or 32 TF32 elements: 4 mma k-steps). Both operands'
//     k-tiles are staged in shared memory as 128 rows of k (As[m][k], Bs[n][k]), 3 stages of 2 x 16 KiB: 96 KiB
//     of dynamic shared memory.
//   - Pipeline: the prologue issues k-tiles 0 and 1; iteration kt waits for k-tile kt (cp.async.wait_group 1),
//     passes one barrier (k-tile kt visible to all; every warp done with k-tile kt - 1), issues k-tile kt + 2 into
//     the stage k-tile kt - 1 held, then runs the 4 k-steps of k-tile kt. One commit per iteration, empty groups
//     included, so the group count stays uniform. Copies of two k-tiles are in flight during each k-tile's mma.
//   - Staging: an operand whose rows are k-contiguous and 16-byte aligned (A as stored, B transposed: the "TN"
//     layout of linear forward) is copied with 16-byte cp.async, zero-filling past K and outside the matrix
//     (src-size); 8 consecutive lanes copy one 128-byte row. Any other operand (m- or n-contiguous, or unaligned)
//     is staged by element loads and shared stores at the same point of the pipeline (correct, not fast: the
//     tensor cores then wait on the loads; a transposing ldmatrix path, multistage_mainloop's kTrans, serves the
//     implicit-GEMM wgrad's 16-bit fast path: kernels/conv2d_tc_igemm.cuh; the GEMM does not use it yet).
//   - Fragments: ldmatrix.x4, as in kernels/tc_gemm.cu (an 8 x 8 matrix of 16-bit elements is an 8 x 4 matrix of
//     32-bit ones, the TF32 fragment layout). Per k-step a warp issues 4 ldmatrix.x4 for A (one per m16) and 4 for
//     B (one per pair of n8), then 32 mma.sync.
//   - Bank conflicts: a shared row is 8 chunks of 16 bytes, and chunk c of row r is stored at chunk c ^ (r % 8)
//     (no padding). An ldmatrix phase reads one 8 x 8 matrix: 8 consecutive rows (r % 8 = 0..7) at one logical
//     chunk, so at 8 distinct physical chunks: all 32 banks once, one wavefront. A cp.async phase (8 lanes) writes
//     the 8 chunks of one row, a permutation of that row: one wavefront. Checked on the emulator's metrics
//     (tests/tc_gemm_kernel_test.cpp, TcGemmMultistage.FreeOfBankConflictsWithTheCountsOfItsCostModel), which see
//     ldmatrix and cp.async through kernels/mma.cuh.
//   - Epilogue: accumulators to C (alpha, beta, output rounding) straight from registers, as the simple kernel.
//   - Split-K (model: CUTLASS's "serial"/"parallel" split-K GEMM, kernel/gemm_splitk_parallel.h: the parallel
//     flavour, partials then a reduction kernel; the idea, not the code): where the output has few tiles (a linear
//     layer at batch 128: M = 128, N = 10..512, 1 to 4 tiles on a GPU of 108-132 SMs) the k-tiles are cut into S
//     parts at k-tile boundaries, S = tc_gemm_multistage_splits (kernels/tc_gemm.h: tc_split_k_parts of the tile and
//     k-tile counts, about 264 blocks when the tiles are fewer than 264, at least 8 k-tiles per part; the shape only,
//     never the device). Grid z = batch x S; part s writes its FP32 sums, unscaled, to partial[s][batch][M][N] in
//     the workspace; split_k_reduce (also the implicit-GEMM wgrad's second kernel) adds the parts in part order
//     0, 1, ..., applies alpha and beta and rounds to the output type once.
//
// Cost model, per block and k-tile (16-bit types; TF32 in brackets):
//   cp.async   2 x 128 rows x 128 B = 32 KiB from global (L2), 16 copies of 16 B per thread;
//   ldmatrix   4 warps x 4 k-steps x 8 = 128 .x4 (512 B each: 64 KiB read from shared memory);
//   mma.sync   4 warps x 4 k-steps x 32 = 512 m16n8k16 [m16n8k8] = 2.1 M [1.05 M] FLOP.
// Ratios: 64 [32] FLOP per byte of global traffic, 32 [16] FLOP per byte of shared traffic, 4 mma per ldmatrix.x4.
// Every block reads its k-tiles from L2 (cp.async.cg bypasses L1): at the ~650 TFLOP/s that mma.sync can reach on an
// H100 (two thirds of its 990 dense BF16 TFLOP/s), 64 FLOP per byte asks ~10 TB/s of L2 bandwidth over all SMs, more
// than its L2 is reported to deliver: this tile size is expected to be L2-bound there (a 128 x 256 tile gives 85
// FLOP/B; a GPU run decides), not on an A100 (~250 TFLOP/s: ~4 TB/s). DRAM sees far less: consecutive blocks cover
// a row of C tiles and share their A tile in L2. Per block the epilogue writes 128 x 128 outputs once.
// Split-K adds S x batch x M x N x 4 bytes of partials written and read again (S M N 4 x 2 bytes of traffic, from L2
// at these sizes: 128 x 512 x 8 parts is 2 MiB each way) and a second, memory-bound launch; it buys S times the
// blocks: at M = 128, N = 512, K = 4096 (BF16) 32 blocks instead of 4, each 8 k-tiles instead of 64.
// Machine code (nvcc 13, sm_80/sm_90; README, "Tensor cores"): 245-250 registers, no spills (split_k_reduce: 32); a
// k-tile of the cp.async path executes ~400 instructions per warp: 16 LDGSTS in ~210, then 32 LDSM.16.M88.4 and 128
// HMMA in 178 (read before split-K was added; not re-read).
//
// Order of the sums: each accumulator adds the mma results of its k-steps in k order, each mma adding 16 [8] k of
// products (the same k-steps as the simple kernel: on the emulator both give the same bits). Split-K: each part's
// accumulators add its own k-steps in k order from zero, then the parts' FP32 sums are added in part order: a different
// order from the unsplit kernel (the last bits differ; on exact operands both equal the reference), fixed by the shape.
// Nothing depends on scheduling: bitwise the same run to run and under every emulator schedule.
#pragma once
#include "kernels/reduce.cuh"  // workspace_array
#include "kernels/tc_gemm.cuh"
#include "kernels/tc_gemm.h"  // tc_gemm_multistage_splits

namespace fovea::FOVEA_KERNEL_NS::tcg {

// Bugs that tests plant (tests/tc_gemm_planted_kernels.cu); the library instantiates none.
enum class Plant : int {
  none,
  missing_wait,   // the cp.async.wait_group before a k-tile is read is left out
  wrong_fragment  // the A fragment's matrices 1 and 2 swapped (rows 8-15 of k 0-7 <-> rows 0-7 of k 8-15)
};

// kBN: the block tile's width (B's rows): 128, or 64 or 32 for the convolutions' narrow outputs (kernels/
// conv2d_tc_igemm.cuh); the GEMM uses 128.
template <class P, int kBN = 128>
struct Ms {
  using Raw = typename P::Raw;
  static constexpr int kTile = 128;                              // BM (A's rows)
  static constexpr int kTileN = kBN;                             // BN (B's rows)
  static constexpr int kThreads = 128;                           // 4 warps, 2 x 2
  static constexpr int kWarpTile = 64;                           // per warp: 64 x kBN / 2 = 4 x kBN / 16 mma tiles
  static constexpr int kChunk = 16 / int(sizeof(Raw));           // elements per 16-byte chunk (ldmatrix row, cp.async)
  static constexpr int kBK = 8 * kChunk;                         // k per k-tile: 128-byte rows
  static constexpr int kSteps = kBK / P::kStepK;                 // mma k-steps per k-tile: 4
  static constexpr int kStages = 3;                              //
  static constexpr int kOperandBytes = kTile * 128;              // A's k-tile: 16 KiB (B's starts here)
  static constexpr int kStageBytes = kOperandBytes + kBN * 128;  // A then B
  static constexpr int kSmemBytes = kStages * kStageBytes;       // 96 KiB (kBN 64: 72 KiB, 32: 60 KiB)
  static_assert(kSteps == 4, "a k-tile is 4 mma k-steps of 32 bytes");
  static_assert(kBN == 128 || kBN == 64 || kBN == 32, "block tile widths: 128, 64 and 32 (2 n8 tiles per warp)");
};

// Byte offset of 16-byte chunk `chunk` (0..7) of row `row` in an operand's k-tile: the XOR swizzle.
FOVEA_DEVICE_INLINE int swizzle(int row, int chunk) {
  return row * 128 + ((chunk ^ (row & 7)) << 4);
}

// Byte offset of 16-byte chunk `chunk` (0..15) of reduction row `row` in a transposed k-tile (kTrans of
// multistage_mainloop: 64 rows of k, each 128 16-bit elements of m or n, 256 bytes). The XOR flips only the chunk's low
// 3 bits: 8 consecutive rows at one logical chunk land on 8 distinct 16-byte slots of one 128-byte bank line.
FOVEA_DEVICE_INLINE int swizzle_t(int row, int chunk) {
  return row * 256 + ((chunk ^ (row & 7)) << 4);
}

// One thread's share of an operand's k-tile on the cp.async path (rows k-contiguous and 16-byte aligned): kRows rows x
// 8 chunks, kRows / 16 per thread; lanes 8q .. 8q + 7 take the 8 chunks of one row (128 contiguous bytes). A thread's
// copies share their chunk, so their k bounds, and are 16 rows apart: computed once, a pointer step and a mask bit per
// copy.
template <class P, int kRows = 128>
struct CopyPlan {
  static constexpr int kRowStep = Ms<P>::kThreads / 8;  // rows between a thread's copies
  static constexpr int kCopies = kRows / kRowStep;
  const typename P::Raw* src;  // the thread's first copy of k-tile 0
  int64_t row_step;            // elements between its copies
  int chunk;                   // its 16-byte chunk of every row
  int row0;
  unsigned rows_in;  // bit i: copy i's row is inside the matrix
};

template <class P, int kRows = 128>
FOVEA_DEVICE_INLINE CopyPlan<P, kRows> copy_plan(const typename P::Raw* X, int ld, int mn0, int MN, int tid) {
  using C = CopyPlan<P, kRows>;
  C c;
  c.row0 = tid / 8, c.chunk = tid % 8;
  // Read only where inside (src-size > 0); X is null when K = 0, and then nothing is copied.
  c.src = X ? X + int64_t(mn0 + c.row0) * ld + c.chunk * Ms<P>::kChunk : X;
  c.row_step = int64_t(C::kRowStep) * ld;
  c.rows_in = 0;
#pragma unroll
  for (int i = 0; i < C::kCopies; ++i) c.rows_in |= unsigned(mn0 + c.row0 + i * C::kRowStep < MN) << i;
  return c;
}

// Issues the cp.async copies of k-tile kt into S (swizzled rows of k), zero-filling past K and outside the matrix.
template <class P, int kRows>
FOVEA_DEVICE_INLINE void copy_tile(unsigned char* S, const CopyPlan<P, kRows>& c, int kt, int K) {
  using M = Ms<P>;
  using C = CopyPlan<P, kRows>;
  const int k_left = K - (kt * M::kBK + c.chunk * M::kChunk);
  const int k_bytes = (k_left <= 0 ? 0 : k_left < M::kChunk ? k_left : M::kChunk) * int(sizeof(typename P::Raw));
  const typename P::Raw* src = c.src + kt * M::kBK;
  unsigned char* dst = S + swizzle(c.row0, c.chunk);  // + 2048 bytes per copy: the same swizzle (16 rows apart)
#pragma unroll
  for (int i = 0; i < C::kCopies; ++i)
    tc::cp_async<16>(dst + i * C::kRowStep * 128, src + i * c.row_step, c.rows_in >> i & 1 ? k_bytes : 0);
}

// Stages k-tile kt of rows [mn0, mn0 + kRows) of an operand into S by element loads and shared stores (any layout:
// element (mn, k) at X[k * ld + mn] when mn_contig, else X[mn * ld + k]), zeros outside [0, MN) x [0, K).
// Consecutive threads run along the dimension that is contiguous in global memory.
template <class P, int kRows = 128>
FOVEA_DEVICE_INLINE void load_tile(unsigned char* S, const typename P::Raw* __restrict__ X, int ld, bool mn_contig,
                                   int mn0, int MN, int kt, int K, int tid) {
  using Raw = typename P::Raw;
  using M = Ms<P>;
  for (int e = tid; e < kRows * M::kBK; e += M::kThreads) {
    const int mn = mn_contig ? e % kRows : e / M::kBK, k = mn_contig ? e / kRows : e % M::kBK;
    const int gmn = mn0 + mn, gk = kt * M::kBK + k;
    Raw v = Raw(0);
    if (gmn < MN && gk < K) v = mn_contig ? X[int64_t(gk) * ld + gmn] : X[int64_t(gmn) * ld + gk];
    *reinterpret_cast<Raw*>(S + swizzle(mn, k / M::kChunk) + (k % M::kChunk) * int(sizeof(Raw))) = v;
  }
}

// The pipeline and the warp-level mma of one block, shared with the implicit-GEMM convolutions
// (kernels/conv2d_tc_igemm.cuh): stage(kt) issues the copies (or element loads) of k-tile kt of both operands into
// the stage buffer it is given (A then B, kOperandBytes apart); acc[i][j] is mma tile (i, j) of the warp's 64 x 8 kNT
// tile: the block tile is 128 x 16 kNT (kNT = 8: 128 x 128; 4: 128 x 64; 2: 128 x 32; the same k-steps for each
// output; B's fragments come by ldmatrix.x4 in pairs of n8 tiles, so kNT is even).
// kTrans (16-bit types, kNT = 8): both operands' k-tiles are stored transposed, 64 rows of k by 128 m (n) at swizzle_t,
// and the fragments are read by ldmatrix.trans (an 8 x 8 matrix stored as 8 rows of k is delivered as 8 rows of m,
// each lane holding m = lane / 4, k = 2 (lane % 4) + {0, 1}: the A and B fragment layouts of m16n8k16). The mma
// operands, so the sums, are the same values as with the k-major layout: bitwise the same result.
template <class P, Plant kPlant, bool kTrans = false, class Stage, int kNT>
FOVEA_DEVICE_INLINE void multistage_mainloop(unsigned char* smem, int tiles, const Stage& stage,
                                             float (&acc)[4][kNT][4]) {
  using M = Ms<P, 16 * kNT>;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int wm = warp / 2, wn = warp % 2;  // the warp's 64 x 8 kNT tile

#pragma unroll
  for (int s = 0; s < M::kStages - 1; ++s) {
    if (s < tiles) stage(smem + s * M::kStageBytes, s);
    tc::cp_async_commit();
  }

  // ldmatrix row addresses (lane l gives row l % 8 of matrix l / 8), as rows and chunk offsets in the k-step:
  //   A .x4, matrices (rows 0-7 | 8-15) x (k chunk 0 | 1) in the order of a0..a3;
  //   B .x4, matrices (n 0-7: chunk 0, chunk 1), (n 8-15: chunk 0, chunk 1) = b0, b1 of two n8 tiles.
  const int a_row = wm * M::kWarpTile + lane % 8 + 8 * (kPlant == Plant::wrong_fragment ? lane / 16 : (lane / 8) % 2);
  const int a_chunk = kPlant == Plant::wrong_fragment ? (lane / 8) % 2 : lane / 16;
  const int b_row = wn * 8 * kNT + lane % 8 + 8 * (lane / 16), b_chunk = (lane / 8) % 2;
  // kTrans: lane l addresses row l % 8 of matrix q = l / 8. A's matrix q covers m + 8 (q % 2), k + 8 (q / 2) (a0..a3);
  // B's matrix q covers k + 8 (q % 2), n + 8 (q / 2) (b0, b1 of n8 tile 2j, then of 2j + 1).
  const int q = lane / 8;
  const int ta_krow = lane % 8 + 8 * (kPlant == Plant::wrong_fragment ? q % 2 : q / 2);
  const int ta_chunk = wm * 8 + (kPlant == Plant::wrong_fragment ? q / 2 : q % 2);
  const int tb_krow = lane % 8 + 8 * (q % 2), tb_chunk = wn * kNT + q / 2;
  static_assert(!kTrans || (kNT == 8 && sizeof(typename P::Raw) == 2), "kTrans: 16-bit types, 128 x 128 tile");
  static_assert(kNT % 2 == 0, "B's ldmatrix.x4 loads two n8 tiles");

  for (int kt = 0; kt < tiles; ++kt) {
    if constexpr (kPlant != Plant::missing_wait) tc::cp_async_wait<M::kStages - 2>();  // this thread's k-tile kt
    __syncthreads();  // everyone's k-tile kt is visible, and everyone is done reading k-tile kt - 1
    const int next = kt + M::kStages - 1;
    if (next < tiles) stage(smem + (next % M::kStages) * M::kStageBytes, next);  // the stage k-tile kt - 1 held
    tc::cp_async_commit();

    const unsigned char* SA = smem + (kt % M::kStages) * M::kStageBytes;
    const unsigned char* SB = SA + M::kOperandBytes;
#pragma unroll
    for (int ks = 0; ks < M::kSteps; ++ks) {
      uint32_t a[4][4], b[kNT][2];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        if constexpr (kTrans)
          tc::ldmatrix<4, true>(a[i], SA + swizzle_t(16 * ks + ta_krow, ta_chunk + 2 * i));
        else
          tc::ldmatrix<4>(a[i], SA + swizzle(a_row + 16 * i, 2 * ks + a_chunk));
#pragma unroll
        for (int r = 0; r < 4; ++r) a[i][r] = P::operand(a[i][r]);
      }
#pragma unroll
      for (int j = 0; j < kNT / 2; ++j) {
        uint32_t r4[4];
        if constexpr (kTrans)
          tc::ldmatrix<4, true>(r4, SB + swizzle_t(16 * ks + tb_krow, tb_chunk + 2 * j));
        else
          tc::ldmatrix<4>(r4, SB + swizzle(b_row + 16 * j, 2 * ks + b_chunk));
        b[2 * j][0] = P::operand(r4[0]), b[2 * j][1] = P::operand(r4[1]);
        b[2 * j + 1][0] = P::operand(r4[2]), b[2 * j + 1][1] = P::operand(r4[3]);
      }
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < kNT; ++j) P::mma(acc[i][j], a[i], b[j]);
    }
  }
}

// Calls f(m, n, v) for every accumulator of the block: v is C(m, n) of the block's 128 x 16 kNT tile. Accumulator r
// of mma tile (i, j) holds row lane / 4 + 8 (r / 2), column 2 (lane % 4) + r % 2 of that tile (the PTX layout of C/D).
template <int kNT, class F>
FOVEA_DEVICE_INLINE void for_each_accumulator(const float (&acc)[4][kNT][4], const F& f) {
  constexpr int kWarpTile = 64;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int wm = warp / 2, wn = warp % 2;
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < kNT; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r)
        f(wm * kWarpTile + 16 * i + lane / 4 + 8 * (r / 2), wn * 8 * kNT + 8 * j + 2 * (lane % 4) + r % 2,
          acc[i][j][r]);
}

// out[i] (row i / cols, column i % cols of batch entry i / (rows cols), at ld and stride) = alpha (the partials of
// element i summed in part order: partial[0][i] + partial[1][i] + ...) + beta out[i] (not read when beta == 0)
// + bias[i % cols] rounded to the type (null: none; the implicit-GEMM fprop's bias, added as its unsplit epilogue
// does), rounded to the type once. The second kernel of every split-K (the GEMM's and the implicit-GEMM
// convolutions'): the fixed order makes the result independent of the blocks' schedule. n = batch rows cols elements
// per part.
template <class P>
__global__ void split_k_reduce(const float* __restrict__ partial, int splits, int64_t n, int64_t rows, int64_t cols,
                               int64_t ld, int64_t stride, float alpha, float beta, const float* __restrict__ bias,
                               typename P::Raw* __restrict__ out) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    float s = partial[i];
    for (int k = 1; k < splits; ++k) s += partial[int64_t(k) * n + i];
    const int64_t b = i / (rows * cols), r = i % (rows * cols);
    typename P::Raw* o = out + b * stride + (r / cols) * ld + r % cols;
    float v = beta == 0.0f ? alpha * s : alpha * s + beta * P::to_float(*o);
    if (bias) v += P::to_float(P::from_float(bias[r % cols]));
    *o = P::from_float(v);
  }
}

// Blocks per grid-stride launch of split_k_reduce (256 threads) over n elements.
inline unsigned split_k_reduce_grid(int64_t n) {
  const int64_t blocks = (n + 255) / 256;
  return unsigned(blocks < 4096 ? (blocks > 0 ? blocks : 1) : 4096);
}

// grid (N tiles, M tiles, batch x splits); part s of a batch entry takes k-tiles [s per, (s + 1) per). splits == 1:
// the epilogue writes C; else FP32 partials to partial[s][batch entry][M][N] (split_k_reduce finishes C).
template <class P, Plant kPlant>
__global__ void __launch_bounds__(128)
    tc_gemm_multistage_kernel(GemmArgs g, bool async_a, bool async_b, const typename P::Raw* __restrict__ A,
                              const typename P::Raw* __restrict__ B, typename P::Raw* __restrict__ C, int splits,
                              int per, float* __restrict__ partial) {
  using Raw = typename P::Raw;
  using M = Ms<P>;
  FOVEA_DYNAMIC_SHARED(unsigned char, smem);

  const int tid = threadIdx.x;
  const int m0 = blockIdx.y * M::kTile, n0 = blockIdx.x * M::kTile;
  const int batch = int(blockIdx.z) / splits, split = int(blockIdx.z) % splits;
  A += batch * g.stride_a, B += batch * g.stride_b, C += batch * g.stride_c;
  const int ktiles = (g.K + M::kBK - 1) / M::kBK, kt0 = split * per;
  const int tiles = ktiles - kt0 < per ? (ktiles - kt0 > 0 ? ktiles - kt0 : 0) : per;

  // As[m][k] = op(A)(m, k): m-contiguous when A is transposed. Bs[n][k] = op(B)(k, n): n-contiguous unless B is
  // transposed (stored N x K).
  const CopyPlan<P> plan_a = copy_plan<P>(A, g.lda, m0, g.M, tid), plan_b = copy_plan<P>(B, g.ldb, n0, g.N, tid);
  auto stage = [&](unsigned char* S, int kt) {
    kt += kt0;
    if (async_a)
      copy_tile<P>(S, plan_a, kt, g.K);
    else
      load_tile<P>(S, A, g.lda, g.a_trans, m0, g.M, kt, g.K, tid);
    if (async_b)
      copy_tile<P>(S + M::kOperandBytes, plan_b, kt, g.K);
    else
      load_tile<P>(S + M::kOperandBytes, B, g.ldb, !g.b_trans, n0, g.N, kt, g.K, tid);
  };

  float acc[4][8][4] = {};
  multistage_mainloop<P, kPlant>(smem, tiles, stage, acc);

  if (splits > 1) {  // the part's FP32 sums, unscaled
    float* out = partial + (int64_t(split) * (gridDim.z / splits) + batch) * int64_t(g.M) * g.N;
    for_each_accumulator(acc, [&](int bm, int bn, float a) {
      const int m = m0 + bm, n = n0 + bn;
      if (m < g.M && n < g.N) out[int64_t(m) * g.N + n] = a;
    });
    return;
  }
  // Epilogue: straight from registers.
  for_each_accumulator(acc, [&](int bm, int bn, float a) {
    const int m = m0 + bm, n = n0 + bn;
    if (m >= g.M || n >= g.N) return;
    Raw* c = C + int64_t(m) * g.ldc + n;
    const float v = g.beta == 0.0f ? g.alpha * a : g.alpha * a + g.beta * P::to_float(*c);
    *c = P::from_float(v);
  });
}

// C = the GEMM; where tc_gemm_multistage_splits(prec, p) > 1 (prec: P's precision), split-K with its FP32 partials in
// the workspace of ex (tc_gemm_multistage_workspace_bytes) and a second launch (split_k_reduce).
template <class P, Plant kPlant = Plant::none>
void launch_multistage(const char* op, const Exec& ex, Precision prec, const SgemmParams& p, const typename P::Raw* A,
                       const typename P::Raw* B, typename P::Raw* C) {
  using M = Ms<P>;
  const GemmArgs g = checked_args(op, p, A, B, C);
  if (g.M == 0 || g.N == 0) return;
  const int splits = int(ops::tc_gemm_multistage_splits(prec, p));
  const int ktiles = (g.K + M::kBK - 1) / M::kBK, per = (ktiles + splits - 1) / splits;
  FOVEA_CHECK(p.batch * splits <= 65535, op, ": batch x splits = ", p.batch * splits, " is above the grid's 65535");
  float* partial =
      splits > 1 ? workspace_array<float>(ex, ops::tc_gemm_multistage_workspace_bytes(prec, p) / 4, op) : nullptr;
  const dim3 grid((g.N + M::kTile - 1) / M::kTile, (g.M + M::kTile - 1) / M::kTile, unsigned(p.batch * splits));
  // Above 48 KiB of dynamic shared memory a kernel must opt in (cheap; once per launch keeps it stateless).
  const cudaError_t err = cudaFuncSetAttribute(tc_gemm_multistage_kernel<P, kPlant>,
                                               cudaFuncAttributeMaxDynamicSharedMemorySize, M::kSmemBytes);
  FOVEA_CHECK(err == cudaSuccess, op, ": cudaFuncSetAttribute(MaxDynamicSharedMemorySize, ", M::kSmemBytes,
              ") failed: ", cudaGetErrorString(err),
              " (the device needs >= 96 KiB of shared memory per block: sm_80+)");
  note_flop(2.0 * double(g.M) * double(g.N) * double(g.K) * double(p.batch));
  FOVEA_LAUNCH((tc_gemm_multistage_kernel<P, kPlant>), grid, M::kThreads, M::kSmemBytes, ex.stream, g, async_a(p, A),
               async_b(p, B), A, B, C, splits, per, partial);
  if (splits > 1) {
    const int64_t n = p.batch * p.M * p.N;
    FOVEA_LAUNCH(split_k_reduce<P>, split_k_reduce_grid(n), 256, 0, ex.stream, partial, splits, n, p.M, p.N, p.ldc,
                 p.stride_c, p.alpha, p.beta, nullptr, C);
  }
}

}  // namespace fovea::FOVEA_KERNEL_NS::tcg
