// cpu_reference/softmax: softmax, log_softmax, cross_entropy (label smoothing) against double
// formulas, stability, finite differences, label errors.
#include "cpu_reference/softmax.h"

#include <gtest/gtest.h>

#include <cmath>

#include "tests/test_util.h"

namespace fovea::ref {
namespace {

CrossEntropyParams cp(int64_t N, int64_t C, double smoothing = 0.0) {
  CrossEntropyParams p;
  p.N = N, p.C = C, p.label_smoothing = smoothing;
  return p;
}

std::vector<double> log_softmax_double(const std::vector<float>& x, int64_t N, int64_t C) {
  std::vector<double> y(x.size());
  for (int64_t n = 0; n < N; ++n) {
    double m = -INFINITY, s = 0.0;
    for (int64_t c = 0; c < C; ++c) m = std::max(m, double(x[n * C + c]));
    for (int64_t c = 0; c < C; ++c) s += std::exp(x[n * C + c] - m);
    for (int64_t c = 0; c < C; ++c) y[n * C + c] = x[n * C + c] - m - std::log(s);
  }
  return y;
}

TEST(SoftmaxRef, ForwardMatchesFormula) {
  const int64_t N = 7, C = 13;
  auto x = test::random_vector(N * C, 1, -5.0f, 5.0f);
  const auto ls = log_softmax_double(x, N, C);
  std::vector<float> y(N * C), ly(N * C);
  test::poison(y), test::poison(ly);
  softmax_forward(N, C, x.data(), y.data());
  log_softmax_forward(N, C, x.data(), ly.data());
  ASSERT_TRUE(test::all_written(y) && test::all_written(ly));
  std::vector<double> sm(ls.size());
  for (size_t i = 0; i < ls.size(); ++i) sm[i] = std::exp(ls[i]);
  EXPECT_TRUE(test::close_l2(y, sm, 1e-6, "softmax"));
  EXPECT_TRUE(test::close_l2(ly, ls, 1e-6, "log_softmax"));
}

TEST(SoftmaxRef, StableForHugeLogits) {
  const std::vector<float> x = {1e4f, 1e4f - 1.0f, -1e4f, 3e4f, 3e4f, 3e4f};
  std::vector<float> y(6), ly(6);
  softmax_forward(2, 3, x.data(), y.data());
  log_softmax_forward(2, 3, x.data(), ly.data());
  EXPECT_NEAR(y[0], 1.0 / (1.0 + std::exp(-1.0)), 1e-6);
  EXPECT_EQ(y[2], 0.0f);
  EXPECT_NEAR(y[4], 1.0 / 3.0, 1e-6);
  EXPECT_NEAR(ly[1], -1.0 - std::log1p(std::exp(-1.0)), 1e-6);
  EXPECT_NEAR(ly[2], -2e4 - std::log1p(std::exp(-1.0)), 1e-2);
  const std::vector<int64_t> labels = {2, 0};
  const float loss = cross_entropy_forward(cp(2, 3), x.data(), labels.data());
  EXPECT_TRUE(std::isfinite(loss));
  EXPECT_NEAR(loss, (2e4 + std::log1p(std::exp(-1.0)) + std::log(3.0)) / 2.0, 1e-2);
}

TEST(SoftmaxRef, BackwardFiniteDifferences) {
  const int64_t N = 4, C = 6;
  auto x = test::random_vector(N * C, 2, -2.0f, 2.0f), g = test::random_vector(N * C, 3);
  std::vector<float> y(N * C), dx(N * C), yy(N * C);
  softmax_forward(N, C, x.data(), y.data());
  test::poison(dx);
  softmax_backward(N, C, y.data(), g.data(), dx.data());
  ASSERT_TRUE(test::all_written(dx));
  auto sm_loss = [&] {
    softmax_forward(N, C, x.data(), yy.data());
    return test::weighted_sum(yy, g);
  };
  test::GradCheckOptions o;
  o.step = 1e-2, o.tolerance = 1e-3;
  EXPECT_TRUE(test::check_gradient(x, sm_loss, dx, o, "softmax dx"));

  log_softmax_forward(N, C, x.data(), y.data());
  test::poison(dx);
  log_softmax_backward(N, C, y.data(), g.data(), dx.data());
  ASSERT_TRUE(test::all_written(dx));
  auto ls_loss = [&] {
    log_softmax_forward(N, C, x.data(), yy.data());
    return test::weighted_sum(yy, g);
  };
  EXPECT_TRUE(test::check_gradient(x, ls_loss, dx, o, "log_softmax dx"));
}

TEST(SoftmaxRef, CrossEntropyValueAndGradient) {
  const int64_t N = 5, C = 7;
  auto x = test::random_vector(N * C, 4, -3.0f, 3.0f);
  const auto labels = test::random_labels(N, C, 5);
  const auto ls = log_softmax_double(x, N, C);
  for (double eps : {0.0, 0.1, 0.35, 1.0}) {
    SCOPED_TRACE(eps);
    // torch: (1 - eps) * nll + eps * mean over classes of -log_softmax, averaged over the batch.
    double want = 0.0;
    for (int64_t n = 0; n < N; ++n) {
      double smooth = 0.0;
      for (int64_t c = 0; c < C; ++c) smooth -= ls[n * C + c] / C;
      want += ((1.0 - eps) * -ls[n * C + labels[n]] + eps * smooth) / N;
    }
    const CrossEntropyParams p = cp(N, C, eps);
    EXPECT_NEAR(cross_entropy_forward(p, x.data(), labels.data()), want, 1e-6 * std::fabs(want) + 1e-7);
    std::vector<float> dx(N * C);
    test::poison(dx);
    const float dloss = 1.3f;
    cross_entropy_backward(p, x.data(), labels.data(), dloss, dx.data());
    ASSERT_TRUE(test::all_written(dx));
    auto loss = [&] { return double(dloss) * double(cross_entropy_forward(p, x.data(), labels.data())); };
    test::GradCheckOptions o;
    o.step = 1e-2, o.tolerance = 1e-3;
    EXPECT_TRUE(test::check_gradient(x, loss, dx, o, "cross_entropy dlogits"));
  }
}

// Equal logits: loss = log C whatever the label or smoothing.
TEST(SoftmaxRef, CrossEntropyUniformLogits) {
  std::vector<float> x(3 * 10, 0.25f);
  const std::vector<int64_t> labels = {0, 9, 4};
  EXPECT_NEAR(cross_entropy_forward(cp(3, 10), x.data(), labels.data()), std::log(10.0), 1e-6);
  EXPECT_NEAR(cross_entropy_forward(cp(3, 10, 0.2), x.data(), labels.data()), std::log(10.0), 1e-6);
}

TEST(SoftmaxRef, BadArguments) {
  std::vector<float> x(12, 0.0f);
  std::vector<int64_t> labels = {0, 3, 4};
  EXPECT_TRUE(test::throws_error([&] { cross_entropy_forward(cp(3, 4), x.data(), labels.data()); },
                                 {"cross_entropy_forward", "'labels'[2]=4", "[0, 4)"}));
  labels = {-1, 0, 0};
  EXPECT_TRUE(test::throws_error([&] { cross_entropy_backward(cp(3, 4), x.data(), labels.data(), 1.0f, x.data()); },
                                 {"cross_entropy_backward", "'labels'[0]=-1"}));
  labels = {0, 0, 0};
  EXPECT_TRUE(test::throws_error([&] { cross_entropy_forward(cp(3, 4, 1.5), x.data(), labels.data()); },
                                 {"cross_entropy_forward", "label_smoothing", "1.5"}));
  EXPECT_TRUE(test::throws_error([&] { softmax_forward(2, 0, x.data(), x.data()); }, {"softmax_forward", "'C'", "0"}));
  EXPECT_TRUE(test::throws_error([&] { log_softmax_backward(2, 2, x.data(), nullptr, x.data()); },
                                 {"log_softmax_backward", "'dy'"}));
}

}  // namespace
}  // namespace fovea::ref
