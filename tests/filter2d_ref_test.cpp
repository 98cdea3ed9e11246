// cpu_reference/filter2d: true convolution known answers (course material), relation to conv2d with
// a flipped kernel, finite differences, errors.
#include "cpu_reference/filter2d.h"

#include <gtest/gtest.h>

#include "cpu_reference/conv2d.h"
#include "layers/ops/conv_shapes.h"
#include "tests/test_util.h"

namespace fovea::ref {
namespace {

TEST(Filter2dRef, KnownAnswer1d) {
  const std::vector<float> x = {0, 1, 2, 3, 2, 1, 0}, k = {1, 3, -1};
  std::vector<float> y(7);
  test::poison(y);
  conv1d_same(7, x.data(), 3, k.data(), y.data());
  EXPECT_EQ(y, (std::vector<float>{1, 5, 8, 9, 4, 1, -1}));
}

TEST(Filter2dRef, KnownAnswer2d) {
  const std::vector<float> A = {5, 8, 3, 4, 6, 2, 3, 7, 3, 2, 1, 1, 9, 5, 1, 0, 0, 9, 5, 3, 0, 4,
                                8, 3, 4, 2, 7, 2, 1, 9, 0, 6, 9, 7, 9, 8, 0, 4, 2, 4, 5, 2, 1, 8,
                                4, 1, 0, 9, 1, 8, 5, 4, 9, 2, 3, 8, 3, 7, 1, 2, 3, 4, 4, 6};
  const std::vector<float> B = {2, 1, 0, 1, 1, -1, 0, -1, -2};
  const std::vector<float> want = {20, 10, 2,  26, 23, 6,  9,  4,  18, 1,  -8,  2,   7,   3,   3,  -11,
                                   14, 22, 5,  -1, 9,  -2, 8,  -1, 29, 21, 9,   -9,  10,  12,  -9, -9,
                                   21, 1,  16, -1, -3, -4, 2,  5,  15, -9, -3,  7,   -6,  1,   17, 9,
                                   21, 9,  1,  6,  -2, -1, 23, 2,  9,  -5, -25, -10, -12, -15, -1, -12};
  std::vector<float> y(64);
  test::poison(y);
  filter2d_forward(8, 8, A.data(), 3, 3, B.data(), y.data());
  EXPECT_EQ(y, want);
}

// True convolution = conv2d (correlation) with the kernel rotated by 180 degrees and "same" padding.
TEST(Filter2dRef, EqualsConv2dWithFlippedKernel) {
  const int64_t H = 11, W = 9, R = 5, S = 3;
  auto x = test::random_vector(H * W, 1), k = test::random_vector(R * S, 2);
  std::vector<float> flipped(R * S), y(H * W), y2(H * W);
  for (int64_t i = 0; i < R * S; ++i) flipped[i] = k[R * S - 1 - i];
  filter2d_forward(H, W, x.data(), R, S, k.data(), y.data());
  Conv2dParams p = shapes::conv_params(1, 1, H, W, 1, R, S);
  p.pad_h = R / 2, p.pad_w = S / 2;
  conv2d_forward(p, x.data(), flipped.data(), nullptr, y2.data());
  EXPECT_TRUE(test::close_l2(y, y2, 1e-6));
}

TEST(Filter2dRef, FiniteDifferences) {
  const int64_t H = 6, W = 7, R = 3, S = 5;
  auto x = test::random_vector(H * W, 3), k = test::random_vector(R * S, 4), g = test::random_vector(H * W, 5);
  std::vector<float> y(H * W), dx(H * W), dk(R * S);
  test::poison(dx), test::poison(dk);
  filter2d_backward_data(H, W, g.data(), R, S, k.data(), dx.data());
  filter2d_backward_filter(H, W, x.data(), g.data(), R, S, dk.data());
  ASSERT_TRUE(test::all_written(dx) && test::all_written(dk));
  auto loss = [&] {
    filter2d_forward(H, W, x.data(), R, S, k.data(), y.data());
    return test::weighted_sum(y, g);
  };
  EXPECT_TRUE(test::check_gradient(x, loss, dx, {}, "dx"));
  EXPECT_TRUE(test::check_gradient(k, loss, dk, {}, "dk"));
}

TEST(Filter2dRef, BadArguments) {
  std::vector<float> a(64, 1.0f);
  EXPECT_TRUE(test::throws_error([&] { filter2d_forward(4, 4, a.data(), 2, 3, a.data(), a.data()); },
                                 {"filter2d_forward", "odd", "2x3"}));
  EXPECT_TRUE(test::throws_error([&] { filter2d_backward_data(0, 4, a.data(), 3, 3, a.data(), a.data()); },
                                 {"filter2d_backward_data", "image size", "0x4"}));
  EXPECT_TRUE(
      test::throws_error([&] { conv1d_same(5, a.data(), 4, a.data(), a.data()); }, {"conv1d_same", "'m'", "4"}));
  EXPECT_TRUE(test::throws_error([&] { filter2d_backward_filter(4, 4, a.data(), nullptr, 3, 3, a.data()); },
                                 {"filter2d_backward_filter", "'dy'"}));
}

}  // namespace
}  // namespace fovea::ref
