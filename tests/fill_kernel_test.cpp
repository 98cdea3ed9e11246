// kernels/fill.cu and kernels/regularizers.cu against the CPU (core/philox.h, cpu_reference/regularizers).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/philox.h"
#include "cpu_reference/regularizers.h"
#include "layers/ops/fill.h"
#include "layers/ops/optimizers.h"
#include "tests/kernel_test_util.h"
#include "tests/test_util.h"

namespace fovea::test {
namespace {

class FillKernel : public ::testing::TestWithParam<Device> {};

TEST_P(FillKernel, PhiloxFillsMatchTheHostBitwise) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  for (int64_t n : {1, 7, 1000, 300001}) {  // the last one makes the grid-stride loop wrap
    DeviceArray<float> y(size_t(n), dev);
    y.poison();
    ops::fill_uniform_stub(kernel_exec(dev), y.data(), n, -2.0f, 3.0f, 42, 7);
    std::vector<float> got = y.download();
    ASSERT_TRUE(all_written(got));
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(got[i], -2.0f + 5.0f * philox_uniform(42, 7, uint64_t(i))) << "uniform, n=" << n << " i=" << i;
    y.poison();
    ops::fill_normal_stub(kernel_exec(dev), y.data(), n, 0.5f, 2.0f, 9, 1);
    got = y.download();
    ASSERT_TRUE(all_written(got));
    // The emulator runs the host's libm: bitwise. A GPU's double log/sin/cos may differ by an ulp.
    const double tol = dev.type == DeviceType::emu ? 0.0 : 1e-6;
    for (int64_t i = 0; i < n; ++i) {
      const float want = 0.5f + 2.0f * philox_normal(9, 1, uint64_t(i));
      ASSERT_LE(std::fabs(got[i] - want), tol * std::max(1.0f, std::fabs(want))) << "normal, n=" << n << " i=" << i;
    }
    y.poison();
    ops::fill_value_stub(kernel_exec(dev), y.data(), n, -1.25f);
    for (float v : y.download()) ASSERT_EQ(v, -1.25f);
  }
}

TEST_P(FillKernel, ElasticNetPenaltyMatchesTheReference) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  for (int64_t n : {1, 33, 70000}) {
    const std::vector<float> w = random_vector(size_t(n), 3 + n);
    const std::vector<float> g0 = random_vector(size_t(n), 5 + n);
    std::vector<float> g_ref = g0;
    const double want = ref::elastic_net_penalty(n, w.data(), 0.01, 0.003, g_ref.data());
    DeviceArray<float> dw = DeviceArray<float>::upload(w, dev), dg = DeviceArray<float>::upload(g0, dev);
    DeviceArray<float> scratch(256, dev), penalty(1, dev);
    scratch.poison();
    penalty.poison();
    Workspace ws(dev, scratch.data(), 256 * sizeof(float));
    ops::elastic_net_penalty_stub(kernel_exec(dev, &ws), n, dw.data(), 0.01f, 0.003f, dg.data(), penalty.data());
    const float got = penalty.download()[0];
    EXPECT_NEAR(got, want, 1e-6 * std::fabs(want)) << "n=" << n;
    EXPECT_LE(rel_l2(dg.download(), g_ref), 1e-6) << "n=" << n;
    // Deterministic: the same call gives the same bits.
    ops::elastic_net_penalty_stub(kernel_exec(dev, &ws), n, dw.data(), 0.01f, 0.003f, nullptr, penalty.data());
    EXPECT_EQ(penalty.download()[0], got);
  }
  DeviceArray<float> w(4, dev), penalty(1, dev);
  EXPECT_TRUE(throws_error(
      [&] { ops::elastic_net_penalty_stub(kernel_exec(dev), -1, w.data(), 0.01f, 0.0f, nullptr, penalty.data()); },
      {"elastic_net_penalty", "argument 'n' must be >= 0, got -1"}));
  EXPECT_TRUE(
      throws_error([&] { ops::elastic_net_penalty_stub(kernel_exec(dev), 4, w.data(), 0.01f, 0.0f, nullptr, nullptr); },
                   {"elastic_net_penalty", "argument 'penalty' is null"}));
}

TEST_P(FillKernel, MaxNormRowsMatchesTheReference) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {5, 3}, {64, 1000}, {10, 300}}) {
    std::vector<float> w = random_vector(size_t(rows * cols), uint64_t(rows * 31 + cols));
    for (int64_t c = 0; c < cols; ++c) w[c] *= 0.001f;  // row 0 stays under the limit: left untouched
    std::vector<float> want = w;
    ref::max_norm_constraint(rows, cols, want.data(), 0.5);
    DeviceArray<float> dw = DeviceArray<float>::upload(w, dev);
    ops::max_norm_rows_stub(kernel_exec(dev), rows, cols, dw.data(), 0.5f, nullptr);
    EXPECT_LE(rel_l2(dw.download(), want), 1e-6) << rows << "x" << cols;
  }
  DeviceArray<float> dw(4, dev);
  EXPECT_TRUE(
      throws_error([&] { ops::max_norm_rows_stub(kernel_exec(dev), int64_t(2), int64_t(2), dw.data(), 0.0f, nullptr); },
                   {"max_norm_rows", "argument 'max_norm' must be > 0, got 0"}));
  EXPECT_TRUE(
      throws_error([&] { ops::max_norm_rows_stub(kernel_exec(dev), int64_t(2), int64_t(2), nullptr, 1.0f, nullptr); },
                   {"max_norm_rows", "argument 'w' is null"}));
  EXPECT_TRUE(throws_error(
      [&] { ops::max_norm_rows_stub(kernel_exec(dev), int64_t(-1), int64_t(2), dw.data(), 1.0f, nullptr); },
      {"max_norm_rows", "'rows' and 'cols'", "got -1 and 2"}));
}

INSTANTIATE_TEST_SUITE_P(Devices, FillKernel, KernelDevices(), DeviceName);

}  // namespace
}  // namespace fovea::test
