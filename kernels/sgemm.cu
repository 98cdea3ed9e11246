// SGEMM, row-major: C = alpha * op(A) * op(B) + beta * C (the emu/cuda slots of layers/ops/gemm.h; kernels/sgemm.cuh).
//
// Every version sums the K products of an element in k order from zero, then applies
// alpha * sum + beta * C, so all versions and tile shapes give the same bits on a given device.
#include "kernels/sgemm.cuh"

#include <climits>

#include "kernels/gemm_tile.cuh"
#include "kernels/reduce.cuh"  // aligned16

namespace fovea::FOVEA_KERNEL_NS {

namespace {

FOVEA_DEVICE_INLINE float gemm_output(float acc, float alpha, float beta, const float* c) {
  return beta == 0.0f ? alpha * acc : alpha * acc + beta * *c;  // beta == 0: C is not read (BLAS)
}

// ------------------------------------------------------------------------------------------------
// Version 1: one thread per C element, a dot product over k.
// Per output: 2K FLOPs, 8K bytes through L1/L2 (A row and B column; reuse only through caches), so it
// is bound by cache bandwidth at a few TFLOP/s on an H100. Kept as the obviously-right version.
__global__ void sgemm_simple_kernel(GemmArgs g, const float* __restrict__ A, const float* __restrict__ B,
                                    float* __restrict__ C) {
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  const int m = blockIdx.y * blockDim.y + threadIdx.y;
  if (m >= g.M || n >= g.N) return;
  A += blockIdx.z * g.stride_a, B += blockIdx.z * g.stride_b, C += blockIdx.z * g.stride_c;
  float acc = 0.0f;
  for (int k = 0; k < g.K; ++k) {
    const float a = g.a_trans ? A[k * g.lda + m] : A[m * g.lda + k];
    const float b = g.b_trans ? B[n * g.ldb + k] : B[k * g.ldb + n];
    acc += a * b;
  }
  float* c = C + m * g.ldc + n;
  *c = gemm_output(acc, g.alpha, g.beta, c);
}

// ------------------------------------------------------------------------------------------------
// Version 2: tiled. A block computes BM x BN of C; per BK slab each thread does TM * TN FMAs from
// registers fed by (TM + TN) / 4 float4 shared loads per k. Global traffic per C element is
// 4K (1/BM + 1/BN) bytes: 64 B per 1000 FLOPs at 128x128, so large products are FMA-bound (design
// target: ~75% of the 66.9 TFLOP/s FP32 peak of an H100); the 64x64 tile trades arithmetic
// intensity (still well above the 20 FLOP/byte HBM balance point) for enough blocks on small ones.
using BigTile = gemm::TileConfig<128, 128, 8, 8, 8>;  // 256 threads, 8x8 outputs each
using SmallTile = gemm::TileConfig<64, 64, 8, 4, 4>;  // 256 threads, 4x4 outputs each

template <class Cfg, bool kATrans, bool kBTrans, bool kVec>
__global__ void FOVEA_LAUNCH_BOUNDS(Cfg::kThreads)
    sgemm_tiled_kernel(GemmArgs g, const float* __restrict__ A, const float* __restrict__ B, float* __restrict__ C) {
  // A stored M x K (k contiguous) unless transposed; B stored N x K (k contiguous) when transposed.
  using LoaderA = gemm::DenseSlabLoader<Cfg::BM, Cfg::BK, Cfg::kThreads, !kATrans, kVec>;
  using LoaderB = gemm::DenseSlabLoader<Cfg::BN, Cfg::BK, Cfg::kThreads, kBTrans, kVec>;
  __shared__ gemm::SharedTiles<Cfg> sm;

  const int tid = threadIdx.x;
  int tm, tn;
  gemm::thread_coords<Cfg>(tid, tm, tn);
  const int m0 = blockIdx.y * Cfg::BM, n0 = blockIdx.x * Cfg::BN;
  A += blockIdx.z * g.stride_a, B += blockIdx.z * g.stride_b, C += blockIdx.z * g.stride_c;

  float acc[Cfg::TM][Cfg::TN] = {};
  LoaderA la;
  LoaderB lb;
  int k0 = 0;
  gemm::mainloop<Cfg>(
      sm, 0, g.K,
      [&] {
        la.load(A, g.lda, m0, k0, g.M, g.K, tid);
        lb.load(B, g.ldb, n0, k0, g.N, g.K, tid);
        k0 += Cfg::BK;
      },
      [&](int buf) {
        la.store(sm.a[buf], tid);
        lb.store(sm.b[buf], tid);
      },
      tm, tn, acc);

  // Epilogue: float4 stores when C's rows allow them (kVec implies N % 4 == 0 and ldc % 4 == 0).
#pragma unroll
  for (int i = 0; i < Cfg::TM; ++i) {
    const int m = m0 + gemm::tile_row<Cfg>(tm, i);
    if (m >= g.M) continue;
    float* crow = C + m * g.ldc;
#pragma unroll
    for (int j4 = 0; j4 < Cfg::TN; j4 += 4) {
      const int n = n0 + gemm::tile_col<Cfg>(tn, j4);
      if constexpr (kVec) {
        if (n < g.N) {
          float4* c4 = reinterpret_cast<float4*>(crow + n);
          float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
          if (g.beta != 0.0f) v = *c4;
          v.x = gemm_output(acc[i][j4 + 0], g.alpha, g.beta, &v.x);
          v.y = gemm_output(acc[i][j4 + 1], g.alpha, g.beta, &v.y);
          v.z = gemm_output(acc[i][j4 + 2], g.alpha, g.beta, &v.z);
          v.w = gemm_output(acc[i][j4 + 3], g.alpha, g.beta, &v.w);
          *c4 = v;
        }
      } else {
#pragma unroll
        for (int e = 0; e < 4; ++e)
          if (n + e < g.N) crow[n + e] = gemm_output(acc[i][j4 + e], g.alpha, g.beta, crow + n + e);
      }
    }
  }
}

template <class Cfg, bool kVec>
void launch_tiled(const Exec& ex, const GemmArgs& g, int64_t batch, const float* A, const float* B, float* C) {
  const dim3 grid((g.N + Cfg::BN - 1) / Cfg::BN, (g.M + Cfg::BM - 1) / Cfg::BM, unsigned(batch));
  const int threads = Cfg::kThreads;
  note_flop(2.0 * g.M * g.N * g.K * double(batch));
  if (!g.a_trans && !g.b_trans)
    FOVEA_LAUNCH((sgemm_tiled_kernel<Cfg, false, false, kVec>), grid, threads, 0, ex.stream, g, A, B, C);
  else if (!g.a_trans && g.b_trans)
    FOVEA_LAUNCH((sgemm_tiled_kernel<Cfg, false, true, kVec>), grid, threads, 0, ex.stream, g, A, B, C);
  else if (g.a_trans && !g.b_trans)
    FOVEA_LAUNCH((sgemm_tiled_kernel<Cfg, true, false, kVec>), grid, threads, 0, ex.stream, g, A, B, C);
  else
    FOVEA_LAUNCH((sgemm_tiled_kernel<Cfg, true, true, kVec>), grid, threads, 0, ex.stream, g, A, B, C);
}

}  // namespace

void sgemm_simple(const Exec& ex, const SgemmParams& p, const float* A, const float* B, float* C) {
  const GemmArgs g = checked_args("sgemm_simple", p, A, B, C);
  if (g.M == 0 || g.N == 0) return;
  const dim3 block(32, 8);
  const dim3 grid((g.N + 31) / 32, (g.M + 7) / 8, unsigned(p.batch));
  note_flop(2.0 * g.M * g.N * g.K * double(p.batch));
  FOVEA_LAUNCH(sgemm_simple_kernel, grid, block, 0, ex.stream, g, A, B, C);
}

void sgemm_tiled(const Exec& ex, const SgemmParams& p, const float* A, const float* B, float* C) {
  const GemmArgs g = checked_args("sgemm_tiled", p, A, B, C);
  if (g.M == 0 || g.N == 0) return;
  // 16-byte loads and stores need every row (and batch entry) of every operand to start 16-byte
  // aligned and the contiguous extents to be whole float4s; otherwise the scalar instantiation runs.
  const bool vec = aligned16(A) && aligned16(B) && aligned16(C) && g.lda % 4 == 0 && g.ldb % 4 == 0 && g.ldc % 4 == 0 &&
                   p.stride_a % 4 == 0 && p.stride_b % 4 == 0 && p.stride_c % 4 == 0 &&
                   (g.a_trans ? g.M : g.K) % 4 == 0 && (g.b_trans ? g.K : g.N) % 4 == 0 && g.N % 4 == 0;
  // The big tile once it fills the machine (132 SMs on an H100); the shape alone decides, so every
  // device runs the same tiles.
  const int64_t big_blocks = int64_t((g.M + 127) / 128) * ((g.N + 127) / 128) * p.batch;
  if (big_blocks >= 132) {
    vec ? launch_tiled<BigTile, true>(ex, g, p.batch, A, B, C) : launch_tiled<BigTile, false>(ex, g, p.batch, A, B, C);
  } else {
    vec ? launch_tiled<SmallTile, true>(ex, g, p.batch, A, B, C)
        : launch_tiled<SmallTile, false>(ex, g, p.batch, A, B, C);
  }
}

void sgemm(const Exec& ex, GemmAlgo algo, const SgemmParams& p, const float* A, const float* B, float* C) {
  algo == GemmAlgo::simple ? sgemm_simple(ex, p, A, B, C) : sgemm_tiled(ex, p, A, B, C);
}

const bool registered = ops::sgemm_stub.define(kThisSlot, sgemm);

}  // namespace fovea::FOVEA_KERNEL_NS
