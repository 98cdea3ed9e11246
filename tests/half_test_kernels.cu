// See half_test_kernels.h. The same source runs CUDA's cuda_fp16.h / cuda_bf16.h under nvcc and the emulator's
// core/emu/half.h under g++; tests/half_kernel_test.cpp compares both with independent expectations.
#include "kernels/common.cuh"
#include "tests/half_test_kernels.h"
#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

namespace fovea::FOVEA_KERNEL_NS {
namespace {

// The names that differ between the two types.
struct HalfNames {
  using T = __half;
  using T2 = __half2;
  static __device__ T from_bits(uint16_t u) { return __ushort_as_half(u); }
  static __device__ uint16_t bits(T h) { return __half_as_ushort(h); }
  static __device__ float to_float(T h) { return __half2float(h); }
  static __device__ T cvt(float f) { return __float2half(f); }
  static __device__ T cvt_rn(float f) { return __float2half_rn(f); }
  static __device__ T cvt_rz(float f) { return __float2half_rz(f); }
  static __device__ T cvt_rd(float f) { return __float2half_rd(f); }
  static __device__ T cvt_ru(float f) { return __float2half_ru(f); }
  static __device__ T2 splat_float(float f) { return __float2half2_rn(f); }
  static __device__ T2 floats(float lo, float hi) { return __floats2half2_rn(lo, hi); }
  static __device__ T2 from_float2(float2 v) { return __float22half2_rn(v); }
  static __device__ float2 to_float2(T2 v) { return __half22float2(v); }
  static __device__ T low(T2 v) { return __low2half(v); }
  static __device__ T high(T2 v) { return __high2half(v); }
  static __device__ T2 halves(T lo, T hi) { return __halves2half2(lo, hi); }
  static __device__ T2 splat(T h) { return __half2half2(h); }
  static __device__ T2 lows(T2 p, T2 q) { return __lows2half2(p, q); }
  static __device__ T2 highs(T2 p, T2 q) { return __highs2half2(p, q); }
  static __device__ short as_short(T h) { return __half_as_short(h); }
  static __device__ T from_short(short s) { return __short_as_half(s); }
};
struct Bf16Names {
  using T = __nv_bfloat16;
  using T2 = __nv_bfloat162;
  static __device__ T from_bits(uint16_t u) { return __ushort_as_bfloat16(u); }
  static __device__ uint16_t bits(T h) { return __bfloat16_as_ushort(h); }
  static __device__ float to_float(T h) { return __bfloat162float(h); }
  static __device__ T cvt(float f) { return __float2bfloat16(f); }
  static __device__ T cvt_rn(float f) { return __float2bfloat16_rn(f); }
  static __device__ T cvt_rz(float f) { return __float2bfloat16_rz(f); }
  static __device__ T cvt_rd(float f) { return __float2bfloat16_rd(f); }
  static __device__ T cvt_ru(float f) { return __float2bfloat16_ru(f); }
  static __device__ T2 splat_float(float f) { return __float2bfloat162_rn(f); }
  static __device__ T2 floats(float lo, float hi) { return __floats2bfloat162_rn(lo, hi); }
  static __device__ T2 from_float2(float2 v) { return __float22bfloat162_rn(v); }
  static __device__ float2 to_float2(T2 v) { return __bfloat1622float2(v); }
  static __device__ T low(T2 v) { return __low2bfloat16(v); }
  static __device__ T high(T2 v) { return __high2bfloat16(v); }
  static __device__ T2 halves(T lo, T hi) { return __halves2bfloat162(lo, hi); }
  static __device__ T2 splat(T h) { return __bfloat162bfloat162(h); }
  static __device__ T2 lows(T2 p, T2 q) { return __lows2bfloat162(p, q); }
  static __device__ T2 highs(T2 p, T2 q) { return __highs2bfloat162(p, q); }
  static __device__ short as_short(T h) { return __bfloat16_as_short(h); }
  static __device__ T from_short(short s) { return __short_as_bfloat16(s); }
};

__device__ uint32_t fbits(float f) {
  return __float_as_uint(f);
}

template <class N>
__global__ void half_ops_kernel(const uint16_t* a_, const uint16_t* b_, const uint16_t* c_, const float* f_,
                                const float* g_, int n, uint32_t* out) {
  using T = typename N::T;
  using T2 = typename N::T2;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    const T a = N::from_bits(a_[i]), b = N::from_bits(b_[i]), c = N::from_bits(c_[i]);
    const float f = f_[i], g = g_[i];
    const T2 x = N::halves(a, b), y = N::halves(c, a), z = N::halves(b, c);
    auto put = [&](int op, uint32_t v) { out[size_t(op) * n + i] = v; };
    auto put_h = [&](int op, T h) { put(op, N::bits(h)); };
    using namespace ::fovea::test;
    put_h(half_op_add, __hadd(a, b));
    put_h(half_op_sub, __hsub(a, b));
    put_h(half_op_mul, __hmul(a, b));
    put_h(half_op_fma, __hfma(a, b, c));
    put_h(half_op_neg, __hneg(a));
    put_h(half_op_abs, __habs(a));
    put_h(half_op_max, __hmax(a, b));
    put_h(half_op_min, __hmin(a, b));
    T2 r = __hadd2(x, y);
    put_h(half_op_add2_lo, N::low(r)), put_h(half_op_add2_hi, N::high(r));
    r = __hsub2(x, y);
    put_h(half_op_sub2_lo, N::low(r)), put_h(half_op_sub2_hi, N::high(r));
    r = __hmul2(x, y);
    put_h(half_op_mul2_lo, N::low(r)), put_h(half_op_mul2_hi, N::high(r));
    r = __hfma2(x, y, z);
    put_h(half_op_fma2_lo, N::low(r)), put_h(half_op_fma2_hi, N::high(r));
    r = __hneg2(x);
    put_h(half_op_neg2_lo, N::low(r)), put_h(half_op_neg2_hi, N::high(r));
    r = __habs2(x);
    put_h(half_op_abs2_lo, N::low(r)), put_h(half_op_abs2_hi, N::high(r));
    r = __hmax2(x, y);
    put_h(half_op_max2_lo, N::low(r)), put_h(half_op_max2_hi, N::high(r));
    r = __hmin2(x, y);
    put_h(half_op_min2_lo, N::low(r)), put_h(half_op_min2_hi, N::high(r));
    put_h(half_op_op_add, a + b);
    put_h(half_op_op_sub, a - b);
    put_h(half_op_op_mul, a * b);
    put_h(half_op_op_neg, -a);
    T t = a;
    t += b;
    put_h(half_op_op_add_assign, t);
    t = a;
    t -= b;
    put_h(half_op_op_sub_assign, t);
    t = a;
    t *= b;
    put_h(half_op_op_mul_assign, t);
    r = x + y;
    put_h(half_op_op2_add_lo, N::low(r)), put_h(half_op_op2_add_hi, N::high(r));
    r = x * y;
    put_h(half_op_op2_mul_hi, N::high(r));
    put(half_op_eq, __heq(a, b));
    put(half_op_ne, __hne(a, b));
    put(half_op_lt, __hlt(a, b));
    put(half_op_le, __hle(a, b));
    put(half_op_gt, __hgt(a, b));
    put(half_op_ge, __hge(a, b));
    put(half_op_equ, __hequ(a, b));
    put(half_op_neu, __hneu(a, b));
    put(half_op_ltu, __hltu(a, b));
    put(half_op_leu, __hleu(a, b));
    put(half_op_gtu, __hgtu(a, b));
    put(half_op_geu, __hgeu(a, b));
    put(half_op_isnan, __hisnan(a));
    put(half_op_isinf, uint32_t(__hisinf(a)));
    put(half_op_op_eq, a == b);
    put(half_op_op_ne, a != b);
    put(half_op_op_lt, a < b);
    put(half_op_op_le, a <= b);
    put(half_op_op_gt, a > b);
    put(half_op_op_ge, a >= b);
    put(half_op_to_float, fbits(N::to_float(a)));
    put(half_op_implicit_float, fbits(static_cast<float>(a)));
    put(half_op_low2float, fbits(__low2float(x)));
    put(half_op_high2float, fbits(__high2float(x)));
    const float2 v = N::to_float2(x);
    put(half_op_pair_to_float2_x, fbits(v.x)), put(half_op_pair_to_float2_y, fbits(v.y));
    put_h(half_op_from_float, N::cvt(f));
    put_h(half_op_from_float_rn, N::cvt_rn(f));
    put_h(half_op_from_float_rz, N::cvt_rz(f));
    put_h(half_op_from_float_rd, N::cvt_rd(f));
    put_h(half_op_from_float_ru, N::cvt_ru(f));
    put_h(half_op_ctor_float, T(f));
    r = N::splat_float(f);
    put_h(half_op_splat_float_lo, N::low(r)), put_h(half_op_splat_float_hi, N::high(r));
    r = N::floats(f, g);
    put_h(half_op_floats_lo, N::low(r)), put_h(half_op_floats_hi, N::high(r));
    r = N::from_float2(make_float2(g, f));
    put_h(half_op_float2_lo, N::low(r)), put_h(half_op_float2_hi, N::high(r));
    put_h(half_op_low_half, N::low(x));
    put_h(half_op_high_half, N::high(x));
    r = N::halves(c, b);
    put_h(half_op_halves_lo, N::low(r)), put_h(half_op_halves_hi, N::high(r));
    put_h(half_op_splat_hi, N::high(N::splat(c)));
    r = N::lows(x, y);
    put_h(half_op_lows_lo, N::low(r)), put_h(half_op_lows_hi, N::high(r));
    r = N::highs(x, y);
    put_h(half_op_highs_lo, N::low(r)), put_h(half_op_highs_hi, N::high(r));
    put(half_op_as_ushort, N::bits(a));
    put_h(half_op_from_ushort, N::from_bits(b_[i]));
    put(half_op_as_short, uint32_t(int32_t(N::as_short(a))));
    put_h(half_op_from_short, N::from_short(short(c_[i])));
  }
}

}  // namespace

void half_test_ops(const Exec& ex, bool bf16, const uint16_t* a, const uint16_t* b, const uint16_t* c, const float* f,
                   const float* g, int n, uint32_t* out) {
  const int block = 256, grid = n < 64 * block ? (n + block - 1) / block : 64;
  if (bf16)
    FOVEA_LAUNCH((half_ops_kernel<Bf16Names>), grid, block, 0, ex.stream, a, b, c, f, g, n, out);
  else
    FOVEA_LAUNCH((half_ops_kernel<HalfNames>), grid, block, 0, ex.stream, a, b, c, f, g, n, out);
}

[[maybe_unused]] const bool registered = test::half_test_ops_stub.define(kThisSlot, &half_test_ops);

}  // namespace fovea::FOVEA_KERNEL_NS
