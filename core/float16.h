// IEEE half (float16) and bfloat16 to float32: both widen exactly (every value, subnormals,
// infinities and NaN payloads), so weights stored in 16 bits read back as the same numbers.
#pragma once
#include <cstdint>
#include <cstring>

#include "core/tensor.h"

namespace fovea {

inline float float_from_bits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// bfloat16 is the top half of a float32.
inline float bfloat16_to_float(uint16_t h) {
  return float_from_bits(uint32_t(h) << 16);
}

// half: 1 sign, 5 exponent (bias 15), 10 mantissa bits. Normal numbers re-bias the exponent to
// float's 127; subnormals (exponent 0) are normalised by shifting the mantissa up; exponent 31 is
// infinity or NaN. A NaN keeps its payload in the top mantissa bits and comes out quiet, as the x86
// conversion instruction (and so PyTorch on the CPU) makes it.
inline float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  if (exp == 0x1F) return float_from_bits(sign | 0x7F800000u | (mant ? 0x400000u | (mant << 13) : 0u));
  if (exp == 0) {
    if (mant == 0) return float_from_bits(sign);
    exp = 1;
    while (!(mant & 0x400u)) {
      mant <<= 1;
      --exp;
    }
    mant &= 0x3FFu;
    return float_from_bits(sign | ((exp + 127 - 15) << 23) | (mant << 13));
  }
  return float_from_bits(sign | ((exp + 127 - 15) << 23) | (mant << 13));
}

// A float32 copy of a float16 or bfloat16 host tensor; a float32 tensor is returned as is (shared).
// Other dtypes are an error naming `what`.
Tensor to_float32(const Tensor& t, const std::string& what);

}  // namespace fovea
