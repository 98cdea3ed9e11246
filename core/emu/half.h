// CUDA's 16-bit float types for the emulator: __half, __half2 (cuda_fp16.h) and __nv_bfloat16, __nv_bfloat162
// (cuda_bf16.h) with the subset of their API that fovea's kernels use: conversions in every rounding mode,
// packing, arithmetic, comparisons. Included by core/emu/device_api.h.
//
// Why our own types instead of the toolkit's (g++ can compile cuda_fp16.h): the emulator builds and runs
// without the CUDA toolkit, and cuda_fp16.h includes the toolkit's vector_types.h, whose float2, int4, ...
// collide with the emulator's (core/CMakeLists.txt keeps the toolkit's headers away from the emulator build
// for that reason). Like everything else here the types live in fovea::emu and reach global scope through
// using-declarations, so one binary links the nvcc build (CUDA's ::__half) and the emulator build.
//
// Bit-exact with CUDA (tests/half_test.cpp checks every 16-bit pattern and a million random floats against
// an independent implementation, NVIDIA's own host implementation in cuda_fp16.hpp/cuda_bf16.hpp, PyTorch,
// and, with a GPU, the device):
//   - conversions round as named (_rn to nearest even, _rz, _rd, _ru); see core/float_formats.h for NaN,
//     overflow and subnormals;
//   - add, sub, mul are correctly rounded to nearest even: the float result of two 16-bit operands rounded
//     once more to 16 bits is the correctly rounded result (float has more than 2p + 2 bits for p = 11 and 8),
//     which is how CUDA's host code computes them and what the GPU's instructions return;
//   - fma is computed exactly and rounded once (the double sum is rounded to odd first, which makes the second
//     rounding exact), as fma.rn.f16 / fma.rn.bf16;
//   - a NaN result is the canonical NaN 0x7fff (CUDA's host code; NaN-ness is exact, PTX leaves the payload
//     of a NaN result unspecified); neg and abs of a NaN give it too;
//   - max/min return the other operand when one is NaN, the canonical NaN when both are, +0 > -0.
// Not provided (a kernel that needs one adds it with its device algorithm): division (the GPU's __hdiv uses an
// approximate reciprocal), the _sat forms, integer conversions other than constructors, double operands.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>

#include "core/emu/types.h"
#include "core/float_formats.h"

namespace fovea::emu {

struct __half_raw {
  unsigned short x;
};
struct __half2_raw {
  unsigned short x, y;
};
struct __nv_bfloat16_raw {
  unsigned short x;
};
struct __nv_bfloat162_raw {
  unsigned short x, y;
};

namespace detail {
// Exact rounding of a * b + c to the 16-bit format E (encode<...>) from doubles: a * b is exact in double
// (at most 22 significant bits); the sum is rounded to odd, so that rounding it again to 16 bits is exact.
template <class Encode>
inline uint16_t fma_exact(double a, double b, double c, Encode encode) {
  const double p = a * b;
  double s = p + c;
  if (std::isfinite(s)) {
    const double bb = s - p, err = (p - (s - bb)) + (c - bb);  // TwoSum: p + c == s + err exactly
    if (err != 0.0 && !(std::bit_cast<uint64_t>(s) & 1)) s = std::nextafter(s, err > 0 ? INFINITY : -INFINITY);
  }
  return encode(s);
}
}  // namespace detail

// ------------------------------------------------------------------ __half
struct alignas(2) __half {
  unsigned short __x;
  __half() = default;
  constexpr __half(const __half_raw& r) : __x(r.x) {}
  __half(float f) : __x(float_to_half_bits(f)) {}
  __half(double d) : __x(double_to_half_bits(d)) {}
  __half(int i) : __x(double_to_half_bits(double(i))) {}
  __half(unsigned int i) : __x(double_to_half_bits(double(i))) {}
  __half(short i) : __x(double_to_half_bits(double(i))) {}
  __half(unsigned short i) : __x(double_to_half_bits(double(i))) {}
  constexpr operator __half_raw() const { return __half_raw{__x}; }
  operator float() const { return half_bits_to_float(__x); }
  __half& operator=(const __half_raw& r) {
    __x = r.x;
    return *this;
  }
};

struct alignas(4) __half2 {
  __half x, y;
  __half2() = default;
  constexpr __half2(const __half& a, const __half& b) : x(a), y(b) {}
  constexpr __half2(const __half2_raw& r) : x(__half_raw{r.x}), y(__half_raw{r.y}) {}
  constexpr operator __half2_raw() const { return __half2_raw{x.__x, y.__x}; }
};

// ------------------------------------------------------------------ __nv_bfloat16
struct alignas(2) __nv_bfloat16 {
  unsigned short __x;
  __nv_bfloat16() = default;
  constexpr __nv_bfloat16(const __nv_bfloat16_raw& r) : __x(r.x) {}
  __nv_bfloat16(float f) : __x(float_to_bf16_bits(f)) {}
  __nv_bfloat16(double d) : __x(double_to_bf16_bits(d)) {}
  __nv_bfloat16(int i) : __x(double_to_bf16_bits(double(i))) {}
  __nv_bfloat16(unsigned int i) : __x(double_to_bf16_bits(double(i))) {}
  __nv_bfloat16(short i) : __x(double_to_bf16_bits(double(i))) {}
  __nv_bfloat16(unsigned short i) : __x(double_to_bf16_bits(double(i))) {}
  constexpr operator __nv_bfloat16_raw() const { return __nv_bfloat16_raw{__x}; }
  operator float() const { return bf16_bits_to_float(__x); }
  __nv_bfloat16& operator=(const __nv_bfloat16_raw& r) {
    __x = r.x;
    return *this;
  }
};

struct alignas(4) __nv_bfloat162 {
  __nv_bfloat16 x, y;
  __nv_bfloat162() = default;
  constexpr __nv_bfloat162(const __nv_bfloat16& a, const __nv_bfloat16& b) : x(a), y(b) {}
  constexpr __nv_bfloat162(const __nv_bfloat162_raw& r) : x(__nv_bfloat16_raw{r.x}), y(__nv_bfloat16_raw{r.y}) {}
  constexpr operator __nv_bfloat162_raw() const { return __nv_bfloat162_raw{x.__x, y.__x}; }
};

static_assert(sizeof(__half) == 2 && sizeof(__half2) == 4 && alignof(__half2) == 4);
static_assert(sizeof(__nv_bfloat16) == 2 && sizeof(__nv_bfloat162) == 4 && alignof(__nv_bfloat162) == 4);

// The operations are written once for both types; Traits says how a type's bits convert.
namespace detail {
struct HalfTraits {
  using T = __half;
  using T2 = __half2;
  static constexpr uint16_t kNaN = fp::kHalfNaN;
  static float to_float(T h) { return half_bits_to_float(h.__x); }
  static T from_bits(uint16_t b) { return T(__half_raw{b}); }
  static T rn(float f) { return from_bits(float_to_half_bits(f)); }
  static T rn_double(double d) { return from_bits(double_to_half_bits(d)); }
  static bool isnan(T h) { return (h.__x & 0x7fff) > 0x7c00; }
  static int isinf(T h) { return h.__x == 0x7c00 ? 1 : h.__x == 0xfc00 ? -1 : 0; }
};
struct Bf16Traits {
  using T = __nv_bfloat16;
  using T2 = __nv_bfloat162;
  static constexpr uint16_t kNaN = fp::kBf16NaN;
  static float to_float(T h) { return bf16_bits_to_float(h.__x); }
  static T from_bits(uint16_t b) { return T(__nv_bfloat16_raw{b}); }
  static T rn(float f) { return from_bits(float_to_bf16_bits(f)); }
  static T rn_double(double d) { return from_bits(double_to_bf16_bits(d)); }
  static bool isnan(T h) { return (h.__x & 0x7fff) > 0x7f80; }
  static int isinf(T h) { return h.__x == 0x7f80 ? 1 : h.__x == 0xff80 ? -1 : 0; }
};

template <class Tr>
inline typename Tr::T h_add(typename Tr::T a, typename Tr::T b) {
  return Tr::rn(Tr::to_float(a) + Tr::to_float(b));
}
template <class Tr>
inline typename Tr::T h_sub(typename Tr::T a, typename Tr::T b) {
  return Tr::rn(Tr::to_float(a) - Tr::to_float(b));
}
template <class Tr>
inline typename Tr::T h_mul(typename Tr::T a, typename Tr::T b) {
  return Tr::rn(Tr::to_float(a) * Tr::to_float(b));
}
template <class Tr>
inline typename Tr::T h_fma(typename Tr::T a, typename Tr::T b, typename Tr::T c) {
  return Tr::from_bits(fma_exact(double(Tr::to_float(a)), double(Tr::to_float(b)), double(Tr::to_float(c)),
                                 [](double s) { return Tr::rn_double(s).__x; }));
}
template <class Tr>
inline typename Tr::T h_neg(typename Tr::T a) {
  return Tr::isnan(a) ? Tr::from_bits(Tr::kNaN) : Tr::from_bits(uint16_t(a.__x ^ 0x8000));
}
template <class Tr>
inline typename Tr::T h_abs(typename Tr::T a) {
  return Tr::isnan(a) ? Tr::from_bits(Tr::kNaN) : Tr::from_bits(uint16_t(a.__x & 0x7fff));
}
template <class Tr>
inline typename Tr::T h_max(typename Tr::T a, typename Tr::T b) {
  if (Tr::isnan(a) && Tr::isnan(b)) return Tr::from_bits(Tr::kNaN);
  if (Tr::isnan(a)) return b;
  if (Tr::isnan(b)) return a;
  const float fa = Tr::to_float(a), fb = Tr::to_float(b);
  if (fa == fb) return (a.__x & 0x8000) ? b : a;  // +0 beats -0
  return fa > fb ? a : b;
}
template <class Tr>
inline typename Tr::T h_min(typename Tr::T a, typename Tr::T b) {
  if (Tr::isnan(a) && Tr::isnan(b)) return Tr::from_bits(Tr::kNaN);
  if (Tr::isnan(a)) return b;
  if (Tr::isnan(b)) return a;
  const float fa = Tr::to_float(a), fb = Tr::to_float(b);
  if (fa == fb) return (a.__x & 0x8000) ? a : b;  // -0 beats +0
  return fa < fb ? a : b;
}
}  // namespace detail

// ------------------------------------------------------------------ conversions and packing
inline __half __float2half(float f) {
  return __half_raw{float_to_half_bits(f, Round::nearest_even)};
}
inline __half __float2half_rn(float f) {
  return __half_raw{float_to_half_bits(f, Round::nearest_even)};
}
inline __half __float2half_rz(float f) {
  return __half_raw{float_to_half_bits(f, Round::toward_zero)};
}
inline __half __float2half_rd(float f) {
  return __half_raw{float_to_half_bits(f, Round::down)};
}
inline __half __float2half_ru(float f) {
  return __half_raw{float_to_half_bits(f, Round::up)};
}
inline float __half2float(__half h) {
  return half_bits_to_float(h.__x);
}
inline __nv_bfloat16 __float2bfloat16(float f) {
  return __nv_bfloat16_raw{float_to_bf16_bits(f, Round::nearest_even)};
}
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  return __nv_bfloat16_raw{float_to_bf16_bits(f, Round::nearest_even)};
}
inline __nv_bfloat16 __float2bfloat16_rz(float f) {
  return __nv_bfloat16_raw{float_to_bf16_bits(f, Round::toward_zero)};
}
inline __nv_bfloat16 __float2bfloat16_rd(float f) {
  return __nv_bfloat16_raw{float_to_bf16_bits(f, Round::down)};
}
inline __nv_bfloat16 __float2bfloat16_ru(float f) {
  return __nv_bfloat16_raw{float_to_bf16_bits(f, Round::up)};
}
inline float __bfloat162float(__nv_bfloat16 h) {
  return bf16_bits_to_float(h.__x);
}

inline __half2 __float2half2_rn(float f) {
  const __half h = __float2half_rn(f);
  return __half2(h, h);
}
inline __half2 __floats2half2_rn(float lo, float hi) {
  return __half2(__float2half_rn(lo), __float2half_rn(hi));
}
inline float2 __half22float2(__half2 h) {
  return float2{__half2float(h.x), __half2float(h.y)};
}
inline __half2 __float22half2_rn(float2 f) {
  return __floats2half2_rn(f.x, f.y);
}
inline float __low2float(__half2 h) {
  return __half2float(h.x);
}
inline float __high2float(__half2 h) {
  return __half2float(h.y);
}
inline __half __low2half(__half2 h) {
  return h.x;
}
inline __half __high2half(__half2 h) {
  return h.y;
}
inline __half2 __halves2half2(__half lo, __half hi) {
  return __half2(lo, hi);
}
inline __half2 __half2half2(__half h) {
  return __half2(h, h);
}
inline __half2 __lows2half2(__half2 a, __half2 b) {
  return __half2(a.x, b.x);
}
inline __half2 __highs2half2(__half2 a, __half2 b) {
  return __half2(a.y, b.y);
}
inline __half2 make_half2(__half x, __half y) {
  return __half2(x, y);
}
inline unsigned short __half_as_ushort(__half h) {
  return h.__x;
}
inline __half __ushort_as_half(unsigned short u) {
  return __half_raw{u};
}
inline short __half_as_short(__half h) {
  return short(h.__x);
}
inline __half __short_as_half(short s) {
  return __half_raw{(unsigned short)s};
}

inline __nv_bfloat162 __float2bfloat162_rn(float f) {
  const __nv_bfloat16 h = __float2bfloat16_rn(f);
  return __nv_bfloat162(h, h);
}
inline __nv_bfloat162 __floats2bfloat162_rn(float lo, float hi) {
  return __nv_bfloat162(__float2bfloat16_rn(lo), __float2bfloat16_rn(hi));
}
inline float2 __bfloat1622float2(__nv_bfloat162 h) {
  return float2{__bfloat162float(h.x), __bfloat162float(h.y)};
}
inline __nv_bfloat162 __float22bfloat162_rn(float2 f) {
  return __floats2bfloat162_rn(f.x, f.y);
}
inline float __low2float(__nv_bfloat162 h) {
  return __bfloat162float(h.x);
}
inline float __high2float(__nv_bfloat162 h) {
  return __bfloat162float(h.y);
}
inline __nv_bfloat16 __low2bfloat16(__nv_bfloat162 h) {
  return h.x;
}
inline __nv_bfloat16 __high2bfloat16(__nv_bfloat162 h) {
  return h.y;
}
inline __nv_bfloat162 __halves2bfloat162(__nv_bfloat16 lo, __nv_bfloat16 hi) {
  return __nv_bfloat162(lo, hi);
}
inline __nv_bfloat162 __bfloat162bfloat162(__nv_bfloat16 h) {
  return __nv_bfloat162(h, h);
}
inline __nv_bfloat162 __lows2bfloat162(__nv_bfloat162 a, __nv_bfloat162 b) {
  return __nv_bfloat162(a.x, b.x);
}
inline __nv_bfloat162 __highs2bfloat162(__nv_bfloat162 a, __nv_bfloat162 b) {
  return __nv_bfloat162(a.y, b.y);
}
inline __nv_bfloat162 make_bfloat162(__nv_bfloat16 x, __nv_bfloat16 y) {
  return __nv_bfloat162(x, y);
}
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) {
  return h.__x;
}
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short u) {
  return __nv_bfloat16_raw{u};
}
inline short __bfloat16_as_short(__nv_bfloat16 h) {
  return short(h.__x);
}
inline __nv_bfloat16 __short_as_bfloat16(short s) {
  return __nv_bfloat16_raw{(unsigned short)s};
}

// ------------------------------------------------------------------ arithmetic and comparisons, both types
#define FOVEA_EMU_HALF_API(T, T2, Tr)                                                       \
  inline T __hadd(T a, T b) {                                                               \
    return detail::h_add<Tr>(a, b);                                                         \
  }                                                                                         \
  inline T __hsub(T a, T b) {                                                               \
    return detail::h_sub<Tr>(a, b);                                                         \
  }                                                                                         \
  inline T __hmul(T a, T b) {                                                               \
    return detail::h_mul<Tr>(a, b);                                                         \
  }                                                                                         \
  inline T __hfma(T a, T b, T c) {                                                          \
    return detail::h_fma<Tr>(a, b, c);                                                      \
  }                                                                                         \
  inline T __hneg(T a) {                                                                    \
    return detail::h_neg<Tr>(a);                                                            \
  }                                                                                         \
  inline T __habs(T a) {                                                                    \
    return detail::h_abs<Tr>(a);                                                            \
  }                                                                                         \
  inline T __hmax(T a, T b) {                                                               \
    return detail::h_max<Tr>(a, b);                                                         \
  }                                                                                         \
  inline T __hmin(T a, T b) {                                                               \
    return detail::h_min<Tr>(a, b);                                                         \
  }                                                                                         \
  inline T2 __hadd2(T2 a, T2 b) {                                                           \
    return T2(__hadd(a.x, b.x), __hadd(a.y, b.y));                                          \
  }                                                                                         \
  inline T2 __hsub2(T2 a, T2 b) {                                                           \
    return T2(__hsub(a.x, b.x), __hsub(a.y, b.y));                                          \
  }                                                                                         \
  inline T2 __hmul2(T2 a, T2 b) {                                                           \
    return T2(__hmul(a.x, b.x), __hmul(a.y, b.y));                                          \
  }                                                                                         \
  inline T2 __hfma2(T2 a, T2 b, T2 c) {                                                     \
    return T2(__hfma(a.x, b.x, c.x), __hfma(a.y, b.y, c.y));                                \
  }                                                                                         \
  inline T2 __hneg2(T2 a) {                                                                 \
    return T2(__hneg(a.x), __hneg(a.y));                                                    \
  }                                                                                         \
  inline T2 __habs2(T2 a) {                                                                 \
    return T2(__habs(a.x), __habs(a.y));                                                    \
  }                                                                                         \
  inline T2 __hmax2(T2 a, T2 b) {                                                           \
    return T2(__hmax(a.x, b.x), __hmax(a.y, b.y));                                          \
  }                                                                                         \
  inline T2 __hmin2(T2 a, T2 b) {                                                           \
    return T2(__hmin(a.x, b.x), __hmin(a.y, b.y));                                          \
  }                                                                                         \
  /* Ordered comparisons are false when an operand is NaN; the ...u forms are true then. */ \
  inline bool __heq(T a, T b) {                                                             \
    return Tr::to_float(a) == Tr::to_float(b);                                              \
  }                                                                                         \
  inline bool __hne(T a, T b) {                                                             \
    return !Tr::isnan(a) && !Tr::isnan(b) && Tr::to_float(a) != Tr::to_float(b);            \
  }                                                                                         \
  inline bool __hlt(T a, T b) {                                                             \
    return Tr::to_float(a) < Tr::to_float(b);                                               \
  }                                                                                         \
  inline bool __hle(T a, T b) {                                                             \
    return Tr::to_float(a) <= Tr::to_float(b);                                              \
  }                                                                                         \
  inline bool __hgt(T a, T b) {                                                             \
    return Tr::to_float(a) > Tr::to_float(b);                                               \
  }                                                                                         \
  inline bool __hge(T a, T b) {                                                             \
    return Tr::to_float(a) >= Tr::to_float(b);                                              \
  }                                                                                         \
  inline bool __hequ(T a, T b) {                                                            \
    return !(Tr::to_float(a) != Tr::to_float(b)) || Tr::isnan(a) || Tr::isnan(b);           \
  }                                                                                         \
  inline bool __hneu(T a, T b) {                                                            \
    return Tr::to_float(a) != Tr::to_float(b);                                              \
  }                                                                                         \
  inline bool __hltu(T a, T b) {                                                            \
    return !(Tr::to_float(a) >= Tr::to_float(b));                                           \
  }                                                                                         \
  inline bool __hleu(T a, T b) {                                                            \
    return !(Tr::to_float(a) > Tr::to_float(b));                                            \
  }                                                                                         \
  inline bool __hgtu(T a, T b) {                                                            \
    return !(Tr::to_float(a) <= Tr::to_float(b));                                           \
  }                                                                                         \
  inline bool __hgeu(T a, T b) {                                                            \
    return !(Tr::to_float(a) < Tr::to_float(b));                                            \
  }                                                                                         \
  inline bool __hisnan(T a) {                                                               \
    return Tr::isnan(a);                                                                    \
  }                                                                                         \
  inline int __hisinf(T a) {                                                                \
    return Tr::isinf(a);                                                                    \
  }                                                                                         \
  inline T operator+(const T& a, const T& b) {                                              \
    return __hadd(a, b);                                                                    \
  }                                                                                         \
  inline T operator-(const T& a, const T& b) {                                              \
    return __hsub(a, b);                                                                    \
  }                                                                                         \
  inline T operator*(const T& a, const T& b) {                                              \
    return __hmul(a, b);                                                                    \
  }                                                                                         \
  T operator/(const T& a, const T& b) = delete; /* no __hdiv in the emulator */             \
  inline T& operator+=(T& a, const T& b) {                                                  \
    return a = __hadd(a, b);                                                                \
  }                                                                                         \
  inline T& operator-=(T& a, const T& b) {                                                  \
    return a = __hsub(a, b);                                                                \
  }                                                                                         \
  inline T& operator*=(T& a, const T& b) {                                                  \
    return a = __hmul(a, b);                                                                \
  }                                                                                         \
  inline T operator+(const T& a) {                                                          \
    return a;                                                                               \
  }                                                                                         \
  inline T operator-(const T& a) {                                                          \
    return __hneg(a);                                                                       \
  }                                                                                         \
  inline bool operator==(const T& a, const T& b) {                                          \
    return __heq(a, b);                                                                     \
  }                                                                                         \
  inline bool operator!=(const T& a, const T& b) {                                          \
    return __hneu(a, b);                                                                    \
  }                                                                                         \
  inline bool operator<(const T& a, const T& b) {                                           \
    return __hlt(a, b);                                                                     \
  }                                                                                         \
  inline bool operator<=(const T& a, const T& b) {                                          \
    return __hle(a, b);                                                                     \
  }                                                                                         \
  inline bool operator>(const T& a, const T& b) {                                           \
    return __hgt(a, b);                                                                     \
  }                                                                                         \
  inline bool operator>=(const T& a, const T& b) {                                          \
    return __hge(a, b);                                                                     \
  }                                                                                         \
  inline T2 operator+(const T2& a, const T2& b) {                                           \
    return __hadd2(a, b);                                                                   \
  }                                                                                         \
  inline T2 operator-(const T2& a, const T2& b) {                                           \
    return __hsub2(a, b);                                                                   \
  }                                                                                         \
  inline T2 operator*(const T2& a, const T2& b) {                                           \
    return __hmul2(a, b);                                                                   \
  }                                                                                         \
  inline T2& operator+=(T2& a, const T2& b) {                                               \
    return a = __hadd2(a, b);                                                               \
  }                                                                                         \
  inline T2& operator-=(T2& a, const T2& b) {                                               \
    return a = __hsub2(a, b);                                                               \
  }                                                                                         \
  inline T2& operator*=(T2& a, const T2& b) {                                               \
    return a = __hmul2(a, b);                                                               \
  }                                                                                         \
  inline T2 operator-(const T2& a) {                                                        \
    return __hneg2(a);                                                                      \
  }
FOVEA_EMU_HALF_API(__half, __half2, detail::HalfTraits)
FOVEA_EMU_HALF_API(__nv_bfloat16, __nv_bfloat162, detail::Bf16Traits)
#undef FOVEA_EMU_HALF_API

}  // namespace fovea::emu

// ------------------------------------------------------------------ global scope, as in CUDA
using ::fovea::emu::__half;
using ::fovea::emu::__half2;
using ::fovea::emu::__half2_raw;
using ::fovea::emu::__half_raw;
using ::fovea::emu::__nv_bfloat16;
using ::fovea::emu::__nv_bfloat162;
using ::fovea::emu::__nv_bfloat162_raw;
using ::fovea::emu::__nv_bfloat16_raw;
using half = ::fovea::emu::__half;
using half2 = ::fovea::emu::__half2;
using nv_bfloat16 = ::fovea::emu::__nv_bfloat16;
using nv_bfloat162 = ::fovea::emu::__nv_bfloat162;

using ::fovea::emu::__bfloat1622float2;
using ::fovea::emu::__bfloat162bfloat162;
using ::fovea::emu::__bfloat162float;
using ::fovea::emu::__bfloat16_as_short;
using ::fovea::emu::__bfloat16_as_ushort;
using ::fovea::emu::__float22bfloat162_rn;
using ::fovea::emu::__float22half2_rn;
using ::fovea::emu::__float2bfloat16;
using ::fovea::emu::__float2bfloat162_rn;
using ::fovea::emu::__float2bfloat16_rd;
using ::fovea::emu::__float2bfloat16_rn;
using ::fovea::emu::__float2bfloat16_ru;
using ::fovea::emu::__float2bfloat16_rz;
using ::fovea::emu::__float2half;
using ::fovea::emu::__float2half2_rn;
using ::fovea::emu::__float2half_rd;
using ::fovea::emu::__float2half_rn;
using ::fovea::emu::__float2half_ru;
using ::fovea::emu::__float2half_rz;
using ::fovea::emu::__floats2bfloat162_rn;
using ::fovea::emu::__floats2half2_rn;
using ::fovea::emu::__half22float2;
using ::fovea::emu::__half2float;
using ::fovea::emu::__half2half2;
using ::fovea::emu::__half_as_short;
using ::fovea::emu::__half_as_ushort;
using ::fovea::emu::__halves2bfloat162;
using ::fovea::emu::__halves2half2;
using ::fovea::emu::__high2bfloat16;
using ::fovea::emu::__high2float;
using ::fovea::emu::__high2half;
using ::fovea::emu::__highs2bfloat162;
using ::fovea::emu::__highs2half2;
using ::fovea::emu::__low2bfloat16;
using ::fovea::emu::__low2float;
using ::fovea::emu::__low2half;
using ::fovea::emu::__lows2bfloat162;
using ::fovea::emu::__lows2half2;
using ::fovea::emu::__short_as_bfloat16;
using ::fovea::emu::__short_as_half;
using ::fovea::emu::__ushort_as_bfloat16;
using ::fovea::emu::__ushort_as_half;
using ::fovea::emu::make_bfloat162;
using ::fovea::emu::make_half2;

using ::fovea::emu::__habs;
using ::fovea::emu::__habs2;
using ::fovea::emu::__hadd;
using ::fovea::emu::__hadd2;
using ::fovea::emu::__heq;
using ::fovea::emu::__hequ;
using ::fovea::emu::__hfma;
using ::fovea::emu::__hfma2;
using ::fovea::emu::__hge;
using ::fovea::emu::__hgeu;
using ::fovea::emu::__hgt;
using ::fovea::emu::__hgtu;
using ::fovea::emu::__hisinf;
using ::fovea::emu::__hisnan;
using ::fovea::emu::__hle;
using ::fovea::emu::__hleu;
using ::fovea::emu::__hlt;
using ::fovea::emu::__hltu;
using ::fovea::emu::__hmax;
using ::fovea::emu::__hmax2;
using ::fovea::emu::__hmin;
using ::fovea::emu::__hmin2;
using ::fovea::emu::__hmul;
using ::fovea::emu::__hmul2;
using ::fovea::emu::__hne;
using ::fovea::emu::__hneg;
using ::fovea::emu::__hneg2;
using ::fovea::emu::__hneu;
using ::fovea::emu::__hsub;
using ::fovea::emu::__hsub2;
