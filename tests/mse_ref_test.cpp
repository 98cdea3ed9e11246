// cpu_reference/mse: value, finite differences, errors (the 2-2-1 known answer is in linear_ref_test).
#include "cpu_reference/mse.h"

#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace fovea::ref {
namespace {

TEST(MseRef, ValueAndGradient) {
  const int64_t n = 37;
  auto x = test::random_vector(n, 1), t = test::random_vector(n, 2);
  double want = 0.0;
  for (int64_t i = 0; i < n; ++i) want += (double(x[i]) - t[i]) * (double(x[i]) - t[i]) / n;
  EXPECT_NEAR(mse_forward(n, x.data(), t.data()), want, 1e-6 * want);
  std::vector<float> dx(n);
  test::poison(dx);
  const float dloss = 0.7f;
  mse_backward(n, x.data(), t.data(), dloss, dx.data());
  ASSERT_TRUE(test::all_written(dx));
  auto loss = [&] { return double(dloss) * mse_forward(n, x.data(), t.data()); };
  test::GradCheckOptions o;
  o.step = 1e-2, o.tolerance = 1e-3;
  EXPECT_TRUE(test::check_gradient(x, loss, dx, o, "mse dx"));
}

TEST(MseRef, BadArguments) {
  float a = 1.0f;
  EXPECT_TRUE(test::throws_error([&] { mse_forward(0, &a, &a); }, {"mse_forward", "'n'", "0"}));
  EXPECT_TRUE(
      test::throws_error([&] { mse_backward(1, &a, nullptr, 1.0f, &a); }, {"mse_backward", "'target'", "null"}));
}

}  // namespace
}  // namespace fovea::ref
