// 2-D convolution (cross-correlation, exactly torch.nn.functional.conv2d): stride, padding,
// dilation, groups (depthwise included), optional bias. Layouts: x [N, C, H, W], w [K, C/groups, R, S],
// b [K], y [N, K, P, Q] (Conv2dParams::P/Q). Implemented as im2col + sgemm per (image, group),
// OpenMP over images, one BLAS thread; col2im for the data gradient.
#pragma once
#include "core/float_formats.h"
#include "layers/ops/conv2d.h"

namespace fovea::ref {

// Rows of the im2col matrix of one image: C * R * S; columns: P * Q.
inline int64_t im2col_rows(const Conv2dParams& p) {
  return p.C * p.R * p.S;
}
inline int64_t im2col_cols(const Conv2dParams& p) {
  return p.P() * p.Q();
}

// One image x [C, H, W] -> col [C*R*S, P*Q]: col[(c*R + r)*S + s][p*Q + q] =
// x[c][p*stride_h - pad_h + r*dil_h][q*stride_w - pad_w + s*dil_w], 0 outside the image.
// Group g owns rows [g*(C/groups)*R*S, (g+1)*(C/groups)*R*S). p.N is ignored.
void im2col(const Conv2dParams& p, const float* x, float* col);
// The adjoint of im2col: x [C, H, W] = sum of the col entries that im2col would read from each pixel.
// x is overwritten (not accumulated into).
void col2im(const Conv2dParams& p, const float* col, float* x);

// y = conv2d(x, w, b); b may be nullptr (no bias).
void conv2d_forward(const Conv2dParams& p, const float* x, const float* w, const float* b, float* y);
// dx = d loss / dx given dy (overwritten).
void conv2d_backward_data(const Conv2dParams& p, const float* dy, const float* w, float* dx);
// dw = d loss / dw given x and dy (overwritten, not accumulated).
void conv2d_backward_filter(const Conv2dParams& p, const float* x, const float* dy, float* dw);
// db[k] = sum over n, p, q of dy[n][k][p][q] (overwritten).
void conv2d_backward_bias(const Conv2dParams& p, const float* dy, float* db);

// The same three at a tensor-core precision (semantics and error bound: cpu_reference/gemm.h): the multiplied
// tensors rounded to the input format, exact products, FP32 accumulation, the output (and a bias, read as a
// value of the output type) rounded as the output is stored. Precision::fp32 is the functions above.
void conv2d_forward(const Conv2dParams& p, Precision prec, const float* x, const float* w, const float* b, float* y);
void conv2d_backward_data(const Conv2dParams& p, Precision prec, const float* dy, const float* w, float* dx);
void conv2d_backward_filter(const Conv2dParams& p, Precision prec, const float* x, const float* dy, float* dw);

}  // namespace fovea::ref
