// kernels/dropout: the Philox mask is bit-identical to cpu_reference/dropout (outputs compared bitwise, which
// also compares the kept-element scaling), forward and backward, aligned and unaligned, several (seed, offset)
// pairs and p including 0; eval mode is a copy; the kept fraction is close to 1 - p; argument errors.
#include "layers/ops/dropout.h"

#include <gtest/gtest.h>

#include "cpu_reference/dropout.h"
#include "tests/ops_kernel_test_util.h"

namespace fovea::test {
namespace {

DropoutParams dropout_params(double p, uint64_t seed, uint64_t offset, bool training = true) {
  DropoutParams d;
  d.p = p, d.seed = seed, d.offset = offset, d.training = training;
  return d;
}

class DropoutKernels : public ::testing::TestWithParam<Device> {};

TEST_P(DropoutKernels, MaskBitIdenticalToReference) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  const std::vector<DropoutParams> params = {dropout_params(0.5, 0, 0), dropout_params(0.1, 42, 7),
                                             dropout_params(0.9, 0x123456789abcdefull, 1ull << 40),
                                             dropout_params(0.0, 3, 3), dropout_params(0.3, 5, 0, false)};
  for (const DropoutParams& dp : params)
    for (int64_t n : {1, 3, 4, 7, 1000, 100003})
      for (size_t offset : {0, 1}) {
        const std::string tag =
            cat("dropout.p", dp.p, ".seed", dp.seed, ".n", n, ".off", offset, dp.training ? "" : ".eval");
        // Away from zero: a dropped element (+0) never equals a kept one.
        const auto x = random_away_from_zero(n, 90 + n), dy = random_away_from_zero(n, 91 + n);
        std::vector<float> want_y(n), want_dx(n);
        ref::dropout_forward(dp, n, x.data(), want_y.data());
        ref::dropout_backward(dp, n, dy.data(), want_dx.data());
        OffsetArray d_x(x, dev, offset), d_dy(dy, dev, offset), y(std::vector<float>(n), dev, offset),
            dx(std::vector<float>(n), dev, offset);
        y.poison(), dx.poison();
        ops::dropout_forward_stub(kernel_exec(dev), dp, n, d_x.data(), y.data());
        ops::dropout_backward_stub(kernel_exec(dev), dp, n, d_dy.data(), dx.data());
        const auto got_y = y.download(), got_dx = dx.download();
        EXPECT_TRUE(all_written(got_y, "y"));
        EXPECT_TRUE(bitwise_equal(got_y, want_y, tag + ".y"));
        EXPECT_TRUE(bitwise_equal(got_dx, want_dx, tag + ".dx"));
        // Backward drops exactly the elements the forward dropped.
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(got_y[i] == 0.0f, got_dx[i] == 0.0f) << tag << " at " << i;
      }
}

TEST_P(DropoutKernels, KeptFractionAndInPlace) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  const int64_t n = 200000;
  const DropoutParams dp = dropout_params(0.25, 11, 2);
  const auto x = random_away_from_zero(n, 92);
  std::vector<float> want(n);
  ref::dropout_forward(dp, n, x.data(), want.data());
  auto d = DeviceArray<float>::upload(x, dev);
  ops::dropout_forward_stub(kernel_exec(dev), dp, n, d.data(), d.data());  // in place
  const auto got = d.download();
  EXPECT_TRUE(bitwise_equal(got, want, "dropout.inplace"));
  int64_t kept = 0;
  for (float v : got) kept += v != 0.0f;
  EXPECT_NEAR(double(kept) / double(n), 0.75, 0.01);
}

TEST_P(DropoutKernels, Deterministic) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  const int64_t n = 4097;
  auto d_x = DeviceArray<float>::upload(random_vector(n, 93), dev);
  DeviceArray<float> y(n, dev);
  expect_deterministic(dev, "dropout_forward", [&] {
    y.poison();
    ops::dropout_forward_stub(kernel_exec(dev), dropout_params(0.5, 1, 1), n, d_x.data(), y.data());
    return y.download();
  });
}

TEST_P(DropoutKernels, BadArguments) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  DeviceArray<float> a(8, dev), b(8, dev);
  EXPECT_TRUE(throws_error(
      [&] { ops::dropout_forward_stub(kernel_exec(dev), dropout_params(1.0, 0, 0), 8, a.data(), b.data()); },
      {"dropout_forward", "argument 'p' must be in [0, 1), got 1"}));
  EXPECT_TRUE(throws_error(
      [&] { ops::dropout_forward_stub(kernel_exec(dev), dropout_params(-0.1, 0, 0), 8, a.data(), b.data()); },
      {"dropout_forward", "argument 'p'", "got -0.1"}));
  EXPECT_TRUE(throws_error(
      [&] { ops::dropout_backward_stub(kernel_exec(dev), dropout_params(0.5, 0, 0), 8, nullptr, b.data()); },
      {"dropout_backward", "argument 'dy' is null"}));
  EXPECT_TRUE(throws_error(
      [&] { ops::dropout_forward_stub(kernel_exec(dev), dropout_params(0.5, 0, 0), 8, a.data(), nullptr); },
      {"dropout_forward", "argument 'y' is null"}));
  EXPECT_TRUE(throws_error(
      [&] { ops::dropout_forward_stub(kernel_exec(dev), dropout_params(0.5, 0, 0), -1, a.data(), b.data()); },
      {"dropout_forward", "argument 'n'", "got -1"}));
}

INSTANTIATE_TEST_SUITE_P(Devices, DropoutKernels, KernelDevices(), DeviceName);

}  // namespace
}  // namespace fovea::test
