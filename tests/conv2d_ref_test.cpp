// cpu_reference/conv2d: im2col + sgemm path vs a direct nested-loop convolution (forward, dgrad,
// wgrad) over the shared shape list, finite differences, known answers, argument errors.
#include "cpu_reference/conv2d.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "cpu_reference/threading.h"
#include "layers/ops/conv_shapes.h"
#include "tests/test_util.h"

namespace fovea::ref {
namespace {

using shapes::ConvShape;

// ---- direct definitions, in double, straight from the formula y[n][k][p][q] =
// b[k] + sum_{c in group(k), r, s} x[n][c][p*sh - ph + r*dh][q*sw - pw + s*dw] * w[k][c - g*Cg][r][s]
struct Direct {
  const Conv2dParams& p;
  int64_t P, Q, Cg, Kg;
  explicit Direct(const Conv2dParams& pp) : p(pp), P(pp.P()), Q(pp.Q()), Cg(pp.C / pp.groups), Kg(pp.K / pp.groups) {}

  // Calls f(x_index, w_index, y_index) for every multiply-add of the convolution.
  template <typename F>
  void each(F f) const {
    for (int64_t n = 0; n < p.N; ++n)
      for (int64_t k = 0; k < p.K; ++k) {
        const int64_t g = k / Kg;
        for (int64_t oh = 0; oh < P; ++oh)
          for (int64_t ow = 0; ow < Q; ++ow)
            for (int64_t cg = 0; cg < Cg; ++cg)
              for (int64_t r = 0; r < p.R; ++r)
                for (int64_t s = 0; s < p.S; ++s) {
                  const int64_t h = oh * p.stride_h - p.pad_h + r * p.dil_h;
                  const int64_t w = ow * p.stride_w - p.pad_w + s * p.dil_w;
                  if (h < 0 || h >= p.H || w < 0 || w >= p.W) continue;
                  const int64_t c = g * Cg + cg;
                  f(((n * p.C + c) * p.H + h) * p.W + w, ((k * Cg + cg) * p.R + r) * p.S + s,
                    ((n * p.K + k) * P + oh) * Q + ow);
                }
      }
  }
  std::vector<double> forward(const std::vector<float>& x, const std::vector<float>& w,
                              const std::vector<float>* b) const {
    std::vector<double> y(p.y_size(), 0.0);
    if (b)
      for (int64_t i = 0; i < p.y_size(); ++i) y[i] = (*b)[(i / (P * Q)) % p.K];
    each([&](int64_t xi, int64_t wi, int64_t yi) { y[yi] += double(x[xi]) * w[wi]; });
    return y;
  }
  std::vector<double> backward_data(const std::vector<float>& dy, const std::vector<float>& w) const {
    std::vector<double> dx(p.x_size(), 0.0);
    each([&](int64_t xi, int64_t wi, int64_t yi) { dx[xi] += double(dy[yi]) * w[wi]; });
    return dx;
  }
  std::vector<double> backward_filter(const std::vector<float>& x, const std::vector<float>& dy) const {
    std::vector<double> dw(p.w_size(), 0.0);
    each([&](int64_t xi, int64_t wi, int64_t yi) { dw[wi] += double(x[xi]) * dy[yi]; });
    return dw;
  }
};

class ConvEdge : public ::testing::TestWithParam<ConvShape> {};

TEST_P(ConvEdge, MatchesDirectLoops) {
  const Conv2dParams& p = GetParam().p;
  auto x = test::random_vector(p.x_size(), 1), w = test::random_vector(p.w_size(), 2);
  auto b = test::random_vector(p.K, 3), dy = test::random_vector(p.y_size(), 4);
  const Direct d(p);

  std::vector<float> y(p.y_size());
  test::poison(y);
  conv2d_forward(p, x.data(), w.data(), b.data(), y.data());
  ASSERT_TRUE(test::all_written(y, "y"));
  EXPECT_TRUE(test::close_l2(y, d.forward(x, w, &b), 1e-5, "forward"));

  test::poison(y);
  conv2d_forward(p, x.data(), w.data(), nullptr, y.data());
  EXPECT_TRUE(test::close_l2(y, d.forward(x, w, nullptr), 1e-5, "forward without bias"));

  std::vector<float> dx(p.x_size());
  test::poison(dx);
  conv2d_backward_data(p, dy.data(), w.data(), dx.data());
  ASSERT_TRUE(test::all_written(dx, "dx"));
  EXPECT_TRUE(test::close_l2(dx, d.backward_data(dy, w), 1e-5, "backward_data"));

  std::vector<float> dw(p.w_size());
  test::poison(dw);
  conv2d_backward_filter(p, x.data(), dy.data(), dw.data());
  ASSERT_TRUE(test::all_written(dw, "dw"));
  EXPECT_TRUE(test::close_l2(dw, d.backward_filter(x, dy), 1e-5, "backward_filter"));

  std::vector<float> db(p.K);
  test::poison(db);
  conv2d_backward_bias(p, dy.data(), db.data());
  ASSERT_TRUE(test::all_written(db, "db"));
  std::vector<double> db_ref(p.K, 0.0);
  for (int64_t i = 0; i < p.y_size(); ++i) db_ref[(i / (p.P() * p.Q())) % p.K] += dy[i];
  EXPECT_TRUE(test::close_l2(db, db_ref, 1e-6, "backward_bias"));
}

// im2col against its definition, and col2im as its adjoint: <im2col(x), c> == <x, col2im(c)>.
TEST_P(ConvEdge, Im2colAndAdjoint) {
  Conv2dParams p = GetParam().p;
  auto x = test::random_vector(p.C * p.H * p.W, 5);
  const int64_t rows = im2col_rows(p), cols = im2col_cols(p), P = p.P(), Q = p.Q();
  std::vector<float> col(rows * cols);
  test::poison(col);
  im2col(p, x.data(), col.data());
  ASSERT_TRUE(test::all_written(col, "col"));
  for (int64_t c = 0; c < p.C; ++c)
    for (int64_t r = 0; r < p.R; ++r)
      for (int64_t s = 0; s < p.S; ++s)
        for (int64_t oh = 0; oh < P; ++oh)
          for (int64_t ow = 0; ow < Q; ++ow) {
            const int64_t h = oh * p.stride_h - p.pad_h + r * p.dil_h, w = ow * p.stride_w - p.pad_w + s * p.dil_w;
            const float want = (h < 0 || h >= p.H || w < 0 || w >= p.W) ? 0.0f : x[(c * p.H + h) * p.W + w];
            ASSERT_EQ(col[((c * p.R + r) * p.S + s) * cols + oh * Q + ow], want) << c << " " << r << " " << s;
          }
  auto cv = test::random_vector(rows * cols, 6);
  std::vector<float> xt(x.size());
  test::poison(xt);
  col2im(p, cv.data(), xt.data());
  ASSERT_TRUE(test::all_written(xt, "col2im x"));
  const double lhs = test::weighted_sum(col, cv), rhs = test::weighted_sum(x, xt);
  EXPECT_NEAR(lhs, rhs, 1e-4 * (std::fabs(lhs) + 1.0));
}

TEST_P(ConvEdge, Deterministic) {
  const Conv2dParams& p = GetParam().p;
  auto x = test::random_vector(p.x_size(), 7), dy = test::random_vector(p.y_size(), 8);
  std::vector<float> dw1(p.w_size()), dw2(p.w_size());
  conv2d_backward_filter(p, x.data(), dy.data(), dw1.data());
  conv2d_backward_filter(p, x.data(), dy.data(), dw2.data());
  EXPECT_EQ(0, std::memcmp(dw1.data(), dw2.data(), dw1.size() * sizeof(float)));
}

INSTANTIATE_TEST_SUITE_P(Shapes, ConvEdge, ::testing::ValuesIn(shapes::conv_edge_shapes()),
                         [](const auto& info) { return info.param.name; });

// For batches >= 2 every path computes each output with the same BLAS calls whatever the number of
// threads (images are independent; wgrad sums fixed chunks of images in order), so 1 and 2 threads
// give the same bits.
TEST(Conv2dRef, SameBitsForOneAndTwoThreads) {
  const int saved = num_threads();
  for (const auto& [name, p] : shapes::conv_edge_shapes()) {
    if (p.N < 2) continue;
    SCOPED_TRACE(name);
    auto x = test::random_vector(p.x_size(), 41), w = test::random_vector(p.w_size(), 42);
    auto dy = test::random_vector(p.y_size(), 43);
    std::vector<float> out[2][3];
    for (int t = 0; t < 2; ++t) {
      set_num_threads(t + 1);
      out[t][0].resize(p.y_size()), out[t][1].resize(p.x_size()), out[t][2].resize(p.w_size());
      conv2d_forward(p, x.data(), w.data(), nullptr, out[t][0].data());
      conv2d_backward_data(p, dy.data(), w.data(), out[t][1].data());
      conv2d_backward_filter(p, x.data(), dy.data(), out[t][2].data());
    }
    for (int k = 0; k < 3; ++k)
      EXPECT_EQ(0, std::memcmp(out[0][k].data(), out[1][k].data(), out[0][k].size() * sizeof(float))) << k;
  }
  set_num_threads(saved);
}

// Gradients by central differences on a few small shapes (loss = sum(y * g)).
TEST(Conv2dRef, FiniteDifferences) {
  for (const auto& [name, p0] : shapes::conv_edge_shapes()) {
    if (p0.x_size() > 600 || p0.w_size() > 400) continue;  // small shapes only: each check is 2 forwards
    SCOPED_TRACE(name);
    const Conv2dParams p = p0;
    auto x = test::random_vector(p.x_size(), 11), w = test::random_vector(p.w_size(), 12);
    auto b = test::random_vector(p.K, 13), g = test::random_vector(p.y_size(), 14);
    std::vector<float> y(p.y_size()), dx(p.x_size()), dw(p.w_size()), db(p.K);
    auto loss = [&] {
      conv2d_forward(p, x.data(), w.data(), b.data(), y.data());
      return test::weighted_sum(y, g);
    };
    conv2d_backward_data(p, g.data(), w.data(), dx.data());
    conv2d_backward_filter(p, x.data(), g.data(), dw.data());
    conv2d_backward_bias(p, g.data(), db.data());
    // conv is linear in each argument: central differences are exact up to rounding.
    test::GradCheckOptions o;
    o.step = 0.05, o.tolerance = 1e-3;
    EXPECT_TRUE(test::check_gradient(x, loss, dx, o, "dx"));
    EXPECT_TRUE(test::check_gradient(w, loss, dw, o, "dw"));
    EXPECT_TRUE(test::check_gradient(b, loss, db, o, "db"));
  }
}

// A CIFAR-sized layer (pointwise and 3x3) on a few images against the direct loops.
TEST(Conv2dRef, CifarShapesOnFewImages) {
  for (auto [name, p] : shapes::conv_cifar_shapes()) {
    SCOPED_TRACE(name);
    p.N = 3;  // the direct loops are slow; batch handling is covered by the edge shapes
    if (p.C * p.K > 128 * 256) continue;
    auto x = test::random_vector(p.x_size(), 21), w = test::random_vector(p.w_size(), 22);
    auto dy = test::random_vector(p.y_size(), 23);
    const Direct d(p);
    std::vector<float> y(p.y_size()), dx(p.x_size()), dw(p.w_size());
    conv2d_forward(p, x.data(), w.data(), nullptr, y.data());
    EXPECT_TRUE(test::close_l2(y, d.forward(x, w, nullptr), 1e-5, "forward"));
    conv2d_backward_data(p, dy.data(), w.data(), dx.data());
    EXPECT_TRUE(test::close_l2(dx, d.backward_data(dy, w), 1e-5, "backward_data"));
    conv2d_backward_filter(p, x.data(), dy.data(), dw.data());
    EXPECT_TRUE(test::close_l2(dw, d.backward_filter(x, dy), 1e-5, "backward_filter"));
  }
}

// Course material: the 3x3 "anti-diagonal" filter on rows (1,2,3) picks 3 + 2 + 1 = 6 (correlation).
TEST(Conv2dRef, KnownAnswerAntiDiagonalFilter) {
  Conv2dParams p = shapes::conv_params(1, 1, 3, 3, 1, 3, 3);
  const std::vector<float> x = {1, 2, 3, 1, 2, 3, 1, 2, 3}, w = {0, 0, 1, 0, 1, 0, 1, 0, 0};
  float y = NAN;
  conv2d_forward(p, x.data(), w.data(), nullptr, &y);
  EXPECT_EQ(y, 6.0f);
}

// Course material: a 128x128x3 input, one 5x5 filter, padding 2, stride 1 -> a 128x128 map, 76 parameters.
TEST(Conv2dRef, KnownAnswerSamePaddingShapeAndParameterCount) {
  Conv2dParams p = shapes::conv_params(1, 3, 128, 128, 1, 5, 5, 1, 2);
  EXPECT_EQ(p.P(), 128);
  EXPECT_EQ(p.Q(), 128);
  EXPECT_EQ(p.w_size() + p.K, 76);
  // With an all-ones filter and bias 1 on an all-ones input, an interior pixel sees 5*5*3 + 1 = 76,
  // a corner 3*3*3 + 1 = 28.
  std::vector<float> x(p.x_size(), 1.0f), w(p.w_size(), 1.0f), b = {1.0f}, y(p.y_size());
  test::poison(y);
  conv2d_forward(p, x.data(), w.data(), b.data(), y.data());
  ASSERT_TRUE(test::all_written(y));
  EXPECT_EQ(y[64 * 128 + 64], 76.0f);
  EXPECT_EQ(y[0], 28.0f);
}

// Integer-valued inputs: the sgemm path must agree exactly with the direct loops.
TEST(Conv2dRef, IntegerInputsExact) {
  Conv2dParams p = shapes::conv_params(2, 4, 9, 9, 6, 3, 3, 2, 1, 1, 2);
  auto x = test::random_integers(p.x_size(), 31), w = test::random_integers(p.w_size(), 32);
  std::vector<float> y(p.y_size());
  conv2d_forward(p, x.data(), w.data(), nullptr, y.data());
  const auto want = Direct(p).forward(x, w, nullptr);
  for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(double(y[i]), want[i]) << i;
}

TEST(Conv2dRef, BadArguments) {
  std::vector<float> buf(4096, 1.0f);
  float* a = buf.data();
  Conv2dParams p = shapes::conv_params(1, 4, 8, 8, 4, 3, 3);
  Conv2dParams s0 = p;
  s0.stride_w = 0;
  EXPECT_TRUE(test::throws_error([&] { conv2d_forward(s0, a, a, nullptr, a); }, {"conv2d_forward", "stride_w", "0"}));
  Conv2dParams big = shapes::conv_params(1, 1, 4, 4, 1, 7, 7, 1, 1);
  EXPECT_TRUE(
      test::throws_error([&] { conv2d_forward(big, a, a, nullptr, a); }, {"conv2d_forward", "kernel height 7", "6"}));
  Conv2dParams g = shapes::conv_params(1, 4, 8, 8, 4, 3, 3, 1, 0, 1, 3);
  EXPECT_TRUE(
      test::throws_error([&] { conv2d_backward_data(g, a, a, a); }, {"conv2d_backward_data", "groups", "3", "C=4"}));
  Conv2dParams gk = shapes::conv_params(1, 4, 8, 8, 6, 3, 3, 1, 0, 1, 4);
  EXPECT_TRUE(
      test::throws_error([&] { conv2d_backward_filter(gk, a, a, a); }, {"conv2d_backward_filter", "groups", "K=6"}));
  Conv2dParams neg = p;
  neg.pad_h = -1;
  EXPECT_TRUE(test::throws_error([&] { conv2d_backward_bias(neg, a, a); }, {"conv2d_backward_bias", "pad", "-1"}));
  EXPECT_TRUE(
      test::throws_error([&] { conv2d_forward(p, nullptr, a, nullptr, a); }, {"conv2d_forward", "'x'", "null"}));
  EXPECT_TRUE(test::throws_error([&] { im2col(big, a, a); }, {"im2col", "kernel height"}));
}

}  // namespace
}  // namespace fovea::ref
