// Launchers of tests/half_test_kernels.cu: every __half / __nv_bfloat16 function the emulator provides
// (core/emu/half.h), applied element-wise in a kernel, built for both devices (nvcc's real cuda_fp16.h on
// device cuda). Pointers are device pointers.
#pragma once
#include <cstdint>

#include "core/dispatch.h"

// The operations, in output order: out[op * n + i] is op applied to element i of the inputs a, b, c (16-bit
// patterns) and f, g (floats). 16-bit results are stored as their bits, comparisons as 0/1, __hisinf as
// -1/0/1, float results as their bits. Pair operations take x = (a, b), y = (c, a), z = (b, c) as (low, high):
// add2 is __hadd2(x, y) (low a+c, high b+a), fma2 is __hfma2(x, y, z) (low fma(a,c,b), high fma(b,a,c)),
// max2 is __hmax2(x, y), neg2/abs2 act on x.
// (Not clang-formatted: it reflows such lists differently on every pass.)
// clang-format off
#define FOVEA_HALF_TEST_OPS(X)                                                                                        \
  X(add) X(sub) X(mul) X(fma) X(neg) X(abs) X(max) X(min) X(add2_lo) X(add2_hi) X(sub2_lo) X(sub2_hi)                 \
  X(mul2_lo) X(mul2_hi) X(fma2_lo) X(fma2_hi) X(neg2_lo) X(neg2_hi) X(abs2_lo) X(abs2_hi) X(max2_lo)                  \
  X(max2_hi) X(min2_lo) X(min2_hi) X(op_add) X(op_sub) X(op_mul) X(op_neg) X(op_add_assign) X(op_sub_assign)          \
  X(op_mul_assign) X(op2_add_lo) X(op2_add_hi) X(op2_mul_hi) X(eq) X(ne) X(lt) X(le) X(gt) X(ge) X(equ)               \
  X(neu) X(ltu) X(leu) X(gtu) X(geu) X(isnan) X(isinf) X(op_eq) X(op_ne) X(op_lt) X(op_le) X(op_gt) X(op_ge)          \
  X(to_float) X(implicit_float) X(low2float) X(high2float) X(pair_to_float2_x) X(pair_to_float2_y)                    \
  X(from_float) X(from_float_rn) X(from_float_rz) X(from_float_rd) X(from_float_ru) X(ctor_float)                     \
  X(splat_float_lo) X(splat_float_hi) X(floats_lo) X(floats_hi) X(float2_lo) X(float2_hi) X(low_half)                 \
  X(high_half) X(halves_lo) X(halves_hi) X(splat_hi) X(lows_lo) X(lows_hi) X(highs_lo) X(highs_hi)                    \
  X(as_ushort) X(from_ushort) X(as_short) X(from_short)
// clang-format on

namespace fovea::test {
enum HalfTestOp : int {
#define FOVEA_HALF_TEST_ENUM(name) half_op_##name,
  FOVEA_HALF_TEST_OPS(FOVEA_HALF_TEST_ENUM)
#undef FOVEA_HALF_TEST_ENUM
      half_op_count
};
}  // namespace fovea::test

namespace fovea::test {
// out has half_op_count * n elements; bf16 selects __nv_bfloat16, else __half. Slots emu and cuda
// (tests/half_test_kernels.cu; the test links the library whole so that the registrations run).
inline constinit DispatchStub<void(const Exec&, bool bf16, const uint16_t* a, const uint16_t* b, const uint16_t* c,
                                   const float* f, const float* g, int n, uint32_t* out)>
    half_test_ops_stub{"half_test_ops"};
}  // namespace fovea::test
