// kernels/lrn: LocalResponseNorm forward/backward against cpu_reference/lrn for window sizes 1..7 (odd and
// even, wider than C), C = 1, odd spatial sizes; determinism across emulator schedules; argument errors.
#include "layers/ops/lrn.h"

#include <gtest/gtest.h>

#include "cpu_reference/lrn.h"
#include "tests/ops_kernel_test_util.h"

namespace fovea::test {
namespace {

LrnParams lrn_params(int64_t N, int64_t C, int64_t H, int64_t W, int64_t size, double alpha = 1e-2, double beta = 0.75,
                     double k = 1.0) {
  LrnParams p;
  p.N = N, p.C = C, p.H = H, p.W = W, p.size = size, p.alpha = alpha, p.beta = beta, p.k = k;
  return p;
}

class LrnKernels : public ::testing::TestWithParam<Device> {};

TEST_P(LrnKernels, MatchesReference) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  // alpha large enough that the normalisation matters (PyTorch's default 1e-4 barely changes x).
  const std::vector<LrnParams> cases = {
      lrn_params(1, 1, 1, 1, 5),
      lrn_params(2, 1, 3, 5, 3),
      lrn_params(1, 7, 5, 3, 5, 0.5),
      lrn_params(2, 6, 4, 4, 2, 0.3, 0.5),
      lrn_params(1, 4, 3, 3, 7, 1.0, 1.0, 2.0),
      lrn_params(3, 16, 9, 7, 5, 0.1),
      lrn_params(1, 5, 13, 11, 1, 0.2),
  };
  for (const LrnParams& p : cases) {
    const std::string tag = cat("lrn.", p.N, "x", p.C, "x", p.H, "x", p.W, ".size", p.size);
    const auto x = random_vector(p.x_size(), 70 + p.x_size(), -2.0f, 2.0f), dy = random_vector(p.x_size(), 71);
    std::vector<float> want_y(p.x_size()), want_dx(p.x_size());
    ref::lrn_forward(p, x.data(), want_y.data());
    ref::lrn_backward(p, x.data(), dy.data(), want_dx.data());
    auto d_x = DeviceArray<float>::upload(x, dev), d_dy = DeviceArray<float>::upload(dy, dev);
    DeviceArray<float> y(p.x_size(), dev), dx(p.x_size(), dev);
    Workspace ws(dev);
    y.poison(), dx.poison();
    ops::lrn_forward_stub(kernel_exec(dev), p, d_x.data(), y.data());
    ops::lrn_backward_stub(kernel_exec(dev, &ws), p, d_x.data(), d_dy.data(), dx.data());
    EXPECT_TRUE(matches_reference(y.download(), want_y, tag + ".y"));
    EXPECT_TRUE(matches_reference(dx.download(), want_dx, tag + ".dx"));
  }
}

TEST_P(LrnKernels, Deterministic) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  const LrnParams p = lrn_params(2, 9, 7, 5, 5, 0.5);
  auto d_x = DeviceArray<float>::upload(random_vector(p.x_size(), 72), dev);
  auto d_dy = DeviceArray<float>::upload(random_vector(p.x_size(), 73), dev);
  DeviceArray<float> dx(p.x_size(), dev);
  Workspace ws(dev);
  expect_deterministic(dev, "lrn_backward", [&] {
    dx.poison();
    ops::lrn_backward_stub(kernel_exec(dev, &ws), p, d_x.data(), d_dy.data(), dx.data());
    return dx.download();
  });
}

TEST_P(LrnKernels, BadArguments) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  DeviceArray<float> a(16, dev), b(16, dev), c(16, dev);
  Workspace ws(dev);
  EXPECT_TRUE(
      throws_error([&] { ops::lrn_forward_stub(kernel_exec(dev), lrn_params(1, 1, 4, 4, 0), a.data(), b.data()); },
                   {"lrn_forward", "argument 'size' must be > 0, got 0"}));
  EXPECT_TRUE(throws_error(
      [&] { ops::lrn_forward_stub(kernel_exec(dev), lrn_params(1, 1, 4, 4, 3, 1e-4, 0.75, 0.0), a.data(), b.data()); },
      {"lrn_forward", "argument 'k' must be finite and > 0, got 0"}));
  EXPECT_TRUE(
      throws_error([&] { ops::lrn_forward_stub(kernel_exec(dev), lrn_params(1, 1, 4, 4, 3), a.data(), nullptr); },
                   {"lrn_forward", "argument 'y' is null"}));
  EXPECT_TRUE(throws_error(
      [&] { ops::lrn_backward_stub(kernel_exec(dev, &ws), lrn_params(1, 1, 4, 4, 3), a.data(), nullptr, c.data()); },
      {"lrn_backward", "argument 'dy' is null"}));
  Workspace wrong(dev.type == DeviceType::emu ? kCPU : kEmu);  // scratch on a device the kernel cannot use
  EXPECT_TRUE(throws_error(
      [&] {
        ops::lrn_backward_stub(kernel_exec(dev, &wrong), lrn_params(1, 1, 4, 4, 3), a.data(), b.data(), c.data());
      },
      {"lrn_backward", "workspace is on " + wrong.device().str(), "runs on " + dev.str()}));
}

INSTANTIATE_TEST_SUITE_P(Devices, LrnKernels, KernelDevices(), DeviceName);

}  // namespace
}  // namespace fovea::test
