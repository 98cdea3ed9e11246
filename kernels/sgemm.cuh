// Our two GEMM kernels (kernels/sgemm.cu), for the kernel files that build on them (linear, im2col
// convolution); the library's entry point is ops::sgemm_stub (layers/ops/gemm.h). Only .cu files include this.
//   sgemm_simple: one thread per element of C, a plain dot product. Obviously right; the oracle.
//   sgemm_tiled : shared-memory slabs + 8x8 (or 4x4) register tiles, double buffered, 16-byte loads when A, B,
//                 C are 16-byte aligned and their leading dimensions, batch strides and contiguous extents are
//                 multiples of 4. The one the library uses.
#pragma once
#include <climits>
#include <cstdint>

#include "kernels/common.cuh"
#include "layers/ops/gemm.h"

namespace fovea::FOVEA_KERNEL_NS {

// Sizes in int once checked: every operand spans < 2^31 elements per batch entry.
struct GemmArgs {
  int M, N, K;
  float alpha, beta;
  int lda, ldb, ldc;
  int64_t stride_a, stride_b, stride_c;
  bool a_trans, b_trans;
};

// The SgemmParams contract checked once for every GEMM kernel (ours and the tensor-core ones), sizes as int.
inline GemmArgs checked_args(const char* op, const SgemmParams& p, const void* A, const void* B, const void* C) {
  p.validate(op);
  check_ptr(op, "C", C);
  if (p.K != 0) check_ptr(op, "A", A), check_ptr(op, "B", B);  // K = 0: C = beta C reads neither
  auto fits = [](int64_t v) { return v >= 0 && v < INT_MAX; };
  FOVEA_CHECK(
      fits(p.M) && fits(p.N) && fits(p.K) && fits(p.a_rows() * p.lda) && fits(p.b_rows() * p.ldb) && fits(p.M * p.ldc),
      op, ": each matrix must span fewer than 2^31 elements (M=", p.M, " N=", p.N, " K=", p.K, " lda=", p.lda,
      " ldb=", p.ldb, " ldc=", p.ldc, ")");
  FOVEA_CHECK(p.batch <= 65535, op, ": argument 'batch'=", p.batch, " exceeds the grid limit 65535");
  GemmArgs g;
  g.M = int(p.M), g.N = int(p.N), g.K = int(p.K);
  g.alpha = p.alpha, g.beta = p.beta;
  g.lda = int(p.lda), g.ldb = int(p.ldb), g.ldc = int(p.ldc);
  g.stride_a = p.stride_a, g.stride_b = p.stride_b, g.stride_c = p.stride_c;
  g.a_trans = p.trans_a == Trans::T, g.b_trans = p.trans_b == Trans::T;
  return g;
}

void sgemm_simple(const Exec& ex, const SgemmParams& p, const float* A, const float* B, float* C);
void sgemm_tiled(const Exec& ex, const SgemmParams& p, const float* A, const float* B, float* C);
}  // namespace fovea::FOVEA_KERNEL_NS
