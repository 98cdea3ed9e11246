// cpu_reference/dropout: the philox mask rule, scaling, eval identity, rate, gradient, errors.
#include "cpu_reference/dropout.h"

#include <gtest/gtest.h>

#include "core/philox.h"
#include "tests/test_util.h"

namespace fovea::ref {
namespace {

DropoutParams dp(double p, uint64_t seed, uint64_t offset, bool training = true) {
  DropoutParams d;
  d.p = p, d.seed = seed, d.offset = offset, d.training = training;
  return d;
}

TEST(DropoutRef, MaskRuleAndScale) {
  const int64_t n = 100003;
  const DropoutParams p = dp(0.3, 1234, 7);
  auto x = test::random_away_from_zero(n, 1);
  std::vector<float> y(n);
  test::poison(y);
  dropout_forward(p, n, x.data(), y.data());
  ASSERT_TRUE(test::all_written(y));
  const float scale = float(1.0 / 0.7);
  EXPECT_EQ(dropout_scale(p), scale);
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    const bool keep = philox_uniform(p.seed, p.offset, uint64_t(i)) >= 0.3f;
    ASSERT_EQ(y[i], keep ? x[i] * scale : 0.0f) << i;
    kept += keep;
  }
  // Binomial(n, 0.7): sd = sqrt(n * 0.21) ~ 145; allow 6 sd.
  EXPECT_NEAR(double(kept), 0.7 * n, 6 * 145.0);
  // Another offset gives another mask.
  std::vector<float> y2(n);
  dropout_forward(dp(0.3, 1234, 8), n, x.data(), y2.data());
  EXPECT_NE(y, y2);
}

TEST(DropoutRef, EvalAndZeroRateAreIdentity) {
  auto x = test::random_vector(1000, 2);
  std::vector<float> y(1000);
  dropout_forward(dp(0.9, 1, 0, false), 1000, x.data(), y.data());
  EXPECT_EQ(y, x);
  dropout_forward(dp(0.0, 1, 0, true), 1000, x.data(), y.data());
  EXPECT_EQ(y, x);
}

TEST(DropoutRef, BackwardUsesTheSameMask) {
  const int64_t n = 300;
  const DropoutParams p = dp(0.5, 99, 3);
  auto x = test::random_vector(n, 3), g = test::random_vector(n, 4);
  std::vector<float> y(n), dx(n);
  test::poison(dx);
  dropout_backward(p, n, g.data(), dx.data());
  ASSERT_TRUE(test::all_written(dx));
  auto loss = [&] {
    dropout_forward(p, n, x.data(), y.data());
    return test::weighted_sum(y, g);
  };
  EXPECT_TRUE(test::check_gradient(x, loss, dx, {}, "dropout dx"));
}

TEST(DropoutRef, BadArguments) {
  float a = 1.0f;
  EXPECT_TRUE(test::throws_error([&] { dropout_forward(dp(1.0, 0, 0), 1, &a, &a); }, {"dropout_forward", "'p'", "1"}));
  EXPECT_TRUE(
      test::throws_error([&] { dropout_backward(dp(-0.1, 0, 0), 1, &a, &a); }, {"dropout_backward", "'p'", "-0.1"}));
  EXPECT_TRUE(
      test::throws_error([&] { dropout_forward(dp(0.5, 0, 0), -1, &a, &a); }, {"dropout_forward", "'n'", "-1"}));
  EXPECT_TRUE(test::throws_error([&] { dropout_forward(dp(0.5, 0, 0), 1, nullptr, &a); }, {"dropout_forward", "'x'"}));
}

}  // namespace
}  // namespace fovea::ref
