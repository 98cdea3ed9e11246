// core/float_formats.h: conversions between float and FP16, BF16, TF32 in every rounding mode, checked
//   - against an independent implementation (tests/float_formats_ref.h: each format's values listed and
//     searched) for all 65,536 bit patterns of each 16-bit type, every midpoint of each format and the
//     floats next to it, and a million random float bit patterns;
//   - against NVIDIA's host implementations in cuda_fp16.hpp / cuda_bf16.hpp, bit for bit (NaN included),
//     where the toolkit's headers are found;
//   - against PyTorch (round to nearest even; NaN-ness only, PyTorch picks other NaN bits) when
//     /usr/bin/python3 has torch.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "core/float_formats.h"
#include "tests/float_formats_ref.h"
#if defined(FOVEA_HAVE_CUDA_FP16_HOST)
#include "tests/cuda_fp16_host.h"
#endif

namespace fovea {
namespace {

using test::bf16_ref;
using test::half_ref;
using test::tf32_ref;

constexpr Round kCudaModes[] = {Round::nearest_even, Round::toward_zero, Round::down, Round::up};

const char* mode_name(Round r) {
  switch (r) {
    case Round::nearest_even: return "rn";
    case Round::toward_zero: return "rz";
    case Round::down: return "rd";
    case Round::up: return "ru";
    case Round::nearest_away: return "rna";
  }
  return "?";
}

std::string hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// Special floats: zeros, infinities, NaNs (quiet, signalling, payload only in low bits), extremes of float,
// FP16 and BF16, and their neighbours.
std::vector<float> special_floats() {
  std::vector<uint32_t> bits = {0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7f800001,
                                0x7fa00000, 0xff800001, 0x7fffffff, 0x00000001, 0x80000001, 0x007fffff, 0x00800000,
                                0x7f7fffff, 0xff7fffff, 0x477fe000, 0x477fefff, 0x477ff000, 0x477ff001, 0x47800000,
                                0x33000000, 0x33000001, 0x337fffff, 0x33800000, 0x387fc000, 0x38800000, 0x3f800000,
                                0x7f7f8000, 0x7f7f7fff, 0x7f7fc000, 0x00010000, 0x00008000, 0x00018000, 0x3f801000,
                                0x3f803000, 0x3f800fff};
  std::vector<float> out;
  for (uint32_t b : bits) out.push_back(std::bit_cast<float>(b));
  return out;
}

// Everything the conversion tests feed in: specials, random bit patterns, and the midpoint probes of `probes`.
std::vector<float> sample_floats(const test::FormatRef& probes) {
  std::vector<float> v = special_floats();
  for (uint64_t i = 0; i < (1u << 20); ++i) v.push_back(std::bit_cast<float>(test::random_bits32(i)));
  const std::vector<float> mids = test::midpoint_probes(probes);
  v.insert(v.end(), mids.begin(), mids.end());
  return v;
}

// Collects the first few mismatches of a check over many inputs, and counts the rest.
struct Mismatches {
  size_t count = 0;
  std::string first;
  void add(const std::string& what) {
    if (count++ < 8) first += "\n  " + what;
  }
  ::testing::AssertionResult result(const char* name) const {
    if (count == 0) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << name << ": " << count << " mismatches" << first;
  }
};

TEST(FloatFormats, HalfEveryBitPatternToFloatAndBack) {
  Mismatches m;
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = half_bits_to_float(uint16_t(h));
    const double want = half_ref().value(h);
    if (std::isnan(want)) {
      if (std::bit_cast<uint32_t>(f) != 0x7fffffffu) m.add("half " + hex(h) + " -> " + hex(std::bit_cast<uint32_t>(f)));
    } else if (double(f) != want || std::signbit(f) != std::signbit(want)) {
      m.add("half " + hex(h) + " -> " + std::to_string(f) + " want " + std::to_string(want));
    }
    for (Round r : kCudaModes) {
      const uint16_t back = float_to_half_bits(f, r);
      const uint16_t want_back = std::isnan(want) ? 0x7fff : uint16_t(h);
      if (back != want_back)
        m.add(std::string("half ") + hex(h) + " round trip " + mode_name(r) + " gives " + hex(back));
    }
  }
  EXPECT_TRUE(m.result("half -> float -> half"));
}

TEST(FloatFormats, Bf16EveryBitPatternToFloatAndBack) {
  Mismatches m;
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = bf16_bits_to_float(uint16_t(h));
    const double want = bf16_ref().value(h);
    if (std::bit_cast<uint32_t>(f) != h << 16) m.add("bf16 " + hex(h) + " -> " + hex(std::bit_cast<uint32_t>(f)));
    if (!std::isnan(want) && (double(f) != want || std::signbit(f) != std::signbit(want)))
      m.add("bf16 " + hex(h) + " -> " + std::to_string(f) + " want " + std::to_string(want));
    for (Round r : kCudaModes) {
      const uint16_t back = float_to_bf16_bits(f, r);
      const uint16_t want_back = std::isnan(want) ? 0x7fff : uint16_t(h);
      if (back != want_back)
        m.add(std::string("bf16 ") + hex(h) + " round trip " + mode_name(r) + " gives " + hex(back));
    }
  }
  EXPECT_TRUE(m.result("bf16 -> float -> bf16"));
}

TEST(FloatFormats, FloatToHalfMatchesIndependentRounding) {
  Mismatches m;
  size_t n = 0;
  for (float x : sample_floats(half_ref()))
    for (Round r : kCudaModes) {
      const uint32_t got = float_to_half_bits(x, r), want = half_ref().round(double(x), r, 0x7fff);
      ++n;
      if (got != want)
        m.add(std::string(mode_name(r)) + " " + hex(std::bit_cast<uint32_t>(x)) + " (" + std::to_string(x) + "): got " +
              hex(got) + " want " + hex(want));
    }
  EXPECT_GT(n, size_t(4) << 20);
  EXPECT_TRUE(m.result("float -> half"));
}

TEST(FloatFormats, FloatToBf16MatchesIndependentRounding) {
  Mismatches m;
  for (float x : sample_floats(bf16_ref()))
    for (Round r : kCudaModes) {
      const uint32_t got = float_to_bf16_bits(x, r), want = bf16_ref().round(double(x), r, 0x7fff);
      if (got != want)
        m.add(std::string(mode_name(r)) + " " + hex(std::bit_cast<uint32_t>(x)) + ": got " + hex(got) + " want " +
              hex(want));
    }
  EXPECT_TRUE(m.result("float -> bf16"));
}

// cvt.rna.tf32.f32: nearest, ties away from zero, on every finite float (the result keeps float's layout
// with the low 13 bits zero); infinities pass; NaNs lose their low 13 bits (ptxas 13's SASS for sm_80/sm_90).
TEST(FloatFormats, Tf32RoundsToNearestTiesAway) {
  Mismatches m;
  for (float x : sample_floats(tf32_ref())) {
    const uint32_t u = std::bit_cast<uint32_t>(x), got = float_to_tf32_bits(x);
    if (std::isnan(x) || std::isinf(x)) {
      if (got != (u & 0xffffe000u)) m.add("special " + hex(u) + " -> " + hex(got));
      continue;
    }
    // The reference encodes sign | exponent | 10 mantissa bits; TF32 in a register is that shifted by 13.
    const uint32_t want = tf32_ref().round(double(x), Round::nearest_away, 0) << 13;
    if (got != want) m.add(hex(u) + ": got " + hex(got) + " want " + hex(want));
    if (got != fp::encode<10, 8>(double(x), Round::nearest_away, 0) << 13) m.add(hex(u) + ": encode<10,8> differs");
  }
  EXPECT_TRUE(m.result("cvt.rna.tf32.f32"));
  EXPECT_EQ(float_to_tf32_bits(std::bit_cast<float>(0x3f801000u)), 0x3f802000u);  // tie: away from zero
  EXPECT_EQ(float_to_tf32_bits(std::bit_cast<float>(0xbf801000u)), 0xbf802000u);
  EXPECT_EQ(float_to_tf32_bits(std::bit_cast<float>(0x3f800fffu)), 0x3f800000u);
  EXPECT_EQ(float_to_tf32_bits(std::bit_cast<float>(0x7f7ff000u)), 0x7f800000u);  // overflows to infinity
  EXPECT_EQ(float_to_tf32_bits(std::bit_cast<float>(0x7f800001u)), 0x7f800000u);  // NaN payload below bit 13
  EXPECT_EQ(float_to_tf32_bits(std::bit_cast<float>(0xffc00001u)), 0xffc00000u);
  EXPECT_EQ(float_to_tf32_bits(std::bit_cast<float>(0x00001000u)), 0x00002000u);  // subnormal tie
  EXPECT_EQ(tf32_operand(0x3f801fffu), 1.0f);                                     // mma reads the top 19 bits
}

TEST(FloatFormats, DoubleAndIntegerToHalfAndBf16) {
  Mismatches m;
  for (int i = -70000; i <= 70000; ++i)
    for (Round r : kCudaModes) {
      if (double_to_half_bits(double(i), r) != half_ref().round(double(i), r, 0x7fff))
        m.add("half int " + std::to_string(i));
      if (double_to_bf16_bits(double(i), r) != bf16_ref().round(double(i), r, 0x7fff))
        m.add("bf16 int " + std::to_string(i));
    }
  for (uint64_t i = 0; i < 200000; ++i) {
    const uint64_t bits = (uint64_t(test::random_bits32(2 * i)) << 32) | test::random_bits32(2 * i + 1);
    // Exponents around the two formats' ranges, with all 52 mantissa bits.
    const double x = std::ldexp(std::bit_cast<double>((bits & 0x800fffffffffffffull) | 0x3ff0000000000000ull),
                                int(bits >> 52 & 0xff) - 160);
    for (Round r : kCudaModes) {
      if (double_to_half_bits(x, r) != half_ref().round(x, r, 0x7fff)) m.add("half double " + std::to_string(x));
      if (double_to_bf16_bits(x, r) != bf16_ref().round(x, r, 0x7fff)) m.add("bf16 double " + std::to_string(x));
    }
  }
  EXPECT_TRUE(m.result("double -> half/bf16"));
}

TEST(FloatFormats, PrecisionRounding) {
  const float x = 1.0f + 3.625f / 1024;  // between TF32/FP16 neighbours, nearer the upper; BF16 rounds it to 1
  EXPECT_EQ(round_operand(Precision::fp32, x), x);
  EXPECT_EQ(round_operand(Precision::tf32, x), 1.0f + 4.0f / 1024);
  EXPECT_EQ(round_operand(Precision::fp16, x), 1.0f + 4.0f / 1024);
  EXPECT_EQ(round_operand(Precision::bf16, x), 1.0f);
  EXPECT_EQ(round_output(Precision::tf32, x), x);  // TF32 ops write FP32
  EXPECT_EQ(round_output(Precision::bf16, x), 1.0f);
  EXPECT_TRUE(std::isinf(round_operand(Precision::fp16, 70000.0f)));
  EXPECT_EQ(precision_name(Precision::bf16), "bf16");
  EXPECT_EQ(Half::from_float(1.5f).bits, 0x3e00);
  EXPECT_EQ(BFloat16::from_float(-2.0f).bits, 0xc000);
  EXPECT_EQ(BFloat16{0x3f80}.to_float(), 1.0f);
}

#if defined(FOVEA_HAVE_CUDA_FP16_HOST)
TEST(FloatFormats, MatchesCudaHostImplementation) {
  Mismatches m;
  for (uint32_t h = 0; h < 65536; ++h) {
    if (std::bit_cast<uint32_t>(half_bits_to_float(uint16_t(h))) !=
        std::bit_cast<uint32_t>(test::cuda_host::half2float(uint16_t(h))))
      m.add("__half2float " + hex(h));
    if (std::bit_cast<uint32_t>(bf16_bits_to_float(uint16_t(h))) !=
        std::bit_cast<uint32_t>(test::cuda_host::bfloat162float(uint16_t(h))))
      m.add("__bfloat162float " + hex(h));
  }
  std::vector<float> xs = sample_floats(half_ref());
  const std::vector<float> bf = test::midpoint_probes(bf16_ref());
  xs.insert(xs.end(), bf.begin(), bf.end());
  for (float x : xs)
    for (Round r : kCudaModes) {
      if (float_to_half_bits(x, r) != test::cuda_host::float2half(x, r))
        m.add(std::string("__float2half_") + mode_name(r) + " " + hex(std::bit_cast<uint32_t>(x)));
      if (float_to_bf16_bits(x, r) != test::cuda_host::float2bfloat16(x, r))
        m.add(std::string("__float2bfloat16_") + mode_name(r) + " " + hex(std::bit_cast<uint32_t>(x)));
    }
  EXPECT_TRUE(m.result("CUDA host implementation"));
}
#else
TEST(FloatFormats, MatchesCudaHostImplementation) {
  GTEST_SKIP() << "the CUDA toolkit's cuda_fp16.h was not found when this test was configured";
}
#endif

// Runs tests/float_formats_torch.py on the sample; compares round-to-nearest conversions both ways.
TEST(FloatFormats, MatchesPyTorch) {
  const std::string python = "/usr/bin/python3";
  if (std::system((python + " -c 'import torch, numpy' > /dev/null 2>&1").c_str()) != 0)
    GTEST_SKIP() << python << " with torch and numpy is not installed (python3-torch): PyTorch check skipped";
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("fovea_float_formats_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::vector<float> xs = sample_floats(half_ref());
  const std::vector<float> bf = test::midpoint_probes(bf16_ref());
  xs.insert(xs.end(), bf.begin(), bf.end());
  {
    std::ofstream f(dir / "in.bin", std::ios::binary);
    f.write(reinterpret_cast<const char*>(xs.data()), std::streamsize(xs.size() * sizeof(float)));
  }
  const std::string cmd =
      python + " " + FOVEA_SOURCE_DIR "/tests/float_formats_torch.py " + (dir / "in.bin").string() + " " + dir.string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto read = [&](const char* name, size_t n, size_t elem) {
    std::vector<char> buf(n * elem);
    std::ifstream f(dir / name, std::ios::binary);
    f.read(buf.data(), std::streamsize(buf.size()));
    EXPECT_EQ(size_t(f.gcount()), buf.size()) << name;
    return buf;
  };
  const std::vector<char> f2h = read("f2h.bin", xs.size(), 2), f2bf = read("f2bf.bin", xs.size(), 2),
                          h2f = read("h2f.bin", 65536, 4), bf2f = read("bf2f.bin", 65536, 4);
  fs::remove_all(dir);
  auto u16 = [](const std::vector<char>& b, size_t i) {
    uint16_t v;
    std::memcpy(&v, b.data() + 2 * i, 2);
    return v;
  };
  auto f32 = [](const std::vector<char>& b, size_t i) {
    float v;
    std::memcpy(&v, b.data() + 4 * i, 4);
    return v;
  };
  Mismatches m;
  for (size_t i = 0; i < xs.size(); ++i) {
    const uint16_t h = float_to_half_bits(xs[i]), th = u16(f2h, i), b = float_to_bf16_bits(xs[i]), tb = u16(f2bf, i);
    const bool nan = std::isnan(xs[i]);
    if (nan ? !((th & 0x7fff) > 0x7c00) : h != th) m.add("float16 " + hex(std::bit_cast<uint32_t>(xs[i])));
    if (nan ? !((tb & 0x7fff) > 0x7f80) : b != tb) m.add("bfloat16 " + hex(std::bit_cast<uint32_t>(xs[i])));
  }
  for (uint32_t p = 0; p < 65536; ++p) {
    const float a = half_bits_to_float(uint16_t(p)), ta = f32(h2f, p);
    const float b = bf16_bits_to_float(uint16_t(p)), tb = f32(bf2f, p);
    if (std::isnan(a) ? !std::isnan(ta) : std::bit_cast<uint32_t>(a) != std::bit_cast<uint32_t>(ta))
      m.add("float16 pattern " + hex(p));
    if (std::isnan(b) ? !std::isnan(tb) : std::bit_cast<uint32_t>(b) != std::bit_cast<uint32_t>(tb))
      m.add("bfloat16 pattern " + hex(p));
  }
  EXPECT_TRUE(m.result("PyTorch"));
}

}  // namespace
}  // namespace fovea
