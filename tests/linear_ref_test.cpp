// cpu_reference/linear: against direct loops, finite differences, the course's 2-2-1 network, errors.
#include "cpu_reference/linear.h"

#include <gtest/gtest.h>

#include "cpu_reference/mse.h"
#include "cpu_reference/threading.h"
#include "tests/test_util.h"

namespace fovea::ref {
namespace {

LinearParams lp(int64_t N, int64_t I, int64_t O) {
  LinearParams p;
  p.N = N, p.in_features = I, p.out_features = O;
  return p;
}

TEST(LinearRef, MatchesDirectLoops) {
  // Small, odd and large enough to take the threaded sgemm split.
  for (const LinearParams& p : {lp(1, 1, 1), lp(3, 5, 7), lp(17, 33, 9), lp(64, 9216, 128), lp(64, 128, 10)}) {
    SCOPED_TRACE(p.str());
    const int64_t N = p.N, I = p.in_features, O = p.out_features;
    auto x = test::random_vector(N * I, 1), w = test::random_vector(O * I, 2), b = test::random_vector(O, 3);
    auto dy = test::random_vector(N * O, 4);
    std::vector<double> y_ref(N * O), dx_ref(N * I, 0.0), dw_ref(O * I, 0.0), db_ref(O, 0.0);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t o = 0; o < O; ++o) {
        double s = b[o];
        for (int64_t i = 0; i < I; ++i) {
          s += double(x[n * I + i]) * w[o * I + i];
          dx_ref[n * I + i] += double(dy[n * O + o]) * w[o * I + i];
          dw_ref[o * I + i] += double(dy[n * O + o]) * x[n * I + i];
        }
        y_ref[n * O + o] = s;
        db_ref[o] += dy[n * O + o];
      }
    std::vector<float> y(N * O), dx(N * I), dw(O * I), db(O);
    test::poison(y), test::poison(dx), test::poison(dw), test::poison(db);
    linear_forward(p, x.data(), w.data(), b.data(), y.data());
    linear_backward_data(p, dy.data(), w.data(), dx.data());
    linear_backward_weight(p, x.data(), dy.data(), dw.data());
    linear_backward_bias(p, dy.data(), db.data());
    ASSERT_TRUE(test::all_written(y, "y") && test::all_written(dx, "dx") && test::all_written(dw, "dw") &&
                test::all_written(db, "db"));
    EXPECT_TRUE(test::close_l2(y, y_ref, 1e-5, "forward"));
    EXPECT_TRUE(test::close_l2(dx, dx_ref, 1e-5, "backward_data"));
    EXPECT_TRUE(test::close_l2(dw, dw_ref, 1e-5, "backward_weight"));
    EXPECT_TRUE(test::close_l2(db, db_ref, 1e-6, "backward_bias"));
    // Without bias.
    test::poison(y);
    linear_forward(p, x.data(), w.data(), nullptr, y.data());
    for (int64_t i = 0; i < N * O; ++i) y_ref[i] -= b[i % O];
    EXPECT_TRUE(test::close_l2(y, y_ref, 1e-5, "forward without bias"));
  }
}

// Each output element comes from one BLAS call over the whole inner dimension, however the work is
// split among threads: 1 and 2 threads give the same bits.
TEST(LinearRef, SameBitsForOneAndTwoThreads) {
  const int saved = num_threads();
  const LinearParams p = lp(64, 9216, 128);
  auto x = test::random_vector(64 * 9216, 1), w = test::random_vector(128 * 9216, 2), b = test::random_vector(128, 3);
  auto dy = test::random_vector(64 * 128, 4);
  std::vector<float> out[2][3];
  for (int t = 0; t < 2; ++t) {
    set_num_threads(t + 1);
    out[t][0].resize(64 * 128), out[t][1].resize(64 * 9216), out[t][2].resize(128 * 9216);
    linear_forward(p, x.data(), w.data(), b.data(), out[t][0].data());
    linear_backward_data(p, dy.data(), w.data(), out[t][1].data());
    linear_backward_weight(p, x.data(), dy.data(), out[t][2].data());
  }
  set_num_threads(saved);
  for (int k = 0; k < 3; ++k) EXPECT_TRUE(out[0][k] == out[1][k]) << k;
}

TEST(LinearRef, FiniteDifferences) {
  const LinearParams p = lp(4, 6, 5);
  auto x = test::random_vector(24, 5), w = test::random_vector(30, 6), b = test::random_vector(5, 7);
  auto g = test::random_vector(20, 8);
  std::vector<float> y(20), dx(24), dw(30), db(5);
  linear_backward_data(p, g.data(), w.data(), dx.data());
  linear_backward_weight(p, x.data(), g.data(), dw.data());
  linear_backward_bias(p, g.data(), db.data());
  auto loss = [&] {
    linear_forward(p, x.data(), w.data(), b.data(), y.data());
    return test::weighted_sum(y, g);
  };
  EXPECT_TRUE(test::check_gradient(x, loss, dx, {}, "dx"));
  EXPECT_TRUE(test::check_gradient(w, loss, dw, {}, "dw"));
  EXPECT_TRUE(test::check_gradient(b, loss, db, {}, "db"));
}

// Course material: a 2-2-1 network with identity activations, hidden weights (1,1) and (0.5,0.5),
// hidden biases (0.5, 0), output weights (1,1), output bias 0.5: input (1,0) gives 2.5, and the
// squared error to target 2 is (2.5 - 2)^2 = 0.25 (PyTorch's MSE has no 1/2 factor).
TEST(LinearRef, KnownAnswerTwoTwoOneNetwork) {
  const std::vector<float> x = {1, 0}, w1 = {1, 1, 0.5f, 0.5f}, b1 = {0.5f, 0}, w2 = {1, 1}, b2 = {0.5f};
  std::vector<float> h(2), y(1);
  linear_forward(lp(1, 2, 2), x.data(), w1.data(), b1.data(), h.data());
  EXPECT_EQ(h, (std::vector<float>{1.5f, 0.5f}));
  linear_forward(lp(1, 2, 1), h.data(), w2.data(), b2.data(), y.data());
  EXPECT_EQ(y[0], 2.5f);
  const float target = 2.0f;
  EXPECT_EQ(mse_forward(1, y.data(), &target), 0.25f);
  float dy = NAN;
  mse_backward(1, y.data(), &target, 1.0f, &dy);
  EXPECT_EQ(dy, 1.0f);  // 2 * (2.5 - 2)
}

TEST(LinearRef, BadArguments) {
  std::vector<float> buf(64, 1.0f);
  float* a = buf.data();
  EXPECT_TRUE(test::throws_error([&] { linear_forward(lp(0, 2, 2), a, a, a, a); }, {"linear_forward", "'N'", "0"}));
  EXPECT_TRUE(test::throws_error([&] { linear_backward_data(lp(2, -1, 2), a, a, a); },
                                 {"linear_backward_data", "in_features", "-1"}));
  EXPECT_TRUE(test::throws_error([&] { linear_backward_weight(lp(2, 2, 0), a, a, a); },
                                 {"linear_backward_weight", "out_features", "0"}));
  EXPECT_TRUE(test::throws_error([&] { linear_backward_bias(lp(2, 2, 2), a, nullptr); },
                                 {"linear_backward_bias", "'db'", "null"}));
}

}  // namespace
}  // namespace fovea::ref
