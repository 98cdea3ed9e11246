// Linear kernels (kernels/linear.cu, on our SGEMM): forward (with and without bias), data, weight and
// bias gradients against cpu_reference on random inputs, on every kernel device; outputs poisoned and
// checked fully written, relative L2 error <= 1e-5, repeated runs bitwise identical.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "cpu_reference/linear.h"
#include "layers/ops/linear.h"
#include "tests/kernel_test_util.h"
#include "tests/test_util.h"

namespace fovea {
namespace {

using test::DeviceArray;

struct LinearCase {
  Device dev;
  std::string name;
  LinearParams p;
};
LinearParams lp(int64_t n, int64_t in, int64_t out) {
  LinearParams p;
  p.N = n, p.in_features = in, p.out_features = out;
  return p;
}
// Every shape on the devices of test::KernelDevices().
std::vector<LinearCase> cases() {
  std::vector<LinearCase> v;
  for (Device dev : {kEmu, kCUDA})
    for (const auto& [name, p] : {std::pair<const char*, LinearParams>{"n1_1to1", lp(1, 1, 1)},
                                  {"n7_13to5", lp(7, 13, 5)},
                                  {"n32_64to10", lp(32, 64, 10)},
                                  {"n128_256to100", lp(128, 256, 100)},
                                  {"n3_1000to1", lp(3, 1000, 1)},
                                  {"n64_16to256", lp(64, 16, 256)}})
      v.push_back({dev, name, p});
  return v;
}
std::string case_label(const LinearCase& c) {
  return std::string(c.dev.type == DeviceType::emu ? "emu_" : "cuda_") + c.name;
}
void PrintTo(const LinearCase& c, std::ostream* os) {
  *os << case_label(c) << " " << c.p.str();
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

class LinearKernel : public ::testing::TestWithParam<LinearCase> {};

TEST_P(LinearKernel, MatchesReference) {
  const LinearCase& c = GetParam();
  const Device dev = c.dev;
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  const LinearParams& p = c.p;
  const auto x = test::random_vector(p.N * p.in_features, 1),
             w = test::random_vector(p.out_features * p.in_features, 2);
  const auto b = test::random_vector(p.out_features, 3), dy = test::random_vector(p.N * p.out_features, 4);
  std::vector<float> y(p.N * p.out_features), y_nobias(y.size()), dx(x.size()), dw(w.size()), db(b.size());
  ref::linear_forward(p, x.data(), w.data(), b.data(), y.data());
  ref::linear_forward(p, x.data(), w.data(), nullptr, y_nobias.data());
  ref::linear_backward_data(p, dy.data(), w.data(), dx.data());
  ref::linear_backward_weight(p, x.data(), dy.data(), dw.data());
  ref::linear_backward_bias(p, dy.data(), db.data());

  auto dx_in = DeviceArray<float>::upload(x, dev), dw_in = DeviceArray<float>::upload(w, dev);
  auto db_in = DeviceArray<float>::upload(b, dev), ddy = DeviceArray<float>::upload(dy, dev);
  DeviceArray<float> out_y(y.size(), dev), out_dx(dx.size(), dev), out_dw(dw.size(), dev), out_db(db.size(), dev);
  // Each op twice from poisoned outputs: fully written, close to the reference, the same bits.
  auto check = [&](const char* what, DeviceArray<float>& out, const std::vector<float>& want,
                   const std::function<void()>& launch) {
    out.poison();
    launch();
    const std::vector<float> got = out.download();
    EXPECT_TRUE(test::all_written(got, what));
    EXPECT_TRUE(test::close_l2(got, want, 1e-5, what));
    out.poison();
    launch();
    EXPECT_TRUE(same_bits(got, out.download())) << what << ": a second run differs";
    std::printf("[ %s %s ] %s rel=%.2e\n", dev.str().c_str(), c.name.c_str(), what, test::rel_l2(got, want));
  };
  check("y", out_y, y, [&] {
    ops::linear_forward_stub(test::kernel_exec(dev), p, dx_in.data(), dw_in.data(), db_in.data(), out_y.data());
  });
  check("y without bias", out_y, y_nobias, [&] {
    ops::linear_forward_stub(test::kernel_exec(dev), p, dx_in.data(), dw_in.data(), nullptr, out_y.data());
  });
  check("dx", out_dx, dx,
        [&] { ops::linear_backward_data_stub(test::kernel_exec(dev), p, ddy.data(), dw_in.data(), out_dx.data()); });
  check("dw", out_dw, dw,
        [&] { ops::linear_backward_weight_stub(test::kernel_exec(dev), p, dx_in.data(), ddy.data(), out_dw.data()); });
  check("db", out_db, db,
        [&] { ops::linear_backward_bias_stub(test::kernel_exec(dev), p, ddy.data(), out_db.data()); });
}

INSTANTIATE_TEST_SUITE_P(Devices, LinearKernel, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<LinearCase>& info) { return case_label(info.param); });

class LinearDevice : public ::testing::TestWithParam<Device> {};

// bias_add / bias_backward over [outer, channels, inner] views, scalar and float4 paths.
TEST_P(LinearDevice, BiasKernelsMatchLoops) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  for (const auto& [outer, channels, inner] :
       {std::tuple<int64_t, int64_t, int64_t>{3, 5, 7}, {2, 4, 16}, {1, 300, 1}, {5, 3, 257}, {2, 2, 1024}}) {
    const auto y = test::random_vector(outer * channels * inner, 5), b = test::random_vector(channels, 6);
    std::vector<float> want_y = y, want_db(channels);
    for (int64_t c = 0; c < channels; ++c) {
      double s = 0.0;
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
          want_y[(o * channels + c) * inner + i] += b[c];
          s += y[(o * channels + c) * inner + i];
        }
      want_db[c] = float(s);
    }
    auto dy = DeviceArray<float>::upload(y, dev), db_in = DeviceArray<float>::upload(b, dev);
    DeviceArray<float> db(channels, dev);
    db.poison();
    ops::bias_backward_stub(test::kernel_exec(dev), dy.data(), db.data(), outer, channels, inner);
    ops::bias_add_stub(test::kernel_exec(dev), dy.data(), db_in.data(), outer, channels, inner);
    const std::string what = std::to_string(outer) + "x" + std::to_string(channels) + "x" + std::to_string(inner);
    EXPECT_TRUE(test::all_written(db.download(), "db"));
    EXPECT_TRUE(test::close_l2(db.download(), want_db, 1e-5, what + " bias_backward"));
    EXPECT_TRUE(test::close_l2(dy.download(), want_y, 1e-6, what + " bias_add"));
  }
}

TEST_P(LinearDevice, BadArgumentsFailClearly) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  DeviceArray<float> buf(16, dev);
  EXPECT_TRUE(test::throws_error(
      [&] {
        ops::linear_forward_stub(test::kernel_exec(dev), lp(2, 0, 3), buf.data(), buf.data(), nullptr, buf.data());
      },
      {"linear_forward", "argument 'in_features' must be > 0, got 0"}));
  EXPECT_TRUE(test::throws_error(
      [&] { ops::linear_forward_stub(test::kernel_exec(dev), lp(2, 2, 3), buf.data(), nullptr, nullptr, buf.data()); },
      {"linear_forward", "argument 'w' is null"}));
  EXPECT_TRUE(test::throws_error(
      [&] { ops::linear_backward_data_stub(test::kernel_exec(dev), lp(2, 2, 2), buf.data(), buf.data(), nullptr); },
      {"linear_backward_data", "argument 'dx' is null"}));
  EXPECT_TRUE(test::throws_error(
      [&] { ops::linear_backward_weight_stub(test::kernel_exec(dev), lp(2, 2, 2), nullptr, buf.data(), buf.data()); },
      {"linear_backward_weight", "argument 'x' is null"}));
  EXPECT_TRUE(test::throws_error(
      [&] { ops::linear_backward_bias_stub(test::kernel_exec(dev), lp(2, 2, 2), buf.data(), nullptr); },
      {"linear_backward_bias", "argument 'db' is null"}));
  EXPECT_TRUE(test::throws_error([&] { ops::bias_add_stub(test::kernel_exec(dev), buf.data(), nullptr, 2, 2, 1); },
                                 {"bias_add", "argument 'b' is null"}));
  EXPECT_TRUE(
      test::throws_error([&] { ops::bias_backward_stub(test::kernel_exec(dev), buf.data(), buf.data(), -1, 2, 1); },
                         {"bias_backward", "outer=-1"}));
}

INSTANTIATE_TEST_SUITE_P(Devices, LinearDevice, test::KernelDevices(), test::DeviceName);

}  // namespace
}  // namespace fovea
