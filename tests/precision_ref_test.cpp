// The reference at the tensor-core precisions (cpu_reference/gemm.h; conv2d.h, linear.h overloads): GEMM and
// conv2d fprop, dgrad, wgrad at tf32, bf16, fp16, checked element by element
//   - against direct loops in double on the rounded operands (independent of BLAS and im2col): the reference
//     may differ only by FP32 accumulation (gamma_K sum|terms|) and the output rounding;
//   - against the FP32 reference on the unrounded operands, within the bound derived in cpu_reference/gemm.h;
//   - against PyTorch in float64 on operands PyTorch rounds itself (tests/precision_ref_test.py), when
//     /usr/bin/python3 has torch.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "core/float_formats.h"
#include "cpu_reference/conv2d.h"
#include "cpu_reference/gemm.h"
#include "cpu_reference/linear.h"
#include "layers/ops/conv_shapes.h"
#include "tests/test_util.h"

namespace fovea {
namespace {

constexpr Precision kPrecisions[] = {Precision::tf32, Precision::bf16, Precision::fp16};
constexpr double kU = 0x1p-24;  // FP32 unit roundoff

// Unit roundoff of the operand and output formats.
double u_in(Precision p) {
  return p == Precision::bf16 ? 0x1p-8 : p == Precision::fp32 ? 0.0 : 0x1p-11;
}
double u_out(Precision p) {
  return p == Precision::bf16 ? 0x1p-8 : p == Precision::fp16 ? 0x1p-11 : 0.0;
}
double gamma(int64_t k) {
  return double(k) * kU / (1.0 - double(k) * kU);
}

std::vector<float> rounded(Precision p, const std::vector<float>& x) {
  std::vector<float> r(x.size());
  ref::round_operands(p, x.data(), int64_t(x.size()), r.data());
  return r;
}

// Element-wise checks with the first failures reported.
struct Checker {
  std::string what;
  int bad = 0;
  void expect_within(size_t i, double got, double want, double tol) {
    if (!(std::fabs(got - want) <= tol) && bad++ < 5)
      ADD_FAILURE() << what << " element " << i << ": got " << got << " want " << want << " (tolerance " << tol << ")";
  }
  void expect_stored(Precision p, size_t i, float got) {
    if (round_output(p, got) != got && bad++ < 5)
      ADD_FAILURE() << what << " element " << i << ": " << got << " is not a value of the output type";
  }
};

// The results of an op as exact values in double from direct loops, with sum |terms| per element.
struct Exact {
  std::vector<double> value, abs;
};

// Against the exact result on the rounded operands: FP32 accumulation of `terms` products, then the output
// rounding: |got - y| <= gamma_terms S + u_o (|y| + gamma_terms S), plus FP32's own output rounding.
void check_against_exact(Precision p, const std::vector<float>& got, const Exact& e, int64_t terms,
                         const std::string& what) {
  Checker c{what};
  ASSERT_EQ(got.size(), e.value.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    const double acc = gamma(terms) * e.abs[i] + kU * std::fabs(e.value[i]);
    c.expect_within(i, got[i], e.value[i], acc + u_out(p) * (std::fabs(e.value[i]) + acc) * (1 + 2 * u_out(p)));
    c.expect_stored(p, i, got[i]);
  }
  EXPECT_EQ(c.bad, 0) << what;
}

// Against the FP32 reference on the unrounded operands (cpu_reference/gemm.h's bound, alpha = 1, beta = 0, no
// bias); S = sum |terms| of the unrounded operands.
void check_against_fp32(Precision p, const std::vector<float>& got, const std::vector<float>& fp32,
                        const std::vector<double>& S, int64_t terms, const std::string& what) {
  Checker c{what};
  const double up = u_in(p), uo = u_out(p);
  for (size_t i = 0; i < got.size(); ++i) {
    const double bound = ((2 * up + up * up) + 2 * gamma(terms) * (1 + up) * (1 + up)) * S[i] +
                         uo * std::fabs(got[i]) / (1 - uo) + kU * std::fabs(fp32[i]);
    c.expect_within(i, got[i], fp32[i], bound);
  }
  EXPECT_EQ(c.bad, 0) << what;
}

// ------------------------------------------------------------------ GEMM
struct GemmCase {
  const char* name;
  bool ta, tb;
  int64_t M, N, K;
  float alpha, beta;
  int64_t pad;
};
const GemmCase kGemmCases[] = {
    {"1x1x1", false, false, 1, 1, 1, 1.0f, 0.0f, 0},         {"7x5x3_alpha_beta", false, true, 7, 5, 3, 0.5f, -2.0f, 0},
    {"33x17x65_tn", true, false, 33, 17, 65, 1.0f, 0.0f, 2}, {"64x64x64_tt", true, true, 64, 64, 64, 1.0f, 1.0f, 0},
    {"1x200x17", false, false, 1, 200, 17, 1.0f, 0.0f, 1},   {"130x67x300", false, true, 130, 67, 300, 1.0f, 0.0f, 3},
};

struct GemmData {
  std::vector<float> A, B, C;
  int64_t lda, ldb, ldc;
  GemmData(const GemmCase& g, uint64_t seed) {
    lda = (g.ta ? g.M : g.K) + g.pad, ldb = (g.tb ? g.K : g.N) + g.pad, ldc = g.N + g.pad;
    A = test::random_vector(size_t((g.ta ? g.K : g.M) * lda), seed);
    B = test::random_vector(size_t((g.tb ? g.N : g.K) * ldb), seed + 1);
    C = test::random_vector(size_t(g.M * ldc), seed + 2);
  }
  float a(const GemmCase& g, int64_t m, int64_t k, const std::vector<float>& v) const {
    return g.ta ? v[k * lda + m] : v[m * lda + k];
  }
  float b(const GemmCase& g, int64_t k, int64_t n, const std::vector<float>& v) const {
    return g.tb ? v[n * ldb + k] : v[k * ldb + n];
  }
};

TEST(PrecisionRef, GemmMatchesDirectLoopOnRoundedOperands) {
  for (Precision p : kPrecisions)
    for (const GemmCase& g : kGemmCases) {
      const GemmData d(g, 3);
      std::vector<float> C = d.C;
      ref::gemm(p, g.ta, g.tb, g.M, g.N, g.K, g.alpha, d.A.data(), d.lda, d.B.data(), d.ldb, g.beta, C.data(), d.ldc);
      const std::vector<float> Ar = rounded(p, d.A), Br = rounded(p, d.B);
      Exact e;
      std::vector<float> got;
      for (int64_t m = 0; m < g.M; ++m)
        for (int64_t n = 0; n < g.N; ++n) {
          double s = 0, a = 0;
          for (int64_t k = 0; k < g.K; ++k) {
            const double t = double(d.a(g, m, k, Ar)) * double(d.b(g, k, n, Br));
            s += t, a += std::fabs(t);
          }
          const double c = g.beta == 0.0f ? 0.0 : double(g.beta) * round_output(p, d.C[m * d.ldc + n]);
          e.value.push_back(g.alpha * s + c);
          e.abs.push_back(std::fabs(g.alpha) * a + 2 * std::fabs(c) + std::fabs(g.alpha * s));
          got.push_back(C[m * d.ldc + n]);
        }
      check_against_exact(p, got, e, g.K + 2, std::string(precision_name(p)) + " gemm " + g.name);
      // Padding columns are not written.
      for (int64_t m = 0; m < g.M; ++m)
        for (int64_t n = g.N; n < d.ldc; ++n) EXPECT_EQ(C[m * d.ldc + n], d.C[m * d.ldc + n]) << g.name;
    }
}

TEST(PrecisionRef, GemmWithinDerivedBoundOfFp32) {
  for (Precision p : kPrecisions)
    for (const GemmCase& g : kGemmCases) {
      const GemmData d(g, 5);
      std::vector<float> C(d.C.size(), 0.0f), C32(d.C.size(), 0.0f);
      ref::gemm(p, g.ta, g.tb, g.M, g.N, g.K, 1.0f, d.A.data(), d.lda, d.B.data(), d.ldb, 0.0f, C.data(), d.ldc);
      ref::gemm(Precision::fp32, g.ta, g.tb, g.M, g.N, g.K, 1.0f, d.A.data(), d.lda, d.B.data(), d.ldb, 0.0f,
                C32.data(), d.ldc);
      std::vector<float> got, want;
      std::vector<double> S;
      for (int64_t m = 0; m < g.M; ++m)
        for (int64_t n = 0; n < g.N; ++n) {
          double a = 0;
          for (int64_t k = 0; k < g.K; ++k) a += std::fabs(double(d.a(g, m, k, d.A)) * double(d.b(g, k, n, d.B)));
          S.push_back(a), got.push_back(C[m * d.ldc + n]), want.push_back(C32[m * d.ldc + n]);
        }
      check_against_fp32(p, got, want, S, g.K, std::string(precision_name(p)) + " gemm vs fp32 " + g.name);
    }
}

// The rounding modes of the operands and the output, on values where the modes disagree.
TEST(PrecisionRef, OperandAndOutputRounding) {
  auto one = [](Precision p, float a, float b) {
    float c = 0;
    ref::gemm(p, false, false, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c, 1);
    return c;
  };
  const float tie11 = 1.0f + 0x1p-11f;  // halfway between TF32/FP16 neighbours 1 and 1 + 2^-10
  EXPECT_EQ(one(Precision::tf32, tie11, 1.0f), 1.0f + 0x1p-10f);    // cvt.rna: ties away from zero
  EXPECT_EQ(one(Precision::tf32, -tie11, 1.0f), -1.0f - 0x1p-10f);  // (also for negative values)
  EXPECT_EQ(one(Precision::fp16, tie11, 1.0f), 1.0f);               // FP16: ties to even
  EXPECT_EQ(one(Precision::bf16, 1.0f + 0x1p-8f, 1.0f), 1.0f);      // BF16: ties to even
  EXPECT_EQ(one(Precision::bf16, 1.0f + 0x1.8p-8f, 1.0f), 1.0f + 0x1p-7f);
  // Products exact, then an FP32 output for tf32 (all 21 bits of (1 + 2^-10)^2 kept), rounded for bf16.
  EXPECT_EQ(one(Precision::tf32, 1.0f + 0x1p-10f, 1.0f + 0x1p-10f), 1.0f + 0x1p-9f + 0x1p-20f);
  EXPECT_EQ(one(Precision::bf16, 1.0f + 0x1p-7f, 1.0f + 0x1p-7f), 1.0f + 0x1p-6f);
  EXPECT_TRUE(std::isinf(one(Precision::fp16, 70000.0f, 1.0f)));  // FP16 operand overflow
  EXPECT_EQ(one(Precision::fp16, 256.0f, 256.0f), INFINITY);      // FP16 output overflow (65536 > 65504)
  EXPECT_EQ(one(Precision::tf32, 256.0f, 256.0f), 65536.0f);
  EXPECT_TRUE(test::throws_error(
      [] {
        float x = 0;
        ref::gemm(Precision::bf16, false, false, 2, 2, 2, 1.0f, &x, 1, &x, 2, 0.0f, &x, 2);
      },
      {"ref::gemm (bf16)", "lda"}));
  EXPECT_TRUE(test::throws_error(
      [] {
        float x = 0;
        ref::gemm(Precision::tf32, false, false, 1, 1, 1, 1.0f, nullptr, 1, &x, 1, 0.0f, &x, 1);
      },
      {"ref::gemm (tf32)", "'A' is null"}));
}

TEST(PrecisionRef, LinearIsTheGemm) {
  LinearParams lp;
  lp.N = 5, lp.in_features = 37, lp.out_features = 9;
  const std::vector<float> x = test::random_vector(5 * 37, 1), w = test::random_vector(9 * 37, 2),
                           b = test::random_vector(9, 3), dy = test::random_vector(5 * 9, 4);
  for (Precision p : kPrecisions) {
    std::vector<float> y(5 * 9), want(5 * 9), dx(5 * 37), dx_want(5 * 37), dw(9 * 37), dw_want(9 * 37);
    ref::linear_forward(lp, p, x.data(), w.data(), b.data(), y.data());
    for (int n = 0; n < 5; ++n)
      for (int o = 0; o < 9; ++o) want[n * 9 + o] = round_output(p, b[o]);
    ref::gemm(p, false, true, 5, 9, 37, 1.0f, x.data(), 37, w.data(), 37, 1.0f, want.data(), 9);
    EXPECT_EQ(y, want) << precision_name(p);
    ref::linear_backward_data(lp, p, dy.data(), w.data(), dx.data());
    ref::gemm(p, false, false, 5, 37, 9, 1.0f, dy.data(), 9, w.data(), 37, 0.0f, dx_want.data(), 37);
    EXPECT_EQ(dx, dx_want) << precision_name(p);
    ref::linear_backward_weight(lp, p, x.data(), dy.data(), dw.data());
    ref::gemm(p, true, false, 9, 37, 5, 1.0f, dy.data(), 9, x.data(), 37, 0.0f, dw_want.data(), 37);
    EXPECT_EQ(dw, dw_want) << precision_name(p);
  }
}

// ------------------------------------------------------------------ conv2d
enum class ConvOp { fprop, dgrad, wgrad };
const char* op_name(ConvOp op) {
  return op == ConvOp::fprop ? "fprop" : op == ConvOp::dgrad ? "dgrad" : "wgrad";
}

// Direct loops in double: for each output element, the exact sum of its terms and of their absolute values.
// x [N,C,H,W], w [K,C/G,R,S], y [N,K,P,Q]; (in0, in1) = (x, w), (dy, w), (x, dy) for fprop, dgrad, wgrad.
Exact direct_conv(const Conv2dParams& p, ConvOp op, const std::vector<float>& in0, const std::vector<float>& in1) {
  const int64_t P = p.P(), Q = p.Q(), Cg = p.C / p.groups, Kg = p.K / p.groups;
  const size_t out = size_t(op == ConvOp::fprop ? p.y_size() : op == ConvOp::dgrad ? p.x_size() : p.w_size());
  Exact e{std::vector<double>(out, 0.0), std::vector<double>(out, 0.0)};
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t k = 0; k < p.K; ++k)
      for (int64_t oh = 0; oh < P; ++oh)
        for (int64_t ow = 0; ow < Q; ++ow)
          for (int64_t cg = 0; cg < Cg; ++cg)
            for (int64_t r = 0; r < p.R; ++r)
              for (int64_t s = 0; s < p.S; ++s) {
                const int64_t c = (k / Kg) * Cg + cg;
                const int64_t h = oh * p.stride_h - p.pad_h + r * p.dil_h, w = ow * p.stride_w - p.pad_w + s * p.dil_w;
                if (h < 0 || h >= p.H || w < 0 || w >= p.W) continue;
                const size_t xi = size_t(((n * p.C + c) * p.H + h) * p.W + w);
                const size_t wi = size_t(((k * Cg + cg) * p.R + r) * p.S + s);
                const size_t yi = size_t(((n * p.K + k) * P + oh) * Q + ow);
                double t;
                size_t o;
                if (op == ConvOp::fprop)
                  t = double(in0[xi]) * double(in1[wi]), o = yi;
                else if (op == ConvOp::dgrad)
                  t = double(in0[yi]) * double(in1[wi]), o = xi;
                else
                  t = double(in0[xi]) * double(in1[yi]), o = wi;
                e.value[o] += t, e.abs[o] += std::fabs(t);
              }
  return e;
}

// Terms summed into one output element, at most.
int64_t conv_terms(const Conv2dParams& p, ConvOp op) {
  const int64_t crs = p.C / p.groups * p.R * p.S;
  return op == ConvOp::fprop ? crs : op == ConvOp::dgrad ? p.K / p.groups * p.R * p.S : p.N * p.P() * p.Q();
}

struct ConvData {
  std::vector<float> in0, in1;
  ConvData(const Conv2dParams& p, ConvOp op, uint64_t seed) {
    const int64_t n0 = op == ConvOp::dgrad ? p.y_size() : p.x_size(),
                  n1 = op == ConvOp::wgrad ? p.y_size() : p.w_size();
    in0 = test::random_vector(size_t(n0), seed), in1 = test::random_vector(size_t(n1), seed + 1);
  }
};

std::vector<float> run_conv(const Conv2dParams& p, ConvOp op, Precision prec, const ConvData& d) {
  std::vector<float> out(size_t(op == ConvOp::fprop ? p.y_size() : op == ConvOp::dgrad ? p.x_size() : p.w_size()));
  test::poison(out);
  if (op == ConvOp::fprop) ref::conv2d_forward(p, prec, d.in0.data(), d.in1.data(), nullptr, out.data());
  if (op == ConvOp::dgrad) ref::conv2d_backward_data(p, prec, d.in0.data(), d.in1.data(), out.data());
  if (op == ConvOp::wgrad) ref::conv2d_backward_filter(p, prec, d.in0.data(), d.in1.data(), out.data());
  return out;
}

class PrecisionRefConv : public ::testing::TestWithParam<shapes::ConvShape> {};

TEST_P(PrecisionRefConv, MatchesDirectLoopsAndBoundOfFp32) {
  const Conv2dParams& p = GetParam().p;
  for (ConvOp op : {ConvOp::fprop, ConvOp::dgrad, ConvOp::wgrad}) {
    const ConvData d(p, op, 11);
    const std::vector<float> fp32 = run_conv(p, op, Precision::fp32, d);
    const Exact unrounded = direct_conv(p, op, d.in0, d.in1);
    for (Precision prec : kPrecisions) {
      const std::string what = std::string(precision_name(prec)) + " " + op_name(op) + " " + GetParam().name;
      const std::vector<float> got = run_conv(p, op, prec, d);
      ASSERT_TRUE(test::all_written(got, what.c_str()));
      check_against_exact(prec, got, direct_conv(p, op, rounded(prec, d.in0), rounded(prec, d.in1)), conv_terms(p, op),
                          what);
      check_against_fp32(prec, got, fp32, unrounded.abs, conv_terms(p, op), what + " vs fp32");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(EdgeShapes, PrecisionRefConv, ::testing::ValuesIn(shapes::conv_edge_shapes()),
                         [](const ::testing::TestParamInfo<shapes::ConvShape>& info) { return info.param.name; });

TEST(PrecisionRef, ConvBiasIsAValueOfTheOutputType) {
  const Conv2dParams p = shapes::conv_params(1, 2, 4, 4, 3, 1, 1);
  const std::vector<float> x(size_t(p.x_size()), 0.0f), w(size_t(p.w_size()), 0.0f);
  const std::vector<float> b = {1.0f + 0x1p-9f, -3.0f, 0.3f};
  for (Precision prec : kPrecisions) {
    std::vector<float> y(size_t(p.y_size()));
    ref::conv2d_forward(p, prec, x.data(), w.data(), b.data(), y.data());
    for (int64_t k = 0; k < 3; ++k)
      EXPECT_EQ(y[size_t(k * 16)], round_output(prec, b[size_t(k)])) << precision_name(prec);
  }
}

// ------------------------------------------------------------------ PyTorch
std::string case_id(size_t i) {
  std::string id = "case";
  id += std::to_string(i);  // (not "case" + std::to_string(i): g++ 12 warns -Wrestrict on that)
  return id;
}

TEST(PrecisionRef, MatchesPyTorchInDouble) {
  const std::string python = "/usr/bin/python3";
  if (std::system((python + " -c 'import torch, numpy' > /dev/null 2>&1").c_str()) != 0)
    GTEST_SKIP() << python << " with torch and numpy is not installed (python3-torch): PyTorch check skipped";
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("fovea_precision_ref_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto write = [&](const std::string& name, const std::vector<float>& v) {
    std::ofstream f(dir / name, std::ios::binary);
    f.write(reinterpret_cast<const char*>(v.data()), std::streamsize(v.size() * sizeof(float)));
  };
  auto read = [&](const std::string& name, size_t n) {
    std::vector<double> v(n);
    std::ifstream f(dir / name, std::ios::binary);
    f.read(reinterpret_cast<char*>(v.data()), std::streamsize(n * sizeof(double)));
    EXPECT_EQ(size_t(f.gcount()), n * sizeof(double)) << name;
    return v;
  };
  struct Case {
    std::string id, what;
    Precision prec;
    std::vector<float> got;
    int64_t terms;
  };
  std::vector<Case> cases;
  std::ofstream manifest(dir / "manifest.txt");
  const std::vector<shapes::ConvShape> shapes = shapes::conv_edge_shapes();
  const char* picks[] = {"odd_3x3_pad1", "stride2_3x3_pad1", "dilation2_stride2", "groups4_stride2", "depthwise_3x3"};
  for (Precision prec : kPrecisions) {
    for (int64_t M : {17, 64}) {  // row-major M x 33 times 33 x (M + 3)
      const int64_t N = M + 3, K = 33;
      const std::string id = case_id(cases.size());
      const std::vector<float> A = test::random_vector(size_t(M * K), 21), B = test::random_vector(size_t(K * N), 22);
      std::vector<float> C(size_t(M * N));
      ref::gemm(prec, false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, C.data(), N);
      write(id + "_0.bin", A), write(id + "_1.bin", B);
      manifest << id << " gemm " << precision_name(prec) << " " << M << " " << N << " " << K << "\n";
      cases.push_back({id, "gemm M=" + std::to_string(M), prec, C, K});
    }
    for (const char* pick : picks) {
      const shapes::ConvShape& s =
          *std::find_if(shapes.begin(), shapes.end(), [&](const auto& c) { return c.name == pick; });
      const Conv2dParams& p = s.p;
      for (ConvOp op : {ConvOp::fprop, ConvOp::dgrad, ConvOp::wgrad}) {
        const std::string id = case_id(cases.size());
        const ConvData d(p, op, 31);
        write(id + "_0.bin", d.in0), write(id + "_1.bin", d.in1);
        manifest << id << " " << op_name(op) << " " << precision_name(prec) << " " << p.N << " " << p.C << " " << p.H
                 << " " << p.W << " " << p.K << " " << p.R << " " << p.S << " " << p.stride_h << " " << p.pad_h << " "
                 << p.dil_h << " " << p.groups << "\n";
        cases.push_back(
            {id, std::string(op_name(op)) + " " + s.name, prec, run_conv(p, op, prec, d), conv_terms(p, op)});
      }
    }
  }
  manifest.close();
  const std::string cmd = python + " " + FOVEA_SOURCE_DIR "/tests/precision_ref_test.py " +
                          (dir / "manifest.txt").string() + " " + dir.string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  for (const Case& c : cases) {
    const Exact e{read(c.id + "_out.bin", c.got.size()), read(c.id + "_abs.bin", c.got.size())};
    check_against_exact(c.prec, c.got, e, c.terms, std::string(precision_name(c.prec)) + " " + c.what + " vs PyTorch");
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace fovea
