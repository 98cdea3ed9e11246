// The emulator's __half / __nv_bfloat16 API (core/emu/half.h) inside a kernel (tests/half_test_kernels.cu), on
// every kernel device: each operation applied to every 16-bit pattern (twice, against two permutations) and to
// every triple of special values, compared bit for bit with
//   - the independent expectations of tests/float_formats_ref.h (correctly rounded results computed exactly,
//     CUDA's documented NaN, zero and comparison rules written out below), and
//   - NVIDIA's host implementation of the same function (tests/cuda_fp16_host.h) where the toolkit is found.
// On device cuda the same comparisons check the GPU's own instructions against the emulator's semantics.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/float_formats.h"
#include "tests/float_formats_ref.h"
#include "tests/half_test_kernels.h"
#include "tests/kernel_test_util.h"
#if defined(FOVEA_HAVE_CUDA_FP16_HOST)
#include "tests/cuda_fp16_host.h"
#endif

namespace fovea {
namespace {

using test::DeviceArray;

const char* const kOpNames[] = {
#define FOVEA_HALF_TEST_NAME(name) #name,
    FOVEA_HALF_TEST_OPS(FOVEA_HALF_TEST_NAME)
#undef FOVEA_HALF_TEST_NAME
};

struct Inputs {
  std::vector<uint16_t> a, b, c;
  std::vector<float> f, g;
  size_t size() const { return a.size(); }
};

// Special values of a format: zeros, infinities, NaNs (canonical, quiet, signalling, negative), the extremes,
// one, and values whose sums and products round at ties.
std::vector<uint16_t> specials(bool bf16) {
  if (bf16)
    return {0x0000, 0x8000, 0x7f80, 0xff80, 0x7fff, 0x7fc0, 0x7f81, 0xffc1, 0x7f7f, 0xff7f, 0x0080, 0x8080,
            0x0001, 0x8001, 0x007f, 0x3f80, 0xbf80, 0x3f81, 0x3b80, 0x4000, 0x3f7f, 0xc040, 0x3401, 0x7f00};
  return {0x0000, 0x8000, 0x7c00, 0xfc00, 0x7fff, 0x7e00, 0x7c01, 0xfe01, 0x7bff, 0xfbff, 0x0400, 0x8400,
          0x0001, 0x8001, 0x03ff, 0x3c00, 0xbc00, 0x3c01, 0x1400, 0x4000, 0x3bff, 0xc200, 0x1001, 0x7800};
}

Inputs make_inputs(bool bf16) {
  Inputs in;
  std::vector<uint16_t> all(65536);
  for (uint32_t i = 0; i < 65536; ++i) all[i] = uint16_t(i);
  const test::FormatRef& ref = bf16 ? test::bf16_ref() : test::half_ref();
  const std::vector<float> probes = test::midpoint_probes(ref);
  std::mt19937_64 rng(bf16 ? 11 : 7);
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<uint16_t> b = all, c = all;
    std::shuffle(b.begin(), b.end(), rng);
    std::shuffle(c.begin(), c.end(), rng);
    for (uint32_t i = 0; i < 65536; ++i) {
      in.a.push_back(all[i]), in.b.push_back(b[i]), in.c.push_back(c[i]);
      // f: rounding probes of this format, random float patterns; g: random float patterns.
      const uint64_t k = pass * 65536 + i;
      in.f.push_back(k < probes.size() ? probes[k] : std::bit_cast<float>(test::random_bits32(k)));
      in.g.push_back(std::bit_cast<float>(test::random_bits32(k + (1u << 20))));
    }
  }
  const std::vector<uint16_t> s = specials(bf16);
  for (uint16_t x : s)
    for (uint16_t y : s)
      for (uint16_t z : s) {
        in.a.push_back(x), in.b.push_back(y), in.c.push_back(z);
        in.f.push_back(ref.value(x) == ref.value(x) ? float(ref.value(x)) : std::nanf(""));
        in.g.push_back(float(ref.value(y)));
      }
  return in;
}

// The expected output of every op for element i, from the independent implementation.
class Expected {
 public:
  explicit Expected(bool bf16) : bf16_(bf16), ref_(bf16 ? test::bf16_ref() : test::half_ref()) {}

  uint32_t operator()(int op, uint16_t a, uint16_t b, uint16_t c, float f, float g) const {
    using namespace test;
    switch (op) {
      case half_op_add:
      case half_op_op_add:
      case half_op_op_add_assign: return add(a, b);
      case half_op_sub:
      case half_op_op_sub:
      case half_op_op_sub_assign: return round(v(a) - v(b));
      case half_op_mul:
      case half_op_op_mul:
      case half_op_op_mul_assign: return round(v(a) * v(b));
      case half_op_fma: return fma(a, b, c);
      case half_op_neg:
      case half_op_op_neg: return nan(a) ? kNaN : a ^ 0x8000u;
      case half_op_abs: return nan(a) ? kNaN : a & 0x7fffu;
      case half_op_max: return max(a, b);
      case half_op_min: return min(a, b);
      // x = (a, b), y = (c, a), z = (b, c)
      case half_op_add2_lo:
      case half_op_op2_add_lo: return add(a, c);
      case half_op_add2_hi:
      case half_op_op2_add_hi: return add(b, a);
      case half_op_sub2_lo: return round(v(a) - v(c));
      case half_op_sub2_hi: return round(v(b) - v(a));
      case half_op_mul2_lo: return round(v(a) * v(c));
      case half_op_mul2_hi:
      case half_op_op2_mul_hi: return round(v(b) * v(a));
      case half_op_fma2_lo: return fma(a, c, b);
      case half_op_fma2_hi: return fma(b, a, c);
      case half_op_neg2_lo: return nan(a) ? kNaN : a ^ 0x8000u;
      case half_op_neg2_hi: return nan(b) ? kNaN : b ^ 0x8000u;
      case half_op_abs2_lo: return nan(a) ? kNaN : a & 0x7fffu;
      case half_op_abs2_hi: return nan(b) ? kNaN : b & 0x7fffu;
      case half_op_max2_lo: return max(a, c);
      case half_op_max2_hi: return max(b, a);
      case half_op_min2_lo: return min(a, c);
      case half_op_min2_hi: return min(b, a);
      case half_op_eq:
      case half_op_op_eq: return v(a) == v(b);
      case half_op_ne: return !nan(a) && !nan(b) && v(a) != v(b);
      case half_op_lt:
      case half_op_op_lt: return v(a) < v(b);
      case half_op_le:
      case half_op_op_le: return v(a) <= v(b);
      case half_op_gt:
      case half_op_op_gt: return v(a) > v(b);
      case half_op_ge:
      case half_op_op_ge: return v(a) >= v(b);
      case half_op_equ: return nan(a) || nan(b) || v(a) == v(b);
      case half_op_neu:
      case half_op_op_ne: return nan(a) || nan(b) || v(a) != v(b);
      case half_op_ltu: return nan(a) || nan(b) || v(a) < v(b);
      case half_op_leu: return nan(a) || nan(b) || v(a) <= v(b);
      case half_op_gtu: return nan(a) || nan(b) || v(a) > v(b);
      case half_op_geu: return nan(a) || nan(b) || v(a) >= v(b);
      case half_op_isnan: return nan(a);
      case half_op_isinf: return uint32_t(std::isinf(v(a)) ? (v(a) > 0 ? 1 : -1) : 0);
      case half_op_to_float:
      case half_op_implicit_float:
      case half_op_low2float:
      case half_op_pair_to_float2_x: return to_float_bits(a);
      case half_op_high2float:
      case half_op_pair_to_float2_y: return to_float_bits(b);
      case half_op_from_float:
      case half_op_from_float_rn:
      case half_op_ctor_float:
      case half_op_splat_float_lo:
      case half_op_splat_float_hi:
      case half_op_floats_lo:
      case half_op_float2_hi: return ref_.round(double(f), Round::nearest_even, kNaN);
      case half_op_from_float_rz: return ref_.round(double(f), Round::toward_zero, kNaN);
      case half_op_from_float_rd: return ref_.round(double(f), Round::down, kNaN);
      case half_op_from_float_ru: return ref_.round(double(f), Round::up, kNaN);
      case half_op_floats_hi:
      case half_op_float2_lo: return ref_.round(double(g), Round::nearest_even, kNaN);
      case half_op_low_half:
      case half_op_lows_lo:  // lows((a, b), (c, a)) = (a, c); highs(...) = (b, a)
      case half_op_as_ushort: return a;
      case half_op_lows_hi: return c;
      case half_op_high_half:
      case half_op_highs_lo:
      case half_op_from_ushort: return b;
      case half_op_halves_lo:
      case half_op_splat_hi:
      case half_op_from_short: return c;
      case half_op_halves_hi: return b;
      case half_op_highs_hi: return a;
      case half_op_as_short: return uint32_t(int32_t(int16_t(a)));
    }
    return 0xdeadbeef;
  }

 private:
  static constexpr uint32_t kNaN = 0x7fff;
  double v(uint16_t h) const { return ref_.value(h); }
  bool nan(uint16_t h) const { return ref_.is_nan(h); }
  uint32_t round(double x) const { return ref_.round(x, Round::nearest_even, kNaN); }
  // Exact in double for FP16; for BF16 the double sum is rounded once more, which is still exact
  // rounding because double carries more than 2 * 8 + 2 bits.
  uint32_t add(uint16_t a, uint16_t b) const { return round(v(a) + v(b)); }
  uint32_t fma(uint16_t a, uint16_t b, uint16_t c) const { return test::fma_ref(ref_, v(a), v(b), v(c), kNaN); }
  uint32_t max(uint16_t a, uint16_t b) const {
    if (nan(a) && nan(b)) return kNaN;
    if (nan(a)) return b;
    if (nan(b)) return a;
    if (v(a) != v(b)) return v(a) > v(b) ? a : b;
    return (a & 0x8000) ? b : a;  // +0 beats -0
  }
  uint32_t min(uint16_t a, uint16_t b) const {
    if (nan(a) && nan(b)) return kNaN;
    if (nan(a)) return b;
    if (nan(b)) return a;
    if (v(a) != v(b)) return v(a) < v(b) ? a : b;
    return (a & 0x8000) ? a : b;
  }
  uint32_t to_float_bits(uint16_t h) const {
    if (bf16_) return uint32_t(h) << 16;  // exact, NaN payload and sign kept
    return nan(h) ? 0x7fffffffu : std::bit_cast<uint32_t>(float(v(h)));
  }

  bool bf16_;
  const test::FormatRef& ref_;
};

std::string hex(uint32_t x) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%x", x);
  return buf;
}

std::vector<uint32_t> run(Device dev, bool bf16, const Inputs& in) {
  const auto a = DeviceArray<uint16_t>::upload(in.a, dev), b = DeviceArray<uint16_t>::upload(in.b, dev),
             c = DeviceArray<uint16_t>::upload(in.c, dev);
  const auto f = DeviceArray<float>::upload(in.f, dev), g = DeviceArray<float>::upload(in.g, dev);
  DeviceArray<uint32_t> out(size_t(test::half_op_count) * in.size(), dev);
  out.poison();
  test::half_test_ops_stub(test::kernel_exec(dev), bf16, a.data(), b.data(), c.data(), f.data(), g.data(),
                           int(in.size()), out.data());
  return out.download();
}

class HalfKernel : public ::testing::TestWithParam<Device> {
 protected:
  void check(bool bf16) {
    const Device dev = GetParam();
    const Inputs in = make_inputs(bf16);
    const std::vector<uint32_t> out = run(dev, bf16, in);
    const Expected want(bf16);
    const size_t n = in.size();
    for (int op = 0; op < test::half_op_count; ++op) {
      size_t bad = 0;
      std::string first;
      for (size_t i = 0; i < n; ++i) {
        const uint32_t w = want(op, in.a[i], in.b[i], in.c[i], in.f[i], in.g[i]);
        const uint32_t got = out[size_t(op) * n + i];
        if (got != w && bad++ < 4)
          first += " [a=" + hex(in.a[i]) + " b=" + hex(in.b[i]) + " c=" + hex(in.c[i]) +
                   " f=" + hex(std::bit_cast<uint32_t>(in.f[i])) + ": got " + hex(got) + " want " + hex(w) + "]";
      }
      EXPECT_EQ(bad, 0u) << (bf16 ? "bf16 " : "half ") << kOpNames[op] << ": " << bad << " of " << n
                         << " wrong:" << first;
    }
  }
};

TEST_P(HalfKernel, HalfOpsMatchIndependentImplementation) {
  FOVEA_SKIP_IF_NO_DEVICE(GetParam());
  check(false);
}

TEST_P(HalfKernel, Bf16OpsMatchIndependentImplementation) {
  FOVEA_SKIP_IF_NO_DEVICE(GetParam());
  check(true);
}

INSTANTIATE_TEST_SUITE_P(Devices, HalfKernel, test::KernelDevices(), test::DeviceName);

// NVIDIA's host code for the same operations, bit for bit (NaN results included), on the inputs above.
TEST(HalfKernelCudaHost, MatchesCudaHostImplementation) {
#if defined(FOVEA_HAVE_CUDA_FP16_HOST)
  using test::cuda_host::Op;
  struct Case {
    int op;
    Op cuda;
  };
  const Case cases[] = {
      {test::half_op_add, Op::add}, {test::half_op_sub, Op::sub},     {test::half_op_mul, Op::mul},
      {test::half_op_neg, Op::neg}, {test::half_op_abs, Op::abs},     {test::half_op_max, Op::max},
      {test::half_op_min, Op::min}, {test::half_op_eq, Op::eq},       {test::half_op_ne, Op::ne},
      {test::half_op_lt, Op::lt},   {test::half_op_le, Op::le},       {test::half_op_gt, Op::gt},
      {test::half_op_ge, Op::ge},   {test::half_op_equ, Op::equ},     {test::half_op_neu, Op::neu},
      {test::half_op_ltu, Op::ltu}, {test::half_op_leu, Op::leu},     {test::half_op_gtu, Op::gtu},
      {test::half_op_geu, Op::geu}, {test::half_op_isnan, Op::isnan}, {test::half_op_isinf, Op::isinf}};
  for (bool bf16 : {false, true}) {
    const Inputs in = make_inputs(bf16);
    const std::vector<uint32_t> out = run(kEmu, bf16, in);
    const size_t n = in.size();
    for (const Case& c : cases) {
      size_t bad = 0;
      std::string first;
      for (size_t i = 0; i < n; ++i) {
        const uint32_t want = uint32_t(test::cuda_host::apply(bf16, c.cuda, in.a[i], in.b[i]));
        const uint32_t got = out[size_t(c.op) * n + i];
        if (got != want && bad++ < 4) first += " [a=" + hex(in.a[i]) + " b=" + hex(in.b[i]) + ": " + hex(got) + "]";
      }
      EXPECT_EQ(bad, 0u) << (bf16 ? "bf16 " : "half ") << kOpNames[c.op] << " differs from CUDA's host code:" << first;
    }
  }
#else
  GTEST_SKIP() << "the CUDA toolkit's cuda_fp16.h was not found when this test was configured";
#endif
}

}  // namespace
}  // namespace fovea
