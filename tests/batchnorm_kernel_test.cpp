// kernels/batchnorm: BatchNorm2d forward (training: batch statistics, running-stat update; eval) and backward
// (training and eval) against cpu_reference/batchnorm over odd and vector-friendly spatial sizes, C = 1,
// N*H*W = 2, channels split over several chunks; affine and not, with and without running statistics, every
// nullable output; determinism across emulator schedules; argument errors.
#include "layers/ops/batchnorm.h"

#include <gtest/gtest.h>

#include "cpu_reference/batchnorm.h"
#include "tests/ops_kernel_test_util.h"

namespace fovea::test {
namespace {

BatchNormParams bn_params(int64_t N, int64_t C, int64_t H, int64_t W, bool training) {
  BatchNormParams p;
  p.N = N, p.C = C, p.H = H, p.W = W, p.training = training, p.momentum = 0.1, p.eps = 1e-5;
  return p;
}

struct Shape {
  int64_t N, C, H, W;
};
// (4,3,64,64) and (2,1,64,64) split each channel into several chunks (> 4096 values per channel); (3,1,1,1) has
// one value per image. (With N*H*W = 2 the training dx is exactly 0 and only rounding noise is left to compare.)
const std::vector<Shape> kShapes = {{1, 1, 1, 3},   {3, 1, 1, 1},   {2, 3, 5, 5},   {1, 4, 7, 9},  {4, 8, 4, 4},
                                    {3, 2, 33, 37}, {2, 1, 64, 64}, {4, 3, 64, 64}, {2, 300, 2, 2}};

struct Outputs {
  std::vector<float> y, save_mean, save_invstd, running_mean, running_var, dx, dgamma, dbeta;
};

// Runs forward + backward on `dev` (kernels) or on the CPU reference (dev == kCPU).
Outputs run_bn(Device dev, const BatchNormParams& p, bool affine, bool track, const std::vector<float>& x,
               const std::vector<float>& dy, const std::vector<float>& gamma, const std::vector<float>& beta,
               const std::vector<float>& rm0, const std::vector<float>& rv0) {
  Outputs o;
  o.running_mean = rm0, o.running_var = rv0;
  if (dev == kCPU) {
    o.y.resize(x.size()), o.dx.resize(x.size()), o.save_mean.resize(p.C), o.save_invstd.resize(p.C);
    o.dgamma.resize(p.C), o.dbeta.resize(p.C);
    ref::batchnorm2d_forward(p, x.data(), affine ? gamma.data() : nullptr, affine ? beta.data() : nullptr,
                             track ? o.running_mean.data() : nullptr, track ? o.running_var.data() : nullptr,
                             o.y.data(), o.save_mean.data(), o.save_invstd.data());
    ref::batchnorm2d_backward(p, x.data(), dy.data(), affine ? gamma.data() : nullptr, o.save_mean.data(),
                              o.save_invstd.data(), o.dx.data(), o.dgamma.data(), o.dbeta.data());
    return o;
  }
  auto d_x = DeviceArray<float>::upload(x, dev), d_dy = DeviceArray<float>::upload(dy, dev);
  auto d_g = DeviceArray<float>::upload(gamma, dev), d_b = DeviceArray<float>::upload(beta, dev);
  auto d_rm = DeviceArray<float>::upload(rm0, dev), d_rv = DeviceArray<float>::upload(rv0, dev);
  DeviceArray<float> y(x.size(), dev), dx(x.size(), dev), sm(p.C, dev), si(p.C, dev), dg(p.C, dev), db(p.C, dev);
  y.poison(), dx.poison(), sm.poison(), si.poison(), dg.poison(), db.poison();
  Workspace ws(dev);
  ops::batchnorm2d_forward_stub(kernel_exec(dev, &ws), p, d_x.data(), affine ? d_g.data() : nullptr,
                                affine ? d_b.data() : nullptr, track ? d_rm.data() : nullptr,
                                track ? d_rv.data() : nullptr, y.data(), sm.data(), si.data());
  ops::batchnorm2d_backward_stub(kernel_exec(dev, &ws), p, d_x.data(), d_dy.data(), affine ? d_g.data() : nullptr,
                                 sm.data(), si.data(), dx.data(), dg.data(), db.data());
  o.y = y.download(), o.dx = dx.download(), o.save_mean = sm.download(), o.save_invstd = si.download();
  o.dgamma = dg.download(), o.dbeta = db.download(), o.running_mean = d_rm.download(), o.running_var = d_rv.download();
  return o;
}

class BatchNormKernels : public ::testing::TestWithParam<Device> {};

TEST_P(BatchNormKernels, MatchesReference) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  for (const Shape s : kShapes)
    for (bool training : {true, false})
      for (int variant = 0; variant < 2; ++variant) {
        const bool affine = variant == 0, track = variant == 0 || !training;  // eval needs running stats
        const BatchNormParams p = bn_params(s.N, s.C, s.H, s.W, training);
        const std::string tag = cat("bn.", s.N, "x", s.C, "x", s.H, "x", s.W, training ? ".train" : ".eval",
                                    affine ? ".affine" : ".plain", track ? ".track" : "");
        auto x = random_vector(p.x_size(), 100 + p.x_size(), -1.0f, 1.0f);
        for (float& v : x) v += 3.0f;  // a mean far from 0: E[x^2] - E[x]^2 would cancel badly
        const auto dy = random_vector(p.x_size(), 101), gamma = random_vector(s.C, 102, 0.5f, 1.5f),
                   beta = random_vector(s.C, 103), rm = random_vector(s.C, 104, 2.5f, 3.5f),
                   rv = random_vector(s.C, 105, 0.2f, 0.5f);
        const Outputs want = run_bn(kCPU, p, affine, track, x, dy, gamma, beta, rm, rv);
        const Outputs got = run_bn(dev, p, affine, track, x, dy, gamma, beta, rm, rv);
        EXPECT_TRUE(matches_reference(got.y, want.y, tag + ".y"));
        EXPECT_TRUE(matches_reference(got.save_mean, want.save_mean, tag + ".save_mean"));
        EXPECT_TRUE(matches_reference(got.save_invstd, want.save_invstd, tag + ".save_invstd"));
        EXPECT_TRUE(matches_reference(got.running_mean, want.running_mean, tag + ".running_mean"));
        EXPECT_TRUE(matches_reference(got.running_var, want.running_var, tag + ".running_var"));
        // dx sums to ~0 per channel in training, so compare it with a tolerance relative to its own norm.
        EXPECT_TRUE(matches_reference(got.dx, want.dx, tag + ".dx"));
        EXPECT_TRUE(matches_reference(got.dgamma, want.dgamma, tag + ".dgamma"));
        EXPECT_TRUE(matches_reference(got.dbeta, want.dbeta, tag + ".dbeta"));
      }
}

TEST_P(BatchNormKernels, NullableGradients) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  const BatchNormParams p = bn_params(2, 3, 5, 4, true);
  const auto x = random_vector(p.x_size(), 110), dy = random_vector(p.x_size(), 111), gamma = random_vector(3, 112);
  const Outputs want = run_bn(kCPU, p, true, true, x, dy, gamma, random_vector(3, 113), std::vector<float>(3, 0.0f),
                              std::vector<float>(3, 1.0f));
  auto d_x = DeviceArray<float>::upload(x, dev), d_dy = DeviceArray<float>::upload(dy, dev);
  auto d_g = DeviceArray<float>::upload(gamma, dev);
  auto sm = DeviceArray<float>::upload(want.save_mean, dev), si = DeviceArray<float>::upload(want.save_invstd, dev);
  DeviceArray<float> dx(p.x_size(), dev), dg(3, dev), db(3, dev);
  Workspace ws(dev);
  dx.poison(), dg.poison();
  ops::batchnorm2d_backward_stub(kernel_exec(dev, &ws), p, d_x.data(), d_dy.data(), d_g.data(), sm.data(), si.data(),
                                 dx.data(), nullptr, nullptr);
  EXPECT_TRUE(matches_reference(dx.download(), want.dx, "bn.dx_only"));
  ops::batchnorm2d_backward_stub(kernel_exec(dev, &ws), p, d_x.data(), d_dy.data(), d_g.data(), sm.data(), si.data(),
                                 nullptr, dg.data(), nullptr);
  EXPECT_TRUE(matches_reference(dg.download(), want.dgamma, "bn.dgamma_only"));
  // Forward without saved statistics (inference-style training call).
  DeviceArray<float> y(p.x_size(), dev);
  y.poison();
  ops::batchnorm2d_forward_stub(kernel_exec(dev, &ws), p, d_x.data(), d_g.data(), nullptr, nullptr, nullptr, y.data(),
                                nullptr, nullptr);
  std::vector<float> want_y(p.x_size());
  ref::batchnorm2d_forward(p, x.data(), gamma.data(), nullptr, nullptr, nullptr, want_y.data(), nullptr, nullptr);
  EXPECT_TRUE(matches_reference(y.download(), want_y, "bn.y_nosave"));
}

TEST_P(BatchNormKernels, Deterministic) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  const BatchNormParams p = bn_params(4, 3, 40, 40, true);  // 6400 values per channel: 2 chunks
  const auto x = random_vector(p.x_size(), 120), dy = random_vector(p.x_size(), 121);
  const std::vector<float> gamma = random_vector(3, 122), beta = random_vector(3, 123);
  expect_deterministic(dev, "batchnorm2d", [&] {
    const Outputs o =
        run_bn(dev, p, true, true, x, dy, gamma, beta, std::vector<float>(3, 0.0f), std::vector<float>(3, 1.0f));
    std::vector<float> all = o.y;
    for (const auto* v : {&o.save_mean, &o.save_invstd, &o.running_mean, &o.running_var, &o.dx, &o.dgamma, &o.dbeta})
      all.insert(all.end(), v->begin(), v->end());
    return all;
  });
}

TEST_P(BatchNormKernels, BadArguments) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  DeviceArray<float> a(16, dev), b(16, dev), c(16, dev), d(16, dev);
  Workspace ws(dev);
  // Training needs more than one value per channel (PyTorch's rule).
  EXPECT_TRUE(throws_error(
      [&] {
        ops::batchnorm2d_forward_stub(kernel_exec(dev, &ws), bn_params(1, 2, 1, 1, true), a.data(), nullptr, nullptr,
                                      nullptr, nullptr, b.data(), nullptr, nullptr);
      },
      {"batchnorm2d_forward", "more than 1 value per channel", "N*H*W=1"}));
  // Eval without running statistics.
  EXPECT_TRUE(throws_error(
      [&] {
        ops::batchnorm2d_forward_stub(kernel_exec(dev, &ws), bn_params(1, 2, 2, 2, false), a.data(), nullptr, nullptr,
                                      nullptr, nullptr, b.data(), nullptr, nullptr);
      },
      {"batchnorm2d_forward", "eval mode needs 'running_mean' and 'running_var'"}));
  // Only one of the running statistics.
  EXPECT_TRUE(throws_error(
      [&] {
        ops::batchnorm2d_forward_stub(kernel_exec(dev, &ws), bn_params(1, 2, 2, 2, true), a.data(), nullptr, nullptr,
                                      c.data(), nullptr, b.data(), nullptr, nullptr);
      },
      {"batchnorm2d_forward", "'running_mean' and 'running_var' must be both given or both null"}));
  EXPECT_TRUE(throws_error(
      [&] {
        ops::batchnorm2d_forward_stub(kernel_exec(dev, &ws), bn_params(1, 2, 2, 2, true), nullptr, nullptr, nullptr,
                                      nullptr, nullptr, b.data(), nullptr, nullptr);
      },
      {"batchnorm2d_forward", "argument 'x' is null"}));
  EXPECT_TRUE(throws_error(
      [&] {
        ops::batchnorm2d_backward_stub(kernel_exec(dev, &ws), bn_params(1, 2, 2, 2, true), a.data(), b.data(), nullptr,
                                       c.data(), d.data(), nullptr, nullptr, nullptr);
      },
      {"batchnorm2d_backward", "'dx', 'dgamma' and 'dbeta' are all null"}));
  EXPECT_TRUE(throws_error(
      [&] {
        ops::batchnorm2d_backward_stub(kernel_exec(dev, &ws), bn_params(1, 2, 2, 2, true), a.data(), b.data(), nullptr,
                                       c.data(), nullptr, b.data(), nullptr, nullptr);
      },
      {"batchnorm2d_backward", "argument 'save_invstd' is null"}));
}

INSTANTIATE_TEST_SUITE_P(Devices, BatchNormKernels, KernelDevices(), DeviceName);

}  // namespace
}  // namespace fovea::test
