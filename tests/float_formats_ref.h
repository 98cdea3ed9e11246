// An independent implementation of rounding to FP16, BF16 and TF32 for the tests of core/float_formats.h,
// the emulator's __half/__nv_bfloat16 and the reduced-precision reference: it shares no code and no
// algorithm with them. Each format's finite non-negative values are listed in order (decoded with ldexp
// from the IEEE definition), and a value is rounded by finding its two neighbours in that list and choosing
// between them as the rounding mode says; beyond the largest value the next power of two stands for
// infinity (IEEE 754's overflow rule). Exact comparisons use __int128 where a double could round.
#pragma once
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "core/float_formats.h"  // the Round enum only

namespace fovea::test {

class FormatRef {
 public:
  FormatRef(int mant_bits, int exp_bits) : mant_(mant_bits), exp_(exp_bits) {
    const int bias = (1 << (exp_bits - 1)) - 1;
    inf_code_ = uint32_t((1u << exp_bits) - 1) << mant_bits;
    values_.resize(inf_code_);
    for (uint32_t code = 0; code < inf_code_; ++code) {
      const int e = int(code >> mant_bits);
      const double m = double(code & ((1u << mant_bits) - 1));
      values_[code] = e == 0 ? std::ldexp(m, 1 - bias - mant_bits)
                             : std::ldexp(m + std::ldexp(1.0, mant_bits), e - bias - mant_bits);
    }
    beyond_ = std::ldexp(1.0, (1 << (exp_bits - 1)));  // 2^(emax + 1): where infinity stands for rounding
  }

  uint32_t sign_bit() const { return 1u << (mant_ + exp_); }
  uint32_t inf_code() const { return inf_code_; }
  bool is_nan(uint32_t code) const { return (code & ~sign_bit()) > inf_code_; }
  // The value of a code (NaN for NaN codes).
  double value(uint32_t code) const {
    const uint32_t mag = code & ~sign_bit();
    const double s = (code & sign_bit()) ? -1.0 : 1.0;
    if (mag == inf_code_) return s * std::numeric_limits<double>::infinity();
    if (mag > inf_code_) return std::numeric_limits<double>::quiet_NaN();
    return s * values_[mag];
  }
  const std::vector<double>& magnitudes() const { return values_; }

  // x rounded to the format in mode r. NaN gives `nan_code`.
  uint32_t round(double x, Round r, uint32_t nan_code) const {
    if (std::isnan(x)) return nan_code;
    const bool neg = std::signbit(x);
    const uint32_t sign = neg ? sign_bit() : 0u;
    const double a = std::fabs(x);
    const bool away_from_zero_dir = (r == Round::up && !neg) || (r == Round::down && neg);
    if (std::isinf(a)) return sign | inf_code_;  // exact in every mode
    if (a >= beyond_) {
      const bool to_inf = r == Round::nearest_even || r == Round::nearest_away || away_from_zero_dir;
      return sign | (to_inf ? inf_code_ : inf_code_ - 1);
    }
    // lo: the largest listed value <= a; hi = lo + 1 (inf_code_ stands for beyond_).
    const uint32_t lo = uint32_t(std::upper_bound(values_.begin(), values_.end(), a) - values_.begin() - 1);
    if (values_[lo] == a) return sign | lo;
    const uint32_t hi = lo + 1;
    const double hi_value = hi == inf_code_ ? beyond_ : values_[hi];
    const double below = a - values_[lo], above = hi_value - a;  // exact near a tie (Sterbenz)
    uint32_t code = lo;
    switch (r) {
      case Round::toward_zero: code = lo; break;
      case Round::up:
      case Round::down: code = away_from_zero_dir ? hi : lo; break;
      case Round::nearest_even: code = below < above ? lo : above < below ? hi : ((lo & 1) ? hi : lo); break;
      case Round::nearest_away: code = below < above ? lo : hi; break;
    }
    return sign | code;
  }

  // num * 2^-scale rounded to the format in mode r, compared exactly (|num| < 2^126, any scale). NaN-free;
  // a zero num gives +0.
  uint32_t round_exact(__int128 num, int scale, Round r) const {
    if (num == 0) return 0;
    const bool neg = num < 0;
    const unsigned __int128 a = neg ? (unsigned __int128)(-num) : (unsigned __int128)num;
    const uint32_t sign = neg ? sign_bit() : 0u;
    const bool away_from_zero_dir = (r == Round::up && !neg) || (r == Round::down && neg);
    auto cmp = [&](double v) { return compare_scaled(a, scale, v); };
    uint32_t lo =
        uint32_t(std::upper_bound(values_.begin(), values_.end(), std::ldexp(double(a), -scale)) - values_.begin());
    lo = lo > 0 ? lo - 1 : 0;  // a first guess from the rounded value, then made exact
    while (lo > 0 && cmp(values_[lo]) < 0) --lo;
    while (lo + 1 < inf_code_ && cmp(values_[lo + 1]) >= 0) ++lo;
    if (lo + 1 == inf_code_ && cmp(beyond_) >= 0) {
      const bool to_inf = r == Round::nearest_even || r == Round::nearest_away || away_from_zero_dir;
      return sign | (to_inf ? inf_code_ : inf_code_ - 1);
    }
    if (cmp(values_[lo]) == 0) return sign | lo;
    const uint32_t hi = lo + 1;
    const double hi_value = hi == inf_code_ ? beyond_ : values_[hi];
    // The midpoint of lo and hi, exactly: (ml 2^el + mh 2^eh) / 2.
    auto [ml, el] = split(values_[lo]);
    auto [mh, eh] = split(hi_value);
    if (ml == 0) el = eh;
    const int e = std::min(el, eh);
    const int side = compare_scaled(a, scale, (ml << (el - e)) + (mh << (eh - e)), e - 1);
    uint32_t code = lo;
    switch (r) {
      case Round::toward_zero: code = lo; break;
      case Round::up:
      case Round::down: code = away_from_zero_dir ? hi : lo; break;
      case Round::nearest_even: code = side < 0 ? lo : side > 0 ? hi : ((lo & 1) ? hi : lo); break;
      case Round::nearest_away: code = side < 0 ? lo : hi; break;
    }
    return sign | code;
  }

  // v >= 0 finite as m * 2^e with m odd (or m = 0).
  static std::pair<uint64_t, int> split(double v) {
    if (v == 0) return {0, 0};
    int ex = 0;
    const double fr = std::frexp(v, &ex);
    uint64_t m = uint64_t(std::ldexp(fr, 53));
    int e = ex - 53;
    while (!(m & 1)) m >>= 1, ++e;
    return {m, e};
  }
  // The sign of a * 2^-scale - m * 2^e, exactly.
  static int compare_scaled(unsigned __int128 a, int scale, uint64_t m, int e) {
    auto bitlen = [](unsigned __int128 x) {
      int n = 0;
      while (x) x >>= 1, ++n;
      return n;
    };
    if (m == 0) return a > 0 ? 1 : 0;
    if (a == 0) return -1;
    const int d = e + scale;  // compare a with m * 2^d
    if (d >= 0) {
      if (bitlen(m) + d > 127) return -1;  // m * 2^d >= 2^127 > a
      const unsigned __int128 rhs = (unsigned __int128)m << d;
      return a < rhs ? -1 : a > rhs ? 1 : 0;
    }
    if (bitlen(a) - d > 127) return 1;  // a * 2^-d >= 2^127 > m
    const unsigned __int128 lhs = a << -d;
    return lhs < m ? -1 : lhs > m ? 1 : 0;
  }
  static int compare_scaled(unsigned __int128 a, int scale, double v) {
    const auto [m, e] = split(v);
    return compare_scaled(a, scale, m, e);
  }

 private:
  int mant_, exp_;
  uint32_t inf_code_ = 0;
  std::vector<double> values_;
  double beyond_ = 0;
};

// a * b + c rounded once to nearest even (fma.rn.f16 / fma.rn.bf16), computed exactly: the product and the
// addend as integers times powers of two, summed in __int128. An addend far below the other (more than 60
// binades) only decides the direction of an inexact result, so it is replaced by a tiny value of its sign.
// Non-finite operands and zero terms go through double arithmetic, which is exact for them.
inline uint32_t fma_ref(const FormatRef& f, double a, double b, double c, uint32_t nan_code) {
  const double p = a * b;  // exact: at most 22 significant bits
  if (!std::isfinite(a) || !std::isfinite(b) || !std::isfinite(c) || p == 0 || c == 0)
    return f.round(p + c, Round::nearest_even, nan_code);  // exact: one term is zero, or the result is not finite
  auto [mp, ep] = FormatRef::split(std::fabs(p));
  auto [mc, ec] = FormatRef::split(std::fabs(c));
  auto top = [](uint64_t m, int e) { return e + 63 - __builtin_clzll(m); };
  const int tp = top(mp, ep), tc = top(mc, ec);
  if (tc < tp - 60) mc = 1, ec = tp - 60;
  if (tp < tc - 60) mp = 1, ep = tc - 60;
  const int low = std::min(ep, ec);
  const __int128 vp = (__int128)mp << (ep - low), vc = (__int128)mc << (ec - low);
  const __int128 sum = (p < 0 ? -vp : vp) + (c < 0 ? -vc : vc);
  return f.round_exact(sum, -low, Round::nearest_even);  // an exact zero is +0 (round to nearest)
}

inline const FormatRef& half_ref() {
  static const FormatRef f(10, 5);
  return f;
}
inline const FormatRef& bf16_ref() {
  static const FormatRef f(7, 8);
  return f;
}
inline const FormatRef& tf32_ref() {
  static const FormatRef f(10, 8);
  return f;
}

// 32-bit patterns from a counter (splitmix64): reproducible, every class of float (NaN, infinity, subnormal,
// huge) in proportion to its share of the bit patterns.
inline uint32_t random_bits32(uint64_t i) {
  uint64_t z = i * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return uint32_t((z ^ (z >> 31)) >> 16);
}

// Floats that probe a format's rounding: every midpoint between neighbouring values and the floats just
// below and above it (ties and near-ties in every binade, subnormals and the overflow threshold included),
// each with both signs.
inline std::vector<float> midpoint_probes(const FormatRef& f) {
  std::vector<float> out;
  const std::vector<double>& v = f.magnitudes();
  for (size_t i = 0; i < v.size(); ++i) {
    const double next = i + 1 < v.size() ? v[i + 1] : 2 * v[i] - v[i - 1];  // past the largest: the overflow tie
    const float mid = float((v[i] + next) / 2);                             // exact: one more bit than the format
    for (float x : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, INFINITY)}) {
      out.push_back(x);
      out.push_back(-x);
    }
  }
  return out;
}

}  // namespace fovea::test
