// Tensor-core GEMM kernels (kernels/tc_gemm.cu: simple; kernels/tc_gemm_multistage.cu: optimised) against the reference
// of their precision (fovea::ref::gemm, cpu_reference/gemm.h), on every kernel device, for all four transposition
// forms, edge sizes (1, odd, off the 32 x 32 tile, K = 0, K not a multiple of the slab), alpha/beta, padded leading
// dimensions, strided batches, and both staging paths (cp.async for aligned k-contiguous rows, element loads
// otherwise).
//   - Operands with few significant bits (multiples of 1/8 below 2): every product and sum is exact in FP32
//     whatever the order, so the kernel must equal the reference bitwise (rel L2 0 <= 1e-5) at every precision.
//   - Random operands: TF32 (FP32 output) within rel L2 1e-5 of the reference; BF16/FP16 outputs, which the
//     reference and the kernel round from FP32 sums taken in different orders, element by element within one
//     unit in the last place of the output plus the FP32 accumulation bound 2 gamma_K sum|a b| (an output
//     near a rounding boundary may round the other way; a rel L2 of 1e-5 is below one BF16 ulp).
//   - Against the FP32 reference within the bound derived in cpu_reference/gemm.h.
// Elements outside the product are never written; a second run and the element-load path give the same bits.
// The multistage kernel runs a subset of the shapes plus one that wraps its 3-stage pipeline, and must give the
// simple kernel's bits (the same mma k-steps in the same order); on the emulator also under every schedule order,
// with no bank conflicts on its ldmatrix and cp.async sites (memory metrics), and with a planted missing
// cp.async.wait_group or wrong fragment index detected.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/emu/emu.h"
#include "core/emu/profile.h"
#include "core/float_formats.h"
#include "cpu_reference/gemm.h"
#include "kernels/nhwc16.h"
#include "kernels/tc_gemm.h"
#include "layers/ops/context.h"
#include "layers/ops/conv2d.h"
#include "layers/ops/linear.h"
#include "tests/kernel_test_util.h"
#include "tests/tc_gemm_planted_kernels.h"
#include "tests/test_util.h"

namespace fovea {
namespace {

using test::DeviceArray;

constexpr float kPadding = -1536.0f;  // C outside the product (exact in every type): must survive

// The kernel a run uses: the two of the library, or the multistage one with a bug planted (BF16, emulator only).
enum class Algo { simple, multistage, planted_missing_wait, planted_wrong_fragment };

struct TcCase {
  Device dev;
  Precision prec;
  std::string name;
  int64_t M, N, K;
  float alpha, beta;
  int64_t pad = 0;    // extra elements per row of every operand
  int64_t batch = 1;  // batch entries, spaced by their size plus 8 elements
  Algo algo = Algo::simple;
};

std::vector<TcCase> shapes() {
  return {
      {kEmu, Precision::tf32, "1x1x1", 1, 1, 1, 1.0f, 0.0f},
      {kEmu, Precision::tf32, "7x5x3_alpha_beta", 7, 5, 3, 0.5f, -2.0f},
      {kEmu, Precision::tf32, "32x32x32", 32, 32, 32, 1.0f, 0.0f},
      {kEmu, Precision::tf32, "64x64x64", 64, 64, 64, 1.0f, 0.0f},
      {kEmu, Precision::tf32, "65x63x129_beta1", 65, 63, 129, 1.0f, 1.0f},
      {kEmu, Precision::tf32, "33x1x100", 33, 1, 100, 1.0f, 0.0f},
      {kEmu, Precision::tf32, "1x200x17", 1, 200, 17, 2.0f, 0.0f},
      {kEmu, Precision::tf32, "130x97x33_padded", 130, 97, 33, -1.5f, 0.25f, 3},
      {kEmu, Precision::tf32, "40x24x48_pad8", 40, 24, 48, 1.0f, 0.5f, 8},
      {kEmu, Precision::tf32, "k0_scales_c", 9, 6, 0, 1.0f, 0.5f},
      {kEmu, Precision::tf32, "k0_beta0_zeros", 9, 6, 0, 1.0f, 0.0f},
      {kEmu, Precision::tf32, "batch3_31x17x9", 31, 17, 9, 1.0f, 1.0f, 1, 3},
      {kEmu, Precision::tf32, "batch2_40x48x64", 40, 48, 64, 1.0f, 0.0f, 0, 2},
  };
}

// The multistage kernel's 128 x 128 tiles: edges, K off the k-tile, alpha/beta, batches, copies that zero-fill part
// of a chunk, and 4 (BF16/FP16) or 7 (TF32) k-tiles over 2 x 1 blocks, which wraps the 3-stage pipeline.
std::vector<TcCase> multistage_shapes() {
  std::vector<TcCase> v;
  for (const TcCase& c : shapes())
    for (const char* name :
         {"1x1x1", "7x5x3_alpha_beta", "65x63x129_beta1", "130x97x33_padded", "k0_scales_c", "batch2_40x48x64"})
      if (c.name == name) v.push_back(c);
  v.push_back({kEmu, Precision::tf32, "136x40x200_beta1", 136, 40, 200, 1.0f, 1.0f});
  // Rows of 80 elements (16-byte aligned at every precision) and K = 77: cp.async copies with a partial src-size.
  v.push_back({kEmu, Precision::tf32, "65x70x77_pad3_partial_copies", 65, 70, 77, 1.0f, -1.0f, 3});
  for (TcCase& c : v) c.algo = Algo::multistage;
  return v;
}

std::vector<TcCase> cases() {
  std::vector<TcCase> v;
  for (Device dev : {kEmu, kCUDA})
    for (Precision prec : {Precision::tf32, Precision::bf16, Precision::fp16})
      for (const std::vector<TcCase>& list : {shapes(), multistage_shapes()})
        for (TcCase c : list) {
          c.dev = dev, c.prec = prec;
          v.push_back(c);
        }
  return v;
}
std::string case_label(const TcCase& c) {
  return std::string(c.dev.type == DeviceType::emu ? "emu_" : "cuda_") +
         (c.algo == Algo::multistage ? "multistage_" : "") + std::string(precision_name(c.prec)) + "_" + c.name;
}
void PrintTo(const TcCase& c, std::ostream* os) {
  *os << case_label(c);
}

SgemmParams params_for(const TcCase& c, Trans ta, Trans tb) {
  SgemmParams g = sgemm_params(ta, tb, c.M, c.N, c.K, c.alpha, c.beta);
  g.lda += c.pad, g.ldb += c.pad, g.ldc += c.pad;
  g.batch = c.batch;
  g.stride_a = g.a_rows() * g.lda + 8, g.stride_b = g.b_rows() * g.ldb + 8, g.stride_c = g.M * g.ldc + 8;
  return g;
}

// Operands as floats holding values of the operand type (16-bit types: exactly; TF32 tensors are FP32 and are
// rounded by the kernel). C: values of the output type inside the product (NaN when beta == 0: must not be
// read), kPadding outside.
struct Operands {
  std::vector<float> A, B, C;
  Operands(const SgemmParams& g, Precision prec, bool exact, uint64_t seed) {
    auto values = [&](size_t n, uint64_t s) {
      std::vector<float> v = exact ? test::random_integers(n, s, -15, 15) : test::random_vector(n, s);
      for (float& x : v) x = exact ? x / 8 : round_output(prec, x);  // 16-bit: a value of the type
      return v;
    };
    A = values(size_t(std::max<int64_t>(g.a_extent(), 1)), seed);
    B = values(size_t(std::max<int64_t>(g.b_extent(), 1)), seed + 1);
    const std::vector<float> c = values(size_t(std::max<int64_t>(g.c_extent(), 1)), seed + 2);
    C.assign(c.size(), kPadding);
    for (int64_t b = 0; b < g.batch; ++b)
      for (int64_t m = 0; m < g.M; ++m)
        for (int64_t n = 0; n < g.N; ++n) {
          const int64_t i = b * g.stride_c + m * g.ldc + n;
          C[i] = g.beta == 0.0f ? std::nanf("") : c[i];
        }
  }
};

// The reference of the precision, batch entry by batch entry.
std::vector<float> reference(const SgemmParams& g, Precision prec, const Operands& o) {
  std::vector<float> C = o.C;
  for (int64_t b = 0; b < g.batch; ++b)
    ref::gemm(prec, g.trans_a == Trans::T, g.trans_b == Trans::T, g.M, g.N, g.K, g.alpha, o.A.data() + b * g.stride_a,
              g.lda, o.B.data() + b * g.stride_b, g.ldb, g.beta, C.data() + b * g.stride_c, g.ldc);
  return C;
}

// Runs the kernel of `prec` on dev with every operand `offset` elements past a 16-byte boundary (1: the
// element-load path), and returns C as floats.
std::vector<float> run(Device dev, Precision prec, const SgemmParams& g, const Operands& o, size_t offset,
                       Algo algo = Algo::simple) {
  const bool ms = algo == Algo::multistage;
  auto put = [&](const std::vector<float>& h, auto tag) {
    using T = decltype(tag);
    std::vector<T> v(h.size() + offset);
    for (size_t i = 0; i < h.size(); ++i) {
      if constexpr (std::is_same_v<T, float>)
        v[i + offset] = h[i];
      else
        v[i + offset] = T{prec == Precision::bf16 ? float_to_bf16_bits(h[i]) : float_to_half_bits(h[i])};
    }
    DeviceArray<T> d(v.size(), dev);
    d.poison();
    copy_bytes(d.data() + offset, dev, v.data() + offset, kCPU, h.size() * sizeof(T));
    return d;
  };
  auto back = [&](const auto& d) {
    const auto v = d.download();
    std::vector<float> out(v.size() - offset);
    for (size_t i = 0; i < out.size(); ++i) {
      if constexpr (std::is_same_v<std::decay_t<decltype(v[0])>, float>)
        out[i] = v[i + offset];
      else
        out[i] =
            prec == Precision::bf16 ? bf16_bits_to_float(v[i + offset].bits) : half_bits_to_float(v[i + offset].bits);
    }
    return out;
  };
  if (prec == Precision::tf32) {
    auto A = put(o.A, float{}), B = put(o.B, float{}), C = put(o.C, float{});
    (ms ? ops::tc_gemm_multistage_tf32_stub : ops::tc_gemm_tf32_stub)(test::kernel_exec(dev), g, A.data() + offset,
                                                                      B.data() + offset, C.data() + offset);
    return back(C);
  }
  if (prec == Precision::bf16) {
    auto A = put(o.A, BFloat16{}), B = put(o.B, BFloat16{}), C = put(o.C, BFloat16{});
    if (algo == Algo::planted_missing_wait || algo == Algo::planted_wrong_fragment) {
      test::tc_gemm_planted_stub(
          test::kernel_exec(dev),
          algo == Algo::planted_missing_wait ? test::TcGemmPlant::missing_wait : test::TcGemmPlant::wrong_fragment, g,
          A.data() + offset, B.data() + offset, C.data() + offset);
      return back(C);
    }
    (ms ? ops::tc_gemm_multistage_bf16_stub : ops::tc_gemm_bf16_stub)(test::kernel_exec(dev), g, A.data() + offset,
                                                                      B.data() + offset, C.data() + offset);
    return back(C);
  }
  auto A = put(o.A, Half{}), B = put(o.B, Half{}), C = put(o.C, Half{});
  (ms ? ops::tc_gemm_multistage_fp16_stub : ops::tc_gemm_fp16_stub)(test::kernel_exec(dev), g, A.data() + offset,
                                                                    B.data() + offset, C.data() + offset);
  return back(C);
}

// Splits C into the product's elements (checked written) and the rest (checked untouched).
::testing::AssertionResult inside(const SgemmParams& g, const std::vector<float>& got, const std::vector<float>& want,
                                  std::vector<float>& in_got, std::vector<float>& in_want, std::vector<size_t>& index,
                                  const std::string& what) {
  for (size_t i = 0; i < got.size(); ++i) {
    if (want[i] == kPadding && !std::isnan(want[i])) {
      if (got[i] != kPadding)
        return ::testing::AssertionFailure() << what << ": element " << i << " outside the product was written";
      continue;
    }
    in_got.push_back(got[i]), in_want.push_back(want[i]), index.push_back(i);
  }
  if (g.M * g.N * g.batch != int64_t(in_got.size()))
    return ::testing::AssertionFailure() << what << ": product has " << in_got.size() << " elements";
  return test::all_written(in_got, what.c_str());
}

// The operands of output element i as stored (batch entry, row, column) for sum |a b|.
double abs_products(const SgemmParams& g, const Operands& o, Precision prec, size_t i) {
  const int64_t b = int64_t(i) / g.stride_c, r = int64_t(i) % g.stride_c, m = r / g.ldc, n = r % g.ldc;
  double s = 0;
  for (int64_t k = 0; k < g.K; ++k) {
    const float a = g.trans_a == Trans::N ? o.A[b * g.stride_a + m * g.lda + k] : o.A[b * g.stride_a + k * g.lda + m];
    const float bb = g.trans_b == Trans::N ? o.B[b * g.stride_b + k * g.ldb + n] : o.B[b * g.stride_b + n * g.ldb + k];
    s += std::fabs(double(round_operand(prec, a)) * double(round_operand(prec, bb)));
  }
  return s;
}

const char* tname(Trans t) {
  return t == Trans::N ? "N" : "T";
}

class TcGemmKernel : public ::testing::TestWithParam<TcCase> {};

TEST_P(TcGemmKernel, ExactOperandsEqualTheReferenceBitwise) {
  const TcCase& c = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(c.dev);
  for (Trans ta : {Trans::N, Trans::T})
    for (Trans tb : {Trans::N, Trans::T}) {
      const SgemmParams g = params_for(c, ta, tb);
      const Operands o(g, c.prec, true, 17);
      const std::vector<float> want = reference(g, c.prec, o);
      const std::string form = std::string(tname(ta)) + tname(tb);
      for (size_t offset : {size_t(0), size_t(1)}) {
        const std::vector<float> got = run(c.dev, c.prec, g, o, offset, c.algo);
        std::vector<float> in_got, in_want;
        std::vector<size_t> index;
        const std::string what = form + (offset ? " element loads" : "");
        ASSERT_TRUE(inside(g, got, want, in_got, in_want, index, what));
        EXPECT_TRUE(test::close_l2(in_got, in_want, 1e-5, what));
        EXPECT_EQ(0, std::memcmp(in_got.data(), in_want.data(), in_got.size() * sizeof(float)))
            << what << ": not bitwise";
      }
    }
}

TEST_P(TcGemmKernel, RandomOperandsMatchTheReference) {
  const TcCase& c = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(c.dev);
  for (Trans ta : {Trans::N, Trans::T})
    for (Trans tb : {Trans::N, Trans::T}) {
      const SgemmParams g = params_for(c, ta, tb);
      const Operands o(g, c.prec, false, 29);
      const std::vector<float> want = reference(g, c.prec, o);
      const std::string form = std::string(tname(ta)) + tname(tb);
      const std::vector<float> got = run(c.dev, c.prec, g, o, 0, c.algo);
      std::vector<float> in_got, in_want;
      std::vector<size_t> index;
      ASSERT_TRUE(inside(g, got, want, in_got, in_want, index, form));
      if (c.prec == Precision::tf32) {
        EXPECT_TRUE(test::close_l2(in_got, in_want, 1e-5, form));
      } else {
        const double uo = c.prec == Precision::bf16 ? 0x1p-8 : 0x1p-11, u = 0x1p-24;
        int bad = 0;
        for (size_t e = 0; e < in_got.size(); ++e) {
          const double S = abs_products(g, o, c.prec, index[e]), w = in_want[e];
          const double acc = 2 * double(g.K) * u / (1 - double(g.K) * u) * std::fabs(g.alpha) * S;
          // alpha * sum + beta * c in FP32 (two roundings of terms below |alpha| S + |beta c| <= 2 |alpha| S + |w|),
          // then the output rounding: one unit in the last place, 2 uo |.|.
          const double pre = acc + 4 * u * (2 * std::fabs(g.alpha) * S + std::fabs(w));
          const double tol = pre + 2 * uo * (std::fabs(w) + pre);
          if (!(std::fabs(double(in_got[e]) - w) <= tol) && bad++ < 5)
            ADD_FAILURE() << form << " element " << index[e] << ": got " << in_got[e] << " want " << w << " (tol "
                          << tol << ")";
        }
        EXPECT_EQ(bad, 0) << form;
      }
      // Deterministic: the same bits again, and through the element-load path.
      EXPECT_EQ(got, run(c.dev, c.prec, g, o, 0, c.algo)) << form << ": a second run differs";
      const std::vector<float> scalar = run(c.dev, c.prec, g, o, 1, c.algo);
      EXPECT_EQ(0, std::memcmp(got.data(), scalar.data(), got.size() * sizeof(float))) << form << ": paths differ";
      if (c.algo == Algo::multistage) {
        const std::vector<float> simple = run(c.dev, c.prec, g, o, 0, Algo::simple);
        EXPECT_EQ(0, std::memcmp(got.data(), simple.data(), got.size() * sizeof(float)))
            << form << ": the multistage kernel differs from the simple one";
      }
    }
}

// alpha = 1, beta = 0: within cpu_reference/gemm.h's bound of the FP32 GEMM on the unrounded operands.
TEST_P(TcGemmKernel, WithinDerivedBoundOfFp32) {
  TcCase c = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(c.dev);
  c.alpha = 1.0f, c.beta = 0.0f;
  const SgemmParams g = params_for(c, Trans::N, Trans::T);
  Operands o(g, Precision::fp32, false, 41);  // FP32 values: the 16-bit kernels get them rounded to their type
  const std::vector<float> got = run(c.dev, c.prec, g, o, 0, c.algo), want = reference(g, Precision::fp32, o);
  const double up = c.prec == Precision::bf16 ? 0x1p-8 : 0x1p-11, uo = c.prec == Precision::tf32 ? 0.0 : up;
  const double gamma = double(g.K) * 0x1p-24 / (1 - double(g.K) * 0x1p-24);
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i]) || want[i] == kPadding) continue;
    const double S = abs_products(g, o, Precision::fp32, i);
    const double bound = ((2 * up + up * up) + 2 * gamma * (1 + up) * (1 + up)) * S +
                         uo * std::fabs(got[i]) / (1 - uo) + 0x1p-24 * std::fabs(want[i]);
    if (!(std::fabs(double(got[i]) - double(want[i])) <= bound) && bad++ < 5)
      ADD_FAILURE() << "element " << i << ": got " << got[i] << " fp32 " << want[i] << " bound " << bound;
  }
  EXPECT_EQ(bad, 0);
}

INSTANTIATE_TEST_SUITE_P(Devices, TcGemmKernel, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<TcCase>& info) { return case_label(info.param); });

class TcGemmDevice : public ::testing::TestWithParam<Device> {};

TEST_P(TcGemmDevice, BadArgumentsFailClearly) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  DeviceArray<float> f(64, dev);
  DeviceArray<BFloat16> h(64, dev);
  SgemmParams g = sgemm_params(Trans::N, Trans::N, 4, 4, 4);
  SgemmParams bad = g;
  bad.lda = 3;
  EXPECT_TRUE(
      test::throws_error([&] { ops::tc_gemm_tf32_stub(test::kernel_exec(dev), bad, f.data(), f.data(), f.data()); },
                         {"tc_gemm_simple_tf32", "lda"}));
  EXPECT_TRUE(
      test::throws_error([&] { ops::tc_gemm_bf16_stub(test::kernel_exec(dev), g, h.data(), h.data(), nullptr); },
                         {"tc_gemm_simple_bf16", "argument 'C' is null"}));
  EXPECT_TRUE(
      test::throws_error([&] { ops::tc_gemm_bf16_stub(test::kernel_exec(dev), g, nullptr, h.data(), h.data()); },
                         {"tc_gemm_simple_bf16", "argument 'A' is null"}));
  EXPECT_TRUE(
      test::throws_error([&] { ops::tc_gemm_tf32_stub(test::kernel_exec(dev), g, f.data(), nullptr, f.data()); },
                         {"tc_gemm_simple_tf32", "argument 'B' is null"}));
  bad = g, bad.batch = 70000, bad.stride_c = 16;
  EXPECT_TRUE(
      test::throws_error([&] { ops::tc_gemm_tf32_stub(test::kernel_exec(dev), bad, f.data(), f.data(), f.data()); },
                         {"tc_gemm_simple_tf32", "batch"}));
  bad = g, bad.ldc = 2;
  EXPECT_TRUE(test::throws_error(
      [&] { ops::tc_gemm_multistage_tf32_stub(test::kernel_exec(dev), bad, f.data(), f.data(), f.data()); },
      {"tc_gemm_multistage_tf32", "ldc"}));
  EXPECT_TRUE(test::throws_error(
      [&] { ops::tc_gemm_multistage_bf16_stub(test::kernel_exec(dev), g, h.data(), nullptr, h.data()); },
      {"tc_gemm_multistage_bf16", "argument 'B' is null"}));
}

INSTANTIATE_TEST_SUITE_P(Devices, TcGemmDevice, test::KernelDevices(), test::DeviceName);

// ---------------------------------------------------------------- the multistage kernel, on the emulator

// Elements of the product in C (batch 1).
std::vector<float> product(const SgemmParams& g, const std::vector<float>& C) {
  std::vector<float> v;
  for (int64_t m = 0; m < g.M; ++m)
    for (int64_t n = 0; n < g.N; ++n) v.push_back(C[size_t(m * g.ldc + n)]);
  return v;
}

// Bitwise the same in every schedule order, with both operands by cp.async (A N) and A by element loads (A T). (CI
// also runs every test under reverse and shuffle:1; this compares the bits across orders in one process.)
TEST(TcGemmMultistage, SameBitsInEveryScheduleOrder) {
  const Precision prec = Precision::bf16;
  for (Trans ta : {Trans::N, Trans::T}) {
    const SgemmParams g = sgemm_params(ta, Trans::T, 136, 40, 200, 0.5f, 0.25f);
    const Operands o(g, prec, false, 53);
    std::vector<float> forward;
    {
      emu::ScopedSchedule order(emu::Schedule::parse("forward"));
      forward = run(kEmu, prec, g, o, 0, Algo::multistage);
    }
    ASSERT_TRUE(test::all_written(product(g, forward)));
    for (const char* name : {"reverse", "shuffle:2"}) {
      emu::ScopedSchedule order(emu::Schedule::parse(name));
      const std::vector<float> got = run(kEmu, prec, g, o, 0, Algo::multistage);
      EXPECT_EQ(0, std::memcmp(got.data(), forward.data(), got.size() * sizeof(float)))
          << "A " << tname(ta) << ": " << name << " differs from forward";
    }
  }
}

// A missing cp.async.wait_group reads the emulator's poison (NaN); a swapped fragment register multiplies the wrong
// elements. Exact operands: the correct kernel equals the reference bitwise, the planted ones must not come close.
TEST(TcGemmMultistage, PlantedBugsAreDetected) {
  const SgemmParams g = sgemm_params(Trans::N, Trans::T, 64, 48, 200);  // cp.async on both operands, 4 k-tiles
  const Operands o(g, Precision::bf16, true, 61);
  const std::vector<float> want = product(g, reference(g, Precision::bf16, o));
  const std::vector<float> good = product(g, run(kEmu, Precision::bf16, g, o, 0, Algo::multistage));
  ASSERT_EQ(0, std::memcmp(good.data(), want.data(), want.size() * sizeof(float))) << "the unplanted kernel";
  for (Algo bug : {Algo::planted_missing_wait, Algo::planted_wrong_fragment}) {
    const char* what = bug == Algo::planted_missing_wait ? "missing cp.async.wait_group" : "wrong fragment index";
    const std::vector<float> got = product(g, run(kEmu, Precision::bf16, g, o, 0, bug));
    EXPECT_FALSE(test::close_l2(got, want, 1e-2, what)) << what << " was not detected";
    size_t wrong = 0;
    for (size_t i = 0; i < got.size(); ++i) wrong += !(got[i] == want[i]);
    EXPECT_GT(wrong, got.size() / 2) << what << ": only " << wrong << " of " << got.size() << " elements wrong";
  }
}

// The header's claims, on the emulator's memory metrics (the checked build sees ldmatrix and cp.async through
// kernels/mma.cuh): every ldmatrix and cp.async shared access one wavefront per 8 lanes (no bank conflict), every
// cp.async source fully used sectors (16 per 32 lanes), and per k-tile 128 ldmatrix.x4 and 2 x 1024 16-byte copies.
TEST(TcGemmMultistage, FreeOfBankConflictsWithTheCountsOfItsCostModel) {
  if (!emu::instrumented_build_available())
    GTEST_SKIP() << "needs the checked (instrumented) build of the kernels, which -DFOVEA_SANITIZE=ON and "
                    "-DFOVEA_EMU_CHECKED=OFF builds do not make";
  for (Precision prec : {Precision::tf32, Precision::bf16}) {
    const SgemmParams g = sgemm_params(Trans::N, Trans::T, 128, 128, 128);
    const Operands o(g, prec, false, 67);
    const uint64_t tiles = prec == Precision::tf32 ? 4 : 2;  // k-tiles of 128 bytes
    emu::profile_start();
    try {
      run(kEmu, prec, g, o, 0, Algo::multistage);
    } catch (...) {
      emu::profile_stop();
      throw;
    }
    const std::vector<emu::KernelMetrics> all = emu::profile_stop();
    const emu::KernelMetrics* k = nullptr;
    for (const emu::KernelMetrics& m : all)
      if (m.name.find("tc_gemm_multistage_kernel") != std::string::npos) k = &m;
    ASSERT_NE(k, nullptr) << "the multistage kernel was not profiled";
    uint64_t ldmatrix = 0, copies_shared = 0, copies_global = 0;
    for (const emu::SiteMetrics& s : k->sites) {
      if (s.location.find("kernels/mma.cuh") == std::string::npos) continue;
      const std::string what = s.location + " " + emu::space_name(s.space) + " " + emu::op_name(s.op);
      EXPECT_EQ(s.bytes_per_lane, 16u) << what;
      if (s.space == emu::Space::shared) {
        EXPECT_EQ(s.wavefronts * 8, s.lanes)
            << what << ": bank conflicts (" << s.per_request(s.wavefronts) << " wavefronts per request)";
        (s.op == emu::AccessOp::load ? ldmatrix : copies_shared) += s.requests;
      } else {
        EXPECT_EQ(s.sectors * 2, s.lanes) << what << ": " << s.per_request(s.sectors) << " sectors per request";
        copies_global += s.requests;
      }
    }
    EXPECT_EQ(ldmatrix, tiles * 128) << precision_name(prec) << ": ldmatrix.x4 per k-tile";
    EXPECT_EQ(copies_shared, tiles * 2 * 1024 / 32) << precision_name(prec) << ": cp.async per k-tile";
    EXPECT_EQ(copies_global, copies_shared) << precision_name(prec);
  }
}

// ------------------------------------------------------------------ the ops at a reduced precision
// linear and conv2d with Context::precision (kernels/linear_tc.cu, kernels/conv2d_tc_im2col.cu) against the CPU
// reference of the same precision, forward and both gradients. Operands are +-(k/8 + d), k in 8..15: rounding to the
// precision's input format removes d and leaves multiples of 1/8 in [1, 2), whose products and sums are exact in
// FP32 in any order, so the results must be bitwise the reference's. d is 2^-12 (below half a TF32/FP16 unit in
// [1, 2)) and, for BF16, 2^-9: below half a BF16 unit but a TF32 value, so a BF16 path that left its operands to
// the TF32 GEMM's own rounding would keep it and differ. (FP16 and TF32 differ only outside FP16's normal range.)

std::vector<float> precision_operands(int64_t n, uint64_t seed, Precision prec) {
  std::mt19937_64 rng(seed);
  const float d = prec == Precision::bf16 ? 0x1p-9f : 0x1p-12f;
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) {
    const int k = int(rng() % 8) + 8;  // 8..15
    x = (rng() & 1 ? -1.0f : 1.0f) * (float(k) / 8.0f + d);
  }
  return v;
}

// Runs `f` (ctx, inputs on ctx's device) -> outputs on cpu and on dev at prec; every output bitwise equal.
template <class F>
void expect_same_as_reference(Device dev, Precision prec, const std::vector<Tensor>& inputs, F f,
                              const std::string& what) {
  auto on = [&](Device d) {
    ops::Context ctx(d);
    ctx.precision = prec;
    std::vector<Tensor> in;
    for (const Tensor& t : inputs) in.push_back(t.defined() ? t.to(d) : t);
    std::vector<std::vector<float>> out;
    for (const Tensor& t : f(ctx, in)) out.push_back(t.to(kCPU).to_vector<float>());
    return out;
  };
  const auto want = on(kCPU), got = on(dev);
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const std::string name = what + " " + std::string(precision_name(prec)) + " output " + std::to_string(i);
    ASSERT_TRUE(test::all_written(got[i], name.c_str()));
    EXPECT_TRUE(test::close_l2(got[i], want[i], 1e-5, name));
    EXPECT_EQ(0, std::memcmp(got[i].data(), want[i].data(), got[i].size() * sizeof(float))) << name << ": not bitwise";
  }
}

class PrecisionOps : public ::testing::TestWithParam<Device> {};

TEST_P(PrecisionOps, LinearEqualsTheReferenceOfItsPrecision) {
  FOVEA_SKIP_IF_NO_DEVICE(GetParam());
  struct Shape3 {
    int64_t N, I, O;
  };
  for (Precision prec : {Precision::tf32, Precision::bf16, Precision::fp16})
    for (const Shape3 s : {Shape3{1, 1, 1}, Shape3{3, 7, 5}, Shape3{33, 65, 17}}) {
      auto operand = [prec](const Shape& shape, uint64_t seed) {
        return Tensor::from_vector(precision_operands(shape.numel(), seed, prec), shape);
      };
      const Tensor x = operand({s.N, s.I}, 1), w = operand({s.O, s.I}, 2), b = operand({s.O}, 3),
                   dy = operand({s.N, s.O}, 4);
      const std::string what =
          "linear N=" + std::to_string(s.N) + " I=" + std::to_string(s.I) + " O=" + std::to_string(s.O);
      expect_same_as_reference(
          GetParam(), prec, {x, w, b, dy},
          [](ops::Context& ctx, const std::vector<Tensor>& t) {
            return std::vector<Tensor>{
                ops::linear_forward(ctx, t[0], t[1], t[2]), ops::linear_forward(ctx, t[0], t[1], Tensor()),
                ops::linear_backward_data(ctx, t[3], t[1]), ops::linear_backward_weight(ctx, t[0], t[3])};
          },
          what);
    }
}

TEST_P(PrecisionOps, Conv2dEqualsTheReferenceOfItsPrecision) {
  FOVEA_SKIP_IF_NO_DEVICE(GetParam());
  struct Case {
    Shape x, w;
    ops::Conv2dAttrs a;
  };
  ops::Conv2dAttrs strided;
  strided.stride_h = 2, strided.stride_w = 1, strided.pad_h = 1, strided.pad_w = 2;
  ops::Conv2dAttrs dilated_groups;
  dilated_groups.dil_h = dilated_groups.dil_w = 2, dilated_groups.pad_h = dilated_groups.pad_w = 1;
  dilated_groups.groups = 2;
  const std::vector<Case> cases = {{{1, 1, 3, 3}, {1, 1, 1, 1}, {}},
                                   {{2, 3, 7, 5}, {5, 3, 3, 3}, strided},
                                   {{2, 4, 6, 7}, {6, 2, 3, 2}, dilated_groups}};
  for (Precision prec : {Precision::tf32, Precision::bf16, Precision::fp16})
    for (const Case& c : cases) {
      const Conv2dParams p = ops::conv2d_params(c.x, c.w, c.a);
      auto operand = [prec](const Shape& shape, uint64_t seed) {
        return Tensor::from_vector(precision_operands(shape.numel(), seed, prec), shape);
      };
      const Tensor x = operand(c.x, 5), w = operand(c.w, 6), b = operand({c.w[0]}, 7),
                   dy = operand({p.N, p.K, p.P(), p.Q()}, 8);
      expect_same_as_reference(
          GetParam(), prec, {x, w, b, dy},
          [&c](ops::Context& ctx, const std::vector<Tensor>& t) {
            return std::vector<Tensor>{ops::conv2d_forward(ctx, t[0], t[1], t[2], c.a),
                                       ops::conv2d_backward_data(ctx, t[3], t[1], c.x, c.a),
                                       ops::conv2d_backward_filter(ctx, t[0], t[3], c.w, c.a)};
          },
          "conv2d " + p.str());
    }
}

INSTANTIATE_TEST_SUITE_P(Devices, PrecisionOps, test::KernelDevices(), test::DeviceName);

// kernels/nhwc16.h: FP32 NCHW -> 16-bit NHWC narrows every element to nearest even (bits equal the host conversion's,
// including values that round up, ties, overflow to infinity and NaN), NHWC -> NCHW widens exactly, and the bias
// broadcast rounds b[c] into every row; every output element written; odd sizes; bad precision named.
class Nhwc16 : public ::testing::TestWithParam<Device> {};

TEST_P(Nhwc16, ConversionsMatchTheHostBitForBit) {
  FOVEA_SKIP_IF_NO_DEVICE(GetParam());
  const Device dev = GetParam();
  const Exec ex = test::kernel_exec(dev);
  struct Dims {
    int64_t n, c, hw;
  };
  for (Precision prec : {Precision::bf16, Precision::fp16})
    for (const Dims d : {Dims{1, 1, 1}, Dims{2, 3, 5}, Dims{3, 17, 9}, Dims{1, 8, 1}}) {
      const int64_t total = d.n * d.c * d.hw;
      std::vector<float> x = test::random_vector(size_t(total), uint64_t(total) + 3, -70000.0f, 70000.0f);
      if (total > 4) {  // special values: a tie, infinity, NaN, a subnormal of fp16
        x[0] = 1.0f + 0x1p-8f, x[1] = INFINITY, x[2] = NAN, x[3] = 3e-6f;
      }
      const auto narrow = [prec](float v) {
        return prec == Precision::bf16 ? float_to_bf16_bits(v) : float_to_half_bits(v);
      };
      const auto widen = [prec](uint16_t b) {
        return prec == Precision::bf16 ? bf16_bits_to_float(b) : half_bits_to_float(b);
      };
      const std::string at = std::string(precision_name(prec)) + " n=" + std::to_string(d.n) +
                             " c=" + std::to_string(d.c) + " hw=" + std::to_string(d.hw);
      auto xd = test::DeviceArray<float>::upload(x, dev);
      test::DeviceArray<uint16_t> yd(size_t(total), dev);
      yd.poison();
      ops::nchw_to_nhwc16_stub(ex, prec, d.n, d.c, d.hw, xd.data(), yd.data());
      const std::vector<uint16_t> y = yd.download();
      int bad = 0;
      for (int64_t img = 0; img < d.n; ++img)
        for (int64_t ch = 0; ch < d.c; ++ch)
          for (int64_t i = 0; i < d.hw; ++i) {
            const uint16_t want = narrow(x[size_t((img * d.c + ch) * d.hw + i)]);
            const uint16_t got = y[size_t((img * d.hw + i) * d.c + ch)];
            const bool both_nan = std::isnan(widen(want)) && std::isnan(widen(got));
            if (got != want && !both_nan && bad++ < 3)
              ADD_FAILURE() << at << " narrow n=" << img << " c=" << ch << " i=" << i << ": " << got << " != " << want;
          }
      // Back to NCHW: exactly the widened bits, in place.
      test::DeviceArray<float> back(size_t(total), dev);
      back.poison();
      ops::nhwc16_to_nchw_stub(ex, prec, d.n, d.c, d.hw, yd.data(), back.data());
      const std::vector<float> b = back.download();
      for (size_t i = 0; i < b.size(); ++i) {
        const float want = widen(narrow(x[i]));
        if (!(b[i] == want || (std::isnan(b[i]) && std::isnan(want))) && bad++ < 3)
          ADD_FAILURE() << at << " widen element " << i << ": " << b[i] << " != " << want;
      }
      // Bias rows: [n*hw, c] rows of round(b).
      const std::vector<float> bias = test::random_vector(size_t(d.c), 9);
      auto bd = test::DeviceArray<float>::upload(bias, dev);
      test::DeviceArray<uint16_t> rows(size_t(total), dev);
      rows.poison();
      ops::broadcast_rows16_stub(ex, prec, d.n * d.hw, d.c, bd.data(), rows.data());
      const std::vector<uint16_t> r = rows.download();
      for (size_t i = 0; i < r.size(); ++i)
        if (r[i] != narrow(bias[i % size_t(d.c)]) && bad++ < 3) ADD_FAILURE() << at << " bias row element " << i;
      EXPECT_EQ(bad, 0) << at;
    }
  EXPECT_TRUE(test::throws_error([&] { ops::nchw_to_nhwc16_stub(ex, Precision::tf32, 1, 1, 1, nullptr, nullptr); },
                                 {"nchw_to_nhwc16", "tf32"}));
  EXPECT_TRUE(test::throws_error([&] { ops::broadcast_rows16_stub(ex, Precision::bf16, 1, 1, nullptr, nullptr); },
                                 {"broadcast_rows16", "'b'"}));
}

INSTANTIATE_TEST_SUITE_P(Devices, Nhwc16, test::KernelDevices(), test::DeviceName);

}  // namespace
}  // namespace fovea
