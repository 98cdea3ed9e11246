// The shared half of the implicit-GEMM convolutions (kernels/conv2d_igemm_fprop.cu, _dgrad.cu, _wgrad.cu):
// the 32-bit geometry, the operand loaders more than one op uses, the epilogue, the split-K reduction and
// the host-side planning helpers. Split by op so that the three heavy files compile in parallel. Only .cu
// files include this; everything is in an anonymous namespace (one copy per op file).
//
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
//          stride phase over only the taps that land on the stride grid (conv2d.h); same bytes. For
//          R*S > 1 a first small kernel copies w into the layout the GEMM reads (channels contiguous,
//          kernels/conv2d_igemm_dgrad.cu): one more launch, K*C/g*R*S floats of workspace, one read
//          and one write of w.
//   wgrad  per output dw: 2*N*P*Q FLOPs; the N*P*Q reduction is split across blocks (split-K) and
//          the slices are added by splitk_reduce_kernel in slice order: 4*splits bytes per dw.
// Few output tiles (small spatial sizes) get split-K in fprop and dgrad as well (conv2d_igemm_plan).
// All sums have a fixed order: bitwise deterministic, no atomics.
#pragma once
#include <climits>
#include <type_traits>

#include "kernels/common.cuh"
#include "kernels/conv2d.h"
#include "kernels/gemm_tile.cuh"
#include "kernels/reduce.cuh"  // aligned16, grid_stride_blocks, workspace_array

namespace fovea::FOVEA_KERNEL_NS {

// out[i] = sum of the `splits` partials ws[s * n + i] (n = out_size), plus bias[(i / plane) % channels] when
// bias is set. Defined once, in conv2d_igemm_fprop.cu, for the three ops: kernels defined in a header's
// anonymous namespace would be one kernel name in three files, which the emulator's checked build cannot tell
// apart.
void splitk_reduce(const Exec& ex, const float* ws, int splits, int64_t out_size, float* out, const float* bias,
                   int64_t plane, int64_t channels);

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

// Where the GEMM writes: the output itself, or partials in the call's workspace when the reduction is split.
// dgrad: *weight_copy is where its weight copy goes, after the partials (null when R*S == 1 needs none).
float* gemm_target(const Exec& ex, const char* op, ConvOp which, const Conv2dParams& p, const ConvGemmPlan& plan,
                   float* out, float** weight_copy = nullptr) {
  const size_t bytes = conv2d_igemm_workspace_bytes(which, p, plan);
  float* ws = bytes > 0 ? workspace_array<float>(ex, int64_t(bytes / sizeof(float)), op) : nullptr;
  if (weight_copy)
    *weight_copy = which == ConvOp::backward_data && conv2d_igemm_dgrad_weight_copy_bytes(p) > 0
                       ? ws + conv2d_igemm_partials_bytes(which, p, plan) / sizeof(float)
                       : nullptr;
  return plan.splits == 1 ? out : ws;
}

// x: columns, y: rows of C, z: independent GEMMs (groups, dgrad phases) x reduction slices.
template <class Cfg>
dim3 gemm_grid(const char* op, const ConvGeom& g, int64_t batches) {
  const int64_t gy = (g.M + Cfg::BM - 1) / Cfg::BM;
  FOVEA_CHECK(gy <= 65535, op, ": ", g.M, " channels per group exceed the grid limit");
  return dim3(unsigned((g.Ngemm + Cfg::BN - 1) / Cfg::BN), unsigned(gy), unsigned(batches * g.splits));
}

}  // namespace
}  // namespace fovea::FOVEA_KERNEL_NS
