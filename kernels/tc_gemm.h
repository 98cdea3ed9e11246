// Tensor-core GEMM, row-major: C = alpha * op(A) * op(B) + beta * C at TF32 (FP32 tensors), BF16 or FP16
// (16-bit tensors), accumulating in FP32 (kernels/tc_gemm.cu). The geometry is SgemmParams' (layers/ops/gemm.h):
// transpositions, leading dimensions, strided batches; beta == 0 means C is not read.
//
// Results are those of fovea::ref::gemm at the same precision (cpu_reference/gemm.h): operands rounded (TF32 by
// cvt.rna.tf32.f32 in the kernel; BF16/FP16 tensors are already in their type), exact products, FP32 sums, the
// output rounded to nearest even into a 16-bit C. The sums of an element run in k order, slab by slab: bitwise
// the same run to run and under every emulator schedule.
//
//   tc_gemm_simple_*: one warp per 32 x 32 tile of C, 64-byte k slabs staged in shared memory (cp.async when an
//                     operand's rows are k-contiguous and 16-byte aligned, else element loads), ldmatrix
//                     fragments, mma.sync. Correctness first: the simple kernel beside the optimised one.
//   tc_gemm_multistage_*: 4 warps per 128 x 128 tile, a 3-stage cp.async pipeline of 128-byte k-tiles in XOR-swizzled
//                     shared memory (no bank conflicts), ldmatrix.x4 fragments (kernels/tc_gemm_multistage.cuh). Fast
//                     when A is stored M x K and B N x K with 16-byte aligned rows; other layouts are staged by
//                     element loads. Same results as the simple kernel, bit for bit (same k-steps in the same order),
//                     except where it splits K (tc_gemm_multistage_splits > 1): then each of the S parts sums its
//                     k-tiles in k order into FP32 partials in the workspace (Exec::workspace,
//                     tc_gemm_multistage_workspace_bytes), and a second kernel adds the parts in part order (0, 1, ...)
//                     and applies alpha, beta and the output rounding once. Those sums differ from the unsplit
//                     kernel's in the last bits, equal the reference on exact operands and stay within its rounding
//                     bound; S depends on the shape only, so the bits are the same on every device and run.
#pragma once
#include <algorithm>
#include <cstdint>

#include "core/dispatch.h"
#include "core/float_formats.h"
#include "layers/ops/gemm.h"  // SgemmParams, Trans

namespace fovea::ops {

// Entry points, filled by kernels/tc_gemm.cu in slots emu (its emulator build) and cuda (its nvcc build) with
// tc_gemm_simple_*, and by kernels/tc_gemm_multistage.cu with tc_gemm_multistage_* (same signatures); the reference of
// the same precision is fovea::ref::gemm (not registered: its arguments are BLAS's). Callers link fovea_impl. They move
// to layers/ops/gemm.h with the precision-aware GEMM op.
inline constinit DispatchStub<void(const Exec&, const SgemmParams& g, const float* A, const float* B, float* C)>
    tc_gemm_tf32_stub{"tc_gemm_tf32"};
inline constinit DispatchStub<void(const Exec&, const SgemmParams& g, const BFloat16* A, const BFloat16* B,
                                   BFloat16* C)>
    tc_gemm_bf16_stub{"tc_gemm_bf16"};
inline constinit DispatchStub<void(const Exec&, const SgemmParams& g, const Half* A, const Half* B, Half* C)>
    tc_gemm_fp16_stub{"tc_gemm_fp16"};
inline constinit DispatchStub<void(const Exec&, const SgemmParams& g, const float* A, const float* B, float* C)>
    tc_gemm_multistage_tf32_stub{"tc_gemm_multistage_tf32"};
inline constinit DispatchStub<void(const Exec&, const SgemmParams& g, const BFloat16* A, const BFloat16* B,
                                   BFloat16* C)>
    tc_gemm_multistage_bf16_stub{"tc_gemm_multistage_bf16"};
inline constinit DispatchStub<void(const Exec&, const SgemmParams& g, const Half* A, const Half* B, Half* C)>
    tc_gemm_multistage_fp16_stub{"tc_gemm_multistage_fp16"};

// The parts of a split-K reduction of `ktiles` k-tiles over an output of `tiles` 128 x 128 tiles: enough blocks for
// ~264 (two per SM of a 132-SM H100) when the tiles are fewer, at least 8 k-tiles per part, no empty part; 1 (no split)
// from 264 tiles up or below 16 k-tiles. A function of the shape only, never of the device: the sums, so the bits, are
// the same everywhere. Shared by the GEMM and the implicit-GEMM wgrad (kernels/conv2d_tc.h).
inline int64_t tc_split_k_parts(int64_t tiles, int64_t ktiles) {
  const int64_t splits = std::min((264 + tiles - 1) / std::max<int64_t>(tiles, 1), ktiles / 8);
  if (splits < 2) return 1;
  const int64_t per = (ktiles + splits - 1) / splits;
  return (ktiles + per - 1) / per;
}

// The multistage GEMM's split of K (k-tiles of 128 bytes: 32 TF32 or 64 BF16/FP16 elements) for g at prec: e.g. a
// linear layer at batch 128 (M = 128, N = 10..512: 1 to 4 tiles) with K = 4096 in BF16 (64 k-tiles) runs 8 parts.
inline int64_t tc_gemm_multistage_splits(Precision prec, const SgemmParams& g) {
  const int64_t bk = prec == Precision::tf32 ? 32 : 64;
  const int64_t tiles = (g.M + 127) / 128 * ((g.N + 127) / 128) * g.batch;
  return tc_split_k_parts(tiles, (g.K + bk - 1) / bk);
}

// Workspace the multistage stubs take from Exec::workspace: the FP32 partials, S x batch x M x N floats where they
// split, else none (no workspace needed).
inline int64_t tc_gemm_multistage_workspace_bytes(Precision prec, const SgemmParams& g) {
  const int64_t s = tc_gemm_multistage_splits(prec, g);
  return s > 1 ? s * g.batch * g.M * g.N * 4 : 0;
}

}  // namespace fovea::ops
