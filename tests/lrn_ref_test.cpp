// cpu_reference/lrn: against the definition (PyTorch's LocalResponseNorm), finite differences, errors.
#include "cpu_reference/lrn.h"

#include <gtest/gtest.h>

#include <cmath>

#include "tests/test_util.h"

namespace fovea::ref {
namespace {

LrnParams lrn(int64_t N, int64_t C, int64_t H, int64_t W, int64_t size, double alpha, double beta, double k) {
  LrnParams p;
  p.N = N, p.C = C, p.H = H, p.W = W, p.size = size, p.alpha = alpha, p.beta = beta, p.k = k;
  return p;
}

// PyTorch: pad the squared input with size/2 channels before and (size-1)/2 after, average over
// `size` channels (padding counts), then y = x / (k + alpha * avg)^beta.
std::vector<double> lrn_definition(const LrnParams& p, const std::vector<float>& x) {
  std::vector<double> y(x.size());
  const int64_t HW = p.H * p.W;
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t c = 0; c < p.C; ++c)
      for (int64_t i = 0; i < HW; ++i) {
        double avg = 0.0;
        for (int64_t j = c - p.size / 2; j < c - p.size / 2 + p.size; ++j)
          if (j >= 0 && j < p.C) avg += double(x[(n * p.C + j) * HW + i]) * x[(n * p.C + j) * HW + i];
        avg /= double(p.size);
        y[(n * p.C + c) * HW + i] = x[(n * p.C + c) * HW + i] / std::pow(p.k + p.alpha * avg, p.beta);
      }
  return y;
}

TEST(LrnRef, ForwardAndGradients) {
  // Odd and even sizes, a window wider than C, AlexNet's constants and exaggerated ones.
  for (const LrnParams& p : {lrn(2, 7, 3, 4, 5, 1e-4, 0.75, 2.0), lrn(1, 6, 2, 3, 4, 0.5, 0.75, 1.0),
                             lrn(2, 3, 2, 2, 7, 2.0, 1.5, 1.0), lrn(1, 5, 3, 3, 1, 0.3, 0.5, 0.5)}) {
    SCOPED_TRACE(p.str());
    auto x = test::random_vector(p.x_size(), 1, -2.0f, 2.0f), g = test::random_vector(p.x_size(), 2);
    std::vector<float> y(p.x_size()), dx(p.x_size());
    test::poison(y);
    lrn_forward(p, x.data(), y.data());
    ASSERT_TRUE(test::all_written(y));
    EXPECT_TRUE(test::close_l2(y, lrn_definition(p, x), 1e-6, "forward"));
    test::poison(dx);
    lrn_backward(p, x.data(), g.data(), dx.data());
    ASSERT_TRUE(test::all_written(dx));
    auto loss = [&] {
      lrn_forward(p, x.data(), y.data());
      return test::weighted_sum(y, g);
    };
    test::GradCheckOptions o;
    o.step = 1e-2, o.tolerance = 1e-3;
    EXPECT_TRUE(test::check_gradient(x, loss, dx, o, "lrn dx"));
  }
}

TEST(LrnRef, BadArguments) {
  float a = 1.0f;
  EXPECT_TRUE(test::throws_error([&] { lrn_forward(lrn(1, 1, 1, 1, 0, 1e-4, 0.75, 1), &a, &a); },
                                 {"lrn_forward", "'size'", "0"}));
  EXPECT_TRUE(test::throws_error([&] { lrn_backward(lrn(1, 1, 1, 1, 3, 1e-4, 0.75, 0), &a, &a, &a); },
                                 {"lrn_backward", "'k'", "0"}));
  EXPECT_TRUE(test::throws_error([&] { lrn_forward(lrn(1, 1, 1, 1, 3, -1, 0.75, 1), &a, &a); },
                                 {"lrn_forward", "'alpha'", "-1"}));
}

}  // namespace
}  // namespace fovea::ref
