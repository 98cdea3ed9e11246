// kernels/metrics (Thrust): metric_sum and count_correct against direct definitions (there is no cpu_reference
// op for metrics) and known answers: argmax ties go to the first maximum, a NaN counts as the maximum, labels
// outside [0, C) never match; repeated calls give the same bits; scratch comes from the workspace.
#include "kernels/metrics.h"

#include <gtest/gtest.h>

#include "tests/ops_kernel_test_util.h"

namespace fovea::test {
namespace {

// torch.argmax: the first maximum; the first NaN if there is one.
int64_t argmax(const float* row, int64_t C) {
  int64_t arg = 0;
  for (int64_t c = 1; c < C; ++c) {
    if (std::isnan(row[arg])) break;
    if (row[c] > row[arg] || std::isnan(row[c])) arg = c;
  }
  return arg;
}

class MetricKernels : public ::testing::TestWithParam<Device> {};

TEST_P(MetricKernels, SumMatchesDirectSum) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  Workspace ws(dev);
  for (int64_t n : {1, 2, 1000, 100003}) {
    const auto v = random_vector(n, 600 + n, 0.0f, 5.0f);
    double want = 0.0;
    for (float x : v) want += double(x);
    auto d = DeviceArray<float>::upload(v, dev);
    const double got = FOVEA_KERNEL_CALL_RESULT(dev, metric_sum, d.data(), n, ws, nullptr);
    EXPECT_NEAR(got, want, 1e-12 * std::fabs(want)) << "n=" << n;
    EXPECT_EQ(got, FOVEA_KERNEL_CALL_RESULT(dev, metric_sum, d.data(), n, ws, nullptr)) << "not reproducible";
  }
  EXPECT_EQ(FOVEA_KERNEL_CALL_RESULT(dev, metric_sum, nullptr, 0, ws, nullptr), 0.0);
}

TEST_P(MetricKernels, CountCorrectMatchesArgmax) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  Workspace ws(dev);
  for (const auto& [N, C] : {std::pair<int64_t, int64_t>{1, 1}, {7, 3}, {64, 10}, {33, 1000}, {5000, 2}}) {
    // Few distinct values: many ties, so the first-maximum rule decides.
    const auto logits = random_integers(N * C, 700 + N, -2, 2);
    auto labels = random_labels(N, C, 701 + N);
    for (int64_t r = 0; r < N; r += 2) labels[r] = argmax(logits.data() + r * C, C);  // about half correct
    int64_t want = 0;
    for (int64_t r = 0; r < N; ++r) want += argmax(logits.data() + r * C, C) == labels[r];
    auto d_l = DeviceArray<float>::upload(logits, dev);
    auto d_y = DeviceArray<int64_t>::upload(labels, dev);
    EXPECT_EQ(FOVEA_KERNEL_CALL_RESULT(dev, count_correct, d_l.data(), d_y.data(), N, C, ws, nullptr), want)
        << N << "x" << C;
  }
}

TEST_P(MetricKernels, CountCorrectKnownAnswers) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  Workspace ws(dev);
  const std::vector<float> logits = {
      1.0f, 3.0f, 3.0f,   // tie: first maximum (1)
      NAN,  5.0f, 9.0f,   // NaN is the maximum (0)
      2.0f, NAN,  NAN,    // first NaN (1)
      0.5f, 0.1f, 0.2f,   // 0, but the label is out of range
      -1.f, -2.f, -0.5f,  // 2
  };
  const std::vector<int64_t> labels = {1, 0, 1, 3, 0};
  auto d_l = DeviceArray<float>::upload(logits, dev);
  auto d_y = DeviceArray<int64_t>::upload(labels, dev);
  EXPECT_EQ(FOVEA_KERNEL_CALL_RESULT(dev, count_correct, d_l.data(), d_y.data(), 5, 3, ws, nullptr), 3);
}

TEST_P(MetricKernels, BadArguments) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  Workspace ws(dev);
  DeviceArray<float> a(8, dev);
  DeviceArray<int64_t> l(8, dev);
  EXPECT_THROW(FOVEA_KERNEL_CALL_RESULT(dev, metric_sum, a.data(), -1, ws, nullptr), Error);
  EXPECT_THROW(FOVEA_KERNEL_CALL_RESULT(dev, count_correct, a.data(), l.data(), 2, 0, ws, nullptr), Error);
  EXPECT_THROW(FOVEA_KERNEL_CALL_RESULT(dev, count_correct, nullptr, l.data(), 2, 4, ws, nullptr), Error);
  Workspace wrong(kCPU);
  EXPECT_THROW(FOVEA_KERNEL_CALL_RESULT(dev, metric_sum, a.data(), 8, wrong, nullptr), Error);
}

INSTANTIATE_TEST_SUITE_P(Devices, MetricKernels, KernelDevices(), DeviceName);

}  // namespace
}  // namespace fovea::test
