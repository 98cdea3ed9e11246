// Tensor-core GEMM (kernels/tc_gemm.h): the simple version.
//
// Design: a block is one warp and computes a 32 x 32 tile of C as 2 x 4 mma tiles (m16 x n8), 32 FP32
// accumulators per lane. K is walked in slabs of 64 bytes (32 BF16/FP16 or 16 TF32 elements): both operands'
// slabs are staged in shared memory as rows of k (As[m][k], Bs[n][k]) whatever their layout in global memory,
// then each 16-byte half row feeds one row of an ldmatrix (the same instruction serves TF32: an 8 x 8 matrix of
// 16-bit elements is an 8 x 4 matrix of 32-bit ones, which is the TF32 fragment layout). A k-contiguous,
// 16-byte aligned operand is staged with cp.async (16 bytes, zero fill past K and outside the matrix); any other
// is staged element by element. Shared rows are 80 bytes apart: the 8 rows of an ldmatrix then fall in 8
// distinct groups of 4 banks (conflict-free); 80 is a multiple of 16 as ldmatrix and cp.async need.
// Design model: CUTLASS's SM80 warp-level mma with ldmatrix (mma_tensor_op_tile_iterator_sm80), without its
// multistage pipeline, swizzle or multi-warp tiles: correctness over speed.
//
// Cost model, per block and slab: 4 KiB read from global (L2) memory for 2 * 32 * 32 * kBK FLOPs, i.e. 16 FLOP
// per byte for 16-bit types and 8 for TF32: bound by L2 bandwidth, a few percent of the tensor-core peak.
// Per slab a lane issues 2 k-steps of (2 ldmatrix.x4 + 4 ldmatrix.x2 + 8 mma.sync), plus the staging.
//
// Order of the sums: each accumulator adds the mma results of its slabs in k order, each mma adding its k-step
// of products to the accumulator; nothing depends on scheduling.
#include "kernels/tc_gemm.cuh"

namespace fovea::FOVEA_KERNEL_NS {
namespace {

using tcg::Bf16, tcg::Fp16, tcg::Tf32, tcg::GemmArgs;

constexpr int kTile = 32;  // BM = BN = 32, one warp

template <class P>
struct Slab {
  using Raw = typename P::Raw;
  static constexpr int kChunk = 16 / int(sizeof(Raw));  // elements per 16 bytes: one ldmatrix row, one cp.async
  static constexpr int kBK = 4 * kChunk;                // k per slab: 64 bytes, two mma k-steps
  static constexpr int kLd = kBK + kChunk;              // shared row: 80 bytes
  static_assert(kBK == 2 * P::kStepK, "a slab is two mma k-steps");
};

// Stages slab [k0, k0 + kBK) of rows [mn0, mn0 + 32) of an operand into S[mn][k], zeros outside [0, MN) x [0, K).
// Element (mn, k) is at X[k * ld + mn] when mn_contig, else at X[mn * ld + k] (the only layout kAsync handles).
template <class P, bool kAsync>
FOVEA_DEVICE_INLINE void stage(typename P::Raw (&S)[kTile][Slab<P>::kLd], const typename P::Raw* __restrict__ X, int ld,
                               bool mn_contig, int mn0, int MN, int k0, int K, int lane) {
  using Raw = typename P::Raw;
  constexpr int kChunk = Slab<P>::kChunk, kBK = Slab<P>::kBK;
  if constexpr (kAsync) {  // k-contiguous rows, 16-byte aligned: 32 rows x 4 chunks of 16 bytes
#pragma unroll
    for (int c = lane; c < kTile * 4; c += 32) {
      const int row = c / 4, k = (c % 4) * kChunk, gmn = mn0 + row, gk = k0 + k;
      const Raw* src = X;  // not read when nothing is copied
      int bytes = 0;
      if (gmn < MN && gk < K) {
        src = X + int64_t(gmn) * ld + gk;
        bytes = (K - gk < kChunk ? K - gk : kChunk) * int(sizeof(Raw));  // zero fill past K
      }
      tc::cp_async<16>(&S[row][k], src, bytes);
    }
  } else {
    for (int e = lane; e < kTile * kBK; e += 32) {
      const int row = e / kBK, k = e % kBK, gmn = mn0 + row, gk = k0 + k;
      Raw v = Raw(0);
      if (gmn < MN && gk < K) v = mn_contig ? X[int64_t(gk) * ld + gmn] : X[int64_t(gmn) * ld + gk];
      S[row][k] = v;
    }
  }
}

template <class P, bool kAsyncA, bool kAsyncB>
__global__ void __launch_bounds__(32)
    tc_gemm_simple_kernel(GemmArgs g, const typename P::Raw* __restrict__ A, const typename P::Raw* __restrict__ B,
                          typename P::Raw* __restrict__ C) {
  using Raw = typename P::Raw;
  constexpr int kChunk = Slab<P>::kChunk, kBK = Slab<P>::kBK, kLd = Slab<P>::kLd;
  __shared__ __align__(16) Raw as[kTile][kLd];
  __shared__ __align__(16) Raw bs[kTile][kLd];

  const int lane = threadIdx.x;
  const int m0 = blockIdx.y * kTile, n0 = blockIdx.x * kTile;
  A += blockIdx.z * g.stride_a, B += blockIdx.z * g.stride_b, C += blockIdx.z * g.stride_c;

  float acc[2][4][4] = {};
  for (int k0 = 0; k0 < g.K; k0 += kBK) {
    // As[m][k] = op(A)(m, k): m-contiguous when A is transposed. Bs[n][k] = op(B)(k, n): n-contiguous unless
    // B is transposed (stored N x K).
    stage<P, kAsyncA>(as, A, g.lda, g.a_trans, m0, g.M, k0, g.K, lane);
    stage<P, kAsyncB>(bs, B, g.ldb, !g.b_trans, n0, g.N, k0, g.K, lane);
    if constexpr (kAsyncA || kAsyncB) {
      tc::cp_async_commit();
      tc::cp_async_wait<0>();
    }
    __syncthreads();
#pragma unroll
    for (int ks = 0; ks < kBK; ks += P::kStepK) {
      // ldmatrix.x4 for A (m16 x one k-step): lane l gives row l % 8 of matrix l / 8, the matrices being
      // (rows 0-7 | 8-15) x (first | second 16 bytes of the k-step), ordered as the mma's a0..a3 registers.
      // ldmatrix.x2 for B (n8 x one k-step): matrices (first | second 16 bytes); lanes 16-31 are ignored.
      uint32_t a[2][4], b[4][2];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        tc::ldmatrix<4>(a[i], &as[16 * i + lane % 8 + 8 * ((lane / 8) % 2)][ks + kChunk * (lane / 16)]);
#pragma unroll
        for (int r = 0; r < 4; ++r) a[i][r] = P::operand(a[i][r]);
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        tc::ldmatrix<2>(b[j], &bs[8 * j + lane % 8][ks + kChunk * ((lane / 8) % 2)]);
#pragma unroll
        for (int r = 0; r < 2; ++r) b[j][r] = P::operand(b[j][r]);
      }
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) P::mma(acc[i][j], a[i], b[j]);
    }
    __syncthreads();  // every lane is done with the slab before the next one overwrites it
  }

  // Epilogue: accumulator r of mma tile (i, j) holds row g + 8 (r / 2), column 2 t + r % 2 of that tile
  // (g = lane / 4, t = lane % 4: the PTX layout of C/D).
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int m = m0 + 16 * i + lane / 4 + 8 * (r / 2), n = n0 + 8 * j + 2 * (lane % 4) + r % 2;
        if (m >= g.M || n >= g.N) continue;
        Raw* c = C + int64_t(m) * g.ldc + n;
        const float v = g.beta == 0.0f ? g.alpha * acc[i][j][r] : g.alpha * acc[i][j][r] + g.beta * P::to_float(*c);
        *c = P::from_float(v);
      }
}

template <class P>
void launch_simple(const char* op, const SgemmParams& p, const typename P::Raw* A, const typename P::Raw* B,
                   typename P::Raw* C, StreamHandle stream) {
  const GemmArgs g = tcg::checked_args(op, p, A, B, C);
  if (g.M == 0 || g.N == 0) return;
  const bool async_a = tcg::async_a(p, A), async_b = tcg::async_b(p, B);
  const dim3 grid((g.N + kTile - 1) / kTile, (g.M + kTile - 1) / kTile, unsigned(p.batch));
  if (async_a && async_b)
    FOVEA_LAUNCH((tc_gemm_simple_kernel<P, true, true>), grid, 32, 0, stream, g, A, B, C);
  else if (async_a)
    FOVEA_LAUNCH((tc_gemm_simple_kernel<P, true, false>), grid, 32, 0, stream, g, A, B, C);
  else if (async_b)
    FOVEA_LAUNCH((tc_gemm_simple_kernel<P, false, true>), grid, 32, 0, stream, g, A, B, C);
  else
    FOVEA_LAUNCH((tc_gemm_simple_kernel<P, false, false>), grid, 32, 0, stream, g, A, B, C);
}

void tc_gemm_simple_tf32(const Exec& ex, const SgemmParams& g, const float* A, const float* B, float* C) {
  launch_simple<Tf32>("tc_gemm_simple_tf32", g, A, B, C, ex.stream);
}

void tc_gemm_simple_bf16(const Exec& ex, const SgemmParams& g, const BFloat16* A, const BFloat16* B, BFloat16* C) {
  launch_simple<Bf16>("tc_gemm_simple_bf16", g, reinterpret_cast<const uint16_t*>(A),
                      reinterpret_cast<const uint16_t*>(B), reinterpret_cast<uint16_t*>(C), ex.stream);
}

void tc_gemm_simple_fp16(const Exec& ex, const SgemmParams& g, const Half* A, const Half* B, Half* C) {
  launch_simple<Fp16>("tc_gemm_simple_fp16", g, reinterpret_cast<const uint16_t*>(A),
                      reinterpret_cast<const uint16_t*>(B), reinterpret_cast<uint16_t*>(C), ex.stream);
}

[[maybe_unused]] const bool registered = ops::tc_gemm_tf32_stub.define(kThisSlot, &tc_gemm_simple_tf32) &&
                                         ops::tc_gemm_bf16_stub.define(kThisSlot, &tc_gemm_simple_bf16) &&
                                         ops::tc_gemm_fp16_stub.define(kThisSlot, &tc_gemm_simple_fp16);

}  // namespace
}  // namespace fovea::FOVEA_KERNEL_NS
