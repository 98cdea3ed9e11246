// What the tensor-core GEMM kernels share (kernels/tc_gemm.cu: simple; kernels/tc_gemm_multistage.cuh: optimised):
// the per-precision operations, the checked arguments, and when an operand may be staged with cp.async.
#pragma once
#include <climits>
#include <cstdint>

#include "kernels/mma.cuh"
#include "kernels/reduce.cuh"  // aligned16
#include "kernels/sgemm.cuh"
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

using fovea::FOVEA_KERNEL_NS::checked_args;  // kernels/sgemm.cuh: the GEMM contract of every kernel
using fovea::FOVEA_KERNEL_NS::GemmArgs;

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
