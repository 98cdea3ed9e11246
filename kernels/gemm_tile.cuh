// Building blocks of our tiled SGEMM (kernels/sgemm.cu) and implicit-GEMM convolutions
// (kernels/conv2d_igemm_*.cu).
//
// A thread block computes a BM x BN tile of C = A * B and walks the reduction dimension in slabs
// of BK. Both operand slabs are staged in shared memory k-major (As[k][m], Bs[k][n]), so that for
// each k every thread reads its TM values of A and TN values of B as float4s and does TM * TN FMAs
// out of registers. Two shared buffers: the global loads of slab t+1 go into registers before the
// FMAs of slab t and into the other buffer after them, so one __syncthreads per slab suffices and
// the load latency hides behind TM * TN * BK FMAs per thread.
//
// Register tile: a thread's TM rows are TM/4 groups of 4 consecutive rows spaced BM/(TM/4) apart
// (columns likewise). Each warp covers 4 x 8 threads of the block's thread grid (thread_coords), so
// per k a warp reads 4 distinct float4s of As and 8 of Bs, each broadcast to the lanes that share it,
// and a quarter warp's epilogue stores 128 contiguous bytes. The emulator's memory metrics count 4
// wavefronts for each of these 128-bit shared loads (4 quarter-warp phases, none conflicting): with
// TM = TN = 4 that is 8 wavefronts per 16 FMAs per lane, which makes the small tiles L1-bound in the
// cost model (core/emu/cost_model.h); whether the GPU merges phases that read the same addresses is for
// a GPU profile to tell.
//
// Shared rows are padded by 4 floats: the transposing stores of k-contiguous operands (4 m columns
// x 8 k rows per warp) then hit 32 distinct banks, and float4 reads stay 16-byte aligned. The conv
// gathers use other padding (kGatherLd).
#pragma once
#include "kernels/common.cuh"

// 256-thread tiles are held to 128 registers so that two blocks (16 warps) share an SM; without
// the bound ptxas gives the gather kernels 130-170 registers and one block per SM. Smaller blocks
// keep what ptxas chooses (no spills; 2-5 blocks per SM). bench/ptxas_table.sh lists the result.
#if defined(__CUDACC__)
#define FOVEA_DEVICE_INLINE __device__ __forceinline__
#define FOVEA_LAUNCH_BOUNDS(threads) __launch_bounds__(threads, (threads) >= 256 ? 2 : 1)
#else
#define FOVEA_DEVICE_INLINE inline
#define FOVEA_LAUNCH_BOUNDS(threads)
#endif

namespace fovea::FOVEA_KERNEL_NS::gemm {

template <int BM_, int BN_, int BK_, int TM_, int TN_>
struct TileConfig {
  static constexpr int BM = BM_, BN = BN_, BK = BK_, TM = TM_, TN = TN_;
  static constexpr int kThreadsM = BM / TM, kThreadsN = BN / TN, kThreads = kThreadsM * kThreadsN;
  static constexpr int kLdA = BM + 4, kLdB = BN + 4;  // padded shared rows
  static constexpr int kGroupStrideM = BM / (TM / 4), kGroupStrideN = BN / (TN / 4);
  static_assert(TM % 4 == 0 && TN % 4 == 0, "register tiles are read as float4s");
  static_assert(BM % TM == 0 && BN % TN == 0, "tile must split evenly among threads");
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "whole warps");
  static_assert(kThreads % BK == 0 && BN % (kThreads / BK) == 0, "gather loaders give each thread one k row");
  static_assert(kThreadsM % 4 == 0 && kThreadsN % 8 == 0, "warps cover 4 x 8 threads of the tile");
};

// Position (tm, tn) of thread tid in the kThreadsM x kThreadsN grid: lanes 0-7 of a warp take 8
// consecutive tn, the warp's four lane octets 4 consecutive tm; warps tile the grid row-major.
template <class Cfg>
FOVEA_DEVICE_INLINE void thread_coords(int tid, int& tm, int& tn) {
  constexpr int kWarpsN = Cfg::kThreadsN / 8;
  const int warp = tid / 32, lane = tid % 32;
  tm = (warp / kWarpsN) * 4 + lane / 8;
  tn = (warp % kWarpsN) * 8 + lane % 8;
}

// Both double-buffered operand slabs of a block; 16-byte aligned for float4 access. The row lengths
// (padding) are those of the loaders that fill them: see kGatherLd.
template <class Cfg, int LdA = Cfg::kLdA, int LdB = Cfg::kLdB>
struct alignas(16) SharedTiles {
  float a[2][Cfg::BK][LdA];
  float b[2][Cfg::BK][LdB];
};

// Row length of a B slab stored by the conv gather loaders (kernels/conv2d_igemm.cuh), where a warp
// stores 32 / R rows of R consecutive columns (R = kThreads / BK threads per slab row): rows R banks apart
// make those stores conflict-free. The default pad of 4 puts two rows of 16 columns 4 banks apart, a 2-way
// bank conflict on every store (measured by the emulator's memory metrics: 2 wavefronts per request).
template <class Cfg>
inline constexpr int kGatherLd = Cfg::BN + ((Cfg::kThreads / Cfg::BK) >= 32
                                                ? 4
                                                : (((Cfg::kThreads / Cfg::BK) - Cfg::BN) % 32 + 32) % 32);

// Block-tile row (column) held in register row i (column j) of thread tm (tn).
template <class Cfg>
FOVEA_DEVICE_INLINE int tile_row(int tm, int i) {
  return (i / 4) * Cfg::kGroupStrideM + tm * 4 + (i % 4);
}
template <class Cfg>
FOVEA_DEVICE_INLINE int tile_col(int tn, int j) {
  return (j / 4) * Cfg::kGroupStrideN + tn * 4 + (j % 4);
}

FOVEA_DEVICE_INLINE void load_float4(const float* p, float* out) {
  const float4 v = *reinterpret_cast<const float4*>(p);
  out[0] = v.x, out[1] = v.y, out[2] = v.z, out[3] = v.w;
}

// acc += As * Bs over one slab. Each accumulator sums its products in k order, so the result does
// not depend on thread scheduling.
template <class Cfg, int LdA, int LdB>
FOVEA_DEVICE_INLINE void mma_slab(const float (&As)[Cfg::BK][LdA], const float (&Bs)[Cfg::BK][LdB], int tm, int tn,
                                  float (&acc)[Cfg::TM][Cfg::TN]) {
#pragma unroll
  for (int k = 0; k < Cfg::BK; ++k) {
    float a[Cfg::TM], b[Cfg::TN];
#pragma unroll
    for (int i = 0; i < Cfg::TM / 4; ++i) load_float4(&As[k][i * Cfg::kGroupStrideM + tm * 4], a + 4 * i);
#pragma unroll
    for (int j = 0; j < Cfg::TN / 4; ++j) load_float4(&Bs[k][j * Cfg::kGroupStrideN + tn * 4], b + 4 * j);
#pragma unroll
    for (int i = 0; i < Cfg::TM; ++i)
#pragma unroll
      for (int j = 0; j < Cfg::TN; ++j) acc[i][j] += a[i] * b[j];
  }
}

// Runs the slabs [k_begin, k_end) through shared memory, double buffered (see the top of this file).
// load() fills the loaders' registers with the next slab, store(buf) moves them to buffer buf.
template <class Cfg, int LdA, int LdB, class Load, class Store>
FOVEA_DEVICE_INLINE void mainloop(SharedTiles<Cfg, LdA, LdB>& sm, int k_begin, int k_end, Load&& load, Store&& store,
                                  int tm, int tn, float (&acc)[Cfg::TM][Cfg::TN]) {
  const int slabs = k_end > k_begin ? (k_end - k_begin + Cfg::BK - 1) / Cfg::BK : 0;
  if (slabs > 0) {
    load();
    store(0);
  }
  __syncthreads();
  for (int t = 0; t < slabs; ++t) {
    const int cur = t & 1;
    const bool more = t + 1 < slabs;
    if (more) load();
    mma_slab<Cfg, LdA, LdB>(sm.a[cur], sm.b[cur], tm, tn, acc);
    if (more) store(cur ^ 1);
    __syncthreads();  // slab t+1 is visible, and nobody still reads slab t's buffer when it is refilled
  }
}

// Stages a BK x BMN slab of a dense row-major operand into shared memory as S[k][mn].
// kKContig: element (mn, k) is at p[mn * ld + k] (k contiguous); otherwise at p[k * ld + mn].
// kVec: 16-byte loads along the contiguous dimension. The launcher guarantees that p is 16-byte
// aligned and that ld and the contiguous extent are multiples of 4, so a float4 lies wholly inside
// or wholly outside the matrix. Elements outside [0, MN) x [0, K) are staged as zeros.
template <int BMN, int BK, int kThreads, bool kKContig, bool kVec>
struct DenseSlabLoader {
  static constexpr int kWidth = kVec ? 4 : 1;
  static constexpr int kItems = BMN * BK / kWidth;
  static constexpr int kPerThread = (kItems + kThreads - 1) / kThreads;
  float reg[kPerThread][kWidth] = {};  // threads past kItems keep zeros (never stored)

  static FOVEA_DEVICE_INLINE void position(int v, int& mn, int& k) {
    if constexpr (kKContig) {
      mn = v / (BK / kWidth), k = (v % (BK / kWidth)) * kWidth;
    } else {
      k = v / (BMN / kWidth), mn = (v % (BMN / kWidth)) * kWidth;
    }
  }

  FOVEA_DEVICE_INLINE void load(const float* __restrict__ p, int ld, int mn0, int k0, int MN, int K, int tid) {
#pragma unroll
    for (int l = 0; l < kPerThread; ++l) {
      const int v = tid + l * kThreads;
      if (kItems % kThreads != 0 && v >= kItems) break;
      int mn, k;
      position(v, mn, k);
      const int gmn = mn0 + mn, gk = k0 + k;
      const bool ok = gmn < MN && gk < K;
      if constexpr (kVec) {
        float4 t = make_float4(0.f, 0.f, 0.f, 0.f);
        if (ok) t = *reinterpret_cast<const float4*>(p + (kKContig ? gmn * ld + gk : gk * ld + gmn));
        reg[l][0] = t.x, reg[l][1] = t.y, reg[l][2] = t.z, reg[l][3] = t.w;
      } else {
        reg[l][0] = ok ? p[kKContig ? gmn * ld + gk : gk * ld + gmn] : 0.f;
      }
    }
  }

  template <int LD>
  FOVEA_DEVICE_INLINE void store(float (&S)[BK][LD], int tid) const {
#pragma unroll
    for (int l = 0; l < kPerThread; ++l) {
      const int v = tid + l * kThreads;
      if (kItems % kThreads != 0 && v >= kItems) break;
      int mn, k;
      position(v, mn, k);
      if constexpr (kKContig) {
#pragma unroll
        for (int e = 0; e < kWidth; ++e) S[k + e][mn] = reg[l][e];
      } else if constexpr (kVec) {
        *reinterpret_cast<float4*>(&S[k][mn]) = make_float4(reg[l][0], reg[l][1], reg[l][2], reg[l][3]);
      } else {
        S[k][mn] = reg[l][0];
      }
    }
  }
};

// Position (hi, mid, lo) of a flat index i = (hi * MID + mid) * LO + lo, advanced by a fixed step
// with carries instead of divisions (conv reduction indices (c, r, s) and pixels (n, p, q)).
// Valid while the step's mid and lo digits are below MID and LO, which init() guarantees.
struct Radix3Walker {
  int hi = 0, mid = 0, lo = 0;
  int dhi = 0, dmid = 0, dlo = 0;

  FOVEA_DEVICE_INLINE void init(int index, int step, int MID, int LO) {
    const int ml = MID * LO;
    hi = index / ml, mid = (index % ml) / LO, lo = index % LO;
    dhi = step / ml, dmid = (step % ml) / LO, dlo = step % LO;
  }
  FOVEA_DEVICE_INLINE void advance(int MID, int LO) {
    lo += dlo, mid += dmid, hi += dhi;
    if (lo >= LO) lo -= LO, ++mid;     // lo + dlo < 2 LO: one carry at most
    if (mid >= MID) mid -= MID, ++hi;  // mid + dmid + 1 < 2 MID
  }
};

}  // namespace fovea::FOVEA_KERNEL_NS::gemm
