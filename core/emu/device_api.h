// The CUDA device API for kernels compiled by the host compiler for the emulator (device 'emu').
// Included by kernels/common.cuh under g++ only; never include cuda_runtime.h here: the emulator builds without
// the CUDA toolkit, and one binary links both builds of every kernel. Everything is defined in namespace
// fovea::emu and brought to global scope with using-declarations, so the emulator's ::dim3 is the entity
// fovea::emu::dim3 and never collides with CUDA's ::dim3 at link time.
#pragma once
#include <math.h>  // the C++ wrapper: ::expf, ::fmaxf, ::isnan, ... unqualified, as in CUDA device code

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>  // before __noinline__ below: libstdc++ spells __attribute__((__noinline__)) in shared_ptr_base.h
#include <numbers>
#include <type_traits>

#include "core/emu/emu.h"

// ------------------------------------------------------------------ qualifiers
#define __global__
#define __device__
#define __host__
#define __constant__
#define __managed__
#define __grid_constant__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// __restrict__ is a g++ keyword already.

// Static __shared__ variables: one copy per OS thread, and an OS thread runs one block at a time, so every
// block sees its own shared memory. They keep their contents between blocks, as on a GPU.
// FOVEA_EMU_SANITIZE builds make them plain statics (one worker thread then) because AddressSanitizer puts red
// zones around ordinary globals but not around thread-locals; g++ instruments function-local statics of
// non-template, non-inline functions only (template instances are COMDAT, which it leaves alone).
#if defined(FOVEA_EMU_SANITIZE)
#define __shared__ static
#else
#define __shared__ static thread_local
#endif

// Device code is compiled for the host: __CUDA_ARCH__ is undefined unless the build emulates an architecture
// (cmake FOVEA_EMU_CUDA_ARCH=800, or fovea_add_kernels(... EMU_CUDA_ARCH 900)), which defines it for the kernel
// files so that their arch-dependent paths run here. FOVEA_EMU lets a kernel tell.
#define FOVEA_EMU 1

// The checked build names each static __shared__ variable through this reference (cmake/FoveaEmuSource.cmake): an
// access through a pointer the compiler cannot trace is instrumented even at a constant offset.
#define FOVEA_EMU_SHARED_ALIAS(name, storage) auto& name = *::fovea::emu::detail::opaque(&storage)
namespace fovea::emu::detail {
template <class T>
inline __attribute__((always_inline)) T* opaque(T* p) {
  asm("" : "+r"(p));
  return p;
}
}  // namespace fovea::emu::detail

// `extern __shared__ T name[];`: the build rewrites such a declaration in a kernel file into this macro
// (cmake/FoveaEmuSource.cmake), because g++ cannot give an extern array per-block storage. The name is then a
// pointer to the block's dynamic shared memory; every extern __shared__ array of a kernel starts there, as in CUDA.
#define FOVEA_EMU_EXTERN_SHARED(name, ...) \
  __VA_ARGS__* const name = static_cast<__VA_ARGS__*>(::fovea::emu::extern_shared_memory())

namespace fovea::emu {

// ------------------------------------------------------------------ built-in variables
inline constexpr int warpSize = 32;

namespace detail {
// By value: a reference would make the kernel's own code read the emulator's thread-local state, which the
// instrumented build would then take for a shared-memory access.
FOVEA_EMU_UNCHECKED inline uint3 thread_idx() {
  return current.thread_idx;
}
FOVEA_EMU_UNCHECKED inline uint3 block_idx() {
  return current.block_idx;
}
FOVEA_EMU_UNCHECKED inline dim3 block_dim() {
  return current.block_dim;
}
FOVEA_EMU_UNCHECKED inline dim3 grid_dim() {
  return current.grid_dim;
}

template <class T>
inline T warp_shuffle(WarpOp op, const char* fn, unsigned mask, T var, int arg, int width) {
  static_assert(std::is_trivially_copyable_v<T> && (sizeof(T) == 4 || sizeof(T) == 8),
                "warp shuffles move 4- or 8-byte values");
  uint64_t bits = 0;
  std::memcpy(&bits, &var, sizeof(T));
  bits = warp_collective(op, fn, mask, bits, arg, width);
  T out;
  std::memcpy(&out, &bits, sizeof(T));
  return out;
}
template <class T>
inline uint64_t widen(T v) {
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  return bits;
}
}  // namespace detail

// ------------------------------------------------------------------ synchronisation
inline void __syncthreads() {
  detail::block_barrier(detail::BarrierKind::sync, 0);
}
inline int __syncthreads_count(int predicate) {
  return detail::block_barrier(detail::BarrierKind::count, predicate);
}
inline int __syncthreads_and(int predicate) {
  return detail::block_barrier(detail::BarrierKind::all, predicate);
}
inline int __syncthreads_or(int predicate) {
  return detail::block_barrier(detail::BarrierKind::any, predicate);
}
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  detail::warp_collective(detail::WarpOp::sync, "__syncwarp", mask, 0, 0, 32);
}
inline void __threadfence() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
}
inline void __threadfence_system() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
}
// A block's fibers share one OS thread, so only the compiler can reorder their memory accesses.
inline void __threadfence_block() {
  std::atomic_signal_fence(std::memory_order_seq_cst);
}
[[noreturn]] inline void __trap() {
  detail::device_trap("__trap() called");
}
[[noreturn]] inline void __brkpt() {
  detail::device_trap("__brkpt() called");
}
inline long long clock64() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// ------------------------------------------------------------------ warp functions
// Lanes are numbered within a warp of 32 consecutive threads of the block (x fastest, then y, then z). Every
// live lane named in mask must make the same call with the same mask; lanes that returned are not waited for.
#define FOVEA_EMU_SHUFFLES(T)                                                                                       \
  inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize) {                                  \
    return detail::warp_shuffle(detail::WarpOp::shfl_idx, "__shfl_sync", mask, var, src_lane, width);               \
  }                                                                                                                 \
  inline T __shfl_up_sync(unsigned mask, T var, unsigned int delta, int width = warpSize) {                         \
    return detail::warp_shuffle(detail::WarpOp::shfl_up, "__shfl_up_sync", mask, var, int(delta), width);           \
  }                                                                                                                 \
  inline T __shfl_down_sync(unsigned mask, T var, unsigned int delta, int width = warpSize) {                       \
    return detail::warp_shuffle(detail::WarpOp::shfl_down, "__shfl_down_sync", mask, var, int(delta), width);       \
  }                                                                                                                 \
  inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize) {                             \
    return detail::warp_shuffle(detail::WarpOp::shfl_xor, "__shfl_xor_sync", mask, var, lane_mask, width);          \
  }                                                                                                                 \
  inline unsigned __match_any_sync(unsigned mask, T value) {                                                        \
    return unsigned(                                                                                                \
        detail::warp_collective(detail::WarpOp::match_any, "__match_any_sync", mask, detail::widen(value), 0, 32)); \
  }                                                                                                                 \
  inline unsigned __match_all_sync(unsigned mask, T value, int* pred) {                                             \
    unsigned r = unsigned(                                                                                          \
        detail::warp_collective(detail::WarpOp::match_all, "__match_all_sync", mask, detail::widen(value), 0, 32)); \
    *pred = r != 0;                                                                                                 \
    return r;                                                                                                       \
  }
FOVEA_EMU_SHUFFLES(int)
FOVEA_EMU_SHUFFLES(unsigned int)
FOVEA_EMU_SHUFFLES(long)
FOVEA_EMU_SHUFFLES(unsigned long)
FOVEA_EMU_SHUFFLES(long long)
FOVEA_EMU_SHUFFLES(unsigned long long)
FOVEA_EMU_SHUFFLES(float)
FOVEA_EMU_SHUFFLES(double)
#undef FOVEA_EMU_SHUFFLES

inline unsigned __ballot_sync(unsigned mask, int predicate) {
  return unsigned(detail::warp_collective(detail::WarpOp::ballot, "__ballot_sync", mask, predicate != 0, 0, 32));
}
inline int __any_sync(unsigned mask, int predicate) {
  return int(detail::warp_collective(detail::WarpOp::any, "__any_sync", mask, predicate != 0, 0, 32));
}
inline int __all_sync(unsigned mask, int predicate) {
  return int(detail::warp_collective(detail::WarpOp::all, "__all_sync", mask, predicate != 0, 0, 32));
}
// The lanes of the caller's warp that have not returned: the emulator has no notion of divergence.
inline unsigned __activemask() {
  return detail::active_mask();
}

#define FOVEA_EMU_REDUCE(name, op, T)                                                                     \
  inline T name(unsigned mask, T value) {                                                                 \
    return T(uint32_t(detail::warp_collective(detail::WarpOp::op, #name, mask, uint32_t(value), 0, 32))); \
  }
FOVEA_EMU_REDUCE(__reduce_add_sync, reduce_add, unsigned)
FOVEA_EMU_REDUCE(__reduce_add_sync, reduce_add, int)
FOVEA_EMU_REDUCE(__reduce_min_sync, reduce_umin, unsigned)
FOVEA_EMU_REDUCE(__reduce_min_sync, reduce_min, int)
FOVEA_EMU_REDUCE(__reduce_max_sync, reduce_umax, unsigned)
FOVEA_EMU_REDUCE(__reduce_max_sync, reduce_max, int)
FOVEA_EMU_REDUCE(__reduce_and_sync, reduce_and, unsigned)
FOVEA_EMU_REDUCE(__reduce_or_sync, reduce_or, unsigned)
FOVEA_EMU_REDUCE(__reduce_xor_sync, reduce_xor, unsigned)
#undef FOVEA_EMU_REDUCE

// ------------------------------------------------------------------ atomics
// Real atomics: blocks run in parallel on several OS threads. acq_rel so that the usual "write, __threadfence,
// atomic counter; last block reads" pattern is ordered for the compiler too. GCC's __atomic builtins rather than
// std::atomic_ref: these functions stay out of the instrumented build's access hooks (an atomic is not a plain
// load or store), and tell the checks about themselves instead; the test costs one thread-local load.
namespace detail {
constexpr int kAtomicOrder = __ATOMIC_ACQ_REL;
void note_atomic(const void* p, unsigned bytes, const void* site);  // core/emu/check.cpp
#define FOVEA_EMU_NOTE_ATOMIC(p)                                     \
  if (::fovea::emu::detail::current.monitor != nullptr) [[unlikely]] \
  ::fovea::emu::detail::note_atomic(p, sizeof(*(p)), __builtin_return_address(0))

template <class T, class F>
FOVEA_EMU_UNCHECKED inline T atomic_update(T* p, F f) {  // CAS loop: returns the old value
  T old;
  __atomic_load(p, &old, __ATOMIC_RELAXED);
  for (;;) {
    T desired = f(old);
    if (__atomic_compare_exchange(p, &old, &desired, true, kAtomicOrder, __ATOMIC_RELAXED)) return old;
  }
}
}  // namespace detail

#define FOVEA_EMU_ATOMIC_FN(T, name, body)       \
  FOVEA_EMU_UNCHECKED inline T name(T* p, T v) { \
    FOVEA_EMU_NOTE_ATOMIC(p);                    \
    body;                                        \
  }
#define FOVEA_EMU_ATOMIC_ARITH(T)                                                                              \
  FOVEA_EMU_ATOMIC_FN(T, atomicAdd, return __atomic_fetch_add(p, v, detail::kAtomicOrder))                     \
  FOVEA_EMU_ATOMIC_FN(T, atomicExch, return __atomic_exchange_n(p, v, detail::kAtomicOrder))                   \
  FOVEA_EMU_ATOMIC_FN(T, atomicMin, return detail::atomic_update(p, [v](T old) { return v < old ? v : old; })) \
  FOVEA_EMU_ATOMIC_FN(T, atomicMax, return detail::atomic_update(p, [v](T old) { return v > old ? v : old; })) \
  FOVEA_EMU_ATOMIC_FN(T, atomicAnd, return __atomic_fetch_and(p, v, detail::kAtomicOrder))                     \
  FOVEA_EMU_ATOMIC_FN(T, atomicOr, return __atomic_fetch_or(p, v, detail::kAtomicOrder))                       \
  FOVEA_EMU_ATOMIC_FN(T, atomicXor, return __atomic_fetch_xor(p, v, detail::kAtomicOrder))                     \
  FOVEA_EMU_UNCHECKED inline T atomicCAS(T* p, T compare, T v) {                                               \
    FOVEA_EMU_NOTE_ATOMIC(p);                                                                                  \
    __atomic_compare_exchange_n(p, &compare, v, false, detail::kAtomicOrder, __ATOMIC_RELAXED);                \
    return compare;                                                                                            \
  }
FOVEA_EMU_ATOMIC_ARITH(int)
FOVEA_EMU_ATOMIC_ARITH(unsigned int)
FOVEA_EMU_ATOMIC_ARITH(unsigned long long)
#undef FOVEA_EMU_ATOMIC_ARITH
FOVEA_EMU_ATOMIC_FN(int, atomicSub, return __atomic_fetch_sub(p, v, detail::kAtomicOrder))
FOVEA_EMU_ATOMIC_FN(unsigned, atomicSub, return __atomic_fetch_sub(p, v, detail::kAtomicOrder))
FOVEA_EMU_ATOMIC_FN(long long, atomicMin, return detail::atomic_update(p, [v](long long o) { return v < o ? v : o; }))
FOVEA_EMU_ATOMIC_FN(long long, atomicMax, return detail::atomic_update(p, [v](long long o) { return v > o ? v : o; }))
FOVEA_EMU_ATOMIC_FN(unsigned, atomicInc,
                    return detail::atomic_update(p, [v](unsigned old) { return old >= v ? 0u : old + 1; }))
FOVEA_EMU_ATOMIC_FN(unsigned, atomicDec,
                    return detail::atomic_update(p, [v](unsigned old) { return (old == 0 || old > v) ? v : old - 1; }))
FOVEA_EMU_ATOMIC_FN(float, atomicAdd, return detail::atomic_update(p, [v](float old) { return old + v; }))
FOVEA_EMU_ATOMIC_FN(double, atomicAdd, return detail::atomic_update(p, [v](double old) { return old + v; }))
FOVEA_EMU_ATOMIC_FN(float, atomicExch, float old; __atomic_exchange(p, &v, &old, detail::kAtomicOrder); return old)
FOVEA_EMU_UNCHECKED inline unsigned short atomicCAS(unsigned short* p, unsigned short compare, unsigned short v) {
  FOVEA_EMU_NOTE_ATOMIC(p);
  __atomic_compare_exchange_n(p, &compare, v, false, detail::kAtomicOrder, __ATOMIC_RELAXED);
  return compare;
}
// CUDA has no float atomicMin/atomicMax (nvcc rejects them): usable in emulator-only code, flagged otherwise.
[[deprecated("CUDA has no atomicMax(float*, float): nvcc rejects this kernel")]] FOVEA_EMU_ATOMIC_FN(
    float, atomicMax, return detail::atomic_update(p, [v](float old) { return v > old ? v : old; }))
    [[deprecated("CUDA has no atomicMin(float*, float): nvcc rejects this kernel")]] FOVEA_EMU_ATOMIC_FN(
        float, atomicMin, return detail::atomic_update(p, [v](float old) { return v < old ? v : old; }))
#undef FOVEA_EMU_ATOMIC_FN

// ------------------------------------------------------------------ loads and stores with cache hints
// Always inlined: a copy outside the kernel would be shared (COMDAT) by the normal and the instrumented build of
// the kernels, and the instrumented kernel's access could land in the uninstrumented copy.
#define FOVEA_EMU_ALWAYS_INLINE inline __attribute__((always_inline))
        template <class T>
        FOVEA_EMU_ALWAYS_INLINE T __ldg(const T* p) {
  return *p;
}
template <class T>
FOVEA_EMU_ALWAYS_INLINE T __ldcg(const T* p) {
  return *p;
}
template <class T>
FOVEA_EMU_ALWAYS_INLINE T __ldca(const T* p) {
  return *p;
}
template <class T>
FOVEA_EMU_ALWAYS_INLINE T __ldcs(const T* p) {
  return *p;
}
template <class T>
FOVEA_EMU_ALWAYS_INLINE T __ldlu(const T* p) {
  return *p;
}
template <class T>
FOVEA_EMU_ALWAYS_INLINE T __ldcv(const T* p) {
  return *p;
}
template <class T>
FOVEA_EMU_ALWAYS_INLINE void __stcg(T* p, T v) {
  *p = v;
}
template <class T>
FOVEA_EMU_ALWAYS_INLINE void __stcs(T* p, T v) {
  *p = v;
}
template <class T>
FOVEA_EMU_ALWAYS_INLINE void __stwb(T* p, T v) {
  *p = v;
}
template <class T>
FOVEA_EMU_ALWAYS_INLINE void __stwt(T* p, T v) {
  *p = v;
}

// ------------------------------------------------------------------ float intrinsics
// The emulator computes the accurate value: the GPU's fast approximations (__expf, __sinf, ...) differ from it
// by a few ulp, so compare kernels with a tolerance, never bitwise against these.
namespace intrinsic {
inline float expf_(float x) {
  return std::exp(x);
}
inline float exp10f_(float x) {
  return std::pow(10.0f, x);
}
inline float logf_(float x) {
  return std::log(x);
}
inline float log2f_(float x) {
  return std::log2(x);
}
inline float log10f_(float x) {
  return std::log10(x);
}
inline float powf_(float x, float y) {
  return std::pow(x, y);
}
inline float sinf_(float x) {
  return std::sin(x);
}
inline float cosf_(float x) {
  return std::cos(x);
}
inline float tanf_(float x) {
  return std::tan(x);
}
inline void sincosf_(float x, float* s, float* c) {
  *s = std::sin(x);
  *c = std::cos(x);
}
}  // namespace intrinsic

inline float __fdividef(float a, float b) {
  return a / b;
}
inline float fdividef(float a, float b) {
  return a / b;
}
inline float __frcp_rn(float x) {
  return 1.0f / x;
}
inline float __fsqrt_rn(float x) {
  return std::sqrt(x);
}
inline float __frsqrt_rn(float x) {
  return 1.0f / std::sqrt(x);
}
inline float rsqrtf(float x) {
  return 1.0f / std::sqrt(x);
}
inline double rsqrt(double x) {
  return 1.0 / std::sqrt(x);
}
inline float rcbrtf(float x) {
  return 1.0f / std::cbrt(x);
}
inline float sinpif(float x) {
  return std::sin(std::numbers::pi_v<float> * x);
}
inline float cospif(float x) {
  return std::cos(std::numbers::pi_v<float> * x);
}
inline void sincospif(float x, float* s, float* c) {
  *s = sinpif(x);
  *c = cospif(x);
}
inline float normcdff(float x) {
  return 0.5f * std::erfc(-x * (std::numbers::sqrt2_v<float> / 2));
}
inline float __saturatef(float x) {
  return x > 0.0f ? (x < 1.0f ? x : 1.0f) : 0.0f;
}  // NaN -> 0, like CUDA
inline float __fmaf_rn(float a, float b, float c) {
  return std::fma(a, b, c);
}
inline double __fma_rn(double a, double b, double c) {
  return std::fma(a, b, c);
}
inline float __fmul_rn(float a, float b) {
  return a * b;
}
inline float __fadd_rn(float a, float b) {
  return a + b;
}
inline float __fsub_rn(float a, float b) {
  return a - b;
}
inline float __fdiv_rn(float a, float b) {
  return a / b;
}
inline double __dmul_rn(double a, double b) {
  return a * b;
}
inline double __dadd_rn(double a, double b) {
  return a + b;
}
inline double __dsub_rn(double a, double b) {
  return a - b;
}
inline double __ddiv_rn(double a, double b) {
  return a / b;
}

// Conversions saturate and map NaN to 0, as the GPU's cvt instructions do.
namespace detail {
template <class I, class F>
inline I saturating_cast(F r) {
  if (std::isnan(r)) return 0;
  if (r <= F(std::numeric_limits<I>::min())) return std::numeric_limits<I>::min();
  if (r >= F(std::numeric_limits<I>::max())) return std::numeric_limits<I>::max();
  return I(r);
}
}  // namespace detail
inline int __float2int_rn(float x) {
  return detail::saturating_cast<int>(std::nearbyint(x));
}
inline int __float2int_rz(float x) {
  return detail::saturating_cast<int>(std::trunc(x));
}
inline int __float2int_rd(float x) {
  return detail::saturating_cast<int>(std::floor(x));
}
inline int __float2int_ru(float x) {
  return detail::saturating_cast<int>(std::ceil(x));
}
inline unsigned __float2uint_rn(float x) {
  return detail::saturating_cast<unsigned>(std::nearbyint(x));
}
inline unsigned __float2uint_rz(float x) {
  return detail::saturating_cast<unsigned>(std::trunc(x));
}
inline long long __float2ll_rn(float x) {
  return detail::saturating_cast<long long>(std::nearbyint(x));
}
inline long long __float2ll_rz(float x) {
  return detail::saturating_cast<long long>(std::trunc(x));
}
inline int __double2int_rn(double x) {
  return detail::saturating_cast<int>(std::nearbyint(x));
}
inline int __double2int_rz(double x) {
  return detail::saturating_cast<int>(std::trunc(x));
}
inline float __int2float_rn(int x) {
  return float(x);
}
inline float __uint2float_rn(unsigned x) {
  return float(x);
}
inline float __ll2float_rn(long long x) {
  return float(x);
}
inline float __double2float_rn(double x) {
  return float(x);
}
inline int __float_as_int(float x) {
  return std::bit_cast<int>(x);
}
inline unsigned __float_as_uint(float x) {
  return std::bit_cast<unsigned>(x);
}
inline float __int_as_float(int x) {
  return std::bit_cast<float>(x);
}
inline float __uint_as_float(unsigned x) {
  return std::bit_cast<float>(x);
}
inline long long __double_as_longlong(double x) {
  return std::bit_cast<long long>(x);
}
inline double __longlong_as_double(long long x) {
  return std::bit_cast<double>(x);
}
inline int __double2hiint(double x) {
  return int(std::bit_cast<unsigned long long>(x) >> 32);
}
inline int __double2loint(double x) {
  return int(std::bit_cast<unsigned long long>(x));
}
inline double __hiloint2double(int hi, int lo) {
  return std::bit_cast<double>((static_cast<unsigned long long>(unsigned(hi)) << 32) | unsigned(lo));
}

// ------------------------------------------------------------------ integer intrinsics
inline int __popc(unsigned x) {
  return std::popcount(x);
}
inline int __popcll(unsigned long long x) {
  return std::popcount(x);
}
inline int __clz(int x) {
  return std::countl_zero(unsigned(x));
}
inline int __clzll(long long x) {
  return std::countl_zero(static_cast<unsigned long long>(x));
}
inline int __ffs(int x) {
  return x == 0 ? 0 : std::countr_zero(unsigned(x)) + 1;
}
inline int __ffsll(long long x) {
  return x == 0 ? 0 : std::countr_zero(static_cast<unsigned long long>(x)) + 1;
}
inline unsigned __brev(unsigned x) {
  x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
  x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
  x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
  return __builtin_bswap32(x);
}
inline unsigned long long __brevll(unsigned long long x) {
  return (static_cast<unsigned long long>(__brev(unsigned(x))) << 32) | __brev(unsigned(x >> 32));
}
inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
  const unsigned long long bytes = (static_cast<unsigned long long>(y) << 32) | x;
  unsigned r = 0;
  for (int i = 0; i < 4; ++i) r |= unsigned((bytes >> (8 * ((s >> (4 * i)) & 7))) & 0xff) << (8 * i);
  return r;
}
inline unsigned __funnelshift_l(unsigned lo, unsigned hi, unsigned shift) {
  const unsigned long long v = (static_cast<unsigned long long>(hi) << 32) | lo;
  return unsigned((v << (shift & 31)) >> 32);
}
inline unsigned __funnelshift_r(unsigned lo, unsigned hi, unsigned shift) {
  const unsigned long long v = (static_cast<unsigned long long>(hi) << 32) | lo;
  return unsigned(v >> (shift & 31));
}
inline int __mulhi(int a, int b) {
  return int((static_cast<long long>(a) * b) >> 32);
}
inline unsigned __umulhi(unsigned a, unsigned b) {
  return unsigned((static_cast<unsigned long long>(a) * b) >> 32);
}
inline long long __mul64hi(long long a, long long b) {
  return (long long)((__int128(a) * b) >> 64);
}
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  return (unsigned long long)((static_cast<unsigned __int128>(a) * b) >> 64);
}
inline int __mul24(int a, int b) {
  return int(unsigned(a << 8 >> 8) * unsigned(b << 8 >> 8));
}
inline unsigned __umul24(unsigned a, unsigned b) {
  return (a & 0xffffffu) * (b & 0xffffffu);
}
inline int __hadd(int a, int b) {
  return int((static_cast<long long>(a) + b) >> 1);
}
inline int __rhadd(int a, int b) {
  return int((static_cast<long long>(a) + b + 1) >> 1);
}
inline unsigned __uhadd(unsigned a, unsigned b) {
  return unsigned((static_cast<unsigned long long>(a) + b) >> 1);
}
inline unsigned __urhadd(unsigned a, unsigned b) {
  return unsigned((static_cast<unsigned long long>(a) + b + 1) >> 1);
}
inline unsigned __sad(int a, int b, unsigned c) {
  return (a > b ? unsigned(a) - unsigned(b) : unsigned(b) - unsigned(a)) + c;
}
inline unsigned __usad(unsigned a, unsigned b, unsigned c) {
  return (a > b ? a - b : b - a) + c;
}

// ------------------------------------------------------------------ min / max
// The same overload set as CUDA's math_functions.hpp, so a call resolves (or is ambiguous) the same way under
// nvcc and under the emulator. Mixed signed/unsigned pairs compare as unsigned, as in CUDA.
#define FOVEA_EMU_MINMAX(R, A, B)                                                         \
  inline R min(A a, B b) {                                                                \
    return static_cast<R>(a) < static_cast<R>(b) ? static_cast<R>(a) : static_cast<R>(b); \
  }                                                                                       \
  inline R max(A a, B b) {                                                                \
    return static_cast<R>(a) > static_cast<R>(b) ? static_cast<R>(a) : static_cast<R>(b); \
  }
FOVEA_EMU_MINMAX(int, int, int)
FOVEA_EMU_MINMAX(unsigned int, unsigned int, unsigned int)
FOVEA_EMU_MINMAX(unsigned int, int, unsigned int)
FOVEA_EMU_MINMAX(unsigned int, unsigned int, int)
FOVEA_EMU_MINMAX(long, long, long)
FOVEA_EMU_MINMAX(unsigned long, unsigned long, unsigned long)
FOVEA_EMU_MINMAX(unsigned long, long, unsigned long)
FOVEA_EMU_MINMAX(unsigned long, unsigned long, long)
FOVEA_EMU_MINMAX(long long, long long, long long)
FOVEA_EMU_MINMAX(unsigned long long, unsigned long long, unsigned long long)
FOVEA_EMU_MINMAX(unsigned long long, long long, unsigned long long)
FOVEA_EMU_MINMAX(unsigned long long, unsigned long long, long long)
#undef FOVEA_EMU_MINMAX
inline float min(float a, float b) {
  return std::fmin(a, b);
}
inline float max(float a, float b) {
  return std::fmax(a, b);
}
inline double min(double a, double b) {
  return std::fmin(a, b);
}
inline double max(double a, double b) {
  return std::fmax(a, b);
}
inline double min(float a, double b) {
  return std::fmin(double(a), b);
}
inline double max(float a, double b) {
  return std::fmax(double(a), b);
}
inline double min(double a, float b) {
  return std::fmin(a, double(b));
}
inline double max(double a, float b) {
  return std::fmax(a, double(b));
}
inline unsigned umin(unsigned a, unsigned b) {
  return a < b ? a : b;
}
inline unsigned umax(unsigned a, unsigned b) {
  return a > b ? a : b;
}
inline long long llmin(long long a, long long b) {
  return a < b ? a : b;
}
inline long long llmax(long long a, long long b) {
  return a > b ? a : b;
}
inline unsigned long long ullmin(unsigned long long a, unsigned long long b) {
  return a < b ? a : b;
}
inline unsigned long long ullmax(unsigned long long a, unsigned long long b) {
  return a > b ? a : b;
}

// ------------------------------------------------------------------ printf
// Device printf is buffered per launch, as on a GPU: the launch prints its threads' lines when it ends, ordered by
// block, then thread, then call (the same text under every schedule), at most 1 MiB (cudaLimitPrintfFifoSize's
// default; the rest is dropped with a note on stderr). Outside a kernel it is std::printf.
namespace detail {
void device_printf(const char* text, size_t bytes);  // core/emu/runtime.cpp
}
template <class... A>
int printf(const char* format, A... args) {
  if (detail::current.worker == nullptr) return std::printf(format, args...);
  const int n = std::snprintf(nullptr, 0, format, args...);
  if (n <= 0) return n;
  std::unique_ptr<char[]> text(new char[size_t(n) + 1]);
  std::snprintf(text.get(), size_t(n) + 1, format, args...);
  detail::device_printf(text.get(), size_t(n));
  return n;
}

// ------------------------------------------------------------------ runtime API a kernel file may call
// cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes): the opt-in a launch with more
// than 48 KiB of dynamic shared memory needs, up to the emulated architecture's maximum (emu::arch()).
template <class... A>
cudaError_t cudaFuncSetAttribute(void (*kernel)(A...), cudaFuncAttribute attr, int value) {
#if defined(__CUDA_ARCH__)
  return detail::func_set_attribute(reinterpret_cast<const void*>(kernel), attr, value, __CUDA_ARCH__);
#else
  return detail::func_set_attribute(reinterpret_cast<const void*>(kernel), attr, value, 0);
#endif
}
inline const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
  }
  return "unrecognized error code";
}

}  // namespace fovea::emu

// ------------------------------------------------------------------ global scope, as in CUDA
#define threadIdx (::fovea::emu::detail::thread_idx())
#define blockIdx (::fovea::emu::detail::block_idx())
#define blockDim (::fovea::emu::detail::block_dim())
#define gridDim (::fovea::emu::detail::grid_dim())

// glibc's <math.h> declares __expf, __sinf, ... (internal names it does not export), so these intrinsics are
// macros: a using-declaration or a global function of the same name would clash with glibc's declarations.
#define __expf(x) ::fovea::emu::intrinsic::expf_(x)
#define __exp10f(x) ::fovea::emu::intrinsic::exp10f_(x)
#define __logf(x) ::fovea::emu::intrinsic::logf_(x)
#define __log2f(x) ::fovea::emu::intrinsic::log2f_(x)
#define __log10f(x) ::fovea::emu::intrinsic::log10f_(x)
#define __powf(x, y) ::fovea::emu::intrinsic::powf_(x, y)
#define __sinf(x) ::fovea::emu::intrinsic::sinf_(x)
#define __cosf(x) ::fovea::emu::intrinsic::cosf_(x)
#define __tanf(x) ::fovea::emu::intrinsic::tanf_(x)
#define __sincosf(x, s, c) ::fovea::emu::intrinsic::sincosf_(x, s, c)

// _block / _system scopes are the same thing on the CPU.
#define atomicAdd_block atomicAdd
#define atomicAdd_system atomicAdd
#define atomicSub_block atomicSub
#define atomicExch_block atomicExch
#define atomicMin_block atomicMin
#define atomicMax_block atomicMax
#define atomicCAS_block atomicCAS
#define atomicAnd_block atomicAnd
#define atomicOr_block atomicOr
#define atomicXor_block atomicXor

// Vector types and their make_* functions.
#define FOVEA_EMU_USING_VECTOR(name)  \
  using ::fovea::emu::name##1;        \
  using ::fovea::emu::name##2;        \
  using ::fovea::emu::name##3;        \
  using ::fovea::emu::name##4;        \
  using ::fovea::emu::make_##name##1; \
  using ::fovea::emu::make_##name##2; \
  using ::fovea::emu::make_##name##3; \
  using ::fovea::emu::make_##name##4;
FOVEA_EMU_USING_VECTOR(char)
FOVEA_EMU_USING_VECTOR(uchar)
FOVEA_EMU_USING_VECTOR(short)
FOVEA_EMU_USING_VECTOR(ushort)
FOVEA_EMU_USING_VECTOR(int)
FOVEA_EMU_USING_VECTOR(uint)
FOVEA_EMU_USING_VECTOR(long)
FOVEA_EMU_USING_VECTOR(ulong)
FOVEA_EMU_USING_VECTOR(longlong)
FOVEA_EMU_USING_VECTOR(ulonglong)
FOVEA_EMU_USING_VECTOR(float)
FOVEA_EMU_USING_VECTOR(double)
#undef FOVEA_EMU_USING_VECTOR
using ::fovea::emu::dim3;
using ::fovea::emu::warpSize;

using ::fovea::emu::cudaError;
using ::fovea::emu::cudaError_t;
using ::fovea::emu::cudaErrorInvalidDeviceFunction;
using ::fovea::emu::cudaErrorInvalidValue;
using ::fovea::emu::cudaFuncAttribute;
using ::fovea::emu::cudaFuncAttributeMaxDynamicSharedMemorySize;
using ::fovea::emu::cudaFuncAttributePreferredSharedMemoryCarveout;
using ::fovea::emu::cudaFuncSetAttribute;
using ::fovea::emu::cudaGetErrorString;
using ::fovea::emu::cudaSuccess;
// Device printf: kernels in namespace fovea (every file of kernels/) find this one before ::printf.
namespace fovea {
using ::fovea::emu::printf;
}

using ::fovea::emu::__brkpt;
using ::fovea::emu::__syncthreads;
using ::fovea::emu::__syncthreads_and;
using ::fovea::emu::__syncthreads_count;
using ::fovea::emu::__syncthreads_or;
using ::fovea::emu::__syncwarp;
using ::fovea::emu::__threadfence;
using ::fovea::emu::__threadfence_block;
using ::fovea::emu::__threadfence_system;
using ::fovea::emu::__trap;
using ::fovea::emu::clock64;

using ::fovea::emu::__activemask;
using ::fovea::emu::__all_sync;
using ::fovea::emu::__any_sync;
using ::fovea::emu::__ballot_sync;
using ::fovea::emu::__match_all_sync;
using ::fovea::emu::__match_any_sync;
using ::fovea::emu::__reduce_add_sync;
using ::fovea::emu::__reduce_and_sync;
using ::fovea::emu::__reduce_max_sync;
using ::fovea::emu::__reduce_min_sync;
using ::fovea::emu::__reduce_or_sync;
using ::fovea::emu::__reduce_xor_sync;
using ::fovea::emu::__shfl_down_sync;
using ::fovea::emu::__shfl_sync;
using ::fovea::emu::__shfl_up_sync;
using ::fovea::emu::__shfl_xor_sync;

using ::fovea::emu::atomicAdd;
using ::fovea::emu::atomicAnd;
using ::fovea::emu::atomicCAS;
using ::fovea::emu::atomicDec;
using ::fovea::emu::atomicExch;
using ::fovea::emu::atomicInc;
using ::fovea::emu::atomicMax;
using ::fovea::emu::atomicMin;
using ::fovea::emu::atomicOr;
using ::fovea::emu::atomicSub;
using ::fovea::emu::atomicXor;

using ::fovea::emu::__ldca;
using ::fovea::emu::__ldcg;
using ::fovea::emu::__ldcs;
using ::fovea::emu::__ldcv;
using ::fovea::emu::__ldg;
using ::fovea::emu::__ldlu;
using ::fovea::emu::__stcg;
using ::fovea::emu::__stcs;
using ::fovea::emu::__stwb;
using ::fovea::emu::__stwt;

using ::fovea::emu::__dadd_rn;
using ::fovea::emu::__ddiv_rn;
using ::fovea::emu::__dmul_rn;
using ::fovea::emu::__double2float_rn;
using ::fovea::emu::__double2hiint;
using ::fovea::emu::__double2int_rn;
using ::fovea::emu::__double2int_rz;
using ::fovea::emu::__double2loint;
using ::fovea::emu::__double_as_longlong;
using ::fovea::emu::__dsub_rn;
using ::fovea::emu::__fadd_rn;
using ::fovea::emu::__fdiv_rn;
using ::fovea::emu::__fdividef;
using ::fovea::emu::__float2int_rd;
using ::fovea::emu::__float2int_rn;
using ::fovea::emu::__float2int_ru;
using ::fovea::emu::__float2int_rz;
using ::fovea::emu::__float2ll_rn;
using ::fovea::emu::__float2ll_rz;
using ::fovea::emu::__float2uint_rn;
using ::fovea::emu::__float2uint_rz;
using ::fovea::emu::__float_as_int;
using ::fovea::emu::__float_as_uint;
using ::fovea::emu::__fma_rn;
using ::fovea::emu::__fmaf_rn;
using ::fovea::emu::__fmul_rn;
using ::fovea::emu::__frcp_rn;
using ::fovea::emu::__frsqrt_rn;
using ::fovea::emu::__fsqrt_rn;
using ::fovea::emu::__fsub_rn;
using ::fovea::emu::__hiloint2double;
using ::fovea::emu::__int2float_rn;
using ::fovea::emu::__int_as_float;
using ::fovea::emu::__ll2float_rn;
using ::fovea::emu::__longlong_as_double;
using ::fovea::emu::__saturatef;
using ::fovea::emu::__uint2float_rn;
using ::fovea::emu::__uint_as_float;
using ::fovea::emu::cospif;
using ::fovea::emu::fdividef;
using ::fovea::emu::normcdff;
using ::fovea::emu::rcbrtf;
using ::fovea::emu::rsqrt;
using ::fovea::emu::rsqrtf;
using ::fovea::emu::sincospif;
using ::fovea::emu::sinpif;

using ::fovea::emu::__brev;
using ::fovea::emu::__brevll;
using ::fovea::emu::__byte_perm;
using ::fovea::emu::__clz;
using ::fovea::emu::__clzll;
using ::fovea::emu::__ffs;
using ::fovea::emu::__ffsll;
using ::fovea::emu::__funnelshift_l;
using ::fovea::emu::__funnelshift_r;
using ::fovea::emu::__hadd;
using ::fovea::emu::__mul24;
using ::fovea::emu::__mul64hi;
using ::fovea::emu::__mulhi;
using ::fovea::emu::__popc;
using ::fovea::emu::__popcll;
using ::fovea::emu::__rhadd;
using ::fovea::emu::__sad;
using ::fovea::emu::__uhadd;
using ::fovea::emu::__umul24;
using ::fovea::emu::__umul64hi;
using ::fovea::emu::__umulhi;
using ::fovea::emu::__urhadd;
using ::fovea::emu::__usad;

using ::fovea::emu::llmax;
using ::fovea::emu::llmin;
using ::fovea::emu::max;
using ::fovea::emu::min;
using ::fovea::emu::ullmax;
using ::fovea::emu::ullmin;
using ::fovea::emu::umax;
using ::fovea::emu::umin;

// __half, __nv_bfloat16 and their API (cuda_fp16.h / cuda_bf16.h), after everything above so that its
// using-declarations of __hadd cover the integer overload too.
#include "core/emu/half.h"
