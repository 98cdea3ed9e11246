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
#include "core/emu/tensor_core.h"
#include "core/float_formats.h"
#include "cpu_reference/conv2d.h"
#include "cpu_reference/gemm.h"
#include "kernels/conv2d_tc.h"
#include "kernels/nhwc16.h"
#include "kernels/tc_gemm.h"
#include "layers/ops/context.h"
#include "layers/ops/conv2d.h"
#include "layers/ops/linear.h"
#include "tests/kernel_test_util.h"
#include "tests/ops_kernel_test_util.h"  // expect_deterministic
#include "tests/tc_gemm_planted_kernels.h"
#include "tests/test_util.h"

namespace fovea {
namespace {

using test::DeviceArray;

constexpr float kPadding = -1536.0f;  // C outside the product (exact in every type): must survive

// A planted bug must show: far from the correct result in L2, and in more than half of the elements.
void expect_planted_bug_detected(const std::vector<float>& got, const std::vector<float>& want, const char* what) {
  EXPECT_FALSE(test::close_l2(got, want, 1e-2, what)) << what << " was not detected";
  size_t wrong = 0;
  for (size_t i = 0; i < got.size(); ++i) wrong += !(got[i] == want[i]);
  EXPECT_GT(wrong, got.size() / 2) << what << ": only " << wrong << " of " << got.size() << " elements wrong";
}

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
  Workspace ws(dev);  // the multistage kernel's split-K partials, where it splits
  const Exec ex = test::kernel_exec(dev, &ws);
  if (prec == Precision::tf32) {
    auto A = put(o.A, float{}), B = put(o.B, float{}), C = put(o.C, float{});
    (ms ? ops::tc_gemm_multistage_tf32_stub : ops::tc_gemm_tf32_stub)(ex, g, A.data() + offset, B.data() + offset,
                                                                      C.data() + offset);
    return back(C);
  }
  if (prec == Precision::bf16) {
    auto A = put(o.A, BFloat16{}), B = put(o.B, BFloat16{}), C = put(o.C, BFloat16{});
    if (algo == Algo::planted_missing_wait || algo == Algo::planted_wrong_fragment) {
      test::tc_gemm_planted_stub(
          ex, algo == Algo::planted_missing_wait ? test::TcGemmPlant::missing_wait : test::TcGemmPlant::wrong_fragment,
          g, A.data() + offset, B.data() + offset, C.data() + offset);
      return back(C);
    }
    (ms ? ops::tc_gemm_multistage_bf16_stub : ops::tc_gemm_bf16_stub)(ex, g, A.data() + offset, B.data() + offset,
                                                                      C.data() + offset);
    return back(C);
  }
  auto A = put(o.A, Half{}), B = put(o.B, Half{}), C = put(o.C, Half{});
  (ms ? ops::tc_gemm_multistage_fp16_stub : ops::tc_gemm_fp16_stub)(ex, g, A.data() + offset, B.data() + offset,
                                                                    C.data() + offset);
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

// The emulator's metrics of every launch of fn() (the profiler stopped even if fn throws).
template <class F>
std::vector<emu::KernelMetrics> profiled(F&& fn) {
  emu::profile_start();
  try {
    fn();
  } catch (...) {
    emu::profile_stop();
    throw;
  }
  return emu::profile_stop();
}

// The last kernel in `all` whose name contains `name`, or null.
const emu::KernelMetrics* kernel_metrics(const std::vector<emu::KernelMetrics>& all, const char* name) {
  const emu::KernelMetrics* k = nullptr;
  for (const emu::KernelMetrics& m : all)
    if (m.name.find(name) != std::string::npos) k = &m;
  return k;
}

// Bitwise the same in every schedule order, with both operands by cp.async (A N) and A by element loads (A T). (CI
// also runs every test under reverse and shuffle:1; this compares the bits across orders in one process.)
TEST(TcGemmMultistage, SameBitsInEveryScheduleOrder) {
  const Precision prec = Precision::bf16;
  for (Trans ta : {Trans::N, Trans::T}) {
    const SgemmParams g = sgemm_params(ta, Trans::T, 136, 40, 200, 0.5f, 0.25f);
    const Operands o(g, prec, false, 53);
    const std::vector<float> first = test::expect_deterministic(
        kEmu, std::string("A ") + tname(ta), [&] { return run(kEmu, prec, g, o, 0, Algo::multistage); });
    EXPECT_TRUE(test::all_written(product(g, first)));
  }
}

// Split-K (kernels/tc_gemm.h, tc_gemm_multistage_splits): one 128 x 128 output tile and 17 k-tiles (K off the
// k-tile) split into 2 parts of 9 and 8 k-tiles. The split must happen (two launches: the parts and the reduce; the
// shape's part count), equal the reference bitwise on exact operands (cp.async and element-load staging), stay within
// the reference's rounding bound on random ones, and give the same bits again and in every schedule order.
SgemmParams split_shape(Precision prec, Trans ta, float alpha, float beta) {
  SgemmParams g = sgemm_params(ta, Trans::T, 24, 20, prec == Precision::tf32 ? 520 : 1040, alpha, beta);
  g.stride_a = g.a_rows() * g.lda, g.stride_b = g.b_rows() * g.ldb, g.stride_c = g.M * g.ldc;  // for abs_products
  return g;
}

TEST_P(TcGemmDevice, SplitKEqualsTheReference) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  for (Precision prec : {Precision::tf32, Precision::bf16, Precision::fp16}) {
    const std::string name(precision_name(prec));
    {
      const SgemmParams g = split_shape(prec, Trans::N, 0.5f, -1.0f);
      ASSERT_EQ(ops::tc_gemm_multistage_splits(prec, g), 2) << name;
      EXPECT_EQ(ops::tc_gemm_multistage_workspace_bytes(prec, g), 2 * 24 * 20 * 4) << name;
      const Operands o(g, prec, true, 61);
      const std::vector<float> want = reference(g, prec, o);
      for (size_t offset : {size_t(0), size_t(1)}) {  // cp.async, element loads
        const uint64_t launches = dev.type == DeviceType::emu ? emu::launch_count() : 0;
        const std::vector<float> got = run(dev, prec, g, o, offset, Algo::multistage);
        if (dev.type == DeviceType::emu) {
          EXPECT_EQ(emu::launch_count() - launches, 2u) << name << ": the parts' kernel and the reduce";
        }
        ASSERT_TRUE(test::all_written(product(g, got), name.c_str()));
        EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float)))
            << name << " offset " << offset << ": not bitwise the reference";
      }
    }
    const SgemmParams g = split_shape(prec, Trans::N, 1.0f, 0.0f);
    const Operands o(g, prec, false, 67);
    const std::vector<float> want = reference(g, prec, o), got = run(dev, prec, g, o, 0, Algo::multistage);
    const double uo = prec == Precision::tf32 ? 0.0 : prec == Precision::bf16 ? 0x1p-8 : 0x1p-11, u = 0x1p-24;
    int bad = 0;
    for (int64_t m = 0; m < g.M; ++m)
      for (int64_t n = 0; n < g.N; ++n) {
        const size_t i = size_t(m * g.ldc + n);
        // Both sum the same exact products in FP32 in different orders: each within gamma_K S of the exact sum.
        const double S = abs_products(g, o, prec, i), w = want[i];
        const double pre = 2 * double(g.K) * u / (1 - double(g.K) * u) * S;
        const double tol = pre + 2 * uo * (std::fabs(w) + pre);
        if (!(std::fabs(double(got[i]) - w) <= tol) && bad++ < 5)
          ADD_FAILURE() << name << " element " << i << ": got " << got[i] << " want " << w << " (tol " << tol << ")";
      }
    EXPECT_EQ(bad, 0) << name;
    EXPECT_TRUE(test::close_l2(product(g, got), product(g, want), prec == Precision::tf32 ? 1e-5 : 1e-2, name));
    EXPECT_EQ(got, run(dev, prec, g, o, 0, Algo::multistage)) << name << ": a second run differs";
  }
}

TEST(TcGemmMultistage, SplitKSameBitsInEveryScheduleOrder) {
  const Precision prec = Precision::bf16;
  const SgemmParams g = split_shape(prec, Trans::N, 0.5f, 0.25f);
  ASSERT_GT(ops::tc_gemm_multistage_splits(prec, g), 1);
  const Operands o(g, prec, false, 71);
  const std::vector<float> first =
      test::expect_deterministic(kEmu, "split-K", [&] { return run(kEmu, prec, g, o, 0, Algo::multistage); });
  EXPECT_TRUE(test::all_written(product(g, first)));
}

// The split rule depends on the shape only: few tiles and a long K split, many tiles or a short K do not.
TEST(TcGemmMultistage, SplitKRule) {
  auto parts = [](Precision prec, int64_t M, int64_t N, int64_t K, int64_t batch = 1) {
    SgemmParams g = sgemm_params(Trans::N, Trans::T, M, N, K);
    g.batch = batch, g.stride_a = M * K, g.stride_b = N * K, g.stride_c = M * N;
    return ops::tc_gemm_multistage_splits(prec, g);
  };
  EXPECT_EQ(parts(Precision::bf16, 128, 10, 16384), 32);  // 256 k-tiles, 1 tile: 32 parts of 8
  EXPECT_EQ(parts(Precision::bf16, 128, 512, 4096), 8);   // 64 k-tiles over 4 tiles: 8 parts of 8
  EXPECT_EQ(parts(Precision::tf32, 128, 512, 4096), 16);  // 128 k-tiles: 16 parts of 8 (66 wanted)
  EXPECT_EQ(parts(Precision::bf16, 128, 10, 64), 1);      // one k-tile
  EXPECT_EQ(parts(Precision::bf16, 128, 10, 960), 1);     // 15 k-tiles: none; 16: 2 parts
  EXPECT_EQ(parts(Precision::bf16, 128, 10, 961), 2);
  EXPECT_EQ(parts(Precision::bf16, 2048, 2048, 16384), 2);     // 256 tiles: still below 264
  EXPECT_EQ(parts(Precision::bf16, 4096, 4096, 16384), 1);     // 1024 tiles
  EXPECT_EQ(parts(Precision::bf16, 128, 128, 16384, 300), 1);  // 300 tiles over the batch
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
    expect_planted_bug_detected(got, want, what);
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
    const std::vector<emu::KernelMetrics> all = profiled([&] { run(kEmu, prec, g, o, 0, Algo::multistage); });
    const emu::KernelMetrics* k = kernel_metrics(all, "tc_gemm_multistage_kernel");
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
    // {2, 1040, 9}: forward splits K (4 parts at TF32, 2 at BF16/FP16; kernels/tc_gemm.h).
    for (const Shape3 s : {Shape3{1, 1, 1}, Shape3{3, 7, 5}, Shape3{33, 65, 17}, Shape3{2, 1040, 9}}) {
      auto operand = [prec](const Shape& shape, uint64_t seed) {
        return Tensor::from_vector(precision_operands(shape.numel(), seed, prec), shape);
      };
      const Tensor x = operand({s.N, s.I}, 1), w = operand({s.O, s.I}, 2), b = operand({s.O}, 3),
                   dy = operand({s.N, s.O}, 4);
      const std::string what =
          "linear N=" + std::to_string(s.N) + " I=" + std::to_string(s.I) + " O=" + std::to_string(s.O);
      if (s.I == 1040) {  // the forward GEMM (M = N, N = O, K = I) goes through split-K
        EXPECT_GT(ops::tc_gemm_multistage_splits(prec, sgemm_params(Trans::N, Trans::T, s.N, s.O, s.I)), 1) << what;
      }
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

// kernels/linear_tc.cu's 16-bit copies: narrowed as stored or narrowed and transposed (dx's W, dW's dy and x), rows
// padded to 8 elements. Edge shapes: N = 1, odd and single features, K off the k-tile, dW splitting K over N = 1040.
TEST_P(PrecisionOps, LinearEdgeShapesEqualTheReferenceOfItsPrecision) {
  FOVEA_SKIP_IF_NO_DEVICE(GetParam());
  struct Shape3 {
    int64_t N, I, O;
  };
  for (Precision prec : {Precision::bf16, Precision::fp16})
    for (const Shape3 s : {Shape3{1, 9, 130}, Shape3{5, 129, 1}, Shape3{1040, 3, 5}}) {
      auto operand = [prec](const Shape& shape, uint64_t seed) {
        return Tensor::from_vector(precision_operands(shape.numel(), seed, prec), shape);
      };
      const Tensor x = operand({s.N, s.I}, 21), w = operand({s.O, s.I}, 22), b = operand({s.O}, 23),
                   dy = operand({s.N, s.O}, 24);
      const std::string what =
          "linear N=" + std::to_string(s.N) + " I=" + std::to_string(s.I) + " O=" + std::to_string(s.O);
      if (s.N == 1040) {  // the weight gradient's GEMM (M = O, N = I, K = N) goes through split-K
        EXPECT_GT(ops::tc_gemm_multistage_splits(prec, sgemm_params(Trans::N, Trans::T, s.O, s.I, s.N)), 1) << what;
      }
      expect_same_as_reference(
          GetParam(), prec, {x, w, b, dy},
          [](ops::Context& ctx, const std::vector<Tensor>& t) {
            return std::vector<Tensor>{ops::linear_forward(ctx, t[0], t[1], t[2]),
                                       ops::linear_backward_data(ctx, t[3], t[1]),
                                       ops::linear_backward_weight(ctx, t[0], t[3])};
          },
          what);
    }
}

// The backward GEMMs on the transposed copies against the same GEMM on the operands as stored ((N, N) and (T, N):
// the element-load staging): random operands that are values of the type, bitwise equal, split-K included.
TEST_P(PrecisionOps, LinearTransposedCopiesAreBitwiseTheElementPath) {
  FOVEA_SKIP_IF_NO_DEVICE(GetParam());
  struct Shape3 {
    int64_t N, I, O;
  };
  for (Precision prec : {Precision::bf16, Precision::fp16})
    for (const Shape3 s : {Shape3{37, 70, 129}, Shape3{1100, 5, 3}}) {
      const std::string what = "linear N=" + std::to_string(s.N) + " I=" + std::to_string(s.I) +
                               " O=" + std::to_string(s.O) + " " + std::string(precision_name(prec));
      ops::Context ctx(GetParam());
      ctx.precision = prec;
      // The op's output for GEMM g's operands (A and B as the op stores them) against the GEMM run on them directly.
      auto check = [&](const char* out, const SgemmParams& g, uint64_t seed, Shape a_shape, Shape b_shape, auto op) {
        const Operands o(g, prec, false, seed);
        const std::vector<float> want = run(GetParam(), prec, g, o, 0, Algo::multistage);
        const Tensor a = Tensor::from_vector(o.A, a_shape).to(GetParam()),
                     b = Tensor::from_vector(o.B, b_shape).to(GetParam());
        const std::vector<float> got = op(a, b).to(kCPU).template to_vector<float>();
        ASSERT_EQ(got.size(), want.size()) << what;
        ASSERT_TRUE(test::all_written(got, (what + " " + out).c_str()));
        EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float)))
            << what << " " << out << ": not bitwise";
      };
      // dx = dy W: A = dy (N x O), B = W (O x I) n-contiguous
      check("dx", sgemm_params(Trans::N, Trans::N, s.N, s.I, s.O), 31, {s.N, s.O}, {s.O, s.I},
            [&](const Tensor& dy, const Tensor& w) { return ops::linear_backward_data(ctx, dy, w); });
      // dW = dy^T x: A = dy (N x O) m-contiguous, B = x (N x I) n-contiguous
      check("dW", sgemm_params(Trans::T, Trans::N, s.O, s.I, s.N), 41, {s.N, s.O}, {s.N, s.I},
            [&](const Tensor& dy, const Tensor& x) { return ops::linear_backward_weight(ctx, x, dy); });
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
                                   {{2, 4, 6, 7}, {6, 2, 3, 2}, dilated_groups},
                                   {{2, 16, 5, 5}, {8, 8, 3, 3}, dilated_groups}};  // the cp.async gather
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

// The op-level path (kernels/conv2d_tc_igemm.cu's precision stubs: NCHW copies, the kernel, back) on shapes where fprop
// and dgrad split K (conv2d_tc_igemm_splits > 1; the stubs carve the partials from the op's workspace): bitwise the
// reference of the precision, as above.
TEST_P(PrecisionOps, Conv2dSplitKEqualsTheReferenceOfItsPrecision) {
  FOVEA_SKIP_IF_NO_DEVICE(GetParam());
  ops::Conv2dAttrs a;
  a.pad_h = a.pad_w = 1, a.groups = 2;
  // N = 1, two groups; fprop reduces over R S C/g = 1080, dgrad over R S K/g = 1080 (BF16/FP16: 2 parts, TF32: 4)
  const Shape xs{1, 240, 4, 3}, ws{16, 120, 3, 3}, xd{1, 16, 3, 4}, wd{240, 8, 3, 3};
  for (Precision prec : {Precision::tf32, Precision::bf16, Precision::fp16}) {
    const Conv2dParams pf = ops::conv2d_params(xs, ws, a), pd = ops::conv2d_params(xd, wd, a);
    ASSERT_GT(ops::conv2d_tc_igemm_splits(ConvOp::forward, prec, pf), 1);
    ASSERT_GT(ops::conv2d_tc_igemm_splits(ConvOp::backward_data, prec, pd), 1);
    auto operand = [prec](const Shape& shape, uint64_t seed) {
      return Tensor::from_vector(precision_operands(shape.numel(), seed, prec), shape);
    };
    const Tensor x = operand(xs, 11), w = operand(ws, 12), b = operand({ws[0]}, 13), w2 = operand(wd, 14),
                 dy = operand({pd.N, pd.K, pd.P(), pd.Q()}, 15);
    expect_same_as_reference(
        GetParam(), prec, {x, w, b, w2, dy},
        [&](ops::Context& ctx, const std::vector<Tensor>& t) {
          return std::vector<Tensor>{ops::conv2d_forward(ctx, t[0], t[1], t[2], a),
                                     ops::conv2d_backward_data(ctx, t[4], t[3], xd, a)};
        },
        "conv2d split-K");
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, PrecisionOps, test::KernelDevices(), test::DeviceName);

// kernels/linear_tc.cu's claim that its 16-bit copies put every linear GEMM on the cp.async path: at 128 x 128 x
// 128 (BF16: 2 k-tiles) the backward GEMMs' kernel issues 2 operands x 128 rows x 8 chunks of 16 bytes per k-tile
// (64 warp requests), none by element loads. Without the transposed copies dx would issue half and dW none. Also the
// transposing copy's coalescing and bank-conflict claims.
TEST(TcGemmMultistage, LinearBackwardStagesBothOperandsByCpAsync) {
  if (!emu::instrumented_build_available())
    GTEST_SKIP() << "needs the checked (instrumented) build of the kernels, which -DFOVEA_SANITIZE=ON and "
                    "-DFOVEA_EMU_CHECKED=OFF builds do not make";
  ops::Context ctx(kEmu);
  ctx.precision = Precision::bf16;
  auto operand = [](uint64_t seed) {
    return Tensor::from_vector(precision_operands(128 * 128, seed, Precision::bf16), {128, 128}).to(kEmu);
  };
  const Tensor x = operand(51), w = operand(52), dy = operand(53);
  for (const bool data : {true, false}) {
    const char* what = data ? "linear_backward_data" : "linear_backward_weight";
    const std::vector<emu::KernelMetrics> all = profiled(
        [&] { (void)(data ? ops::linear_backward_data(ctx, dy, w) : ops::linear_backward_weight(ctx, x, dy)); });
    const emu::KernelMetrics* k = kernel_metrics(all, "tc_gemm_multistage_kernel");
    ASSERT_NE(k, nullptr) << what << ": the multistage kernel was not profiled";
    uint64_t copies_global = 0;
    for (const emu::SiteMetrics& s : k->sites)
      if (s.location.find("kernels/mma.cuh") != std::string::npos && s.space == emu::Space::global) {
        copies_global += s.requests;
      }
    EXPECT_EQ(copies_global, 2u * 64u) << what << ": 16-byte cp.async requests over 2 k-tiles";
    if (data) continue;
    // dW's two copies are transposed: the 32 x 32 tile kernel's claims (kernels/linear_tc.cu): each warp reads 128
    // contiguous bytes (4 sectors) and writes 64 (2 sectors), and its shared accesses are free of bank conflicts.
    const emu::KernelMetrics* t = kernel_metrics(all, "narrow_transpose_kernel");
    ASSERT_NE(t, nullptr) << "the transposing copy was not profiled";
    EXPECT_EQ(t->launches, 2u);
    uint64_t loads = 0, stores = 0, shared = 0;
    for (const emu::SiteMetrics& s : t->sites) {
      if (s.location.find("kernels/linear_tc.cu") == std::string::npos) continue;
      const std::string site = s.location + " " + emu::space_name(s.space) + " " + emu::op_name(s.op);
      if (s.space == emu::Space::shared) {
        EXPECT_EQ(s.wavefronts * 32, s.lanes) << site << ": bank conflicts";
        shared += s.lanes;
      } else if (s.op == emu::AccessOp::load) {
        EXPECT_EQ(s.sectors * 8, s.lanes) << site;
        loads += s.lanes;
      } else {
        EXPECT_EQ(s.sectors * 16, s.lanes) << site;
        stores += s.lanes;
      }
    }
    EXPECT_EQ(loads, 2u * 128u * 128u) << "every element read once";
    EXPECT_EQ(stores, 2u * 128u * 128u) << "every element written once";
    EXPECT_EQ(shared, 2u * 2u * 128u * 128u) << "each element stored to and loaded from the tile once";
  }
}

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

// ------------------------------------------------------------------ implicit-GEMM convolutions, NHWC
// The kernel-level stubs of kernels/conv2d_tc.h (kernels/conv2d_tc_igemm.cuh: fprop, dgrad, wgrad) on NHWC
// activations and KRSC filters, against fovea::ref::conv2d_* of the same precision (NCHW; the test transposes on the
// host). Exact operands
// (multiples of 1/8 below 2: every product and sum exact in FP32 whatever the order): bitwise. Random operands: TF32
// within rel L2 1e-5; BF16/FP16 outputs element by element within one unit in the last place of the output plus the
// FP32 accumulation bound 2 gamma_K sum|x w| (the kernel and the reference round FP32 sums taken in different
// orders). Outputs poisoned: every element written.

struct ConvCase {
  std::string name;
  Shape x, w;
  ops::Conv2dAttrs a;
};

ops::Conv2dAttrs conv_attrs(int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w, int64_t dil = 1,
                            int64_t groups = 1) {
  ops::Conv2dAttrs a;
  a.stride_h = stride_h, a.stride_w = stride_w, a.pad_h = pad_h, a.pad_w = pad_w, a.dil_h = a.dil_w = dil;
  a.groups = groups;
  return a;
}

// Edge shapes: N = 1, C = 1, odd C and K, stride, padding different in h and w, dilation, groups, M and K off the
// 128 x 128 tile; C/g a multiple of 8 (the cp.async gather at every precision), of 4 only (TF32 cp.async, 16-bit
// element loads) or neither (element loads); reductions of 1 to 5 k-tiles (3 or more wrap the pipeline).
std::vector<ConvCase> conv_cases() {
  return {
      {"n1_c1_k1_1x1", {1, 1, 3, 3}, {1, 1, 1, 1}, {}},
      {"c3_k5_3x3_stride2x1_pad1x2", {2, 3, 7, 5}, {5, 3, 3, 3}, conv_attrs(2, 1, 1, 2)},
      {"c16_k24_3x3_pad1", {2, 16, 9, 7}, {24, 16, 3, 3}, conv_attrs(1, 1, 1, 1)},
      {"c16_k8_groups2_dil2", {1, 16, 8, 8}, {8, 8, 3, 3}, conv_attrs(1, 1, 2, 2, 2, 2)},
      {"c12_k9_groups3_c4_per_group", {1, 12, 5, 6}, {9, 4, 3, 3}, conv_attrs(1, 1, 1, 1, 1, 3)},
      {"c32_k40_3x3_stride2_5_ktiles", {2, 32, 10, 9}, {40, 32, 3, 3}, conv_attrs(2, 2, 1, 1)},
      {"c16_k130_1x1_off_tile", {1, 16, 11, 13}, {130, 16, 1, 1}, {}},
      {"c8_k7_2x3_stride3_pad0", {3, 8, 8, 11}, {7, 8, 2, 3}, conv_attrs(3, 3, 0, 0)},
      // N P Q = 1024: wgrad splits its reduction (2 parts at 16 bits, 4 at TF32); wgrad only (skip_case)
      {"c8_k16_3x3_pad1_split_k", {4, 8, 16, 16}, {16, 8, 3, 3}, conv_attrs(1, 1, 1, 1)},
      // dgrad's stride phases (dgrad only, skip_case): odd sizes; dilation 2 at stride 2 sends every tap to one
      // phase (the others' pixels are zeros); a 1 x 1 filter at stride 2 reaches one phase of four
      {"dgrad_phases_c16_k16_3x3_stride2_pad1_groups2", {1, 16, 7, 9}, {16, 8, 3, 3}, conv_attrs(2, 2, 1, 1, 1, 2)},
      {"dgrad_phases_c8_k16_3x3_stride2_dil2_pad2", {2, 8, 9, 7}, {16, 8, 3, 3}, conv_attrs(2, 2, 2, 2, 2)},
      {"dgrad_phases_c8_k16_1x1_stride2", {2, 8, 7, 5}, {16, 8, 1, 1}, conv_attrs(2, 2, 0, 0)},
      {"dgrad_phases_c8_k12_3x3_stride3x2_pad1x0", {1, 8, 10, 7}, {12, 8, 3, 3}, conv_attrs(3, 2, 1, 0)},
  };
}

// Host NCHW (or KCRS) floats to NHWC (KRSC) in the storage type of prec, with `offset` elements in front.
template <class T>
std::vector<T> to_channels_last(const std::vector<float>& v, int64_t N, int64_t C, int64_t J, Precision prec,
                                size_t offset) {
  std::vector<T> out(v.size() + offset);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t j = 0; j < J; ++j) {
        const float x = v[size_t((n * C + c) * J + j)];
        T& o = out[offset + size_t((n * J + j) * C + c)];
        if constexpr (std::is_same_v<T, float>)
          o = x;
        else
          o = T{prec == Precision::bf16 ? float_to_bf16_bits(x) : float_to_half_bits(x)};
      }
  return out;
}

enum class ConvRun { kernel, planted_missing_wait, planted_wrong_fragment };

// A tensor of the convolution as NCHW-like dims [N][C][J] (x: N C HW; w: K Cg RS; y: N K PQ); channels-last is
// [N][J][C].
struct Dims {
  int64_t N, C, J;
};
Dims x_dims(const Conv2dParams& p) {
  return {p.N, p.C, p.H * p.W};
}
Dims w_dims(const Conv2dParams& p) {
  return {p.K, p.C_per_group(), p.R * p.S};
}
Dims y_dims(const Conv2dParams& p) {
  return {p.N, p.K, p.P() * p.Q()};
}
// The op's two operands and its output: forward (x, w) -> y, backward_data (dy, w) -> dx, backward_filter (x, dy) ->
// dw.
Dims in0_dims(ConvOp op, const Conv2dParams& p) {
  return op == ConvOp::backward_data ? y_dims(p) : x_dims(p);
}
Dims in1_dims(ConvOp op, const Conv2dParams& p) {
  return op == ConvOp::backward_filter ? y_dims(p) : w_dims(p);
}
Dims out_dims(ConvOp op, const Conv2dParams& p) {
  return op == ConvOp::forward ? y_dims(p) : op == ConvOp::backward_data ? x_dims(p) : w_dims(p);
}

// Runs the NHWC kernel of (op, prec) on dev with operands given NCHW-like (in0, in1 offset by `offset` elements from
// 16-byte alignment: 1 forces element loads), and returns its output NCHW-like; the output and the workspace (exactly
// ops::conv2d_tc_workspace_bytes: asking for more throws) start poisoned.
std::vector<float> run_conv(Device dev, Precision prec, ConvOp op, const Conv2dParams& p, const std::vector<float>& in0,
                            const std::vector<float>& in1, const std::vector<float>& bias, size_t offset = 0,
                            ConvRun how = ConvRun::kernel) {
  auto go = [&](auto tag) {
    using T = decltype(tag);
    auto to_type = [&](float x) {
      if constexpr (std::is_same_v<T, float>)
        return x;
      else
        return T{prec == Precision::bf16 ? float_to_bf16_bits(x) : float_to_half_bits(x)};
    };
    auto to_float = [&](T v) {
      if constexpr (std::is_same_v<T, float>)
        return v;
      else
        return prec == Precision::bf16 ? bf16_bits_to_float(v.bits) : half_bits_to_float(v.bits);
    };
    auto channels_last = [&](const std::vector<float>& v, Dims d) {
      std::vector<T> out(v.size() + offset);
      for (int64_t n = 0; n < d.N; ++n)
        for (int64_t c = 0; c < d.C; ++c)
          for (int64_t j = 0; j < d.J; ++j)
            out[offset + size_t((n * d.J + j) * d.C + c)] = to_type(v[size_t((n * d.C + c) * d.J + j)]);
      return out;
    };
    const DeviceArray<T> a = DeviceArray<T>::upload(channels_last(in0, in0_dims(op, p)), dev);
    const DeviceArray<T> b = DeviceArray<T>::upload(channels_last(in1, in1_dims(op, p)), dev);
    const Dims od = out_dims(op, p);
    DeviceArray<T> out(size_t(od.N * od.C * od.J), dev);
    out.poison();
    const DeviceArray<float> bd = DeviceArray<float>::upload(bias, dev);
    const float* bp = bias.empty() ? nullptr : bd.data();
    const int64_t ws_bytes = ops::conv2d_tc_workspace_bytes(op, prec, p);
    DeviceArray<float> scratch(size_t(ws_bytes / 4 + 1), dev);
    scratch.poison();
    Workspace ws(dev, scratch.data(), size_t(ws_bytes));
    const Exec ex = test::kernel_exec(dev, &ws);
    const T *x = a.data() + offset, *y = b.data() + offset;
    if (how != ConvRun::kernel) {
      if constexpr (std::is_same_v<T, BFloat16>)
        test::conv2d_tc_planted_stub(
            ex,
            how == ConvRun::planted_missing_wait ? test::TcGemmPlant::missing_wait : test::TcGemmPlant::wrong_fragment,
            p, x, y, out.data());
      else
        ADD_FAILURE() << "planted kernels are BF16";
    } else if constexpr (std::is_same_v<T, float>) {
      if (op == ConvOp::forward) ops::conv2d_tc_fprop_nhwc_tf32_stub(ex, p, x, y, bp, out.data());
      if (op == ConvOp::backward_data) ops::conv2d_tc_dgrad_nhwc_tf32_stub(ex, p, x, y, out.data());
      if (op == ConvOp::backward_filter) ops::conv2d_tc_wgrad_nhwc_tf32_stub(ex, p, x, y, out.data());
    } else if constexpr (std::is_same_v<T, BFloat16>) {
      if (op == ConvOp::forward) ops::conv2d_tc_fprop_nhwc_bf16_stub(ex, p, x, y, bp, out.data());
      if (op == ConvOp::backward_data) ops::conv2d_tc_dgrad_nhwc_bf16_stub(ex, p, x, y, out.data());
      if (op == ConvOp::backward_filter) ops::conv2d_tc_wgrad_nhwc_bf16_stub(ex, p, x, y, out.data());
    } else {
      if (op == ConvOp::forward) ops::conv2d_tc_fprop_nhwc_fp16_stub(ex, p, x, y, bp, out.data());
      if (op == ConvOp::backward_data) ops::conv2d_tc_dgrad_nhwc_fp16_stub(ex, p, x, y, out.data());
      if (op == ConvOp::backward_filter) ops::conv2d_tc_wgrad_nhwc_fp16_stub(ex, p, x, y, out.data());
    }
    const std::vector<T> oh = out.download();
    std::vector<float> r(oh.size());
    for (int64_t n = 0; n < od.N; ++n)
      for (int64_t c = 0; c < od.C; ++c)
        for (int64_t j = 0; j < od.J; ++j)
          r[size_t((n * od.C + c) * od.J + j)] = to_float(oh[size_t((n * od.J + j) * od.C + c)]);
    return r;
  };
  if (prec == Precision::tf32) return go(float{});
  if (prec == Precision::bf16) return go(BFloat16{});
  return go(Half{});
}

// The op's operands in the precision's values (exact: multiples of 1/8 below 2), and the forward's bias.
struct ConvOperands {
  std::vector<float> in0, in1, b;
  ConvOperands(ConvOp op, const Conv2dParams& p, Precision prec, bool exact, uint64_t seed, bool bias = true) {
    auto values = [&](Dims d, uint64_t s) {
      const size_t n = size_t(d.N * d.C * d.J);
      std::vector<float> v = exact ? test::random_integers(n, s, -15, 15) : test::random_vector(n, s);
      for (float& e : v) e = exact ? e / 8 : round_output(prec, e);  // 16-bit: a value of the type
      return v;
    };
    in0 = values(in0_dims(op, p), seed), in1 = values(in1_dims(op, p), seed + 1);
    if (bias && op == ConvOp::forward) b = values({1, p.K, 1}, seed + 2);
  }
};

// The reference of the precision (prec fp32: the FP32 reference).
std::vector<float> conv_reference(ConvOp op, const Conv2dParams& p, Precision prec, const std::vector<float>& in0,
                                  const std::vector<float>& in1, const std::vector<float>& b) {
  const Dims od = out_dims(op, p);
  std::vector<float> out(size_t(od.N * od.C * od.J));
  if (op == ConvOp::forward)
    ref::conv2d_forward(p, prec, in0.data(), in1.data(), b.empty() ? nullptr : b.data(), out.data());
  else if (op == ConvOp::backward_data)
    ref::conv2d_backward_data(p, prec, in0.data(), in1.data(), out.data());
  else
    ref::conv2d_backward_filter(p, prec, in0.data(), in1.data(), out.data());
  return out;
}
std::vector<float> conv_reference(ConvOp op, const Conv2dParams& p, Precision prec, const ConvOperands& o) {
  return conv_reference(op, p, prec, o.in0, o.in1, o.b);
}

// got against the reference of its precision: TF32 rel L2 <= 1e-5; BF16/FP16 element by element within one unit in
// the last place of the output plus 2 gamma_K sum |a b| (+ |bias|).
::testing::AssertionResult matches_reference(ConvOp op, const Conv2dParams& p, Precision prec, const ConvOperands& o,
                                             const std::vector<float>& got, const std::string& what) {
  const std::vector<float> want = conv_reference(op, p, prec, o);
  if (!test::all_written(got, what.c_str())) return test::all_written(got, what.c_str());
  if (prec == Precision::tf32) return test::close_l2(got, want, 1e-5, what);
  std::vector<float> a0(o.in0), a1(o.in1);
  for (float& v : a0) v = std::fabs(v);
  for (float& v : a1) v = std::fabs(v);
  const std::vector<float> sum_abs = conv_reference(op, p, Precision::fp32, a0, a1, {});
  const int64_t kred = op == ConvOp::forward         ? p.C_per_group() * p.R * p.S + 1
                       : op == ConvOp::backward_data ? p.K_per_group() * p.R * p.S
                                                     : p.N * p.P() * p.Q();
  const double unit = prec == Precision::bf16 ? 0x1p-7 : 0x1p-10, gamma = 2.0 * double(kred) * 0x1p-24;
  const int64_t PQ = p.P() * p.Q();
  for (size_t i = 0; i < got.size(); ++i) {
    const double bias = o.b.empty() ? 0.0 : std::fabs(o.b[size_t(int64_t(i) / PQ % p.K)]);
    const double bound = unit * std::fabs(double(want[i])) + gamma * (double(sum_abs[i]) + bias) + 1e-30;
    if (!(std::fabs(double(got[i]) - double(want[i])) <= bound))
      return ::testing::AssertionFailure()
             << what << ": element " << i << " " << got[i] << " vs " << want[i] << " (bound " << bound << ")";
  }
  return ::testing::AssertionSuccess();
}

const char* op_label(ConvOp op) {
  return op == ConvOp::forward ? "fprop" : op == ConvOp::backward_data ? "dgrad" : "wgrad";
}

// Cases left out to keep the suite to a few seconds on the emulator: the split-K shape is for wgrad; FP16 differs
// from BF16 only in the mma's input format and the conversions, so it runs one element-path and two cp.async shapes.
bool skip_case(const ConvCase& c, ConvOp op, Precision prec) {
  if (c.name == "c8_k16_3x3_pad1_split_k") return op != ConvOp::backward_filter;
  if (c.name.starts_with("dgrad_phases")) return op != ConvOp::backward_data;
  return prec == Precision::fp16 && c.name != "c3_k5_3x3_stride2x1_pad1x2" && c.name != "c16_k24_3x3_pad1" &&
         c.name != "c16_k8_groups2_dil2";
}

class TcConv : public ::testing::TestWithParam<Device> {};

TEST_P(TcConv, ExactOperandsEqualTheReferenceBitwise) {
  FOVEA_SKIP_IF_NO_DEVICE(GetParam());
  for (ConvOp op : {ConvOp::forward, ConvOp::backward_data, ConvOp::backward_filter})
    for (Precision prec : {Precision::tf32, Precision::bf16, Precision::fp16})
      for (const ConvCase& c : conv_cases())
        for (size_t offset : {size_t(0), size_t(1)}) {
          if (offset == 1 && c.name != "c16_k24_3x3_pad1") continue;  // the element path on an aligned shape
          if (skip_case(c, op, prec)) continue;
          const Conv2dParams p = ops::conv2d_params(c.x, c.w, c.a);
          if (c.name == "c8_k16_3x3_pad1_split_k") {
            ASSERT_EQ(ops::conv2d_tc_wgrad_splits(prec, p), prec == Precision::tf32 ? 4 : 2);
          }
          const ConvOperands o(op, p, prec, true, 71, c.name != "n1_c1_k1_1x1");
          const std::vector<float> want = conv_reference(op, p, prec, o);
          const std::vector<float> got = run_conv(GetParam(), prec, op, p, o.in0, o.in1, o.b, offset);
          const std::string what = std::string(op_label(op)) + " " + c.name + " " + std::string(precision_name(prec)) +
                                   " offset " + std::to_string(offset);
          ASSERT_TRUE(test::all_written(got, what.c_str()));
          EXPECT_TRUE(test::close_l2(got, want, 1e-5, what));
          EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float))) << what << ": not bitwise";
        }
}

TEST_P(TcConv, RandomOperandsMatchTheReference) {
  FOVEA_SKIP_IF_NO_DEVICE(GetParam());
  for (ConvOp op : {ConvOp::forward, ConvOp::backward_data, ConvOp::backward_filter})
    for (Precision prec : {Precision::tf32, Precision::bf16, Precision::fp16})
      for (const ConvCase& c : conv_cases()) {
        if (skip_case(c, op, prec)) continue;
        const Conv2dParams p = ops::conv2d_params(c.x, c.w, c.a);
        const ConvOperands o(op, p, prec, false, 73);
        const std::string what = std::string(op_label(op)) + " " + c.name + " " + std::string(precision_name(prec));
        EXPECT_TRUE(matches_reference(op, p, prec, o, run_conv(GetParam(), prec, op, p, o.in0, o.in1, o.b), what));
      }
}

TEST_P(TcConv, BadArgumentsFailClearly) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  DeviceArray<float> f(4096, dev);
  DeviceArray<BFloat16> h(4096, dev);
  Workspace ws(dev);
  const Conv2dParams p = ops::conv2d_params({1, 8, 4, 4}, {8, 8, 3, 3}, conv_attrs(1, 1, 1, 1));
  EXPECT_TRUE(test::throws_error(
      [&] { ops::conv2d_tc_fprop_nhwc_bf16_stub(test::kernel_exec(dev), p, nullptr, h.data(), nullptr, h.data()); },
      {"conv2d_tc_fprop_nhwc_bf16", "argument 'x' is null"}));
  EXPECT_TRUE(test::throws_error(
      [&] { ops::conv2d_tc_wgrad_nhwc_tf32_stub(test::kernel_exec(dev, &ws), p, f.data(), f.data(), nullptr); },
      {"conv2d_tc_wgrad_nhwc_tf32", "argument 'dw' is null"}));
  EXPECT_TRUE(test::throws_error(
      [&] { ops::conv2d_tc_dgrad_nhwc_bf16_stub(test::kernel_exec(dev), p, h.data(), h.data(), h.data()); },
      {"conv2d_tc_dgrad_nhwc_bf16", "workspace"}));
  Conv2dParams bad = p;
  bad.groups = 3;  // does not divide C = 8
  EXPECT_TRUE(test::throws_error(
      [&] { ops::conv2d_tc_fprop_nhwc_tf32_stub(test::kernel_exec(dev), bad, f.data(), f.data(), nullptr, f.data()); },
      {"conv2d_tc_fprop_nhwc_tf32", "groups"}));
  EXPECT_TRUE(test::throws_error(
      [&] {
        ops::conv2d_forward_precision_stub(test::kernel_exec(dev, &ws), Precision::fp32, p, f.data(), f.data(), nullptr,
                                           f.data());
      },
      {"conv2d_forward_precision", "not a tensor-core precision"}));
}

// Copies src [N][G][cs][J] into the first cs of the cd (>= cs) channels of each group of dst [N][G][cd][J], or back
// (to_dst false).
void embed_channels(std::vector<float>& dst, std::vector<float>& src, int64_t N, int64_t G, int64_t cs, int64_t cd,
                    int64_t J, bool to_dst) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t g = 0; g < G; ++g)
      for (int64_t c = 0; c < cs; ++c)
        for (int64_t j = 0; j < J; ++j) {
          float& d = dst[size_t(((n * G + g) * cd + c) * J + j)];
          float& v = src[size_t(((n * G + g) * cs + c) * J + j)];
          (to_dst ? d : v) = to_dst ? v : d;
        }
}

// The narrow block tiles (GEMM columns per group <= 32: 128 x 32, <= 64: 128 x 64; kernels/conv2d_tc_igemm.cuh,
// conv_tile_n) and the 128 x 128 one add the same products in the same order: each edge shape with at most 64 columns
// (fprop: K/g, dgrad: C/g) is run as is and embedded in convolutions with more columns per group (K/g or C/g = 48: the
// 64-wide tile, for shapes that run 32-wide; + 65: the 128-wide tile; the extra filter entries random), whose embedded
// outputs must have the same bits. Random operands, so that a change of order would show.
TEST_P(TcConv, NarrowTileEqualsTheWideTileBitwise) {
  FOVEA_SKIP_IF_NO_DEVICE(GetParam());
  for (ConvOp op : {ConvOp::forward, ConvOp::backward_data})
    for (Precision prec : {Precision::tf32, Precision::bf16})
      for (const ConvCase& c : conv_cases()) {
        if (c.name == "c8_k16_3x3_pad1_split_k") continue;  // a wgrad shape
        // dgrad's stride phases: one shape (the phases' rows placed by either tile)
        if (c.name.starts_with("dgrad_phases") &&
            (op == ConvOp::forward || c.name != "dgrad_phases_c16_k16_3x3_stride2_pad1_groups2"))
          continue;
        // TF32 (its own k-tile of 32 elements) on an element-path, a TF32-only cp.async and a cp.async shape
        if (prec == Precision::tf32 && c.name != "c3_k5_3x3_stride2x1_pad1x2" &&
            c.name != "c12_k9_groups3_c4_per_group" && c.name != "c16_k24_3x3_pad1")
          continue;
        const Conv2dParams p = ops::conv2d_params(c.x, c.w, c.a);
        const bool f = op == ConvOp::forward;
        const int64_t G = p.groups, cols = f ? p.K_per_group() : p.C_per_group();
        if (cols > 64) continue;
        ConvOperands o(op, p, prec, false, 103);  // embed_channels takes its source by reference
        const std::string what = std::string(op_label(op)) + " " + c.name + " " + std::string(precision_name(prec));
        const std::vector<float> narrow = run_conv(GetParam(), prec, op, p, o.in0, o.in1, o.b);
        ASSERT_TRUE(test::all_written(narrow, what.c_str()));
        EXPECT_TRUE(matches_reference(op, p, prec, o, narrow, what));
        for (const int64_t wide : {int64_t(48), cols + 65}) {
          if (wide == 48 && cols > 32) continue;  // the shape runs 64-wide itself
          const Conv2dParams pw = f ? ops::conv2d_params(c.x, {G * wide, p.C_per_group(), p.R, p.S}, c.a)
                                    : ops::conv2d_params({p.N, G * wide, p.H, p.W}, {p.K, wide, p.R, p.S}, c.a);
          ConvOperands ow(op, pw, prec, false, 107);
          ow.in0 = o.in0;  // x (fprop) or dy (dgrad): the same tensor
          if (f) {
            embed_channels(ow.in1, o.in1, 1, G, cols, wide, p.C_per_group() * p.R * p.S, true);
            embed_channels(ow.b, o.b, 1, G, cols, wide, 1, true);
          } else {
            embed_channels(ow.in1, o.in1, p.K, 1, cols, wide, p.R * p.S, true);
          }
          std::vector<float> wide_out = run_conv(GetParam(), prec, op, pw, ow.in0, ow.in1, ow.b);
          ASSERT_TRUE(test::all_written(wide_out, what.c_str()));
          std::vector<float> embedded(narrow.size());
          embed_channels(wide_out, embedded, p.N, G, cols, wide, f ? p.P() * p.Q() : p.H * p.W, false);
          EXPECT_EQ(0, std::memcmp(narrow.data(), embedded.data(), narrow.size() * sizeof(float)))
              << what << ": the 128 x " << ops::conv2d_tc_tile_n(cols) << " tile differs from the 128 x "
              << ops::conv2d_tc_tile_n(wide) << " tile";
        }
      }
}

// ---- split-K in fprop and dgrad (kernels/conv2d_tc_igemm.cuh): few output tiles, a long reduction, two groups, one
// 128-row tile per group. fprop reduces over R S C/g = 9 x 120 = 1080: 17 BF16/FP16 k-tiles in 2 parts (9 and 8, the
// last k-tile partial), 34 TF32 k-tiles in 4 (9, 9, 9, 7). dgrad at stride 2 reduces each of its 4 stride phases over
// its taps: 2 x 2, 2 x 1, 1 x 2 and 1 x 1 of the 3 x 3 by K/g = 256 channels, 16 BF16/FP16 k-tiles at most (2 parts
// of 8: the 1 x 1 phase's 4 k-tiles all in part 0, part 1 adds zeros), 32 TF32 k-tiles (4 parts of 8).
std::vector<std::pair<ConvOp, ConvCase>> split_cases() {
  return {{ConvOp::forward,
           {"fprop_c240_k16_groups2_stride2x1_pad1", {1, 240, 7, 5}, {16, 120, 3, 3}, conv_attrs(2, 1, 1, 1, 1, 2)}},
          {ConvOp::backward_data,
           {"dgrad_c16_k512_groups2_stride2_pad1", {2, 16, 5, 5}, {512, 8, 3, 3}, conv_attrs(2, 2, 1, 1, 1, 2)}}};
}
int64_t split_parts(Precision prec) {
  return prec == Precision::tf32 ? 4 : 2;
}

// Exact operands: bitwise the reference (the parts' sums are exact in any order), on the cp.async gather and the
// element path; random operands within the bound; every output written; the workspace exactly the partials (plus
// dgrad's rearranged filter); on the emulator the launches: the parts' kernel and the reduce (dgrad: its filter copy,
// then the parts' kernel of each of its 4 stride phases, then the reduce).
TEST_P(TcConv, SplitKEqualsTheReference) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  for (const auto& [op, c] : split_cases())
    for (Precision prec : {Precision::tf32, Precision::bf16, Precision::fp16}) {
      const Conv2dParams p = ops::conv2d_params(c.x, c.w, c.a);
      const std::string what = c.name + " " + std::string(precision_name(prec));
      const int64_t parts = split_parts(prec), e = prec == Precision::tf32 ? 4 : 2;
      ASSERT_EQ(ops::conv2d_tc_igemm_splits(op, prec, p), parts) << what;
      const int64_t partial_bytes = parts * (op == ConvOp::forward ? p.y_size() : p.x_size()) * 4;
      EXPECT_EQ(ops::conv2d_tc_workspace_bytes(op, prec, p),
                op == ConvOp::forward ? partial_bytes : (p.w_size() * e + 15) / 16 * 16 + partial_bytes)
          << what;
      const ConvOperands exact(op, p, prec, true, 113);
      const std::vector<float> want = conv_reference(op, p, prec, exact);
      for (size_t offset : {size_t(0), size_t(1)}) {
        const uint64_t launches = dev.type == DeviceType::emu ? emu::launch_count() : 0;
        const std::vector<float> got = run_conv(dev, prec, op, p, exact.in0, exact.in1, exact.b, offset);
        if (dev.type == DeviceType::emu) {
          EXPECT_EQ(emu::launch_count() - launches, op == ConvOp::forward ? 2u : 6u) << what << ": launches";
        }
        const std::string at = what + " offset " + std::to_string(offset);
        ASSERT_TRUE(test::all_written(got, at.c_str()));
        EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float))) << at << ": not bitwise";
      }
      const ConvOperands o(op, p, prec, false, 127);
      EXPECT_TRUE(matches_reference(op, p, prec, o, run_conv(dev, prec, op, p, o.in0, o.in1, o.b), what));
    }
}

// The rule (kernels/conv2d_tc.h, conv2d_tc_igemm_splits): from the shape only, tc_split_k_parts of the block tiles
// (128 rows x conv2d_tc_tile_n columns, per group) and the k-tiles.
TEST(TcConvSplitK, Rule) {
  auto parts = [](ConvOp op, Precision prec, Shape x, Shape w, ops::Conv2dAttrs a) {
    return ops::conv2d_tc_igemm_splits(op, prec, ops::conv2d_params(x, w, a));
  };
  const ops::Conv2dAttrs pad1 = conv_attrs(1, 1, 1, 1);
  // ResNet-9's 4 x 4 layers, 512 -> 512: 4 tiles up to batch 8, 72 BF16 (144 TF32) k-tiles: parts of 8.
  EXPECT_EQ(parts(ConvOp::forward, Precision::bf16, {1, 512, 4, 4}, {512, 512, 3, 3}, pad1), 9);
  EXPECT_EQ(parts(ConvOp::forward, Precision::bf16, {8, 512, 4, 4}, {512, 512, 3, 3}, pad1), 9);
  EXPECT_EQ(parts(ConvOp::backward_data, Precision::bf16, {8, 512, 4, 4}, {512, 512, 3, 3}, pad1), 9);
  EXPECT_EQ(parts(ConvOp::forward, Precision::tf32, {8, 512, 4, 4}, {512, 512, 3, 3}, pad1), 18);
  // batch 256: 32 x 4 = 128 tiles, ceil(264 / 128) = 3 parts
  EXPECT_EQ(parts(ConvOp::forward, Precision::bf16, {256, 512, 4, 4}, {512, 512, 3, 3}, pad1), 3);
  // ResNet-20's 64-channel layers at batch 128: 9 k-tiles, none; the 16-channel ones: 1024 tiles, none
  EXPECT_EQ(parts(ConvOp::forward, Precision::bf16, {128, 64, 8, 8}, {64, 64, 3, 3}, pad1), 1);
  EXPECT_EQ(parts(ConvOp::backward_data, Precision::bf16, {128, 16, 32, 32}, {16, 16, 3, 3}, pad1), 1);
  // the 64-wide tile counts as a tile: K = 64 is one column tile, K = 65 two of 128
  EXPECT_EQ(parts(ConvOp::forward, Precision::bf16, {1, 512, 4, 4}, {64, 512, 3, 3}, pad1), 9);
  EXPECT_EQ(parts(ConvOp::forward, Precision::bf16, {1, 2048, 4, 4}, {130, 2048, 1, 1}, {}), 4);  // 32 k-tiles
  // the edge cases of conv_cases: no split
  for (const ConvCase& c : conv_cases())
    for (ConvOp op : {ConvOp::forward, ConvOp::backward_data}) {
      EXPECT_EQ(parts(op, Precision::tf32, c.x, c.w, c.a), 1) << c.name;
      EXPECT_EQ(ops::conv2d_tc_workspace_bytes(ConvOp::forward, Precision::tf32, ops::conv2d_params(c.x, c.w, c.a)), 0)
          << c.name;
    }
  EXPECT_EQ(parts(ConvOp::backward_filter, Precision::bf16, {1, 512, 4, 4}, {512, 512, 3, 3}, pad1), 1);
}

// The gathers' incremental walks (kernels/conv2d_tc_igemm.cuh: the chunk's (r, s, c) and wgrad's rows (n, p, q)
// advanced per k-tile without divisions) on shapes where one step crosses several images or taps: 6 and 1 output
// pixels per image (8 rows of wgrad's walk span 1 and 8 images), 8 channels per tap (a k-tile spans 8 taps, 2 filter
// rows). Exact operands: every pass equals its reference bitwise, wgrad's fast path equals its element path.
TEST_P(TcConv, GatherWalksCrossImagesAndTaps) {
  FOVEA_SKIP_IF_NO_DEVICE(GetParam());
  const ConvCase cases[] = {
      {"n12_c16_2x3_pad1", {12, 16, 2, 3}, {16, 16, 3, 3}, conv_attrs(1, 1, 1, 1)},
      {"n20_c8_3x3_stride2_1x1_out", {20, 8, 3, 3}, {8, 8, 3, 3}, conv_attrs(2, 2, 0, 0)},
  };
  for (const auto& c : cases)
    for (ConvOp op : {ConvOp::forward, ConvOp::backward_data, ConvOp::backward_filter}) {
      const Conv2dParams p = ops::conv2d_params(c.x, c.w, c.a);
      const ConvOperands o(op, p, Precision::bf16, true, 151);
      const std::string what = std::string(op_label(op)) + " " + c.name;
      const std::vector<float> got = run_conv(GetParam(), Precision::bf16, op, p, o.in0, o.in1, o.b);
      ASSERT_TRUE(test::all_written(got, what.c_str()));
      const std::vector<float> want = conv_reference(op, p, Precision::bf16, o);
      EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float))) << what << ": not bitwise";
      if (op == ConvOp::backward_filter) {
        const std::vector<float> element = run_conv(GetParam(), Precision::bf16, op, p, o.in0, o.in1, o.b, 1);
        EXPECT_EQ(0, std::memcmp(got.data(), element.data(), got.size() * sizeof(float)))
            << what << ": the fast path differs from the element path";
      }
    }
}

INSTANTIATE_TEST_SUITE_P(Devices, TcConv, test::KernelDevices(), test::DeviceName);

// The cost model's mma count (kernels/conv2d_tc_igemm.cuh), on the emulator's count of warp-level mma.sync: a block
// issues 4 warps x 4 k-steps x 4 x kBN / 8 mma per k-tile, 512 at the 128-wide tile, 256 at the 64-wide one and 128 at
// the 32-wide one, which ResNet-20's 16-channel layers take (fprop over K/g = 16 columns, dgrad over C/g = 16).
TEST(TcConvEmu, MmaCountFollowsTheTileWidth) {
  struct Run {
    ConvOp op;
    int64_t C, K;
    uint64_t tile_n;
  };
  for (const Run& r : {Run{ConvOp::forward, 16, 16, 32}, Run{ConvOp::backward_data, 16, 16, 32},
                       Run{ConvOp::forward, 16, 48, 64}, Run{ConvOp::backward_data, 48, 16, 64},
                       Run{ConvOp::forward, 16, 80, 128}, Run{ConvOp::backward_data, 16, 80, 32}}) {
    // N H W = 64 output rows: one 128-row tile; reduction 9 x C (fprop) or 9 x K (dgrad).
    const Conv2dParams p = ops::conv2d_params({1, r.C, 8, 8}, {r.K, r.C, 3, 3}, conv_attrs(1, 1, 1, 1));
    const ConvOperands o(r.op, p, Precision::bf16, false, 109);
    const uint64_t kred = 9 * uint64_t(r.op == ConvOp::forward ? p.C : p.K);
    const uint64_t cols = uint64_t(r.op == ConvOp::forward ? p.K : p.C);
    const uint64_t blocks = (cols + r.tile_n - 1) / r.tile_n, ktiles = (kred + 63) / 64;
    const uint64_t before = emu::mma_sync_count();
    const std::vector<float> got = run_conv(kEmu, Precision::bf16, r.op, p, o.in0, o.in1, o.b);
    const uint64_t mma = emu::mma_sync_count() - before;
    const std::string what =
        std::string(op_label(r.op)) + " C = " + std::to_string(r.C) + ", K = " + std::to_string(r.K);
    EXPECT_EQ(mma, blocks * ktiles * 4 * r.tile_n) << what << ": mma.sync per block and k-tile";
    EXPECT_TRUE(matches_reference(r.op, p, Precision::bf16, o, got, what));
  }
}

// dgrad at stride > 1 runs one GEMM per stride phase over the taps that reach it (kernels/conv2d_tc_igemm.cuh): the
// emulator's mma.sync count is the phases' own, sum over phases of M tiles x k-tiles x 4 x 32 (a 32-wide tile: C/g =
// 16), not the 9-tap reduction over every dx pixel that gathering zeros would take.
TEST(TcConvEmu, StridedDgradRunsOnlyTheTapsOfEachPhase) {
  const Conv2dParams p = ops::conv2d_params({2, 16, 15, 15}, {64, 16, 3, 3}, conv_attrs(2, 2, 1, 1));
  const ConvOp op = ConvOp::backward_data;
  ASSERT_EQ(ops::conv2d_tc_igemm_splits(op, Precision::bf16, p), 1);
  uint64_t want = 0;
  for (int64_t ah = 0; ah < 2; ++ah)
    for (int64_t aw = 0; aw < 2; ++aw) {
      // (h + 1) mod 2 == ah: rows 1, 3, .., 13 (7) for ah = 0, rows 0, 2, .., 14 (8) for ah = 1; taps r with r mod 2 ==
      // ah: 0 and 2, or 1
      const uint64_t rows = 2 * (ah == 0 ? 7 : 8) * (aw == 0 ? 7 : 8), taps = (ah == 0 ? 2 : 1) * (aw == 0 ? 2 : 1);
      want += (rows + 127) / 128 * ((taps * 64 + 63) / 64) * 4 * 32;
    }
  const uint64_t zeros = (2 * 15 * 15 + 127) / 128 * ((9 * 64 + 63) / 64) * 4 * 32;  // every tap at every pixel
  const ConvOperands o(op, p, Precision::bf16, false, 137);
  const uint64_t before = emu::mma_sync_count();
  const std::vector<float> got = run_conv(kEmu, Precision::bf16, op, p, o.in0, o.in1, o.b);
  EXPECT_EQ(emu::mma_sync_count() - before, want) << "against " << zeros << " gathering zeros";
  EXPECT_TRUE(matches_reference(op, p, Precision::bf16, o, got, "dgrad stride 2"));
}

// Bitwise the same in every schedule order, on the cp.async gather and on the element path.
TEST(TcConvEmu, SameBitsInEveryScheduleOrder) {
  const Conv2dParams p = ops::conv2d_params({2, 32, 10, 9}, {40, 32, 3, 3}, conv_attrs(2, 2, 1, 1));
  for (ConvOp op : {ConvOp::forward, ConvOp::backward_data, ConvOp::backward_filter}) {
    const ConvOperands o(op, p, Precision::bf16, false, 79);
    for (size_t offset : {size_t(0), size_t(1)}) {
      const std::vector<float> first =
          test::expect_deterministic(kEmu, std::string(op_label(op)) + " offset " + std::to_string(offset),
                                     [&] { return run_conv(kEmu, Precision::bf16, op, p, o.in0, o.in1, o.b, offset); });
      EXPECT_TRUE(test::all_written(first));
    }
  }
}

// Split-K: bitwise the same in every schedule order (the parts' blocks run in any order; the reduce adds them in part
// order): fprop at TF32 (4 parts), dgrad at BF16 (2 parts over its 4 stride phases), to keep the suite short.
TEST(TcConvEmu, SplitKSameBitsInEveryScheduleOrder) {
  for (const auto& [op, c] : split_cases())
    for (Precision prec : {Precision::tf32, Precision::bf16}) {
      if ((op == ConvOp::forward) != (prec == Precision::tf32)) continue;
      const Conv2dParams p = ops::conv2d_params(c.x, c.w, c.a);
      ASSERT_EQ(ops::conv2d_tc_igemm_splits(op, prec, p), split_parts(prec));
      const ConvOperands o(op, p, prec, false, 131);
      const std::vector<float> first =
          test::expect_deterministic(kEmu, std::string(c.name) + " " + std::string(precision_name(prec)),
                                     [&] { return run_conv(kEmu, prec, op, p, o.in0, o.in1, o.b); });
      EXPECT_TRUE(test::all_written(first));
    }
}

// A missing cp.async.wait_group reads the emulator's poison; a swapped fragment register multiplies the wrong elements.
TEST(TcConvEmu, PlantedBugsAreDetected) {
  const Conv2dParams p = ops::conv2d_params({1, 32, 6, 6}, {24, 32, 3, 3}, conv_attrs(1, 1, 1, 1));  // 5 k-tiles
  const ConvOp op = ConvOp::forward;
  const ConvOperands o(op, p, Precision::bf16, true, 83, false);
  const std::vector<float> want = conv_reference(op, p, Precision::bf16, o);
  const std::vector<float> good = run_conv(kEmu, Precision::bf16, op, p, o.in0, o.in1, o.b);
  ASSERT_EQ(0, std::memcmp(good.data(), want.data(), want.size() * sizeof(float))) << "the unplanted kernel";
  for (ConvRun bug : {ConvRun::planted_missing_wait, ConvRun::planted_wrong_fragment}) {
    const char* what = bug == ConvRun::planted_missing_wait ? "missing cp.async.wait_group" : "wrong fragment index";
    const std::vector<float> got = run_conv(kEmu, Precision::bf16, op, p, o.in0, o.in1, o.b, 0, bug);
    expect_planted_bug_detected(got, want, what);
  }
}

// The shared-memory claims of kernels/conv2d_tc_igemm.cuh on the emulator's memory metrics: the gathered cp.async
// stores and the ldmatrix loads one wavefront per 8 lanes, 64 + kBN / 2 ldmatrix.x4 and (128 + kBN) x 8 16-byte
// copies per k-tile, at every block tile width kBN (32, 64, 128).
// Copies are counted by lanes: where some of a warp's rows fall in the padding, the compiled code reaches the
// cp.async hooks by two paths (with and without the source read), which the metrics count as two requests.
TEST(TcConvEmu, FreeOfBankConflictsWithTheCountsOfItsCostModel) {
  if (!emu::instrumented_build_available())
    GTEST_SKIP() << "needs the checked (instrumented) build of the kernels, which -DFOVEA_SANITIZE=ON and "
                    "-DFOVEA_EMU_CHECKED=OFF builds do not make";
  // C = 64: a k-tile is one filter tap's 64 channels; 3 x 3 with padding 1: zero-filled copies at the borders. K = 32
  // runs the 128 x 32 block tile, K = 64 the 128 x 64 one, K = 128 the 128 x 128 one.
  for (const int64_t K : {32, 64, 128}) {
    const Conv2dParams p = ops::conv2d_params({1, 64, 8, 8}, {K, 64, 3, 3}, conv_attrs(1, 1, 1, 1));
    const ConvOperands o(ConvOp::forward, p, Precision::bf16, false, 89);
    const uint64_t tiles = 9, tile_n = uint64_t(K);
    const std::vector<emu::KernelMetrics> all =
        profiled([&] { run_conv(kEmu, Precision::bf16, ConvOp::forward, p, o.in0, o.in1, o.b); });
    const emu::KernelMetrics* k = kernel_metrics(all, "conv2d_tc_igemm_kernel");
    ASSERT_NE(k, nullptr) << "the convolution kernel was not profiled";
    uint64_t ldmatrix = 0, copies_shared = 0;
    for (const emu::SiteMetrics& s : k->sites) {
      if (s.location.find("kernels/mma.cuh") == std::string::npos || s.space != emu::Space::shared) continue;
      const std::string what = s.location + " " + emu::op_name(s.op);
      EXPECT_EQ(s.bytes_per_lane, 16u) << what;
      EXPECT_EQ(s.wavefronts * 8, s.lanes)
          << what << ": bank conflicts (" << s.per_request(s.wavefronts) << " wavefronts per request)";
      if (s.op == emu::AccessOp::load)
        ldmatrix += s.requests;
      else
        copies_shared += s.lanes;
    }
    // A: 4 warps x 4 k-steps x 4 ldmatrix.x4 and 128 rows x 8 copies; B: 4 x 4 x tile_n / 32 and tile_n x 8.
    EXPECT_EQ(ldmatrix, tiles * (64 + tile_n / 2)) << "ldmatrix.x4 per k-tile, K = " << K;
    EXPECT_EQ(copies_shared, tiles * 8 * (128 + tile_n)) << "16-byte cp.async per k-tile, K = " << K;
  }
}

// wgrad's fast path (BF16/FP16, channels per group multiples of 8, 16-byte aligned: both operands by cp.async in their
// reduction-major layout, fragments by ldmatrix.trans; kernels/conv2d_tc_igemm.cuh) equals its element path (the same
// operands one element off 16-byte alignment) bitwise, on random operands, and the reference of its precision; split-K
// included.
TEST(TcConvEmu, WgradFastPathEqualsTheElementPathBitwise) {
  const ConvOp op = ConvOp::backward_filter;
  for (Precision prec : {Precision::bf16, Precision::fp16})
    for (const ConvCase& c : conv_cases()) {
      if (c.name != "c16_k24_3x3_pad1" && c.name != "c32_k40_3x3_stride2_5_ktiles" &&
          c.name != "c8_k16_3x3_pad1_split_k")
        continue;
      if (prec == Precision::fp16 && c.name != "c16_k24_3x3_pad1") continue;
      const Conv2dParams p = ops::conv2d_params(c.x, c.w, c.a);
      const ConvOperands o(op, p, prec, false, 113);
      const std::string what = c.name + " " + std::string(precision_name(prec));
      const std::vector<float> fast = run_conv(kEmu, prec, op, p, o.in0, o.in1, o.b);
      const std::vector<float> element = run_conv(kEmu, prec, op, p, o.in0, o.in1, o.b, 1);
      ASSERT_TRUE(test::all_written(fast, what.c_str()));
      EXPECT_EQ(0, std::memcmp(fast.data(), element.data(), fast.size() * sizeof(float)))
          << what << ": the fast path differs from the element path";
      EXPECT_TRUE(matches_reference(op, p, prec, o, fast, what));
    }
}

// The planted bugs on wgrad's fast path (its own fragment addressing, ldmatrix.trans): exact operands (multiples of
// 1/8 below 2: FP32 sums exact in any order): the library's kernel equals the BF16 reference bitwise, and the planted
// kernels' FP32 sums (one split, unrounded) must not come close to the FP32 reference. 5 k-tiles: the pipeline wraps.
TEST(TcConvEmu, WgradFastPathPlantedBugsAreDetected) {
  const ConvOp op = ConvOp::backward_filter;
  const Conv2dParams p = ops::conv2d_params({1, 16, 16, 20}, {24, 16, 3, 3}, conv_attrs(1, 1, 1, 1));
  const ConvOperands o(op, p, Precision::bf16, true, 131);
  const std::vector<float> want = conv_reference(op, p, Precision::fp32, o);
  auto bf16 = [](const std::vector<float>& v) {
    std::vector<BFloat16> r(v.size());
    for (size_t i = 0; i < v.size(); ++i) r[i] = BFloat16{float_to_bf16_bits(v[i])};
    return r;
  };
  auto run = [&](int bug) {
    // NHWC x and N P Q K dy from the NCHW-like operands
    std::vector<float> x(o.in0.size()), dy(o.in1.size());
    const Dims xd = x_dims(p), yd = y_dims(p);
    for (int64_t n = 0; n < xd.N; ++n)
      for (int64_t c = 0; c < xd.C; ++c)
        for (int64_t j = 0; j < xd.J; ++j)
          x[size_t((n * xd.J + j) * xd.C + c)] = o.in0[size_t((n * xd.C + c) * xd.J + j)];
    for (int64_t n = 0; n < yd.N; ++n)
      for (int64_t c = 0; c < yd.C; ++c)
        for (int64_t j = 0; j < yd.J; ++j)
          dy[size_t((n * yd.J + j) * yd.C + c)] = o.in1[size_t((n * yd.C + c) * yd.J + j)];
    const DeviceArray<BFloat16> xa = DeviceArray<BFloat16>::upload(bf16(x), kEmu);
    const DeviceArray<BFloat16> ya = DeviceArray<BFloat16>::upload(bf16(dy), kEmu);
    DeviceArray<float> out(want.size(), kEmu);
    out.poison();
    test::conv2d_tc_wgrad_planted_stub(test::kernel_exec(kEmu), bug, p, xa.data(), ya.data(), out.data());
    const std::vector<float> krsc = out.download();  // K x R S x C/g: back to K x C/g x R S
    std::vector<float> r(krsc.size());
    const Dims wd = w_dims(p);
    for (int64_t k = 0; k < wd.N; ++k)
      for (int64_t c = 0; c < wd.C; ++c)
        for (int64_t j = 0; j < wd.J; ++j)
          r[size_t((k * wd.C + c) * wd.J + j)] = krsc[size_t((k * wd.J + j) * wd.C + c)];
    return r;
  };
  const std::vector<float> good = run_conv(kEmu, Precision::bf16, op, p, o.in0, o.in1, o.b);
  const std::vector<float> want16 = conv_reference(op, p, Precision::bf16, o);
  ASSERT_TRUE(test::all_written(good, "unplanted"));
  ASSERT_EQ(0, std::memcmp(good.data(), want16.data(), want16.size() * sizeof(float))) << "the unplanted kernel";
  for (test::TcGemmPlant bug : {test::TcGemmPlant::missing_wait, test::TcGemmPlant::wrong_fragment}) {
    const char* what = bug == test::TcGemmPlant::missing_wait ? "missing cp.async.wait_group" : "wrong fragment index";
    const std::vector<float> got = run(int(bug));
    expect_planted_bug_detected(got, want, what);
  }
}

// On the emulator's metrics the fast wgrad kernel (conv2d_tc_wgrad_kernel<P, true>) is the one that runs, its
// ldmatrix.trans loads and cp.async stores take one wavefront per 8 lanes, 128 ldmatrix.x4 and 2 x 64 x 16 16-byte
// copies per k-tile. The shape (1 x 1, K = C = 128, N P Q = 128) has every copy inside: where some lanes' chunks fall
// past K, R S C or the image, the compiled code reaches the cp.async hooks by two paths and the metrics see two partial
// requests whose lanes no longer form whole 8-lane phases (one instruction on the GPU).
TEST(TcConvEmu, WgradFastPathFreeOfBankConflicts) {
  if (!emu::instrumented_build_available())
    GTEST_SKIP() << "needs the checked (instrumented) build of the kernels, which -DFOVEA_SANITIZE=ON and "
                    "-DFOVEA_EMU_CHECKED=OFF builds do not make";
  const ConvOp op = ConvOp::backward_filter;
  const Conv2dParams p = ops::conv2d_params({2, 128, 8, 8}, {128, 128, 1, 1}, {});
  const ConvOperands o(op, p, Precision::bf16, false, 127);
  std::vector<float> got;
  const std::vector<emu::KernelMetrics> all =
      profiled([&] { got = run_conv(kEmu, Precision::bf16, op, p, o.in0, o.in1, o.b); });
  const emu::KernelMetrics* k = nullptr;
  std::string names;
  for (const emu::KernelMetrics& m : all) {
    names += m.name + "; ";
    if (m.name.find("conv2d_tc_wgrad_kernel<") != std::string::npos && m.name.find(", true>") != std::string::npos)
      k = &m;
  }
  ASSERT_NE(k, nullptr) << "the fast wgrad kernel did not run (ran: " << names << ")";
  uint64_t ldmatrix = 0, copies_shared = 0;
  for (const emu::SiteMetrics& s : k->sites) {
    if (s.location.find("kernels/mma.cuh") == std::string::npos || s.space != emu::Space::shared) continue;
    const std::string site = s.location + " " + emu::op_name(s.op);
    EXPECT_EQ(s.bytes_per_lane, 16u) << site;
    EXPECT_EQ(s.wavefronts * 8, s.lanes) << site << ": bank conflicts (" << s.per_request(s.wavefronts)
                                         << " wavefronts per request)";
    if (s.op == emu::AccessOp::load)
      ldmatrix += s.requests;
    else
      copies_shared += s.lanes;
  }
  const uint64_t ktiles = 2;  // N P Q = 128 reduction rows, over all splits
  EXPECT_EQ(ldmatrix, ktiles * 128) << "ldmatrix.x4 per k-tile";
  EXPECT_EQ(copies_shared, ktiles * 2 * 64 * 16) << "16-byte cp.async per k-tile";
  EXPECT_TRUE(matches_reference(op, p, Precision::bf16, o, got, "wgrad 1x1 c128 k128"));
}

// The simple kernel beside the implicit-GEMM one (im2col + the tensor-core GEMM, FP32 NCHW) equals the reference.
class TcConvIm2col : public ::testing::TestWithParam<Device> {};
TEST_P(TcConvIm2col, ExactOperandsEqualTheReferenceBitwise) {
  FOVEA_SKIP_IF_NO_DEVICE(GetParam());
  const Device dev = GetParam();
  // c64_k8_3x3_pad1: the forward GEMM (M = 8, N = 16, K = 576: 18 TF32 k-tiles) splits K, its partials carved
  // from the same workspace as the column matrix.
  std::vector<ConvCase> cases;
  for (const ConvCase& c : conv_cases())
    if (c.name == "c3_k5_3x3_stride2x1_pad1x2" || c.name == "c16_k8_groups2_dil2") cases.push_back(c);
  cases.push_back({"c64_k8_3x3_pad1", {1, 64, 4, 4}, {8, 64, 3, 3}, conv_attrs(1, 1, 1, 1)});
  ASSERT_EQ(ops::tc_gemm_multistage_splits(Precision::tf32, sgemm_params(Trans::N, Trans::N, 8, 16, 576)), 2);
  for (ConvOp op : {ConvOp::forward, ConvOp::backward_data, ConvOp::backward_filter})
    for (Precision prec : {Precision::tf32, Precision::bf16, Precision::fp16})
      for (const ConvCase& c : cases) {
        const Conv2dParams p = ops::conv2d_params(c.x, c.w, c.a);
        const ConvOperands o(op, p, prec, true, 97);
        const std::vector<float> want = conv_reference(op, p, prec, o);
        Workspace ws(dev);
        const Exec ex = test::kernel_exec(dev, &ws);
        const DeviceArray<float> a = DeviceArray<float>::upload(o.in0, dev), b = DeviceArray<float>::upload(o.in1, dev);
        const DeviceArray<float> bias = DeviceArray<float>::upload(o.b, dev);
        DeviceArray<float> out(want.size(), dev);
        out.poison();
        if (op == ConvOp::forward)
          ops::conv2d_tc_im2col_forward_stub(ex, prec, p, a.data(), b.data(), bias.data(), out.data());
        else if (op == ConvOp::backward_data)
          ops::conv2d_tc_im2col_backward_data_stub(ex, prec, p, a.data(), b.data(), out.data());
        else
          ops::conv2d_tc_im2col_backward_filter_stub(ex, prec, p, a.data(), b.data(), out.data());
        const std::vector<float> got = out.download();
        const std::string what = std::string(op_label(op)) + " " + c.name + " " + std::string(precision_name(prec));
        ASSERT_TRUE(test::all_written(got, what.c_str()));
        EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float))) << what << ": not bitwise";
      }
}
INSTANTIATE_TEST_SUITE_P(Devices, TcConvIm2col, test::KernelDevices(), test::DeviceName);

// The convolutions of ResNet-20 and ResNet-9 on CIFAR-10 (32 x 32 inputs; batch 2 to keep the emulator to minutes),
// fprop, dgrad and wgrad at BF16 and TF32, against the reference of the precision. ctest label slow (the SLOW_FILTER
// of tests/CMakeLists.txt): not in CI; run by hand in several schedule orders.
class TcConvSlow : public ::testing::TestWithParam<Device> {};
TEST_P(TcConvSlow, ResNetCifarShapes) {
  FOVEA_SKIP_IF_NO_DEVICE(GetParam());
  struct Layer {
    const char* name;
    int64_t C, K, HW, R, stride;
  };
  const Layer layers[] = {
      {"resnet20_stem_3_16", 3, 16, 32, 3, 1}, {"resnet20_16_16", 16, 16, 32, 3, 1},
      {"resnet20_16_32_s2", 16, 32, 32, 3, 2}, {"resnet20_shortcut_16_32_1x1_s2", 16, 32, 32, 1, 2},
      {"resnet20_32_32", 32, 32, 16, 3, 1},    {"resnet20_32_64_s2", 32, 64, 16, 3, 2},
      {"resnet20_64_64", 64, 64, 8, 3, 1},     {"resnet9_prep_3_64", 3, 64, 32, 3, 1},
      {"resnet9_64_128", 64, 128, 32, 3, 1},   {"resnet9_128_128", 128, 128, 16, 3, 1},
      {"resnet9_128_256", 128, 256, 16, 3, 1}, {"resnet9_256_512", 256, 512, 8, 3, 1},
      {"resnet9_512_512", 512, 512, 4, 3, 1},
  };
  for (const Layer& l : layers) {
    const int64_t pad = l.R / 2;
    const Conv2dParams p =
        ops::conv2d_params({2, l.C, l.HW, l.HW}, {l.K, l.C, l.R, l.R}, conv_attrs(l.stride, l.stride, pad, pad));
    for (ConvOp op : {ConvOp::forward, ConvOp::backward_data, ConvOp::backward_filter})
      for (Precision prec : {Precision::bf16, Precision::tf32}) {
        const ConvOperands o(op, p, prec, false, 101);
        const std::string what = std::string(op_label(op)) + " " + l.name + " " + std::string(precision_name(prec));
        EXPECT_TRUE(matches_reference(op, p, prec, o, run_conv(GetParam(), prec, op, p, o.in0, o.in1, o.b), what));
      }
  }
}
INSTANTIATE_TEST_SUITE_P(Devices, TcConvSlow, test::KernelDevices(), test::DeviceName);

}  // namespace
}  // namespace fovea
