// cpu_reference/pooling: max/avg/global pooling against direct definitions over the shared pooling
// shapes, known answers, first-maximum ties, finite differences, argument errors.
#include "cpu_reference/pooling.h"

#include <gtest/gtest.h>

#include "layers/ops/conv_shapes.h"
#include "tests/test_util.h"

namespace fovea::ref {
namespace {

using shapes::PoolShape;

// Direct max pooling: scan the window row by row, keep the first strict maximum.
void naive_maxpool(const Pool2dParams& p, const std::vector<float>& x, std::vector<float>& y,
                   std::vector<int64_t>& idx) {
  const int64_t P = p.P(), Q = p.Q();
  y.assign(p.y_size(), 0.0f), idx.assign(p.y_size(), -1);
  for (int64_t nc = 0; nc < p.N * p.C; ++nc)
    for (int64_t oh = 0; oh < P; ++oh)
      for (int64_t ow = 0; ow < Q; ++ow) {
        float best = -INFINITY;
        int64_t arg = -1;
        for (int64_t r = 0; r < p.kernel_h; ++r)
          for (int64_t s = 0; s < p.kernel_w; ++s) {
            const int64_t h = oh * p.stride_h - p.pad_h + r, w = ow * p.stride_w - p.pad_w + s;
            if (h < 0 || h >= p.H || w < 0 || w >= p.W) continue;
            const float v = x[nc * p.H * p.W + h * p.W + w];
            if (arg < 0 || v > best) best = v, arg = h * p.W + w;
          }
        y[(nc * P + oh) * Q + ow] = best, idx[(nc * P + oh) * Q + ow] = arg;
      }
}

// Direct average pooling: divisor kernel_h * kernel_w with count_include_pad, else the real pixels.
std::vector<double> naive_avgpool(const Pool2dParams& p, const std::vector<float>& x) {
  const int64_t P = p.P(), Q = p.Q();
  std::vector<double> y(p.y_size());
  for (int64_t nc = 0; nc < p.N * p.C; ++nc)
    for (int64_t oh = 0; oh < P; ++oh)
      for (int64_t ow = 0; ow < Q; ++ow) {
        double s = 0.0;
        int64_t count = 0;
        for (int64_t r = 0; r < p.kernel_h; ++r)
          for (int64_t c = 0; c < p.kernel_w; ++c) {
            const int64_t h = oh * p.stride_h - p.pad_h + r, w = ow * p.stride_w - p.pad_w + c;
            if (h < 0 || h >= p.H || w < 0 || w >= p.W) continue;
            s += x[nc * p.H * p.W + h * p.W + w], ++count;
          }
        y[(nc * P + oh) * Q + ow] = s / double(p.count_include_pad ? p.kernel_h * p.kernel_w : count);
      }
  return y;
}

class PoolShapes : public ::testing::TestWithParam<PoolShape> {};

TEST_P(PoolShapes, MaxMatchesDirect) {
  const Pool2dParams& p = GetParam().p;
  auto x = test::random_integers(p.x_size(), 1, -4, 4);  // many ties: exercises the first-maximum rule
  std::vector<float> y(p.y_size()), want_y;
  std::vector<int64_t> idx(p.y_size()), want_idx;
  std::vector<int32_t> idx32(p.y_size());
  test::poison(y), test::poison(idx), test::poison(idx32);
  maxpool2d_forward(p, x.data(), y.data(), idx.data());
  ASSERT_TRUE(test::all_written(y, "y"));
  ASSERT_TRUE(test::all_written(idx, "idx"));
  naive_maxpool(p, x, want_y, want_idx);
  EXPECT_EQ(y, want_y);
  EXPECT_EQ(idx, want_idx);
  maxpool2d_forward(p, x.data(), y.data(), idx32.data());
  EXPECT_TRUE(std::equal(idx32.begin(), idx32.end(), idx.begin()));

  // Backward: scatter-add, overlapping windows add up.
  auto dy = test::random_vector(p.y_size(), 2);
  std::vector<float> dx(p.x_size()), dx32(p.x_size());
  std::vector<double> want_dx(p.x_size(), 0.0);
  for (int64_t i = 0; i < p.y_size(); ++i) want_dx[(i / (p.P() * p.Q())) * p.H * p.W + want_idx[i]] += dy[i];
  test::poison(dx);
  maxpool2d_backward(p, dy.data(), idx.data(), dx.data());
  ASSERT_TRUE(test::all_written(dx, "dx"));
  EXPECT_TRUE(test::close_l2(dx, want_dx, 1e-6, "maxpool backward"));
  maxpool2d_backward(p, dy.data(), idx32.data(), dx32.data());
  EXPECT_EQ(dx, dx32);
}

TEST_P(PoolShapes, AvgMatchesDirect) {
  const Pool2dParams& p = GetParam().p;
  auto x = test::random_vector(p.x_size(), 3);
  std::vector<float> y(p.y_size());
  test::poison(y);
  avgpool2d_forward(p, x.data(), y.data());
  ASSERT_TRUE(test::all_written(y, "y"));
  EXPECT_TRUE(test::close_l2(y, naive_avgpool(p, x), 1e-6, "avgpool forward"));
}

INSTANTIATE_TEST_SUITE_P(Shapes, PoolShapes, ::testing::ValuesIn(shapes::pool_shapes()),
                         [](const auto& info) { return info.param.name; });

// Course material: 2x2 max pooling with stride 2.
TEST(PoolingRef, KnownAnswerMaxPool2x2) {
  Pool2dParams p = shapes::pool_params(1, 1, 4, 4, 2, 2, 2, 2);
  const std::vector<float> a = {1, 2, 5, 3, 3, 0, 1, 2, 2, 1, 3, 4, 1, 1, 2, 0};
  const std::vector<float> b = {1, 1, 2, 4, 5, 6, 7, 8, 3, 2, 1, 0, 1, 2, 3, 4};
  std::vector<float> y(4);
  maxpool2d_forward(p, a.data(), y.data(), static_cast<int64_t*>(nullptr));
  EXPECT_EQ(y, (std::vector<float>{3, 5, 2, 4}));
  maxpool2d_forward(p, b.data(), y.data(), static_cast<int64_t*>(nullptr));
  EXPECT_EQ(y, (std::vector<float>{6, 8, 3, 4}));
}

// Equal maxima: the first in window scan order (row by row) wins, and only it receives gradient.
TEST(PoolingRef, TiesGoToFirstMaximum) {
  Pool2dParams p = shapes::pool_params(1, 1, 4, 4, 2, 2, 2, 2);
  // window (0,0): all 7 -> index 0; window (0,1): 9 at (0,3) and (1,2) -> (0,3) = 3;
  // window (1,0): 5 at (3,0) and (3,1) -> 12; window (1,1): 2 at (2,3) and (3,2) -> 11.
  const std::vector<float> x = {7, 7, 1, 9, 7, 7, 9, 0, 0, 1, 1, 2, 5, 5, 2, 1};
  std::vector<float> y(4);
  std::vector<int64_t> idx(4);
  maxpool2d_forward(p, x.data(), y.data(), idx.data());
  EXPECT_EQ(y, (std::vector<float>{7, 9, 5, 2}));
  EXPECT_EQ(idx, (std::vector<int64_t>{0, 3, 12, 11}));
  const std::vector<float> dy = {1, 2, 3, 4};
  std::vector<float> dx(16);
  maxpool2d_backward(p, dy.data(), idx.data(), dx.data());
  EXPECT_EQ(dx, (std::vector<float>{1, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 4, 3, 0, 0, 0}));
}

// Padding is -inf: a window of negative values next to the border still picks a real pixel.
TEST(PoolingRef, PaddingNeverWins) {
  Pool2dParams p = shapes::pool_params(1, 1, 3, 3, 3, 3, 1, 1, 1, 1);
  std::vector<float> x(9, -5.0f), y(9);
  std::vector<int64_t> idx(9);
  maxpool2d_forward(p, x.data(), y.data(), idx.data());
  for (float v : y) EXPECT_EQ(v, -5.0f);
  EXPECT_EQ(idx[0], 0);  // first real pixel of the clipped window
}

// NaN propagates like PyTorch: it wins against any number and its index is reported.
TEST(PoolingRef, NanWins) {
  Pool2dParams p = shapes::pool_params(1, 1, 2, 4, 2, 2, 2, 2);
  const std::vector<float> x = {1, NAN, 5, 6, 9, 2, 7, NAN};
  std::vector<float> y(2);
  std::vector<int64_t> idx(2);
  maxpool2d_forward(p, x.data(), y.data(), idx.data());
  EXPECT_TRUE(std::isnan(y[0]));
  EXPECT_EQ(idx[0], 1);
  EXPECT_TRUE(std::isnan(y[1]));
  EXPECT_EQ(idx[1], 7);
  // Two NaNs: each replaces the current maximum, so the last one's index is reported (as torch 1.13).
  Pool2dParams q = shapes::pool_params(1, 1, 2, 2, 2, 2, 2, 2);
  const std::vector<float> x2 = {NAN, 1, NAN, 6};
  maxpool2d_forward(q, x2.data(), y.data(), idx.data());
  EXPECT_TRUE(std::isnan(y[0]));
  EXPECT_EQ(idx[0], 2);
}

TEST(PoolingRef, FiniteDifferences) {
  for (const auto& [name, p] : shapes::pool_shapes()) {
    if (p.x_size() > 2000) continue;
    SCOPED_TRACE(name);
    auto x = test::random_distinct(p.x_size(), 4, 0.01f);  // no ties: max pooling is smooth here
    auto g = test::random_vector(p.y_size(), 5);
    std::vector<float> y(p.y_size()), dx(p.x_size());
    std::vector<int64_t> idx(p.y_size());
    test::GradCheckOptions o;
    o.step = 1e-3;  // < half the gap between distinct values
    maxpool2d_forward(p, x.data(), y.data(), idx.data());
    maxpool2d_backward(p, g.data(), idx.data(), dx.data());
    auto max_loss = [&] {
      maxpool2d_forward(p, x.data(), y.data(), static_cast<int64_t*>(nullptr));
      return test::weighted_sum(y, g);
    };
    EXPECT_TRUE(test::check_gradient(x, max_loss, dx, o, "maxpool dx"));

    test::poison(dx);
    avgpool2d_backward(p, g.data(), dx.data());
    ASSERT_TRUE(test::all_written(dx, "avgpool dx"));
    auto avg_loss = [&] {
      avgpool2d_forward(p, x.data(), y.data());
      return test::weighted_sum(y, g);
    };
    EXPECT_TRUE(test::check_gradient(x, avg_loss, dx, o, "avgpool dx"));
  }
}

TEST(PoolingRef, GlobalAverage) {
  const int64_t N = 3, C = 4, H = 5, W = 7;
  auto x = test::random_vector(N * C * H * W, 6);
  std::vector<float> y(N * C), dx(x.size());
  test::poison(y);
  global_avgpool_forward(N, C, H, W, x.data(), y.data());
  ASSERT_TRUE(test::all_written(y));
  std::vector<double> want(N * C, 0.0);
  for (size_t i = 0; i < x.size(); ++i) want[i / (H * W)] += x[i] / double(H * W);
  EXPECT_TRUE(test::close_l2(y, want, 1e-6, "global avg"));
  // Same as avgpool with the whole plane as the window.
  std::vector<float> y2(N * C);
  avgpool2d_forward(shapes::pool_params(N, C, H, W, H, W, 1, 1), x.data(), y2.data());
  EXPECT_TRUE(test::close_l2(y, y2, 1e-6, "global vs avgpool"));

  auto g = test::random_vector(N * C, 7);
  test::poison(dx);
  global_avgpool_backward(N, C, H, W, g.data(), dx.data());
  ASSERT_TRUE(test::all_written(dx));
  auto loss = [&] {
    global_avgpool_forward(N, C, H, W, x.data(), y.data());
    return test::weighted_sum(y, g);
  };
  EXPECT_TRUE(test::check_gradient(x, loss, dx, {}, "global avg dx"));
}

// Adaptive average pooling: PyTorch's bins written out by hand, equal to avgpool when they tile the
// input, to the global average at 1x1, overlapping and repeating bins, and finite differences.
TEST(PoolingRef, AdaptiveAverage) {
  // 5 rows into 3 bins: [0, 2), [1, 4), [3, 5) (torch: start = floor(i*5/3), end = ceil((i+1)*5/3)).
  EXPECT_EQ(AdaptivePool2dParams::start(1, 5, 3), 1);
  EXPECT_EQ(AdaptivePool2dParams::end(1, 5, 3), 4);
  EXPECT_EQ(AdaptivePool2dParams::start(2, 5, 3), 3);
  EXPECT_EQ(AdaptivePool2dParams::end(2, 5, 3), 5);
  const std::vector<float> row = {1, 2, 4, 8, 16};  // one row, W = 5 -> 3
  std::vector<float> y(3);
  adaptive_avgpool2d_forward({1, 1, 1, 5, 1, 3}, row.data(), y.data());
  EXPECT_EQ(y, std::vector<float>({1.5f, 14.0f / 3.0f, 12.0f}));
  // 2 -> 7: bins [0,1) x3, [0,2) (the middle one spans both), [1,2) x3, as torch computes it.
  std::vector<float> up(7);
  const std::vector<float> two = {3, 5};
  adaptive_avgpool2d_forward({1, 1, 1, 2, 1, 7}, two.data(), up.data());
  EXPECT_EQ(up, std::vector<float>({3, 3, 3, 4, 5, 5, 5}));
  const int64_t N = 2, C = 3, H = 14, W = 12;
  auto x = test::random_vector(N * C * H * W, 9);
  std::vector<float> a(N * C * 7 * 4), b(a.size());
  adaptive_avgpool2d_forward({N, C, H, W, 7, 4}, x.data(), a.data());
  avgpool2d_forward(shapes::pool_params(N, C, H, W, 2, 3, 2, 3), x.data(), b.data());
  EXPECT_TRUE(test::close_l2(a, b, 1e-6, "adaptive vs avgpool"));
  std::vector<float> g1(N * C), g2(N * C);
  adaptive_avgpool2d_forward({N, C, H, W, 1, 1}, x.data(), g1.data());
  global_avgpool_forward(N, C, H, W, x.data(), g2.data());
  EXPECT_TRUE(test::close_l2(g1, g2, 1e-6, "adaptive 1x1 vs global"));
  for (const AdaptivePool2dParams p : {AdaptivePool2dParams{2, 2, 5, 7, 3, 4}, AdaptivePool2dParams{1, 2, 2, 3, 7, 7},
                                       AdaptivePool2dParams{1, 1, 9, 4, 4, 9}}) {
    SCOPED_TRACE(cat(p.H, "x", p.W, " -> ", p.OH, "x", p.OW));
    auto xi = test::random_vector(p.N * p.C * p.H * p.W, 10);
    auto g = test::random_vector(p.N * p.C * p.OH * p.OW, 11);
    std::vector<float> yo(g.size()), dx(xi.size());
    test::poison(yo);
    adaptive_avgpool2d_forward(p, xi.data(), yo.data());
    ASSERT_TRUE(test::all_written(yo));
    test::poison(dx);
    adaptive_avgpool2d_backward(p, g.data(), dx.data());
    ASSERT_TRUE(test::all_written(dx));
    auto loss = [&] {
      adaptive_avgpool2d_forward(p, xi.data(), yo.data());
      return test::weighted_sum(yo, g);
    };
    EXPECT_TRUE(test::check_gradient(xi, loss, dx, {}, "adaptive dx"));
  }
  float v = 0;
  EXPECT_TRUE(test::throws_error(
      [&] {
        adaptive_avgpool2d_forward({1, 1, 1, 1, 0, 1}, &v, &v);
      },
      {"adaptive_avgpool2d_forward", "output_size", "0"}));
  EXPECT_TRUE(test::throws_error(
      [&] {
        adaptive_avgpool2d_forward({1, 1, 1, 1, 1, 1}, nullptr, &v);
      },
      {"adaptive_avgpool2d_forward", "'x'"}));
}

TEST(PoolingRef, BadArguments) {
  std::vector<float> buf(1024, 1.0f);
  std::vector<int64_t> ibuf(1024, 0);
  float* a = buf.data();
  Pool2dParams big = shapes::pool_params(1, 1, 3, 3, 5, 5, 1, 1);
  EXPECT_TRUE(test::throws_error([&] { maxpool2d_forward(big, a, a, ibuf.data()); },
                                 {"maxpool2d_forward", "kernel 5x5", "larger", "3x3"}));
  Pool2dParams s0 = shapes::pool_params(1, 1, 4, 4, 2, 2, 0, 2);
  EXPECT_TRUE(test::throws_error([&] { avgpool2d_forward(s0, a, a); }, {"avgpool2d_forward", "stride_h", "0"}));
  Pool2dParams pad = shapes::pool_params(1, 1, 8, 8, 2, 2, 2, 2, 2, 0);
  EXPECT_TRUE(test::throws_error([&] { avgpool2d_backward(pad, a, a); }, {"avgpool2d_backward", "pad", "2"}));
  Pool2dParams ok = shapes::pool_params(1, 1, 4, 4, 2, 2, 2, 2);
  ibuf[2] = 16;  // outside the 4x4 plane
  EXPECT_TRUE(test::throws_error([&] { maxpool2d_backward(ok, a, ibuf.data(), a); },
                                 {"maxpool2d_backward", "'idx'[2]=16", "16 pixels"}));
  EXPECT_TRUE(test::throws_error([&] { maxpool2d_forward(ok, nullptr, a, ibuf.data()); },
                                 {"maxpool2d_forward", "'x'", "null"}));
  EXPECT_TRUE(test::throws_error([&] { global_avgpool_forward(1, 0, 2, 2, a, a); }, {"global_avgpool_forward", "0"}));
}

}  // namespace
}  // namespace fovea::ref
