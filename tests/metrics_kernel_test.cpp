// kernels/metrics: metric_sum and count_correct (Thrust) against direct definitions and known answers: argmax
// ties go to the first maximum, a NaN counts as the maximum, labels outside [0, C) never match; repeated calls
// give the same bits; scratch comes from the workspace. accumulate_metrics (the device-side sums of a training
// loop, layers/ops/metrics.h) through its dispatch stub against cpu_reference/metrics.cpp: bitwise the same
// sums and confusion, the first non-finite loss recorded once, under every emulator schedule.
#include "kernels/metrics.h"

#include <gtest/gtest.h>

#include "cpu_reference/metrics.h"

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
  EXPECT_TRUE(throws_error([&] { (void)FOVEA_KERNEL_CALL_RESULT(dev, metric_sum, a.data(), -1, ws, nullptr); },
                           {"metric_sum", "argument 'n' must be >= 0, got -1"}));
  EXPECT_TRUE(throws_error([&] { (void)FOVEA_KERNEL_CALL_RESULT(dev, metric_sum, nullptr, 8, ws, nullptr); },
                           {"metric_sum", "argument 'values' is null"}));
  EXPECT_TRUE(
      throws_error([&] { (void)FOVEA_KERNEL_CALL_RESULT(dev, count_correct, a.data(), l.data(), 2, 0, ws, nullptr); },
                   {"count_correct", "argument 'C' must be > 0, got 0"}));
  EXPECT_TRUE(
      throws_error([&] { (void)FOVEA_KERNEL_CALL_RESULT(dev, count_correct, nullptr, l.data(), 2, 4, ws, nullptr); },
                   {"count_correct", "argument 'logits' is null"}));
  EXPECT_TRUE(
      throws_error([&] { (void)FOVEA_KERNEL_CALL_RESULT(dev, count_correct, a.data(), nullptr, 2, 4, ws, nullptr); },
                   {"count_correct", "argument 'labels' is null"}));
  Workspace wrong(kCPU);
  EXPECT_TRUE(throws_error([&] { (void)FOVEA_KERNEL_CALL_RESULT(dev, metric_sum, a.data(), 8, wrong, nullptr); },
                           {"metric_sum", "workspace is on cpu", "runs on " + dev.str()}));
}

// ---------------------------------------------------------------- accumulate_metrics

Exec exec_on(Device d) {
  Exec e;
  e.device = d;
  return e;
}

// One pass over `calls` batches of [N, C], on the host through the reference and on `dev` through the stub;
// returns {reference sums, device sums, reference confusion, device confusion}.
struct Pass {
  std::vector<double> ref_sums, dev_sums;
  std::vector<int64_t> ref_conf, dev_conf;
};
Pass run_pass(Device dev, int64_t N, int64_t C, int calls, uint64_t seed, bool confusion) {
  Pass p;
  p.ref_sums.assign(ops::kMetricSlots, 0.0);
  p.ref_conf.assign(size_t(C * C), 0);
  auto d_sums = DeviceArray<double>::upload(p.ref_sums, dev);
  auto d_conf = DeviceArray<int64_t>::upload(p.ref_conf, dev);
  for (int i = 0; i < calls; ++i) {
    // Few distinct values (ties), a NaN now and then, labels sometimes outside [0, C).
    auto logits = random_integers(size_t(N * C), seed + 10 * i, -2, 2);
    for (int64_t r = 0; r < N; r += 7) logits[size_t(r * C + (r / 7) % C)] = NAN;
    auto labels = random_labels(size_t(N), C, seed + 10 * i + 1);
    for (int64_t r = 0; r < N; r += 5) labels[size_t(r)] = r % 10 == 0 ? -1 : C;
    for (int64_t r = 1; r < N; r += 3) labels[size_t(r)] = ref::row_argmax(logits.data() + r * C, C);
    // Losses of many magnitudes; NaN at call 3 and Inf at call 4 (only the first is recorded).
    float loss = random_vector(1, seed + 10 * i + 2, 0.0f, 1.0f)[0] * std::pow(10.0f, float(i % 7) - 3.0f);
    if (i == 3) loss = NAN;
    if (i == 4) loss = INFINITY;
    ops::MetricsBatch b;
    b.N = N;
    b.C = C;
    b.loss = &loss;
    b.logits = logits.data();
    b.labels = labels.data();
    b.tag = 100 + i;
    ref::accumulate_metrics(exec_on(kCPU), b, p.ref_sums.data(), confusion ? p.ref_conf.data() : nullptr);
    auto d_loss = DeviceArray<float>::upload({loss}, dev);
    auto d_logits = DeviceArray<float>::upload(logits, dev);
    auto d_labels = DeviceArray<int64_t>::upload(labels, dev);
    b.loss = d_loss.data();
    b.logits = d_logits.data();
    b.labels = d_labels.data();
    ops::accumulate_metrics_stub(exec_on(dev), b, d_sums.data(), confusion ? d_conf.data() : nullptr);
  }
  p.dev_sums = d_sums.download();
  p.dev_conf = d_conf.download();
  return p;
}

class AccumulateMetrics : public ::testing::TestWithParam<Device> {};

TEST_P(AccumulateMetrics, MatchesTheReferenceBitwise) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  ASSERT_TRUE(ops::accumulate_metrics_stub.has(dev.type == DeviceType::emu ? Slot::emu : Slot::cuda));
  for (const auto& [N, C] :
       {std::pair<int64_t, int64_t>{1, 1}, {0, 4}, {7, 3}, {64, 10}, {33, 1000}, {1000, 2}, {257, 17}}) {
    for (bool confusion : {false, true}) {
      const Pass p = run_pass(dev, N, C, 6, 900 + uint64_t(N * 31 + C), confusion);
      const std::string what = std::to_string(N) + "x" + std::to_string(C) + (confusion ? " with confusion" : "");
      EXPECT_TRUE(bitwise_equal(p.dev_sums, p.ref_sums, what + " sums"));
      EXPECT_EQ(p.dev_conf, p.ref_conf) << what;
      EXPECT_EQ(p.ref_sums[ops::kFirstNonFinite], 104.0) << what << ": the NaN of call 3 (tag 103) comes first";
      EXPECT_TRUE(std::isnan(p.ref_sums[ops::kNonFiniteLoss])) << what;
    }
  }
}

TEST_P(AccumulateMetrics, SameBitsUnderEverySchedule) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  const auto run = [&] {
    const Pass p = run_pass(dev, 300, 10, 3, 77, true);
    std::vector<double> all = p.dev_sums;
    for (int64_t v : p.dev_conf) all.push_back(double(v));
    return all;
  };
  expect_deterministic(dev, "accumulate_metrics", run);
}

// The loss sum is the host loop `sum += double(loss) * double(n)` that the trainer used to run, to the bit.
TEST_P(AccumulateMetrics, LossSumIsTheHostLoopToTheBit) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  auto d_sums = DeviceArray<double>::upload(std::vector<double>(ops::kMetricSlots, 0.0), dev);
  auto d_logits = DeviceArray<float>::upload(std::vector<float>(3 * 1000, 0.0f), dev);
  auto d_labels = DeviceArray<int64_t>::upload(std::vector<int64_t>(1000, 0), dev);
  const std::vector<float> losses = random_vector(200, 5, 0.0f, 4.0f);
  double want = 0;
  for (size_t i = 0; i < losses.size(); ++i) {
    const int64_t n = 1 + int64_t(i * 37 % 1000);
    want += double(losses[i]) * double(n);
    auto d_loss = DeviceArray<float>::upload({losses[i]}, dev);
    ops::MetricsBatch b;
    b.N = n;
    b.C = 3;
    b.loss = d_loss.data();
    b.logits = d_logits.data();
    b.labels = d_labels.data();
    ops::accumulate_metrics_stub(exec_on(dev), b, d_sums.data(), nullptr);
  }
  const double got = d_sums.download()[ops::kLossSum];
  EXPECT_EQ(std::memcmp(&got, &want, sizeof want), 0) << got << " vs " << want;
}

TEST_P(AccumulateMetrics, KnownAnswers) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  const std::vector<float> logits = {
      1.0f, 3.0f, 3.0f,   // tie: first maximum (1)
      NAN,  5.0f, 9.0f,   // NaN is the maximum (0)
      2.0f, NAN,  NAN,    // first NaN (1)
      0.5f, 0.1f, 0.2f,   // 0, but the label is out of range: neither correct nor in the confusion
      -1.f, -2.f, -0.5f,  // 2
  };
  const std::vector<int64_t> labels = {1, 0, 2, 3, 0};
  auto d_l = DeviceArray<float>::upload(logits, dev);
  auto d_y = DeviceArray<int64_t>::upload(labels, dev);
  auto d_loss = DeviceArray<float>::upload({0.5f}, dev);
  auto d_sums = DeviceArray<double>::upload({10.0, 1.0, 0.0, 0.0}, dev);
  auto d_conf = DeviceArray<int64_t>::upload(std::vector<int64_t>(9, 0), dev);
  ops::MetricsBatch b{5, 3, d_loss.data(), d_l.data(), d_y.data(), 42};
  ops::accumulate_metrics_stub(exec_on(dev), b, d_sums.data(), d_conf.data());
  EXPECT_EQ(d_sums.download(), (std::vector<double>{12.5, 3.0, 0.0, 0.0}));
  // [true][predicted]: row 0 (1 -> 1), row 1 (0 -> 0), row 2 (2 -> 1), row 4 (0 -> 2).
  EXPECT_EQ(d_conf.download(), (std::vector<int64_t>{1, 0, 1, 0, 1, 0, 0, 1, 0}));
}

TEST_P(AccumulateMetrics, BadArgumentsNameTheOpAndTheValue) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  DeviceArray<float> a(8, dev);
  DeviceArray<int64_t> l(8, dev);
  DeviceArray<double> s(4, dev);
  const Exec ex = exec_on(dev);
  EXPECT_TRUE(throws_error(
      [&] {
        ops::accumulate_metrics_stub(ex, ops::MetricsBatch{2, 0, a.data(), a.data(), l.data(), 0}, s.data(), nullptr);
      },
      {"accumulate_metrics", "[2, 0]"}));
  EXPECT_TRUE(throws_error(
      [&] {
        ops::accumulate_metrics_stub(ex, ops::MetricsBatch{-1, 4, a.data(), a.data(), l.data(), 0}, s.data(), nullptr);
      },
      {"accumulate_metrics", "[-1, 4]"}));
  EXPECT_TRUE(throws_error(
      [&] {
        ops::accumulate_metrics_stub(ex, ops::MetricsBatch{2, 4, a.data(), nullptr, l.data(), 0}, s.data(), nullptr);
      },
      {"accumulate_metrics", "argument 'logits' is null"}));
  EXPECT_TRUE(throws_error(
      [&] {
        ops::accumulate_metrics_stub(ex, ops::MetricsBatch{2, 4, a.data(), a.data(), l.data(), 0}, nullptr, nullptr);
      },
      {"accumulate_metrics", "argument 'sums' is null"}));
}

INSTANTIATE_TEST_SUITE_P(Devices, MetricKernels, KernelDevices(), DeviceName);
INSTANTIATE_TEST_SUITE_P(Devices, AccumulateMetrics, KernelDevices(), DeviceName);

}  // namespace
}  // namespace fovea::test
