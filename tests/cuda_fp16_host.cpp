// See cuda_fp16_host.h. Compiled by the host compiler with the CUDA toolkit's include directory: the
// functions below take CUDA's host code paths (NV_IF_ELSE_TARGET's host branch).
#include "tests/cuda_fp16_host.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <stdexcept>

namespace fovea::test::cuda_host {

uint16_t float2half(float x, Round r) {
  switch (r) {
    case Round::nearest_even: return __half_as_ushort(__float2half_rn(x));
    case Round::toward_zero: return __half_as_ushort(__float2half_rz(x));
    case Round::down: return __half_as_ushort(__float2half_rd(x));
    case Round::up: return __half_as_ushort(__float2half_ru(x));
    default: throw std::invalid_argument("float2half: CUDA has no ties-away conversion");
  }
}
float half2float(uint16_t h) {
  return __half2float(__ushort_as_half(h));
}
uint16_t float2bfloat16(float x, Round r) {
  switch (r) {
    case Round::nearest_even: return __bfloat16_as_ushort(__float2bfloat16_rn(x));
    case Round::toward_zero: return __bfloat16_as_ushort(__float2bfloat16_rz(x));
    case Round::down: return __bfloat16_as_ushort(__float2bfloat16_rd(x));
    case Round::up: return __bfloat16_as_ushort(__float2bfloat16_ru(x));
    default: throw std::invalid_argument("float2bfloat16: CUDA has no ties-away conversion");
  }
}
float bfloat162float(uint16_t h) {
  return __bfloat162float(__ushort_as_bfloat16(h));
}

namespace {
template <class T>
int32_t apply_typed(Op op, T a, T b, uint16_t (*bits)(T)) {
  switch (op) {
    case Op::add: return bits(__hadd(a, b));
    case Op::sub: return bits(__hsub(a, b));
    case Op::mul: return bits(__hmul(a, b));
    case Op::neg: return bits(__hneg(a));
    case Op::abs: return bits(__habs(a));
    case Op::max: return bits(__hmax(a, b));
    case Op::min: return bits(__hmin(a, b));
    case Op::eq: return __heq(a, b);
    case Op::ne: return __hne(a, b);
    case Op::lt: return __hlt(a, b);
    case Op::le: return __hle(a, b);
    case Op::gt: return __hgt(a, b);
    case Op::ge: return __hge(a, b);
    case Op::equ: return __hequ(a, b);
    case Op::neu: return __hneu(a, b);
    case Op::ltu: return __hltu(a, b);
    case Op::leu: return __hleu(a, b);
    case Op::gtu: return __hgtu(a, b);
    case Op::geu: return __hgeu(a, b);
    case Op::isnan: return __hisnan(a);
    case Op::isinf: return __hisinf(a);
  }
  return 0;
}
}  // namespace

int32_t apply(bool bf16, Op op, uint16_t a, uint16_t b) {
  if (bf16)
    return apply_typed<__nv_bfloat16>(op, __ushort_as_bfloat16(a), __ushort_as_bfloat16(b),
                                      [](__nv_bfloat16 h) -> uint16_t { return __bfloat16_as_ushort(h); });
  return apply_typed<__half>(op, __ushort_as_half(a), __ushort_as_half(b),
                             [](__half h) -> uint16_t { return __half_as_ushort(h); });
}

}  // namespace fovea::test::cuda_host
