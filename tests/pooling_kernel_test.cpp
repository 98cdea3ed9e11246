// kernels/pooling: max pooling (int32 argmax indices), average pooling (count_include_pad both ways) and
// global average pooling, forward and backward, against cpu_reference/pooling over the shared pooling shapes
// (layers/ops/conv_shapes.h); first-maximum ties; determinism of the gather backward across emulator schedules;
// argument errors.
#include "layers/ops/pooling.h"

#include <gtest/gtest.h>

#include "cpu_reference/pooling.h"
#include "layers/ops/conv_shapes.h"
#include "tests/ops_kernel_test_util.h"

namespace fovea::test {
namespace {

struct PoolCase {
  Device dev;
  shapes::PoolShape shape;
};
void PrintTo(const PoolCase& c, std::ostream* os) {
  *os << c.dev.str() << " " << c.shape.name << " " << c.shape.p.str();
}
std::string case_name(const ::testing::TestParamInfo<PoolCase>& info) {
  return std::string(info.param.dev.type == DeviceType::emu ? "emu_" : "cuda_") + info.param.shape.name;
}
std::vector<PoolCase> pool_cases() {
  std::vector<PoolCase> cases;
  for (Device d : {kEmu, kCUDA})
    for (const shapes::PoolShape& s : shapes::pool_shapes()) cases.push_back({d, s});
  return cases;
}

// Shapes above this many input elements get one variant and two determinism runs (emulator time in CI).
constexpr int64_t kBig = 1 << 20;

class PoolKernels : public ::testing::TestWithParam<PoolCase> {};

void check_maxpool(Device dev, const Pool2dParams& p, const std::vector<float>& x, const std::string& tag) {
  std::vector<float> want_y(p.y_size()), want_dx(p.x_size());
  std::vector<int32_t> want_idx(p.y_size());
  ref::maxpool2d_forward(p, x.data(), want_y.data(), want_idx.data());
  const auto dy = random_vector(p.y_size(), 5);
  ref::maxpool2d_backward(p, dy.data(), want_idx.data(), want_dx.data());

  auto dx_in = DeviceArray<float>::upload(x, dev);
  DeviceArray<float> y(p.y_size(), dev), dx(p.x_size(), dev);
  DeviceArray<int32_t> idx(p.y_size(), dev);
  y.poison(), idx.poison(), dx.poison();
  ops::maxpool2d_forward_stub(kernel_exec(dev), p, dx_in.data(), y.data(), idx.data());
  EXPECT_TRUE(matches_reference(y.download(), want_y, tag + ".maxpool_y"));
  EXPECT_EQ(idx.download(), want_idx) << tag << ": argmax indices differ";

  // Inference: no indices.
  y.poison();
  ops::maxpool2d_forward_stub(kernel_exec(dev), p, dx_in.data(), y.data(), static_cast<int32_t*>(nullptr));
  EXPECT_TRUE(matches_reference(y.download(), want_y, tag + ".maxpool_y_noidx"));

  auto d_dy = DeviceArray<float>::upload(dy, dev);
  const auto got_dx = expect_deterministic(
      dev, tag + ".maxpool_dx",
      [&] {
        dx.poison();
        ops::maxpool2d_backward_stub(kernel_exec(dev), p, nullptr, nullptr, idx.data(), d_dy.data(), dx.data());
        return dx.download();
      },
      p.x_size() <= kBig);
  EXPECT_TRUE(matches_reference(got_dx, want_dx, tag + ".maxpool_dx"));
  // The gather adds the same terms in the same order as the reference's scatter.
  EXPECT_TRUE(bitwise_equal(got_dx, want_dx, tag + ".maxpool_dx vs reference"));
}

TEST_P(PoolKernels, MaxMatchesReference) {
  const PoolCase& c = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(c.dev);
  const Pool2dParams& p = c.shape.p;
  check_maxpool(c.dev, p, random_vector(p.x_size(), 1, -2.0f, 2.0f), c.shape.name);
  if (p.x_size() > kBig) return;  // the CIFAR-sized shape: one variant keeps the emulator run short
  // Integer inputs in [-2, 2]: ties in most windows exercise the first-maximum rule.
  check_maxpool(c.dev, p, random_integers(p.x_size(), 3, -2, 2), c.shape.name + ".ties");
}

TEST_P(PoolKernels, AvgMatchesReference) {
  const PoolCase& c = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(c.dev);
  for (bool include_pad : {true, false}) {
    Pool2dParams p = c.shape.p;
    if (p.x_size() > kBig && include_pad != p.count_include_pad) continue;
    p.count_include_pad = include_pad;
    const std::string tag = c.shape.name + (include_pad ? ".include_pad" : ".exclude_pad");
    const auto x = random_vector(p.x_size(), 4), dy = random_vector(p.y_size(), 5);
    std::vector<float> want_y(p.y_size()), want_dx(p.x_size());
    ref::avgpool2d_forward(p, x.data(), want_y.data());
    ref::avgpool2d_backward(p, dy.data(), want_dx.data());
    auto d_x = DeviceArray<float>::upload(x, c.dev), d_dy = DeviceArray<float>::upload(dy, c.dev);
    DeviceArray<float> y(p.y_size(), c.dev), dx(p.x_size(), c.dev);
    y.poison();
    ops::avgpool2d_forward_stub(kernel_exec(c.dev), p, d_x.data(), y.data());
    EXPECT_TRUE(matches_reference(y.download(), want_y, tag + ".avgpool_y"));
    const auto got_dx = expect_deterministic(
        c.dev, tag + ".avgpool_dx",
        [&] {
          dx.poison();
          ops::avgpool2d_backward_stub(kernel_exec(c.dev), p, d_dy.data(), dx.data());
          return dx.download();
        },
        p.x_size() <= kBig);
    EXPECT_TRUE(matches_reference(got_dx, want_dx, tag + ".avgpool_dx"));
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, PoolKernels, ::testing::ValuesIn(pool_cases()), case_name);

class GlobalPoolKernels : public ::testing::TestWithParam<Device> {};

TEST_P(GlobalPoolKernels, MatchesReference) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  struct S {
    int64_t N, C, H, W;
  };
  for (const S s : {S{1, 1, 1, 1}, S{1, 1, 7, 7}, S{2, 3, 7, 7}, S{3, 5, 1, 33}, S{2, 64, 4, 4}, S{1, 2, 45, 47}}) {
    const int64_t planes = s.N * s.C, HW = s.H * s.W;
    const std::string tag = cat("global_avgpool.", s.N, "x", s.C, "x", s.H, "x", s.W);
    const auto x = random_vector(planes * HW, 6), dy = random_vector(planes, 7);
    std::vector<float> want_y(planes), want_dx(planes * HW);
    ref::global_avgpool_forward(s.N, s.C, s.H, s.W, x.data(), want_y.data());
    ref::global_avgpool_backward(s.N, s.C, s.H, s.W, dy.data(), want_dx.data());
    auto d_x = DeviceArray<float>::upload(x, dev), d_dy = DeviceArray<float>::upload(dy, dev);
    DeviceArray<float> y(planes, dev), dx(planes * HW, dev);
    const auto got_y = expect_deterministic(dev, tag + ".y", [&] {
      y.poison();
      ops::global_avgpool_forward_stub(kernel_exec(dev), s.N, s.C, s.H, s.W, d_x.data(), y.data());
      return y.download();
    });
    EXPECT_TRUE(matches_reference(got_y, want_y, tag + ".y"));
    dx.poison();
    ops::global_avgpool_backward_stub(kernel_exec(dev), s.N, s.C, s.H, s.W, d_dy.data(), dx.data());
    EXPECT_TRUE(matches_reference(dx.download(), want_dx, tag + ".dx"));
  }
}

TEST_P(GlobalPoolKernels, AdaptiveMatchesReference) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  for (const AdaptivePool2dParams p :
       {AdaptivePool2dParams{1, 1, 1, 1, 1, 1}, AdaptivePool2dParams{2, 3, 2, 3, 7, 7},
        AdaptivePool2dParams{2, 2, 10, 9, 4, 3}, AdaptivePool2dParams{1, 4, 14, 14, 7, 7},
        AdaptivePool2dParams{3, 5, 33, 17, 5, 6}, AdaptivePool2dParams{1, 2, 5, 7, 5, 7}}) {
    const std::string tag = cat("adaptive_avgpool.", p.H, "x", p.W, "_to_", p.OH, "x", p.OW);
    const int64_t xs = p.N * p.C * p.H * p.W, ys = p.N * p.C * p.OH * p.OW;
    const auto x = random_vector(xs, 8), dy = random_vector(ys, 9);
    std::vector<float> want_y(ys), want_dx(xs);
    ref::adaptive_avgpool2d_forward(p, x.data(), want_y.data());
    ref::adaptive_avgpool2d_backward(p, dy.data(), want_dx.data());
    auto d_x = DeviceArray<float>::upload(x, dev), d_dy = DeviceArray<float>::upload(dy, dev);
    DeviceArray<float> y(ys, dev), dx(xs, dev);
    const auto got_y = expect_deterministic(dev, tag + ".y", [&] {
      y.poison();
      ops::adaptive_avgpool2d_forward_stub(kernel_exec(dev), p, d_x.data(), y.data());
      return y.download();
    });
    EXPECT_TRUE(matches_reference(got_y, want_y, tag + ".y"));
    const auto got_dx = expect_deterministic(dev, tag + ".dx", [&] {
      dx.poison();
      ops::adaptive_avgpool2d_backward_stub(kernel_exec(dev), p, d_dy.data(), dx.data());
      return dx.download();
    });
    EXPECT_TRUE(matches_reference(got_dx, want_dx, tag + ".dx"));
  }
  DeviceArray<float> a(4, dev);
  EXPECT_TRUE(throws_error(
      [&] {
        ops::adaptive_avgpool2d_forward_stub(kernel_exec(dev), {1, 1, 2, 2, 0, 1}, a.data(), a.data());
      },
      {"adaptive_avgpool2d_forward", "output_size"}));
  EXPECT_TRUE(throws_error(
      [&] {
        ops::adaptive_avgpool2d_backward_stub(kernel_exec(dev), {1, 1, 2, 2, 1, 1}, nullptr, a.data());
      },
      {"adaptive_avgpool2d_backward", "'dy'"}));
}

TEST_P(GlobalPoolKernels, BadArguments) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  Pool2dParams p = shapes::pool_params(1, 1, 4, 4, 2, 2, 2, 2);
  DeviceArray<float> x(16, dev), y(16, dev);
  DeviceArray<int32_t> idx(16, dev);
  Pool2dParams too_big = p;
  too_big.kernel_h = 5;  // larger than the input
  EXPECT_TRUE(
      throws_error([&] { ops::maxpool2d_forward_stub(kernel_exec(dev), too_big, x.data(), y.data(), idx.data()); },
                   {"maxpool2d_forward", "kernel 5x2 is larger than the padded input 4x4"}));
  Pool2dParams zero_stride = p;
  zero_stride.stride_w = 0;
  EXPECT_TRUE(throws_error([&] { ops::avgpool2d_forward_stub(kernel_exec(dev), zero_stride, x.data(), y.data()); },
                           {"avgpool2d_forward", "argument 'stride_w' must be > 0, got 0"}));
  EXPECT_TRUE(throws_error([&] { ops::avgpool2d_backward_stub(kernel_exec(dev), p, nullptr, y.data()); },
                           {"avgpool2d_backward", "argument 'dy' is null"}));
  EXPECT_TRUE(throws_error(
      [&] {
        ops::maxpool2d_backward_stub(kernel_exec(dev), p, nullptr, nullptr, static_cast<const int32_t*>(nullptr),
                                     x.data(), y.data());
      },
      {"maxpool2d_backward", "argument 'idx' is null"}));
  EXPECT_TRUE(throws_error([&] { ops::global_avgpool_forward_stub(kernel_exec(dev), 1, 0, 4, 4, x.data(), y.data()); },
                           {"global_avgpool_forward", "N, C, H, W must be > 0, got 1,0,4,4"}));
  EXPECT_TRUE(throws_error([&] { ops::global_avgpool_backward_stub(kernel_exec(dev), 1, 1, 4, 4, x.data(), nullptr); },
                           {"global_avgpool_backward", "argument 'dx' is null"}));
}

INSTANTIATE_TEST_SUITE_P(Devices, GlobalPoolKernels, KernelDevices(), DeviceName);

}  // namespace
}  // namespace fovea::test
