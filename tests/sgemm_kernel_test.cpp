// SGEMM kernels (kernels/sgemm.cu): sgemm_simple and sgemm_tiled against a double-precision loop, for
// all four transposition forms, edge sizes (1, odd, not multiples of the tiles, K = 0), alpha/beta,
// padded leading dimensions, strided batches, misaligned (scalar) paths, on every kernel device.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "layers/ops/gemm.h"
#include "tests/kernel_test_util.h"
#include "tests/test_util.h"

namespace fovea {
namespace {

using test::DeviceArray;

constexpr float kPadding = 12345.0f;  // value of C's elements outside the product (must survive)

struct GemmCase {
  Device dev;
  std::string name;
  int64_t M, N, K;
  float alpha, beta;
  int64_t pad = 0;    // extra elements per row of every operand
  int64_t batch = 1;  // batch entries, spaced by their size plus 4 elements
};

std::vector<GemmCase> shapes() {
  return {
      {kEmu, "1x1x1", 1, 1, 1, 1.0f, 0.0f},
      {kEmu, "7x5x3_alpha_beta", 7, 5, 3, 0.5f, -2.0f},
      {kEmu, "64x64x64", 64, 64, 64, 1.0f, 0.0f},
      {kEmu, "65x63x129_beta1", 65, 63, 129, 1.0f, 1.0f},
      {kEmu, "128x128x8", 128, 128, 8, 1.0f, 0.0f},
      {kEmu, "130x257x33_padded", 130, 257, 33, -1.5f, 0.25f, 3},
      {kEmu, "33x1x100", 33, 1, 100, 1.0f, 0.0f},
      {kEmu, "1x200x17", 1, 200, 17, 2.0f, 0.0f},
      {kEmu, "12x20x16_vec", 12, 20, 16, 1.0f, 0.5f},
      {kEmu, "k0_scales_c", 9, 6, 0, 1.0f, 0.5f},
      {kEmu, "k0_beta0_zeros", 9, 6, 0, 1.0f, 0.0f},
      {kEmu, "batch3_31x17x9", 31, 17, 9, 1.0f, 1.0f, 1, 3},
      // 2 x 2 x 33 big tiles: enough blocks for the 128x128 tile, with partial edges.
      {kEmu, "batch33_129x130x20_big_tile", 129, 130, 20, 1.0f, 0.0f, 0, 33},
  };
}

// Every shape on the devices of test::KernelDevices().
std::vector<GemmCase> cases() {
  std::vector<GemmCase> v;
  for (Device dev : {kEmu, kCUDA})
    for (GemmCase c : shapes()) {
      c.dev = dev;
      v.push_back(c);
    }
  return v;
}
std::string case_label(const GemmCase& c) {
  return std::string(c.dev.type == DeviceType::emu ? "emu_" : "cuda_") + c.name;
}
void PrintTo(const GemmCase& c, std::ostream* os) {
  *os << case_label(c);
}

SgemmParams params_for(const GemmCase& c, Trans ta, Trans tb) {
  SgemmParams g = sgemm_params(ta, tb, c.M, c.N, c.K, c.alpha, c.beta);
  g.lda += c.pad, g.ldb += c.pad, g.ldc += c.pad;
  g.batch = c.batch;
  g.stride_a = g.a_rows() * g.lda + 4, g.stride_b = g.b_rows() * g.ldb + 4, g.stride_c = g.M * g.ldc + 4;
  return g;
}

// Element (row, col) of op(X) for batch entry b.
float op_at(const std::vector<float>& X, Trans t, int64_t ld, int64_t stride, int64_t b, int64_t row, int64_t col) {
  return t == Trans::N ? X[b * stride + row * ld + col] : X[b * stride + col * ld + row];
}

// The oracle: sums in double, then alpha * sum + beta * C (C not read when beta == 0).
std::vector<float> host_gemm(const SgemmParams& g, const std::vector<float>& A, const std::vector<float>& B,
                             std::vector<float> C) {
  for (int64_t b = 0; b < g.batch; ++b)
    for (int64_t m = 0; m < g.M; ++m)
      for (int64_t n = 0; n < g.N; ++n) {
        double acc = 0.0;
        for (int64_t k = 0; k < g.K; ++k)
          acc += double(op_at(A, g.trans_a, g.lda, g.stride_a, b, m, k)) *
                 double(op_at(B, g.trans_b, g.ldb, g.stride_b, b, k, n));
        float& c = C[b * g.stride_c + m * g.ldc + n];
        c = float(g.alpha * acc + (g.beta == 0.0f ? 0.0 : double(g.beta) * c));
      }
  return C;
}

// Operand buffers: A and B random; C random inside the product (NaN when beta == 0, so a read of C
// shows), kPadding outside it. `offset` floats before every operand (1: misaligned).
struct Operands {
  std::vector<float> A, B, C;
  Operands(const SgemmParams& g, uint64_t seed) {
    A = test::random_vector(size_t(std::max<int64_t>(g.a_extent(), 1)), seed);
    B = test::random_vector(size_t(std::max<int64_t>(g.b_extent(), 1)), seed + 1);
    const std::vector<float> c = test::random_vector(size_t(std::max<int64_t>(g.c_extent(), 1)), seed + 2);
    C.assign(c.size(), kPadding);
    for (int64_t b = 0; b < g.batch; ++b)
      for (int64_t m = 0; m < g.M; ++m)
        for (int64_t n = 0; n < g.N; ++n) {
          const int64_t i = b * g.stride_c + m * g.ldc + n;
          C[i] = g.beta == 0.0f ? std::nanf("") : c[i];
        }
  }
};

std::vector<float> run(Device dev, bool tiled, const SgemmParams& g, const Operands& o, size_t offset) {
  auto put = [&](const std::vector<float>& h) {
    DeviceArray<float> d(h.size() + offset, dev);
    d.poison();
    copy_bytes(d.data() + offset, dev, h.data(), kCPU, h.size() * sizeof(float));
    return d;
  };
  DeviceArray<float> A = put(o.A), B = put(o.B), C = put(o.C);
  if (tiled)
    ops::sgemm_stub(test::kernel_exec(dev), GemmAlgo::tiled, g, A.data() + offset, B.data() + offset,
                    C.data() + offset);
  else
    ops::sgemm_stub(test::kernel_exec(dev), GemmAlgo::simple, g, A.data() + offset, B.data() + offset,
                    C.data() + offset);
  std::vector<float> out(o.C.size());
  copy_bytes(out.data(), kCPU, C.data() + offset, dev, out.size() * sizeof(float));
  return out;
}

// Inside the product: finite and within 1e-5 of the oracle; outside: untouched.
::testing::AssertionResult check(const SgemmParams& g, const std::vector<float>& got, const std::vector<float>& want,
                                 const std::string& what) {
  std::vector<float> in_got, in_want;
  for (size_t i = 0; i < got.size(); ++i) {
    const bool inside = want[i] != kPadding;
    if (inside)
      in_got.push_back(got[i]), in_want.push_back(want[i]);
    else if (got[i] != kPadding)
      return ::testing::AssertionFailure() << what << ": element " << i << " outside the product was written";
  }
  if (g.M * g.N * g.batch != int64_t(in_got.size()))
    return ::testing::AssertionFailure() << what << ": product has " << in_got.size() << " elements";
  ::testing::AssertionResult written = test::all_written(in_got, what.c_str());
  if (!written) return written;
  return test::close_l2(in_got, in_want, 1e-5, what);
}

const char* tname(Trans t) {
  return t == Trans::N ? "N" : "T";
}

class SgemmKernel : public ::testing::TestWithParam<GemmCase> {};

TEST_P(SgemmKernel, MatchesDoublePrecisionLoop) {
  const GemmCase& c = GetParam();
  const Device dev = c.dev;
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  for (Trans ta : {Trans::N, Trans::T})
    for (Trans tb : {Trans::N, Trans::T}) {
      const SgemmParams g = params_for(c, ta, tb);
      const Operands o(g, 17);
      const std::vector<float> want = host_gemm(g, o.A, o.B, o.C);
      const std::string form = std::string(tname(ta)) + tname(tb);
      const std::vector<float> simple = run(dev, false, g, o, 0), tiled = run(dev, true, g, o, 0);
      EXPECT_TRUE(check(g, simple, want, form + " simple"));
      EXPECT_TRUE(check(g, tiled, want, form + " tiled"));
      // Misaligned operands take the scalar path of the same tile: same sums, same order, same bits.
      const std::vector<float> scalar = run(dev, true, g, o, 1);
      EXPECT_TRUE(check(g, scalar, want, form + " tiled misaligned"));
      EXPECT_EQ(0, std::memcmp(tiled.data(), scalar.data(), tiled.size() * sizeof(float))) << form;
      EXPECT_EQ(0, std::memcmp(tiled.data(), run(dev, true, g, o, 0).data(), tiled.size() * sizeof(float)))
          << form << ": a second run differs";
      // Both versions add the K products of an element in k order; on the emulator (no FMA
      // contraction) that makes them bitwise equal. nvcc may contract the two kernels differently.
      if (dev.type == DeviceType::emu) {
        EXPECT_EQ(0, std::memcmp(tiled.data(), simple.data(), tiled.size() * sizeof(float))) << form;
      }
    }
}

INSTANTIATE_TEST_SUITE_P(Devices, SgemmKernel, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<GemmCase>& info) { return case_label(info.param); });

class SgemmDevice : public ::testing::TestWithParam<Device> {};

TEST_P(SgemmDevice, BadArgumentsFailClearly) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  DeviceArray<float> buf(64, dev);
  float* p = buf.data();
  auto fails_with = [&](SgemmParams g, const float* A, const float* B, float* C, const std::string& part) {
    EXPECT_TRUE(test::throws_error([&] { ops::sgemm_stub(test::kernel_exec(dev), GemmAlgo::tiled, g, A, B, C); },
                                   {"sgemm_tiled", part}));
    EXPECT_TRUE(test::throws_error([&] { ops::sgemm_stub(test::kernel_exec(dev), GemmAlgo::simple, g, A, B, C); },
                                   {"sgemm_simple", part}));
  };
  SgemmParams g = sgemm_params(Trans::N, Trans::N, 4, 4, 4);
  SgemmParams bad = g;
  bad.lda = 3;
  fails_with(bad, p, p, p, "lda");
  bad = g, bad.ldc = 2;
  fails_with(bad, p, p, p, "ldc");
  bad = g, bad.M = -1;
  fails_with(bad, p, p, p, "sizes");
  bad = g, bad.batch = 2, bad.stride_c = 4;
  fails_with(bad, p, p, p, "overlap");
  fails_with(g, p, p, nullptr, "argument 'C' is null");
  fails_with(g, nullptr, p, p, "argument 'A' is null");
  fails_with(g, p, nullptr, p, "argument 'B' is null");
}

INSTANTIATE_TEST_SUITE_P(Devices, SgemmDevice, test::KernelDevices(), test::DeviceName);

}  // namespace
}  // namespace fovea
