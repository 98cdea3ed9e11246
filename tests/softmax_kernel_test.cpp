// kernels/softmax: softmax, log-softmax (forward/backward) and fused softmax + cross-entropy (per-row loss,
// mean, dlogits, label smoothing) against cpu_reference/softmax, for both kernel versions (warp per row,
// block per row) over class counts 1..5000 (below, at and above a warp, the block size and the warp version's
// 1024 limit); large logits (stability); determinism across emulator schedules; bad labels and arguments.
#include "layers/ops/softmax.h"

#include <gtest/gtest.h>

#include "cpu_reference/softmax.h"
#include "tests/ops_kernel_test_util.h"

namespace fovea::test {
namespace {

struct Shape {
  int64_t N, C;
};
const std::vector<Shape> kShapes = {{1, 1},   {3, 1},   {5, 10},   {64, 10},  {7, 31},   {2, 33},
                                    {9, 100}, {4, 257}, {3, 1000}, {2, 1024}, {3, 1025}, {2, 5000}};

std::vector<RowAlgo> algos_for(int64_t C) {
  if (C <= kWarpPerRowMaxC) return {RowAlgo::warp_per_row, RowAlgo::block_per_row, RowAlgo::automatic};
  return {RowAlgo::block_per_row, RowAlgo::automatic};
}
const char* algo_name(RowAlgo a) {
  return a == RowAlgo::warp_per_row ? "warp" : a == RowAlgo::block_per_row ? "block" : "auto";
}

class SoftmaxKernels : public ::testing::TestWithParam<Device> {};

TEST_P(SoftmaxKernels, ForwardBackwardMatchReference) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  for (const Shape s : kShapes) {
    const int64_t n = s.N * s.C;
    // Logits up to +-20: exp would overflow float without the max subtraction for the block version's sums.
    const auto x = random_vector(n, 10 + n, -20.0f, 20.0f), dy = random_vector(n, 20 + n);
    for (bool log : {false, true}) {
      std::vector<float> want_y(n), want_dx(n);
      (log ? ref::log_softmax_forward : ref::softmax_forward)(s.N, s.C, x.data(), want_y.data());
      (log ? ref::log_softmax_backward : ref::softmax_backward)(s.N, s.C, want_y.data(), dy.data(), want_dx.data());
      auto d_x = DeviceArray<float>::upload(x, dev), d_dy = DeviceArray<float>::upload(dy, dev);
      auto d_yref = DeviceArray<float>::upload(want_y, dev);
      DeviceArray<float> y(n, dev), dx(n, dev);
      for (RowAlgo a : algos_for(s.C)) {
        const std::string tag = cat(log ? "log_softmax" : "softmax", ".", s.N, "x", s.C, ".", algo_name(a));
        y.poison(), dx.poison();
        if (log) {
          ops::log_softmax_forward_stub(kernel_exec(dev), a, s.N, s.C, d_x.data(), y.data());
          ops::log_softmax_backward_stub(kernel_exec(dev), a, s.N, s.C, d_yref.data(), d_dy.data(), dx.data());
        } else {
          ops::softmax_forward_stub(kernel_exec(dev), a, s.N, s.C, d_x.data(), y.data());
          ops::softmax_backward_stub(kernel_exec(dev), a, s.N, s.C, d_yref.data(), d_dy.data(), dx.data());
        }
        EXPECT_TRUE(matches_reference(y.download(), want_y, tag + ".y"));
        EXPECT_TRUE(matches_reference(dx.download(), want_dx, tag + ".dx"));
      }
    }
  }
}

TEST_P(SoftmaxKernels, CrossEntropyMatchesReference) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  for (const Shape s : kShapes)
    for (double smoothing : {0.0, 0.1}) {
      const int64_t n = s.N * s.C;
      CrossEntropyParams p;
      p.N = s.N, p.C = s.C, p.label_smoothing = smoothing;
      const auto logits = random_vector(n, 30 + n, -6.0f, 6.0f);
      const auto labels = random_labels(s.N, s.C, 40 + n);
      const float dloss = 0.75f;
      // Per-row reference: the mean over one row is that row's loss.
      std::vector<float> want_rows(s.N);
      for (int64_t r = 0; r < s.N; ++r) {
        CrossEntropyParams one = p;
        one.N = 1;
        want_rows[r] = ref::cross_entropy_forward(one, logits.data() + r * s.C, labels.data() + r);
      }
      const std::vector<float> want_loss = {ref::cross_entropy_forward(p, logits.data(), labels.data())};
      std::vector<float> want_dx(n);
      ref::cross_entropy_backward(p, logits.data(), labels.data(), dloss, want_dx.data());

      auto d_logits = DeviceArray<float>::upload(logits, dev);
      auto d_labels = DeviceArray<int64_t>::upload(labels, dev);
      DeviceArray<float> rows(s.N, dev), loss(1, dev), dx(n, dev);
      for (RowAlgo a : algos_for(s.C)) {
        const std::string tag = cat("cross_entropy.", s.N, "x", s.C, ".eps", smoothing, ".", algo_name(a));
        rows.poison(), loss.poison(), dx.poison();
        ops::cross_entropy_forward_stub(kernel_exec(dev), a, p, d_logits.data(), d_labels.data(), rows.data(),
                                        loss.data());
        ops::cross_entropy_backward_stub(kernel_exec(dev), a, p, d_logits.data(), d_labels.data(), dloss, dx.data());
        EXPECT_TRUE(matches_reference(rows.download(), want_rows, tag + ".row_loss"));
        EXPECT_TRUE(matches_reference(loss.download(), want_loss, tag + ".loss"));
        EXPECT_TRUE(matches_reference(dx.download(), want_dx, tag + ".dlogits"));
      }
    }
}

TEST_P(SoftmaxKernels, StableForHugeLogits) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  const int64_t N = 2, C = 300;
  auto x = random_vector(N * C, 3, -5.0f, 5.0f);
  for (float& v : x) v += 1.0e4f;  // exp(1e4) overflows: only a max-subtracting kernel stays finite
  std::vector<float> want(N * C);
  ref::softmax_forward(N, C, x.data(), want.data());
  auto d_x = DeviceArray<float>::upload(x, dev);
  DeviceArray<float> y(N * C, dev);
  for (RowAlgo a : {RowAlgo::warp_per_row, RowAlgo::block_per_row}) {
    y.poison();
    ops::softmax_forward_stub(kernel_exec(dev), a, N, C, d_x.data(), y.data());
    EXPECT_TRUE(matches_reference(y.download(), want, cat("softmax.huge.", algo_name(a))));
  }
}

TEST_P(SoftmaxKernels, Deterministic) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  for (const Shape s : {Shape{33, 100}, Shape{5, 3000}}) {
    const int64_t n = s.N * s.C;
    CrossEntropyParams p;
    p.N = s.N, p.C = s.C, p.label_smoothing = 0.05;
    auto d_x = DeviceArray<float>::upload(random_vector(n, 50), dev);
    auto d_labels = DeviceArray<int64_t>::upload(random_labels(s.N, s.C, 51), dev);
    DeviceArray<float> y(n, dev), rows(s.N, dev), loss(1, dev);
    for (RowAlgo a : algos_for(s.C)) {
      expect_deterministic(dev, cat("softmax.", s.C, ".", algo_name(a)), [&] {
        y.poison();
        ops::softmax_forward_stub(kernel_exec(dev), a, s.N, s.C, d_x.data(), y.data());
        return y.download();
      });
      expect_deterministic(dev, cat("cross_entropy.", s.C, ".", algo_name(a)), [&] {
        rows.poison(), loss.poison();
        ops::cross_entropy_forward_stub(kernel_exec(dev), a, p, d_x.data(), d_labels.data(), rows.data(), loss.data());
        auto out = rows.download();
        out.push_back(loss.download()[0]);
        return out;
      });
    }
  }
}

TEST_P(SoftmaxKernels, BadLabelGivesNaNRow) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  CrossEntropyParams p;
  p.N = 3, p.C = 10;
  auto d_x = DeviceArray<float>::upload(random_vector(30, 60), dev);
  auto d_labels = DeviceArray<int64_t>::upload({1, 10, -1}, dev);
  DeviceArray<float> rows(3, dev), loss(1, dev), dx(30, dev);
  for (RowAlgo a : {RowAlgo::warp_per_row, RowAlgo::block_per_row}) {
    ops::cross_entropy_forward_stub(kernel_exec(dev), a, p, d_x.data(), d_labels.data(), rows.data(), loss.data());
    ops::cross_entropy_backward_stub(kernel_exec(dev), a, p, d_x.data(), d_labels.data(), 1.0f, dx.data());
    const auto r = rows.download(), g = dx.download();
    EXPECT_TRUE(std::isfinite(r[0])) << algo_name(a);
    EXPECT_TRUE(std::isnan(r[1]) && std::isnan(r[2])) << algo_name(a);
    EXPECT_TRUE(std::isnan(loss.download()[0])) << algo_name(a);
    for (int c = 0; c < 10; ++c) EXPECT_TRUE(std::isfinite(g[c]) && std::isnan(g[10 + c]) && std::isnan(g[20 + c]));
  }
}

TEST_P(SoftmaxKernels, BadArguments) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  DeviceArray<float> a(4096, dev), b(4096, dev);
  DeviceArray<int64_t> labels(4, dev);
  EXPECT_TRUE(
      throws_error([&] { ops::softmax_forward_stub(kernel_exec(dev), RowAlgo::automatic, 2, 0, a.data(), b.data()); },
                   {"softmax_forward", "argument 'C' must be > 0, got 0"}));
  EXPECT_TRUE(
      throws_error([&] { ops::softmax_forward_stub(kernel_exec(dev), RowAlgo::automatic, 0, 4, a.data(), b.data()); },
                   {"softmax_forward", "argument 'N' must be > 0, got 0"}));
  EXPECT_TRUE(throws_error(
      [&] { ops::softmax_forward_stub(kernel_exec(dev), RowAlgo::warp_per_row, 2, 1025, a.data(), b.data()); },
      {"softmax_forward", "warp_per_row takes C <= 1024, got C=1025"}));
  EXPECT_TRUE(throws_error(
      [&] { ops::log_softmax_backward_stub(kernel_exec(dev), RowAlgo::automatic, 2, 4, a.data(), nullptr, b.data()); },
      {"log_softmax_backward", "argument 'dy' is null"}));
  CrossEntropyParams p;
  p.N = 4, p.C = 8, p.label_smoothing = 1.5;
  EXPECT_TRUE(throws_error(
      [&] {
        ops::cross_entropy_forward_stub(kernel_exec(dev), RowAlgo::automatic, p, a.data(), labels.data(), b.data(),
                                        nullptr);
      },
      {"cross_entropy_forward", "argument 'label_smoothing' must be in [0, 1], got 1.5"}));
  p.label_smoothing = 0.0;
  EXPECT_TRUE(throws_error(
      [&] {
        ops::cross_entropy_forward_stub(kernel_exec(dev), RowAlgo::automatic, p, a.data(), labels.data(), nullptr,
                                        b.data());
      },
      {"cross_entropy_forward", "argument 'row_loss' is null"}));
}

INSTANTIATE_TEST_SUITE_P(Devices, SoftmaxKernels, KernelDevices(), DeviceName);

}  // namespace
}  // namespace fovea::test
