// cpu_reference/optimizers: SGD and AdamW against the torch.optim update rules written out in
// double over several steps, hand-computed first steps, errors.
#include "cpu_reference/optimizers.h"

#include <gtest/gtest.h>

#include <cmath>

#include "tests/test_util.h"

namespace fovea::ref {
namespace {

SgdParams sgd(double lr, double momentum, double dampening, double wd, bool nesterov) {
  SgdParams p;
  p.lr = lr, p.momentum = momentum, p.dampening = dampening, p.weight_decay = wd, p.nesterov = nesterov;
  return p;
}

TEST(OptimizersRef, SgdMatchesTorchRule) {
  const int64_t n = 50;
  for (const SgdParams& p : {sgd(0.1, 0.0, 0.0, 0.0, false), sgd(0.05, 0.9, 0.0, 0.0, false),
                             sgd(0.05, 0.9, 0.3, 1e-2, false), sgd(0.02, 0.8, 0.0, 5e-3, true)}) {
    SCOPED_TRACE(testing::Message() << "lr " << p.lr << " momentum " << p.momentum << " dampening " << p.dampening
                                    << " wd " << p.weight_decay << " nesterov " << p.nesterov);
    auto w = test::random_vector(n, 1);
    std::vector<double> wd(w.begin(), w.end()), bufd(n, 0.0);
    std::vector<float> buf(n);
    test::poison(buf);  // step 1 must initialise it without reading
    for (int64_t step = 1; step <= 5; ++step) {
      auto g = test::random_vector(n, 10 + step);
      sgd_step(p, n, w.data(), g.data(), p.momentum != 0.0 ? buf.data() : nullptr, step);
      for (int64_t i = 0; i < n; ++i) {  // torch.optim.SGD._single_tensor_sgd
        double d = g[i] + p.weight_decay * wd[i];
        if (p.momentum != 0.0) {
          bufd[i] = step == 1 ? d : p.momentum * bufd[i] + (1.0 - p.dampening) * d;
          d = p.nesterov ? d + p.momentum * bufd[i] : bufd[i];
        }
        wd[i] -= p.lr * d;
      }
    }
    EXPECT_TRUE(test::close_l2(w, wd, 1e-6, "weights"));
    if (p.momentum != 0.0) {
      EXPECT_TRUE(test::close_l2(buf, bufd, 1e-6, "momentum buffer"));
    }
  }
}

TEST(OptimizersRef, SgdMomentumFirstTwoSteps) {
  float w = 1.0f, buf = NAN;
  const float g1 = 0.5f, g2 = -1.0f;
  const SgdParams p = sgd(0.1, 0.9, 0.5, 0.0, false);
  sgd_step(p, 1, &w, &g1, &buf, 1);  // buf = g1 (no dampening on the first step)
  EXPECT_FLOAT_EQ(buf, 0.5f);
  EXPECT_FLOAT_EQ(w, 0.95f);
  sgd_step(p, 1, &w, &g2, &buf, 2);  // buf = 0.9 * 0.5 + 0.5 * -1 = -0.05
  EXPECT_FLOAT_EQ(buf, -0.05f);
  EXPECT_FLOAT_EQ(w, 0.955f);
}

AdamWParams adamw(double lr, double b1, double b2, double eps, double wd) {
  AdamWParams p;
  p.lr = lr, p.beta1 = b1, p.beta2 = b2, p.eps = eps, p.weight_decay = wd;
  return p;
}

TEST(OptimizersRef, AdamWMatchesTorchRule) {
  const int64_t n = 40;
  for (const AdamWParams& p :
       {adamw(1e-3, 0.9, 0.999, 1e-8, 1e-2), adamw(0.05, 0.8, 0.99, 1e-3, 0.0), adamw(0.01, 0.0, 0.5, 1e-6, 0.1)}) {
    SCOPED_TRACE(testing::Message() << "lr " << p.lr << " betas " << p.beta1 << "," << p.beta2);
    auto w = test::random_vector(n, 2);
    std::vector<float> m(n, 0.0f), v(n, 0.0f);
    std::vector<double> wd(w.begin(), w.end()), md(n, 0.0), vd(n, 0.0);
    for (int64_t step = 1; step <= 6; ++step) {
      auto g = test::random_vector(n, 20 + step);
      adamw_step(p, n, w.data(), g.data(), m.data(), v.data(), step);
      const double bc1 = 1.0 - std::pow(p.beta1, step), bc2 = 1.0 - std::pow(p.beta2, step);
      for (int64_t i = 0; i < n; ++i) {  // torch.optim.AdamW._single_tensor_adamw
        wd[i] *= 1.0 - p.lr * p.weight_decay;
        md[i] = p.beta1 * md[i] + (1.0 - p.beta1) * g[i];
        vd[i] = p.beta2 * vd[i] + (1.0 - p.beta2) * double(g[i]) * g[i];
        wd[i] -= p.lr / bc1 * md[i] / (std::sqrt(vd[i]) / std::sqrt(bc2) + p.eps);
      }
    }
    EXPECT_TRUE(test::close_l2(w, wd, 1e-6, "weights"));
    EXPECT_TRUE(test::close_l2(m, md, 1e-6, "first moment"));
    EXPECT_TRUE(test::close_l2(v, vd, 1e-6, "second moment"));
  }
}

// First AdamW step: bias correction makes m_hat = g and v_hat = g^2, so w moves by ~lr * sign(g).
TEST(OptimizersRef, AdamWFirstStepIsSignStep) {
  std::vector<float> w = {1.0f, -2.0f}, g = {0.3f, -7.0f}, m(2, 0.0f), v(2, 0.0f);
  adamw_step(adamw(0.01, 0.9, 0.999, 1e-8, 0.1), 2, w.data(), g.data(), m.data(), v.data(), 1);
  EXPECT_NEAR(w[0], 1.0 * (1 - 0.001) - 0.01, 1e-6);
  EXPECT_NEAR(w[1], -2.0 * (1 - 0.001) + 0.01, 1e-6);
}

TEST(OptimizersRef, BadArguments) {
  float a = 1.0f;
  EXPECT_TRUE(test::throws_error([&] { sgd_step(sgd(0.1, 0.9, 0.1, 0, true), 1, &a, &a, &a, 1); },
                                 {"sgd_step", "nesterov", "dampening 0.1"}));
  EXPECT_TRUE(test::throws_error([&] { sgd_step(sgd(0.1, 0.9, 0, 0, false), 1, &a, &a, nullptr, 1); },
                                 {"sgd_step", "'momentum_buf'", "null"}));
  EXPECT_TRUE(test::throws_error([&] { sgd_step(sgd(-0.1, 0, 0, 0, false), 1, &a, &a, nullptr, 1); },
                                 {"sgd_step", "'lr'", "-0.1"}));
  EXPECT_TRUE(test::throws_error([&] { adamw_step(adamw(1e-3, 0.9, 0.999, 1e-8, 0), 1, &a, &a, &a, &a, 0); },
                                 {"adamw_step", "'step'", "0"}));
  EXPECT_TRUE(test::throws_error([&] { adamw_step(adamw(1e-3, 1.0, 0.999, 1e-8, 0), 1, &a, &a, &a, &a, 1); },
                                 {"adamw_step", "'beta1'", "1"}));
}

}  // namespace
}  // namespace fovea::ref
