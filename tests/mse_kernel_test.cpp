// kernels/mse: mean squared error forward (deterministic two-pass device reduction) and backward against
// cpu_reference/mse, on the vectorised and scalar paths, n from 1 to ~1M (more blocks than partial slots);
// determinism across emulator schedules; argument errors.
#include "layers/ops/mse.h"

#include <gtest/gtest.h>

#include "cpu_reference/mse.h"
#include "tests/ops_kernel_test_util.h"

namespace fovea::test {
namespace {

class MseKernels : public ::testing::TestWithParam<Device> {};

TEST_P(MseKernels, MatchesReference) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  Workspace ws(dev);
  for (int64_t n : {1, 3, 4, 5, 257, 1000, 65537, 1 << 20})
    for (size_t offset : {0, 1}) {
      if (n == (1 << 20) && offset == 1) continue;  // one big case is enough for the emulator's time budget
      const std::string tag = cat("mse.n", n, ".off", offset);
      const auto x = random_vector(n, 80 + n), t = random_vector(n, 81 + n);
      const float dloss = 1.5f;
      const std::vector<float> want_loss = {ref::mse_forward(n, x.data(), t.data())};
      std::vector<float> want_dx(n);
      ref::mse_backward(n, x.data(), t.data(), dloss, want_dx.data());
      OffsetArray d_x(x, dev, offset), d_t(t, dev, offset), dx(std::vector<float>(n), dev, offset);
      DeviceArray<float> loss(1, dev);
      loss.poison(), dx.poison();
      ops::mse_forward_stub(kernel_exec(dev, &ws), n, d_x.data(), d_t.data(), loss.data());
      ops::mse_backward_stub(kernel_exec(dev), n, d_x.data(), d_t.data(), dloss, dx.data());
      EXPECT_TRUE(matches_reference(loss.download(), want_loss, tag + ".loss"));
      EXPECT_TRUE(matches_reference(dx.download(), want_dx, tag + ".dx"));
    }
}

TEST_P(MseKernels, Deterministic) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  const int64_t n = 300001;
  auto d_x = DeviceArray<float>::upload(random_vector(n, 82), dev);
  auto d_t = DeviceArray<float>::upload(random_vector(n, 83), dev);
  DeviceArray<float> loss(1, dev);
  Workspace ws(dev);
  expect_deterministic(dev, "mse_forward", [&] {
    loss.poison();
    ops::mse_forward_stub(kernel_exec(dev, &ws), n, d_x.data(), d_t.data(), loss.data());
    return loss.download();
  });
}

TEST_P(MseKernels, BadArguments) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  DeviceArray<float> a(8, dev), b(8, dev), c(8, dev);
  Workspace ws(dev);
  EXPECT_TRUE(throws_error([&] { ops::mse_forward_stub(kernel_exec(dev, &ws), 0, a.data(), b.data(), c.data()); },
                           {"mse_forward", "argument 'n' must be > 0, got 0"}));
  EXPECT_TRUE(throws_error([&] { ops::mse_forward_stub(kernel_exec(dev, &ws), 8, a.data(), nullptr, c.data()); },
                           {"mse_forward", "argument 'target' is null"}));
  EXPECT_TRUE(throws_error([&] { ops::mse_backward_stub(kernel_exec(dev), -1, a.data(), b.data(), 1.0f, c.data()); },
                           {"mse_backward", "argument 'n'", "got -1"}));
  EXPECT_TRUE(throws_error([&] { ops::mse_backward_stub(kernel_exec(dev), 8, a.data(), b.data(), 1.0f, nullptr); },
                           {"mse_backward", "argument 'dx' is null"}));
}

INSTANTIATE_TEST_SUITE_P(Devices, MseKernels, KernelDevices(), DeviceName);

}  // namespace
}  // namespace fovea::test
