// kernels/activations: relu, leaky relu, sigmoid, tanh (forward/backward) and the residual add against
// cpu_reference/activations on odd sizes, on the vectorised (aligned) and scalar (offset by one float) paths,
// in place, run-to-run and across emulator schedules; argument errors.
#include "layers/ops/activations.h"

#include <gtest/gtest.h>

#include <functional>

#include "cpu_reference/activations.h"
#include "tests/ops_kernel_test_util.h"

namespace fovea::test {
namespace {

// Sizes around the float4 width, the block size and the grid-stride cap.
const std::vector<int64_t> kSizes = {1, 3, 4, 5, 255, 256, 257, 1023, 4099, 70001};
constexpr float kSlope = 0.01f;

using Unary = std::function<void(Device, int64_t, const float*, float*)>;
using UnaryRef = std::function<void(int64_t, const float*, float*)>;
using Binary = std::function<void(Device, int64_t, const float*, const float*, float*)>;
using BinaryRef = std::function<void(int64_t, const float*, const float*, float*)>;

struct UnaryCase {
  const char* name;
  Unary kernel;
  UnaryRef ref;
};
struct BinaryCase {
  const char* name;
  Binary kernel;
  BinaryRef ref;
  float lo, hi;  // range of the first input (a forward output for sigmoid/tanh backward)
};

std::vector<UnaryCase> unary_cases() {
  return {
      {"relu_forward",
       [](Device d, int64_t n, const float* x, float* y) { ops::relu_forward_stub(kernel_exec(d), n, x, y); },
       ref::relu_forward},
      {"leaky_relu_forward",
       [](Device d, int64_t n, const float* x, float* y) {
         ops::leaky_relu_forward_stub(kernel_exec(d), n, kSlope, x, y);
       },
       [](int64_t n, const float* x, float* y) { ref::leaky_relu_forward(n, kSlope, x, y); }},
      {"sigmoid_forward",
       [](Device d, int64_t n, const float* x, float* y) { ops::sigmoid_forward_stub(kernel_exec(d), n, x, y); },
       ref::sigmoid_forward},
      {"tanh_forward",
       [](Device d, int64_t n, const float* x, float* y) { ops::tanh_forward_stub(kernel_exec(d), n, x, y); },
       ref::tanh_forward},
  };
}

std::vector<BinaryCase> binary_cases() {
  return {
      {"relu_backward",
       [](Device d, int64_t n, const float* y, const float* g, float* dx) {
         ops::relu_backward_stub(kernel_exec(d), n, y, g, dx);
       },
       ref::relu_backward, -2.0f, 2.0f},
      {"relu6_backward",  // both kinks, 0 and 6, inside the range
       [](Device d, int64_t n, const float* x, const float* g, float* dx) {
         ops::relu6_backward_stub(kernel_exec(d), n, x, g, dx);
       },
       ref::relu6_backward, -3.0f, 9.0f},
      {"leaky_relu_backward",
       [](Device d, int64_t n, const float* x, const float* g, float* dx) {
         ops::leaky_relu_backward_stub(kernel_exec(d), n, kSlope, x, g, dx);
       },
       [](int64_t n, const float* x, const float* g, float* dx) { ref::leaky_relu_backward(n, kSlope, x, g, dx); },
       -2.0f, 2.0f},
      {"sigmoid_backward",
       [](Device d, int64_t n, const float* y, const float* g, float* dx) {
         ops::sigmoid_backward_stub(kernel_exec(d), n, y, g, dx);
       },
       ref::sigmoid_backward, 0.01f, 0.99f},
      {"tanh_backward",
       [](Device d, int64_t n, const float* y, const float* g, float* dx) {
         ops::tanh_backward_stub(kernel_exec(d), n, y, g, dx);
       },
       ref::tanh_backward, -0.99f, 0.99f},
      {"residual_add_forward",
       [](Device d, int64_t n, const float* a, const float* b, float* y) {
         ops::residual_add_forward_stub(kernel_exec(d), n, a, b, y);
       },
       ref::residual_add_forward, -2.0f, 2.0f},
  };
}

class ActivationKernels : public ::testing::TestWithParam<Device> {};

TEST_P(ActivationKernels, UnaryMatchReferenceOnBothPaths) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  for (const UnaryCase& c : unary_cases())
    for (int64_t n : kSizes)
      for (size_t offset : {0, 1}) {
        const auto x = random_vector(size_t(n), 100 + n, -4.0f, 4.0f);
        std::vector<float> want(n);
        c.ref(n, x.data(), want.data());
        OffsetArray dx(x, dev, offset), dy(std::vector<float>(n), dev, offset);
        dy.poison();
        c.kernel(dev, n, dx.data(), dy.data());
        EXPECT_TRUE(matches_reference(dy.download(), want, cat(c.name, ".n", n, ".off", offset)));
      }
}

TEST_P(ActivationKernels, BinaryMatchReferenceOnBothPaths) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  for (const BinaryCase& c : binary_cases())
    for (int64_t n : kSizes)
      for (size_t offset : {0, 1}) {
        const auto a = random_vector(size_t(n), 200 + n, c.lo, c.hi),
                   b = random_vector(size_t(n), 300 + n, -1.0f, 1.0f);
        std::vector<float> want(n);
        c.ref(n, a.data(), b.data(), want.data());
        OffsetArray da(a, dev, offset), db(b, dev, offset), dy(std::vector<float>(n), dev, offset);
        dy.poison();
        c.kernel(dev, n, da.data(), db.data(), dy.data());
        EXPECT_TRUE(matches_reference(dy.download(), want, cat(c.name, ".n", n, ".off", offset)));
      }
}

TEST_P(ActivationKernels, InPlace) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  const int64_t n = 1001;
  const auto x = random_vector(n, 7, -3.0f, 3.0f), g = random_vector(n, 8);
  for (const UnaryCase& c : unary_cases()) {
    std::vector<float> want(n);
    c.ref(n, x.data(), want.data());
    auto d = DeviceArray<float>::upload(x, dev);
    c.kernel(dev, n, d.data(), d.data());
    EXPECT_TRUE(matches_reference(d.download(), want, cat(c.name, ".inplace")));
  }
  for (const BinaryCase& c : binary_cases()) {  // dx overwrites dy
    std::vector<float> want(n);
    c.ref(n, x.data(), g.data(), want.data());
    auto dxv = DeviceArray<float>::upload(x, dev), dg = DeviceArray<float>::upload(g, dev);
    c.kernel(dev, n, dxv.data(), dg.data(), dg.data());
    EXPECT_TRUE(matches_reference(dg.download(), want, cat(c.name, ".inplace")));
  }
}

TEST_P(ActivationKernels, ReluPropagatesNaNLikeReference) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  const std::vector<float> x = {NAN, -1.0f, 2.0f, -0.0f, INFINITY, -INFINITY, 0.5f};
  std::vector<float> want(x.size());
  ref::relu_forward(int64_t(x.size()), x.data(), want.data());
  auto dx = DeviceArray<float>::upload(x, dev), dy = DeviceArray<float>(x.size(), dev);
  ops::relu_forward_stub(kernel_exec(dev), int64_t(x.size()), dx.data(), dy.data());
  const auto got = dy.download();
  EXPECT_TRUE(std::isnan(got[0]));
  for (size_t i = 1; i < x.size(); ++i) EXPECT_EQ(got[i], want[i]) << i;
}

// ReLU6 forward on both paths (float4 and scalar) over -3..9, both kinks and the special values.
TEST_P(ActivationKernels, Relu6MatchesReference) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  for (int64_t n : kSizes)
    for (size_t offset : {0, 1}) {
      auto x = random_vector(size_t(n), 300 + n, -3.0f, 9.0f);
      const std::vector<float> special = {NAN, 0.0f, 6.0f, -0.0f, INFINITY, -INFINITY};
      for (size_t i = 0; i < special.size() && i < x.size(); ++i) x[i] = special[i];
      std::vector<float> want(n);
      ref::relu6_forward(n, x.data(), want.data());
      OffsetArray dx(x, dev, offset), dy(std::vector<float>(n), dev, offset);
      dy.poison();
      ops::relu6_forward_stub(kernel_exec(dev), n, dx.data(), dy.data());
      const auto got = dy.download();
      EXPECT_TRUE(std::isnan(got[0]));
      for (int64_t i = 1; i < n; ++i) ASSERT_EQ(got[size_t(i)], want[size_t(i)]) << "n " << n << " i " << i;
    }
}

TEST_P(ActivationKernels, ResidualBackwardCopiesToEitherOrBoth) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  for (int64_t n : {int64_t(1), int64_t(4), int64_t(4099)})
    for (size_t offset : {0, 1}) {
      const auto g = random_vector(n, 9 + n);
      OffsetArray dg(g, dev, offset), da(std::vector<float>(n), dev, offset), db(std::vector<float>(n), dev, offset);
      da.poison(), db.poison();
      ops::residual_add_backward_stub(kernel_exec(dev), n, dg.data(), da.data(), db.data());
      EXPECT_TRUE(matches_reference(da.download(), g, cat("residual_add_backward.da.n", n)));
      EXPECT_TRUE(matches_reference(db.download(), g, cat("residual_add_backward.db.n", n)));
      db.poison();
      ops::residual_add_backward_stub(kernel_exec(dev), n, dg.data(), nullptr, db.data());
      EXPECT_TRUE(matches_reference(db.download(), g, cat("residual_add_backward.db_only.n", n)));
    }
}

TEST_P(ActivationKernels, Deterministic) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  const int64_t n = 5003;
  const auto x = random_vector(n, 11, -4.0f, 4.0f);
  auto dx = DeviceArray<float>::upload(x, dev);
  DeviceArray<float> dy(n, dev);
  expect_deterministic(dev, "sigmoid_forward", [&] {
    dy.poison();
    ops::sigmoid_forward_stub(kernel_exec(dev), n, dx.data(), dy.data());
    return dy.download();
  });
}

TEST_P(ActivationKernels, BadArguments) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  DeviceArray<float> a(8, dev), b(8, dev);
  EXPECT_TRUE(throws_error([&] { ops::relu_forward_stub(kernel_exec(dev), -1, a.data(), b.data()); },
                           {"relu_forward", "argument 'n'", "got -1"}));
  EXPECT_TRUE(throws_error([&] { ops::relu_forward_stub(kernel_exec(dev), 8, nullptr, b.data()); },
                           {"relu_forward", "argument 'x' is null"}));
  EXPECT_TRUE(throws_error([&] { ops::sigmoid_backward_stub(kernel_exec(dev), 8, a.data(), nullptr, b.data()); },
                           {"sigmoid_backward", "argument 'dy' is null"}));
  EXPECT_TRUE(throws_error([&] { ops::leaky_relu_forward_stub(kernel_exec(dev), 8, NAN, a.data(), b.data()); },
                           {"leaky_relu_forward", "argument 'slope'", "nan"}));
  EXPECT_TRUE(throws_error([&] { ops::residual_add_forward_stub(kernel_exec(dev), 8, a.data(), a.data(), nullptr); },
                           {"residual_add_forward", "argument 'y' is null"}));
  EXPECT_TRUE(throws_error([&] { ops::residual_add_backward_stub(kernel_exec(dev), 8, a.data(), nullptr, nullptr); },
                           {"residual_add_backward", "'da' and 'db'", "both null"}));
  EXPECT_NO_THROW(ops::relu_forward_stub(kernel_exec(dev), 0, a.data(), b.data()));  // empty: no launch
}

INSTANTIATE_TEST_SUITE_P(Devices, ActivationKernels, KernelDevices(), DeviceName);

}  // namespace
}  // namespace fovea::test
