// Image filtering by TRUE convolution (the kernel is flipped, unlike conv2d which correlates):
// one single-channel image x [H, W], an odd-sized kernel k [R, S], zero padding, output the same
// size as the input:  y[i][j] = sum_{a,b} k[a][b] * x[i + R/2 - a][j + S/2 - b].
#pragma once
#include <cstdint>

namespace fovea::ref {

void filter2d_forward(int64_t H, int64_t W, const float* x, int64_t R, int64_t S, const float* k, float* y);
// dx[m][n] = sum_{a,b} k[a][b] * dy[m - R/2 + a][n - S/2 + b] (a correlation with k).
void filter2d_backward_data(int64_t H, int64_t W, const float* dy, int64_t R, int64_t S, const float* k, float* dx);
// dk[a][b] = sum_{i,j} dy[i][j] * x[i + R/2 - a][j + S/2 - b].
void filter2d_backward_filter(int64_t H, int64_t W, const float* x, const float* dy, int64_t R, int64_t S, float* dk);

// 1-D true convolution, "same" size, zero padding, odd kernel length m:
// y[i] = sum_j k[j] * x[i + m/2 - j], i in [0, n).
void conv1d_same(int64_t n, const float* x, int64_t m, const float* k, float* y);

}  // namespace fovea::ref
