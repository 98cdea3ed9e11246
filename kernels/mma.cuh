// Tensor-core and asynchronous-copy instructions for kernels: one function per PTX instruction, inline PTX under
// nvcc (sm_80 and later; older architectures trap), an exact warp-collective emulation under the emulator
// (core/emu/tensor_core.h says what "exact" means and the one documented difference: the order of additions
// inside an mma).
//
//   mma_m16n8k8_tf32(d, a, b, c)    d = a * b + c, A 16x8 row, B 8x8 col, FP32 accumulators
//   mma_m16n8k16_bf16(d, a, b, c)   A 16x16, B 16x8, BF16 inputs
//   mma_m16n8k16_f16(d, a, b, c)    FP16 inputs
//   ldmatrix<kNum, kTrans>(r, p)    ldmatrix.sync.aligned.m8n8.x{1,2,4}{.trans}.shared.b16
//   cp_async<kBytes>(dst, src, n)   cp.async of kBytes (4, 8, 16): n bytes of src, then zeros
//   cp_async_commit()               cp.async.commit_group
//   cp_async_wait<N>()              cp.async.wait_group N
//   cvt_rna_tf32(x)                 cvt.rna.tf32.f32: FP32 to TF32, nearest, ties away from zero
//
// Fragment layouts (which matrix element each lane's registers hold) are the PTX ISA's, section 9.7.14.5.7
// (m16n8k8), 9.7.14.5.8 (m16n8k16) and 9.7.14.5.15 (ldmatrix); fovea::emu::mma_a_coord() etc. in
// core/emu/tensor_core.h spell them out, and tests/tensor_core_test.cpp checks them against the PTX formulas and
// CuTe's thread-value layouts (include/cute/atom/mma_traits_sm80.hpp, copy_traits_sm75.hpp).
#pragma once
#include <cstdint>

#include "core/float_formats.h"
#include "kernels/common.cuh"
#if !defined(__CUDACC__)
#include "core/emu/tensor_core.h"
#endif

#if defined(__CUDACC__)
#define FOVEA_DEVICE_INLINE __device__ __forceinline__
#else
#define FOVEA_DEVICE_INLINE inline
#endif

// Under nvcc's device pass: the instruction on sm_80+, a trap below; under its host pass nothing (never called);
// under the emulator the emulation.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define FOVEA_TC_PTX 1
#endif

// The emulator's checked build (core/emu/README.md) sees a kernel's loads and stores through the hooks g++ calls
// before each one; ldmatrix and cp.async move their bytes inside the emulator's runtime, which is not instrumented,
// so they call the same hooks themselves, from the kernel's code: memcheck, racecheck and the memory metrics (bank
// wavefronts, sectors) then see them as one access site per call. ldmatrix: each of lanes 0 .. 8 num - 1 loads its
// 16-byte row (one 8 x 8 matrix per phase of 8 lanes, as the hardware's 128-bit accesses). cp.async: a store of
// the whole destination when the copy is issued (racecheck's view: the write may land any time before the wait),
// and a load of the src-size bytes of the source.
#if defined(FOVEA_EMU_CHECKED) && !defined(__CUDACC__)
extern "C" {
void __asan_load4_noabort(uintptr_t);
void __asan_load8_noabort(uintptr_t);
void __asan_load16_noabort(uintptr_t);
void __asan_loadN_noabort(uintptr_t, size_t);
void __asan_store4_noabort(uintptr_t);
void __asan_store8_noabort(uintptr_t);
void __asan_store16_noabort(uintptr_t);
}
#define FOVEA_TC_HOOKS 1
#endif

namespace fovea::FOVEA_KERNEL_NS::tc {

// ------------------------------------------------------------------ mma.sync
FOVEA_DEVICE_INLINE void mma_m16n8k8_tf32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                          const float (&c)[4]) {
#if defined(FOVEA_TC_PTX)
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#elif defined(__CUDA_ARCH__)
  __trap();
#elif defined(FOVEA_EMU)
  ::fovea::emu::mma_sync(::fovea::emu::MmaKind::m16n8k8_tf32, d, a, b, c);
#endif
}

FOVEA_DEVICE_INLINE void mma_m16n8k16_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                           const float (&c)[4]) {
#if defined(FOVEA_TC_PTX)
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#elif defined(__CUDA_ARCH__)
  __trap();
#elif defined(FOVEA_EMU)
  ::fovea::emu::mma_sync(::fovea::emu::MmaKind::m16n8k16_bf16, d, a, b, c);
#endif
}

FOVEA_DEVICE_INLINE void mma_m16n8k16_f16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                          const float (&c)[4]) {
#if defined(FOVEA_TC_PTX)
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#elif defined(__CUDA_ARCH__)
  __trap();
#elif defined(FOVEA_EMU)
  ::fovea::emu::mma_sync(::fovea::emu::MmaKind::m16n8k16_f16, d, a, b, c);
#endif
}

// ------------------------------------------------------------------ ldmatrix
// Lanes 0 .. 8 * kNum - 1 pass the shared-memory address of one 16-byte row each (lane 8j + r: row r of matrix
// j); every lane receives one 32-bit register per matrix.
template <int kNum, bool kTrans = false>
FOVEA_DEVICE_INLINE void ldmatrix(uint32_t (&r)[kNum], const void* smem_row) {
  static_assert(kNum == 1 || kNum == 2 || kNum == 4, "ldmatrix loads 1, 2 or 4 matrices");
#if defined(FOVEA_TC_PTX)
  const unsigned p = unsigned(__cvta_generic_to_shared(smem_row));
  if constexpr (kNum == 1 && !kTrans) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(p));
  } else if constexpr (kNum == 1) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(p));
  } else if constexpr (kNum == 2 && !kTrans) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(p));
  } else if constexpr (kNum == 2) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(p));
  } else if constexpr (!kTrans) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(p));
  } else {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(p));
  }
#elif defined(__CUDA_ARCH__)
  __trap();
#elif defined(FOVEA_EMU)
  ::fovea::emu::ldmatrix(kNum, kTrans, r, smem_row);
#if defined(FOVEA_TC_HOOKS)
  const unsigned t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  if (t % 32 < 8 * kNum) __asan_load16_noabort(reinterpret_cast<uintptr_t>(smem_row));
#endif
#endif
}

// ------------------------------------------------------------------ cp.async
// Copies kBytes from global src to shared dst (both aligned to kBytes): the first src_bytes (0..kBytes) from
// src, zeros after them; src is not read when src_bytes is 0. 16-byte copies bypass L1 (.cg).
template <int kBytes>
FOVEA_DEVICE_INLINE void cp_async(void* dst, const void* src, int src_bytes = kBytes) {
  static_assert(kBytes == 4 || kBytes == 8 || kBytes == 16, "cp.async copies 4, 8 or 16 bytes");
#if defined(FOVEA_TC_PTX)
  const unsigned d = unsigned(__cvta_generic_to_shared(dst));
  if constexpr (kBytes == 16) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(src_bytes) : "memory");
  } else {
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(d), "l"(src), "n"(kBytes), "r"(src_bytes)
                 : "memory");
  }
#elif defined(__CUDA_ARCH__)
  __trap();
#elif defined(FOVEA_EMU)
  ::fovea::emu::cp_async(dst, src, kBytes, src_bytes);  // checks sizes and alignment first
#if defined(FOVEA_TC_HOOKS)
  const uintptr_t d = reinterpret_cast<uintptr_t>(dst), s = reinterpret_cast<uintptr_t>(src);
  if constexpr (kBytes == 4) __asan_store4_noabort(d);
  if constexpr (kBytes == 8) __asan_store8_noabort(d);
  if constexpr (kBytes == 16) __asan_store16_noabort(d);
  if (src_bytes == kBytes && kBytes == 4) __asan_load4_noabort(s);
  if (src_bytes == kBytes && kBytes == 8) __asan_load8_noabort(s);
  if (src_bytes == kBytes && kBytes == 16) __asan_load16_noabort(s);
  if (src_bytes > 0 && src_bytes < kBytes) __asan_loadN_noabort(s, size_t(src_bytes));
#endif
#endif
}

FOVEA_DEVICE_INLINE void cp_async_commit() {
#if defined(FOVEA_TC_PTX)
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#elif defined(__CUDA_ARCH__)
  __trap();
#elif defined(FOVEA_EMU)
  ::fovea::emu::cp_async_commit_group();
#endif
}

// Waits until at most kPending of this thread's committed groups are incomplete. Other threads see the data
// after a barrier (__syncthreads) that follows the wait.
template <int kPending>
FOVEA_DEVICE_INLINE void cp_async_wait() {
  static_assert(kPending >= 0 && kPending <= 7, "cp.async.wait_group takes 0..7 here");
#if defined(FOVEA_TC_PTX)
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
#elif defined(__CUDA_ARCH__)
  __trap();
#elif defined(FOVEA_EMU)
  ::fovea::emu::cp_async_wait_group(kPending);
#endif
}

// ------------------------------------------------------------------ conversion
// cvt.rna.tf32.f32: the TF32 operand (a float with its low 13 bits zero) nearest to x, ties away from zero.
FOVEA_DEVICE_INLINE uint32_t cvt_rna_tf32(float x) {
#if defined(FOVEA_TC_PTX)
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
  return r;
#elif defined(__CUDA_ARCH__)
  __trap();
  return 0;
#elif defined(FOVEA_EMU)
  return ::fovea::float_to_tf32_bits(x);
#else
  return 0;  // nvcc's host pass: never called
#endif
}

}  // namespace fovea::FOVEA_KERNEL_NS::tc
