// What the tensor-core GEMM kernels share (kernels/tc_gemm.cu: simple; kernels/tc_gemm_multistage.cuh: optimised):
// the per-precision operations, the checked arguments, and when an operand may be staged with cp.async.
#pragma once
#include <climits>
#include <cstdint>

#include "kernels/mma.cuh"
#include "kernels/reduce.cuh"  // aligned16
#include "kernels/tc_gemm.h"
#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

namespace fovea::FOVEA_KERNEL_NS::tcg {

// What differs between the precisions: storage type, the mma, operand conversion, output conversion.
struct Tf32 {
  using Raw = float;
  static constexpr int kStepK = 8;
  static FOVEA_DEVICE_INLINE void mma(float (&acc)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    tc::mma_m16n8k8_tf32(acc, a, b, acc);
  }
  static FOVEA_DEVICE_INLINE uint32_t operand(uint32_t bits) { return tc::cvt_rna_tf32(__uint_as_float(bits)); }
  static FOVEA_DEVICE_INLINE float to_float(Raw x) { return x; }
  static FOVEA_DEVICE_INLINE Raw from_float(float x) { return x; }
};
struct Bf16 {
  using Raw = uint16_t;
  static constexpr int kStepK = 16;
  static FOVEA_DEVICE_INLINE void mma(float (&acc)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    tc::mma_m16n8k16_bf16(acc, a, b, acc);
  }
  static FOVEA_DEVICE_INLINE uint32_t operand(uint32_t bits) { return bits; }
  static FOVEA_DEVICE_INLINE float to_float(Raw x) { return __bfloat162float(__ushort_as_bfloat16(x)); }
  static FOVEA_DEVICE_INLINE Raw from_float(float x) { return __bfloat16_as_ushort(__float2bfloat16_rn(x)); }
};
struct Fp16 {
  using Raw = uint16_t;
  static constexpr int kStepK = 16;
  static FOVEA_DEVICE_INLINE void mma(float (&acc)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    tc::mma_m16n8k16_f16(acc, a, b, acc);
  }
  static FOVEA_DEVICE_INLINE uint32_t operand(uint32_t bits) { return bits; }
  static FOVEA_DEVICE_INLINE float to_float(Raw x) { return __half2float(__ushort_as_half(x)); }
  static FOVEA_DEVICE_INLINE Raw from_float(float x) { return __half_as_ushort(__float2half_rn(x)); }
};

// Sizes in int once checked: every operand spans < 2^31 elements per batch entry.
struct GemmArgs {
  int M, N, K;
  float alpha, beta;
  int lda, ldb, ldc;
  int64_t stride_a, stride_b, stride_c;
  bool a_trans, b_trans;
};

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

// cp.async needs k-contiguous rows (A as stored, B transposed) that start 16-byte aligned in every batch entry.
template <class Raw>
bool async_a(const SgemmParams& p, const Raw* A) {
  constexpr int64_t kE = int64_t(sizeof(Raw));
  return p.trans_a == Trans::N && aligned16(A) && (p.lda * kE) % 16 == 0 && (p.stride_a * kE) % 16 == 0;
}
template <class Raw>
bool async_b(const SgemmParams& p, const Raw* B) {
  constexpr int64_t kE = int64_t(sizeof(Raw));
  return p.trans_b == Trans::T && aligned16(B) && (p.ldb * kE) % 16 == 0 && (p.stride_b * kE) % 16 == 0;
}

}  // namespace fovea::FOVEA_KERNEL_NS::tcg
