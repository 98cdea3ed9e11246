// cpu_reference/batchnorm: training statistics and running-stat update (unbiased variance), eval
// mode, finite differences through the batch statistics, errors.
#include "cpu_reference/batchnorm.h"

#include <gtest/gtest.h>

#include <cmath>

#include "tests/test_util.h"

namespace fovea::ref {
namespace {

BatchNormParams bn(int64_t N, int64_t C, int64_t H, int64_t W, bool training, double eps = 1e-5,
                   double momentum = 0.1) {
  BatchNormParams p;
  p.N = N, p.C = C, p.H = H, p.W = W, p.training = training, p.eps = eps, p.momentum = momentum;
  return p;
}

TEST(BatchNormRef, TrainingForwardAndRunningStats) {
  const BatchNormParams p = bn(3, 4, 5, 2, true, 1e-3, 0.2);
  const int64_t HW = 10, M = 30;
  auto x = test::random_vector(p.x_size(), 1, -3.0f, 5.0f);
  auto gamma = test::random_vector(4, 2, 0.5f, 2.0f), beta = test::random_vector(4, 3);
  std::vector<float> rm = {0.1f, -0.2f, 0.3f, 0.0f}, rv = {1.0f, 2.0f, 0.5f, 1.5f};
  const auto rm0 = rm, rv0 = rv;
  std::vector<float> y(p.x_size()), sm(4), si(4);
  test::poison(y), test::poison(sm), test::poison(si);
  batchnorm2d_forward(p, x.data(), gamma.data(), beta.data(), rm.data(), rv.data(), y.data(), sm.data(), si.data());
  ASSERT_TRUE(test::all_written(y) && test::all_written(sm) && test::all_written(si));
  std::vector<double> want(p.x_size());
  for (int64_t c = 0; c < 4; ++c) {
    double mean = 0.0, var = 0.0;
    for (int64_t n = 0; n < 3; ++n)
      for (int64_t i = 0; i < HW; ++i) mean += x[(n * 4 + c) * HW + i] / double(M);
    for (int64_t n = 0; n < 3; ++n)
      for (int64_t i = 0; i < HW; ++i) var += std::pow(x[(n * 4 + c) * HW + i] - mean, 2) / double(M);
    for (int64_t n = 0; n < 3; ++n)
      for (int64_t i = 0; i < HW; ++i) {
        const int64_t j = (n * 4 + c) * HW + i;
        want[j] = (x[j] - mean) / std::sqrt(var + 1e-3) * gamma[c] + beta[c];
      }
    EXPECT_NEAR(sm[c], mean, 1e-6);
    EXPECT_NEAR(si[c], 1.0 / std::sqrt(var + 1e-3), 1e-5);
    EXPECT_NEAR(rm[c], 0.8 * rm0[c] + 0.2 * mean, 1e-6);
    EXPECT_NEAR(rv[c], 0.8 * rv0[c] + 0.2 * var * M / (M - 1), 1e-5);  // unbiased, as PyTorch
  }
  EXPECT_TRUE(test::close_l2(y, want, 1e-6, "training forward"));
}

TEST(BatchNormRef, EvalUsesRunningStats) {
  const BatchNormParams p = bn(2, 3, 2, 2, false);
  auto x = test::random_vector(p.x_size(), 4);
  const std::vector<float> gamma = {1.5f, -0.5f, 1.0f}, beta = {0.1f, 0.2f, -0.3f};
  std::vector<float> rm = {0.3f, -0.1f, 0.0f}, rv = {0.5f, 2.0f, 1.0f}, y(p.x_size());
  const auto rm0 = rm, rv0 = rv;
  test::poison(y);
  batchnorm2d_forward(p, x.data(), gamma.data(), beta.data(), rm.data(), rv.data(), y.data(), nullptr, nullptr);
  ASSERT_TRUE(test::all_written(y));
  EXPECT_EQ(rm, rm0);
  EXPECT_EQ(rv, rv0);
  std::vector<double> want(p.x_size());
  for (int64_t i = 0; i < p.x_size(); ++i) {
    const int64_t c = (i / 4) % 3;
    want[i] = (x[i] - rm[c]) / std::sqrt(rv[c] + 1e-5) * gamma[c] + beta[c];
  }
  EXPECT_TRUE(test::close_l2(y, want, 1e-6, "eval forward"));
}

// loss = sum(y * g); gradients w.r.t. x (through the batch mean and variance), gamma and beta.
void check_gradients(const BatchNormParams& p, bool affine) {
  SCOPED_TRACE(p.str() + (affine ? " affine" : " no affine"));
  auto x = test::random_vector(p.x_size(), 5, -2.0f, 2.0f), g = test::random_vector(p.x_size(), 6);
  auto gamma = test::random_vector(p.C, 7, 0.5f, 1.5f), beta = test::random_vector(p.C, 8);
  std::vector<float> rm(p.C, 0.2f), rv(p.C, 1.3f), y(p.x_size()), sm(p.C), si(p.C);
  const float* gp = affine ? gamma.data() : nullptr;
  const float* bp = affine ? beta.data() : nullptr;
  auto loss = [&] {
    std::vector<float> rm_copy = rm, rv_copy = rv;  // keep the running stats fixed across evaluations
    batchnorm2d_forward(p, x.data(), gp, bp, rm_copy.data(), rv_copy.data(), y.data(), sm.data(), si.data());
    return test::weighted_sum(y, g);
  };
  loss();
  std::vector<float> dx(p.x_size()), dgamma(p.C), dbeta(p.C);
  test::poison(dx), test::poison(dgamma), test::poison(dbeta);
  batchnorm2d_backward(p, x.data(), g.data(), gp, sm.data(), si.data(), dx.data(), affine ? dgamma.data() : nullptr,
                       affine ? dbeta.data() : nullptr);
  ASSERT_TRUE(test::all_written(dx));
  test::GradCheckOptions o;
  o.step = 1e-2, o.tolerance = 2e-3;
  EXPECT_TRUE(test::check_gradient(x, loss, dx, o, "dx"));
  if (affine) {
    ASSERT_TRUE(test::all_written(dgamma) && test::all_written(dbeta));
    EXPECT_TRUE(test::check_gradient(gamma, loss, dgamma, o, "dgamma"));
    EXPECT_TRUE(test::check_gradient(beta, loss, dbeta, o, "dbeta"));
  }
}

TEST(BatchNormRef, FiniteDifferences) {
  check_gradients(bn(3, 2, 3, 2, true), true);
  check_gradients(bn(4, 3, 1, 1, true), false);  // BatchNorm1d-like: one pixel per sample
  check_gradients(bn(2, 2, 3, 3, false), true);
}

TEST(BatchNormRef, BadArguments) {
  std::vector<float> a(16, 1.0f);
  float* p = a.data();
  EXPECT_TRUE(test::throws_error([&] { batchnorm2d_forward(bn(1, 2, 1, 1, true), p, p, p, p, p, p, p, p); },
                                 {"batchnorm2d_forward", "more than 1 value per channel", "N*H*W=1"}));
  EXPECT_TRUE(test::throws_error([&] { batchnorm2d_forward(bn(2, 2, 1, 1, true, 0.0), p, p, p, p, p, p, p, p); },
                                 {"batchnorm2d_forward", "'eps'", "0"}));
  EXPECT_TRUE(test::throws_error([&] { batchnorm2d_forward(bn(2, 2, 1, 1, true, 1e-5, 1.5), p, p, p, p, p, p, p, p); },
                                 {"batchnorm2d_forward", "'momentum'", "1.5"}));
  EXPECT_TRUE(
      test::throws_error([&] { batchnorm2d_forward(bn(2, 2, 1, 1, false), p, p, p, nullptr, nullptr, p, p, p); },
                         {"batchnorm2d_forward", "eval", "running_mean"}));
  EXPECT_TRUE(test::throws_error([&] { batchnorm2d_backward(bn(2, 2, 1, 1, true), p, p, p, nullptr, p, p, p, p); },
                                 {"batchnorm2d_backward", "'save_mean'"}));
}

}  // namespace
}  // namespace fovea::ref
