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
//                     element loads. Same results as the simple kernel, bit for bit (same k-steps in the same order).
#pragma once
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

}  // namespace fovea::ops
