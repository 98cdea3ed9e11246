// cpu_reference/regularizers: penalty values, gradients by finite differences, max-norm, errors.
#include "cpu_reference/regularizers.h"

#include <gtest/gtest.h>

#include <cmath>

#include "tests/test_util.h"

namespace fovea::ref {
namespace {

TEST(RegularizersRef, PenaltiesValueAndGradient) {
  const int64_t n = 60;
  auto w = test::random_away_from_zero(n, 1, 0.05f, 2.0f);  // |w| > step: off the kink of |w|
  double l1 = 0.0, l2 = 0.0;
  for (float x : w) l1 += std::fabs(x), l2 += double(x) * x;
  struct Case {
    const char* name;
    double a, b;  // l1 and l2 coefficients
    std::function<double(float*)> call;
  };
  const std::vector<Case> cases = {
      {"l1", 0.3, 0.0, [&](float* g) { return l1_penalty(n, w.data(), 0.3, g); }},
      {"l2", 0.0, 0.7, [&](float* g) { return l2_penalty(n, w.data(), 0.7, g); }},
      {"elastic_net", 0.2, 0.5, [&](float* g) { return elastic_net_penalty(n, w.data(), 0.2, 0.5, g); }},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_NEAR(c.call(nullptr), c.a * l1 + 0.5 * c.b * l2, 1e-9 * (l1 + l2));
    // The gradient is ADDED to what grad holds.
    auto base = test::random_vector(n, 2);
    std::vector<float> grad = base;
    c.call(grad.data());
    std::vector<float> added(n);
    for (int64_t i = 0; i < n; ++i) added[i] = grad[i] - base[i];
    test::GradCheckOptions o;
    o.step = 1e-2, o.tolerance = 1e-4;
    EXPECT_TRUE(test::check_gradient(
        w, [&] { return c.call(nullptr); }, added, o, "penalty gradient"));
  }
  float zero = 0.0f, g = 0.0f;
  l1_penalty(1, &zero, 1.0, &g);
  EXPECT_EQ(g, 0.0f);  // sign(0) = 0
}

TEST(RegularizersRef, MaxNormConstraint) {
  const int64_t rows = 5, cols = 8;
  auto w = test::random_vector(rows * cols, 3, -1.0f, 1.0f);
  for (int64_t i = 0; i < cols; ++i) w[i] *= 0.05f;  // row 0 well below the limit: untouched
  const auto w0 = w;
  const double c = 1.0;
  max_norm_constraint(rows, cols, w.data(), c);
  for (int64_t r = 0; r < rows; ++r) {
    double n0 = 0.0, n1 = 0.0;
    for (int64_t i = 0; i < cols; ++i) n0 += double(w0[r * cols + i]) * w0[r * cols + i];
    for (int64_t i = 0; i < cols; ++i) n1 += double(w[r * cols + i]) * w[r * cols + i];
    n0 = std::sqrt(n0), n1 = std::sqrt(n1);
    if (n0 <= c) {
      for (int64_t i = 0; i < cols; ++i) EXPECT_EQ(w[r * cols + i], w0[r * cols + i]);
    } else {
      EXPECT_NEAR(n1, c * n0 / (n0 + 1e-7), 1e-6);  // torch.renorm's factor
      for (int64_t i = 0; i < cols; ++i) EXPECT_NEAR(w[r * cols + i], w0[r * cols + i] * c / (n0 + 1e-7), 1e-6);
    }
  }
}

TEST(RegularizersRef, BadArguments) {
  float a = 1.0f;
  EXPECT_TRUE(test::throws_error([&] { l1_penalty(1, &a, -0.1, &a); }, {"l1_penalty", "'lambda'", "-0.1"}));
  EXPECT_TRUE(test::throws_error([&] { l2_penalty(-1, &a, 0.1, &a); }, {"l2_penalty", "'n'", "-1"}));
  EXPECT_TRUE(
      test::throws_error([&] { elastic_net_penalty(1, &a, 0.1, NAN, &a); }, {"elastic_net_penalty", "'l2'", "nan"}));
  EXPECT_TRUE(test::throws_error([&] { max_norm_constraint(1, 1, nullptr, 1.0); }, {"max_norm_constraint", "'w'"}));
  EXPECT_TRUE(
      test::throws_error([&] { max_norm_constraint(1, 1, &a, -1.0); }, {"max_norm_constraint", "max_norm", "-1"}));
}

}  // namespace
}  // namespace fovea::ref
