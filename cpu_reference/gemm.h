// GEMM at the precisions of the tensor cores, the reference our tensor-core kernels compare with:
// C = alpha * op(A) op(B) + beta * C, row-major, BLAS argument conventions (op(A) is M x K, op(B) is K x N).
//
// Semantics of a reduced precision p (core/float_formats.h), shared by every GEMM and convolution of the
// reference (cpu_reference/conv2d.h, linear.h):
//   - operands are rounded to p's input format: TF32 by cvt.rna (10 mantissa bits, nearest, ties away from
//     zero), BF16 and FP16 to nearest even;
//   - products are exact: two rounded operands have at most 11 significant bits each, so their product fits
//     FP32's 24 (barring FP32 overflow/underflow, which the inputs of a sane model never reach);
//   - sums accumulate in FP32 (OpenBLAS sgemm on the rounded operands: FMA, its own blocked order);
//   - outputs are stored as the kernels store them: FP32 for fp32 and tf32, rounded to nearest even for bf16 and
//     fp16. C's input values (beta != 0) and a bias are read as values of the output type.
// fp32 is plain FP32 (no rounding anywhere).
//
// Error bound against the FP32 result (tests/precision_ref_test.cpp checks it element by element). With u the
// FP32 unit roundoff 2^-24, u_p the input format's (2^-11 for tf32 and fp16, 2^-8 for bf16), u_o the output's
// (0 for fp32/tf32, else u_p), gamma_K = K u / (1 - K u), and S = sum_k |a_k b_k| of the unrounded operands:
//   rounding the operands moves each product by at most (2 u_p + u_p^2) |a_k b_k|; each FP32 sum is within
//   gamma_K of its exact value (any order), so
//   |C_p - C_fp32| <= ((2 u_p + u_p^2) + 2 gamma_K (1 + u_p)^2) S + u_o |C_p| / (1 - u_o)
// for alpha = 1, beta = 0 (otherwise add 2 u |C| for the scaling and u_o |beta C| for C's rounding). Inputs in the
// normal range; an FP16 subnormal operand adds an absolute 2^-25 times its partner.
#pragma once
#include <cstdint>

#include "core/float_formats.h"

namespace fovea::ref {

void gemm(Precision p, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// x[0..n) rounded to p's input format (out may be x).
void round_operands(Precision p, const float* x, int64_t n, float* out);
// x[0..n) rounded as p's outputs are stored (out may be x).
void round_outputs(Precision p, const float* x, int64_t n, float* out);

}  // namespace fovea::ref
