// cpu_reference/activations: values, finite differences (inputs kept off the kinks), residual add, errors.
#include "cpu_reference/activations.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "tests/test_util.h"

namespace fovea::ref {
namespace {

constexpr int64_t kN = 257;

// Forward against a formula and backward against central differences of the forward.
void check_op(const char* name, const std::function<void(const float*, float*)>& fwd,
              const std::function<void(const float* x, const float* y, const float* dy, float* dx)>& bwd,
              const std::function<double(double)>& formula) {
  SCOPED_TRACE(name);
  auto x = test::random_away_from_zero(kN, 1, 0.05f, 3.0f);
  auto g = test::random_vector(kN, 2);
  std::vector<float> y(kN), dx(kN);
  test::poison(y);
  fwd(x.data(), y.data());
  ASSERT_TRUE(test::all_written(y, "y"));
  std::vector<double> want(kN);
  for (int64_t i = 0; i < kN; ++i) want[i] = formula(x[i]);
  EXPECT_TRUE(test::close_l2(y, want, 1e-6, "forward"));
  test::poison(dx);
  bwd(x.data(), y.data(), g.data(), dx.data());
  ASSERT_TRUE(test::all_written(dx, "dx"));
  std::vector<float> yy(kN);
  auto loss = [&] {
    fwd(x.data(), yy.data());
    return test::weighted_sum(yy, g);
  };
  test::GradCheckOptions o;
  o.step = 1e-2;  // < the 0.05 distance to the kink
  EXPECT_TRUE(test::check_gradient(x, loss, dx, o, "dx"));
}

TEST(ActivationsRef, Relu) {
  check_op(
      "relu", [](const float* x, float* y) { relu_forward(kN, x, y); },
      [](const float*, const float* y, const float* dy, float* dx) { relu_backward(kN, y, dy, dx); },
      [](double x) { return x > 0 ? x : 0.0; });
  // In place, and NaN propagates like torch.relu.
  std::vector<float> v = {-1.0f, 2.0f, NAN, 0.0f};
  relu_forward(4, v.data(), v.data());
  EXPECT_EQ(v[0], 0.0f);
  EXPECT_EQ(v[1], 2.0f);
  EXPECT_TRUE(std::isnan(v[2]));
  EXPECT_EQ(v[3], 0.0f);
  // Gradient at exactly 0 is 0 (PyTorch's threshold_backward).
  const float zero = 0.0f, one = 1.0f;
  float d = NAN;
  relu_backward(1, &zero, &one, &d);
  EXPECT_EQ(d, 0.0f);
}

// ReLU6 has two kinks (0 and 6): inputs on both sides of each, kept 0.05 away from them.
TEST(ActivationsRef, Relu6) {
  auto x = test::random_away_from_zero(kN, 3, 0.05f, 3.0f);
  for (size_t i = 1; i < x.size(); i += 2) x[i] += 6.0f;  // around 6 (3..5.95 and 6.05..9)
  const auto g = test::random_vector(kN, 4);
  std::vector<float> y(kN), dx(kN);
  test::poison(y);
  relu6_forward(kN, x.data(), y.data());
  ASSERT_TRUE(test::all_written(y, "y"));
  std::vector<double> want(kN);
  for (int64_t i = 0; i < kN; ++i) want[i] = std::min(std::max(double(x[i]), 0.0), 6.0);
  EXPECT_TRUE(test::close_l2(y, want, 1e-7, "forward"));
  test::poison(dx);
  relu6_backward(kN, x.data(), g.data(), dx.data());
  ASSERT_TRUE(test::all_written(dx, "dx"));
  std::vector<float> yy(kN);
  auto loss = [&] {
    relu6_forward(kN, x.data(), yy.data());
    return test::weighted_sum(yy, g);
  };
  test::GradCheckOptions o;
  o.step = 1e-2;
  EXPECT_TRUE(test::check_gradient(x, loss, dx, o, "dx"));
  // NaN propagates (torch.nn.functional.relu6(nan) is nan); the gradient is 0 at both kinks and the
  // same test on the forward output gives the same gate.
  std::vector<float> v = {NAN, -1.0f, 7.0f, 3.0f, 0.0f, 6.0f};
  relu6_forward(int64_t(v.size()), v.data(), v.data());
  EXPECT_TRUE(std::isnan(v[0]));
  EXPECT_EQ(v[1], 0.0f);
  EXPECT_EQ(v[2], 6.0f);
  EXPECT_EQ(v[3], 3.0f);
  const std::vector<float> kinks = {0.0f, 6.0f}, ones = {1.0f, 1.0f};
  std::vector<float> d = {NAN, NAN};
  relu6_backward(2, kinks.data(), ones.data(), d.data());
  EXPECT_EQ(d, std::vector<float>({0.0f, 0.0f}));
  EXPECT_TRUE(test::throws_error([&] { relu6_forward(-1, v.data(), v.data()); }, {"relu6_forward", "'n'", "-1"}));
  EXPECT_TRUE(test::throws_error([&] { relu6_backward(1, nullptr, v.data(), v.data()); }, {"relu6_backward", "'x'"}));
}

TEST(ActivationsRef, LeakyRelu) {
  const float slope = 0.1f;
  check_op(
      "leaky_relu", [&](const float* x, float* y) { leaky_relu_forward(kN, slope, x, y); },
      [&](const float* x, const float*, const float* dy, float* dx) { leaky_relu_backward(kN, slope, x, dy, dx); },
      [&](double x) { return x > 0 ? x : double(float(x) * slope); });
}

TEST(ActivationsRef, Sigmoid) {
  check_op(
      "sigmoid", [](const float* x, float* y) { sigmoid_forward(kN, x, y); },
      [](const float*, const float* y, const float* dy, float* dx) { sigmoid_backward(kN, y, dy, dx); },
      [](double x) { return 1.0 / (1.0 + std::exp(-x)); });
  const float big[2] = {-100.0f, 100.0f};
  float y[2];
  sigmoid_forward(2, big, y);
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[1], 1.0f);
}

TEST(ActivationsRef, Tanh) {
  check_op(
      "tanh", [](const float* x, float* y) { tanh_forward(kN, x, y); },
      [](const float*, const float* y, const float* dy, float* dx) { tanh_backward(kN, y, dy, dx); },
      [](double x) { return std::tanh(x); });
}

TEST(ActivationsRef, ResidualAdd) {
  auto a = test::random_vector(kN, 3), b = test::random_vector(kN, 4), g = test::random_vector(kN, 5);
  std::vector<float> y(kN), da(kN), db(kN);
  test::poison(y);
  residual_add_forward(kN, a.data(), b.data(), y.data());
  ASSERT_TRUE(test::all_written(y));
  for (int64_t i = 0; i < kN; ++i) ASSERT_EQ(y[i], a[i] + b[i]);
  test::poison(da), test::poison(db);
  residual_add_backward(kN, g.data(), da.data(), db.data());
  ASSERT_TRUE(test::all_written(da) && test::all_written(db));
  std::vector<float> yy(kN);
  auto loss = [&] {
    residual_add_forward(kN, a.data(), b.data(), yy.data());
    return test::weighted_sum(yy, g);
  };
  EXPECT_TRUE(test::check_gradient(a, loss, da, {}, "da"));
  EXPECT_TRUE(test::check_gradient(b, loss, db, {}, "db"));
}

TEST(ActivationsRef, BadArguments) {
  float a = 1.0f;
  EXPECT_TRUE(test::throws_error([&] { relu_forward(-3, &a, &a); }, {"relu_forward", "'n'", "-3"}));
  EXPECT_TRUE(test::throws_error([&] { sigmoid_backward(1, &a, nullptr, &a); }, {"sigmoid_backward", "'dy'", "null"}));
  EXPECT_TRUE(test::throws_error([&] { leaky_relu_forward(1, NAN, &a, &a); }, {"leaky_relu_forward", "slope", "nan"}));
  EXPECT_TRUE(test::throws_error([&] { tanh_forward(1, nullptr, &a); }, {"tanh_forward", "'x'"}));
  EXPECT_TRUE(test::throws_error([&] { residual_add_backward(1, &a, nullptr, nullptr); },
                                 {"residual_add_backward", "'da'", "'db'"}));
}

}  // namespace
}  // namespace fovea::ref
