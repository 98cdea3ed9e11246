// The reduced-precision number formats of the tensor cores, on the host: bit-exact conversions
// between float and IEEE binary16 (FP16, CUDA's __half), bfloat16 (BF16, CUDA's __nv_bfloat16) and
// TF32 (the 19-bit format mma.sync reads from 32-bit registers), in every rounding mode the CUDA
// conversion intrinsics offer. Used by the emulator's __half/__nv_bfloat16 (core/emu/half.h), by the
// CPU reference at reduced precision (cpu_reference/precision.h) and by tests.
//
// Results match CUDA bit for bit, NaN included:
//   - float -> FP16/BF16 of a NaN gives the canonical NaN 0x7fff (sign dropped), as CUDA's
//     cuda_fp16.hpp / cuda_bf16.hpp define it; FP16 -> float of a NaN gives 0x7fffffff, BF16 -> float
//     is exact (the 16 bits become the top half of the float, NaN payload and sign kept).
//   - Overflow follows the rounding mode: to nearest gives infinity (65520 and above for FP16), toward
//     zero gives the largest finite value, up/down give infinity on their side only.
//   - Subnormals of every format are kept (no flush to zero).
//   - cvt.rna.tf32.f32 is what ptxas 13 emits for sm_80 and sm_90 (read in their SASS): unless the
//     input is infinite or NaN, add 0x1000 to the bits (ties away from zero, carries into the exponent
//     up to infinity); then clear the low 13 bits, NaNs included (a NaN whose payload lies only in
//     those bits becomes an infinity).
#pragma once
#include <bit>
#include <cstdint>
#include <optional>
#include <string_view>

namespace fovea {

// IEEE rounding directions of the conversion intrinsics (_rn, _rz, _rd, _ru) plus ties-away (cvt.rna).
enum class Round : uint8_t { nearest_even, toward_zero, down, up, nearest_away };

namespace fp {

// A binary format with kMant stored mantissa bits and kExp exponent bits (IEEE layout, subnormals,
// infinities, NaN). Encodes x rounded in mode r; the result's sign is x's, a NaN gives `nan_bits`.
// Works on double, which holds every float and every int exactly: one rounding, from the exact value.
template <int kMant, int kExp>
constexpr uint32_t encode(double x, Round r, uint32_t nan_bits) {
  constexpr int kBias = (1 << (kExp - 1)) - 1, kEmin = 1 - kBias, kEmax = kBias;
  constexpr uint32_t kInf = ((1u << kExp) - 1) << kMant, kMaxFinite = kInf - 1;
  const uint64_t bits = std::bit_cast<uint64_t>(x);
  const uint32_t sign = uint32_t(bits >> 63) << (kMant + kExp);
  const uint64_t mag = bits & ~(uint64_t(1) << 63);
  if (mag > 0x7ff0000000000000ull) return nan_bits;
  if (mag == 0x7ff0000000000000ull) return sign | kInf;
  if (mag == 0) return sign;
  const bool negative = sign != 0;
  // |x| = sig * 2^e2 with sig an integer of at most 53 bits; unb = floor(log2 |x|) for normal doubles.
  const int dexp = int(mag >> 52);
  const uint64_t sig = dexp ? (mag & ((uint64_t(1) << 52) - 1)) | (uint64_t(1) << 52) : mag;
  const int e2 = dexp ? dexp - 1075 : -1074;
  const int unb = dexp ? dexp - 1023 : -1023;  // double subnormals lie far below every target format
  if (unb > kEmax) {                           // beyond the largest binade: infinity or the largest finite value
    const bool to_inf = r == Round::nearest_even || r == Round::nearest_away || (r == Round::up && !negative) ||
                        (r == Round::down && negative);
    return sign | (to_inf ? kInf : kMaxFinite);
  }
  const int binade = unb > kEmin ? unb : kEmin;  // subnormals share the quantum of the smallest normal binade
  const int shift = binade - kMant - e2;         // low bits of sig below the target's quantum (>= 1 here)
  uint64_t trunc = 0, rem = sig;
  bool above_half = false, at_half = false;
  if (shift < 64) {
    trunc = sig >> shift;
    rem = sig & ((uint64_t(1) << shift) - 1);
    const uint64_t half = uint64_t(1) << (shift - 1);
    above_half = rem > half, at_half = rem == half;
  }  // else |x| < 2^(e2 + 53) <= half a quantum: rem != 0, below half
  // Encoding of trunc * 2^(binade - kMant): adding 1 steps to the next representable magnitude (carrying
  // into the exponent, up to infinity).
  uint32_t enc = uint32_t((uint64_t(binade - kEmin) << kMant) + trunc);
  bool up = false;
  switch (r) {
    case Round::nearest_even: up = above_half || (at_half && (enc & 1)); break;
    case Round::nearest_away: up = above_half || at_half; break;
    case Round::toward_zero: up = false; break;
    case Round::up: up = rem != 0 && !negative; break;
    case Round::down: up = rem != 0 && negative; break;
  }
  return sign | (enc + (up ? 1 : 0));
}

// Exact value of an encoding (finite, infinite or NaN) as a float (every FP16, BF16 and TF32 value is one).
template <int kMant, int kExp>
constexpr float decode(uint32_t h) {
  constexpr int kBias = (1 << (kExp - 1)) - 1;
  const uint32_t sign = (h >> (kMant + kExp)) & 1, e = (h >> kMant) & ((1u << kExp) - 1);
  uint32_t m = h & ((1u << kMant) - 1);
  uint32_t out;
  if (e == (1u << kExp) - 1) {
    out = (sign << 31) | 0x7f800000u | (m << (23 - kMant));
  } else if (e != 0) {
    out = (sign << 31) | (uint32_t(int(e) - kBias + 127) << 23) | (m << (23 - kMant));
  } else if (m == 0) {
    out = sign << 31;
  } else {  // subnormal: normalise (a float's range covers every subnormal of these formats)
    int shift = 0;
    while (!(m & (1u << kMant))) m <<= 1, ++shift;
    out = (sign << 31) | (uint32_t(1 - kBias - shift + 127) << 23) | ((m & ((1u << kMant) - 1)) << (23 - kMant));
  }
  return std::bit_cast<float>(out);
}

constexpr uint16_t kHalfNaN = 0x7fff;  // CUDART_NAN_FP16: what CUDA's conversions and arithmetic give for NaN
constexpr uint16_t kBf16NaN = 0x7fff;  // CUDART_NAN_BF16

}  // namespace fp

// ------------------------------------------------------------------ FP16 (1 sign, 5 exponent, 10 mantissa bits)
constexpr uint16_t float_to_half_bits(float x, Round r = Round::nearest_even) {
  return uint16_t(fp::encode<10, 5>(double(x), r, fp::kHalfNaN));
}
constexpr uint16_t double_to_half_bits(double x, Round r = Round::nearest_even) {
  return uint16_t(fp::encode<10, 5>(x, r, fp::kHalfNaN));
}
constexpr float half_bits_to_float(uint16_t h) {
  if ((h & 0x7fff) > 0x7c00) return std::bit_cast<float>(0x7fffffffu);  // NaN: canonical, as CUDA
  return fp::decode<10, 5>(h);
}

// ------------------------------------------------------------------ BF16 (1 sign, 8 exponent, 7 mantissa bits)
constexpr uint16_t float_to_bf16_bits(float x, Round r = Round::nearest_even) {
  return uint16_t(fp::encode<7, 8>(double(x), r, fp::kBf16NaN));
}
constexpr uint16_t double_to_bf16_bits(double x, Round r = Round::nearest_even) {
  return uint16_t(fp::encode<7, 8>(x, r, fp::kBf16NaN));
}
constexpr float bf16_bits_to_float(uint16_t h) {
  return std::bit_cast<float>(uint32_t(h) << 16);
}

// ------------------------------------------------------------------ TF32 (1 sign, 8 exponent, 10 mantissa bits)
// cvt.rna.tf32.f32: the float's bits with the low 13 cleared, rounded to nearest, ties away from zero.
constexpr uint32_t float_to_tf32_bits(float x) {
  uint32_t u = std::bit_cast<uint32_t>(x);
  if ((u & 0x7fffffffu) < 0x7f800000u) u += 0x1000u;  // finite: a carry out of the mantissa bumps the exponent
  return u & 0xffffe000u;
}
constexpr float round_to_tf32(float x) {
  return std::bit_cast<float>(float_to_tf32_bits(x));
}
// What mma.sync's .tf32 operands read from a 32-bit register: the top 19 bits (CUTLASS's round-toward-zero
// tf32 conversion relies on this; our kernels always convert with cvt.rna first).
constexpr float tf32_operand(uint32_t bits) {
  return std::bit_cast<float>(bits & 0xffffe000u);
}

// ------------------------------------------------------------------ storage types
// 16-bit values in host code and in launcher signatures: the same bits as CUDA's __half/__nv_bfloat16,
// which are distinct types in the two builds of a kernel (nvcc's and the emulator's), so launchers take
// these and kernels reinterpret them.
struct Half {
  uint16_t bits = 0;
  static constexpr Half from_float(float x, Round r = Round::nearest_even) { return Half{float_to_half_bits(x, r)}; }
  constexpr float to_float() const { return half_bits_to_float(bits); }
  friend constexpr bool operator==(Half, Half) = default;  // bitwise
};
struct BFloat16 {
  uint16_t bits = 0;
  static constexpr BFloat16 from_float(float x, Round r = Round::nearest_even) {
    return BFloat16{float_to_bf16_bits(x, r)};
  }
  constexpr float to_float() const { return bf16_bits_to_float(bits); }
  friend constexpr bool operator==(BFloat16, BFloat16) = default;  // bitwise
};
static_assert(sizeof(Half) == 2 && alignof(Half) == 2 && sizeof(BFloat16) == 2 && alignof(BFloat16) == 2);

// ------------------------------------------------------------------ precisions of GEMM and convolution
// fp32: FP32 operands on the FMA pipe. tf32: FP32 tensors whose operands the tensor cores read as TF32
// (rounded by cvt.rna). bf16/fp16: 16-bit tensors. The last three accumulate in FP32.
enum class Precision : uint8_t { fp32, tf32, bf16, fp16 };

constexpr std::string_view precision_name(Precision p) {
  switch (p) {
    case Precision::fp32: return "fp32";
    case Precision::tf32: return "tf32";
    case Precision::bf16: return "bf16";
    case Precision::fp16: return "fp16";
  }
  return "?";
}

// "fp32" | "tf32" | "bf16" | "fp16", or nothing.
constexpr std::optional<Precision> precision_from_name(std::string_view s) {
  for (Precision p : {Precision::fp32, Precision::tf32, Precision::bf16, Precision::fp16})
    if (precision_name(p) == s) return p;
  return std::nullopt;
}

// x as an operand of precision p reads it: rounded to the precision's input format (a float again).
constexpr float round_operand(Precision p, float x) {
  switch (p) {
    case Precision::fp32: return x;
    case Precision::tf32: return round_to_tf32(x);
    case Precision::bf16: return bf16_bits_to_float(float_to_bf16_bits(x));
    case Precision::fp16: return half_bits_to_float(float_to_half_bits(x));
  }
  return x;
}

// x as the output of an op of precision p is stored: FP32 for fp32 and tf32, else rounded to nearest even.
constexpr float round_output(Precision p, float x) {
  return p == Precision::bf16 || p == Precision::fp16 ? round_operand(p, x) : x;
}

}  // namespace fovea
