// 2-D pooling over x [N,C,H,W] -> y [N,C,P,Q], PyTorch's floor mode: max pooling (with argmax indices
// for backward, like return_indices=True), average pooling (count_include_pad either way), and global
// average pooling [N,C,H,W] -> [N,C] (adaptive_avg_pool2d(x, 1)), and adaptive average pooling to any
// [OH, OW] (torch.nn.functional.adaptive_avg_pool2d; VGG's 7x7).
//   reference : cpu_reference/pooling.cpp     kernels : kernels/pooling.cu     cudnn : layers/cudnn/cudnn_ops.cpp
#pragma once
#include <cstdint>
#include <string>

#include "core/dispatch.h"
#include "core/hostdevice.h"
#include "core/tensor.h"

namespace fovea {

struct Pool2dParams {
  int64_t N = 1, C = 1, H = 1, W = 1;
  int64_t kernel_h = 2, kernel_w = 2;
  int64_t stride_h = 2, stride_w = 2;
  int64_t pad_h = 0, pad_w = 0;
  bool count_include_pad = true;  // avgpool only (PyTorch's default is true)

  // PyTorch's floor mode (ceil_mode=False).
  FOVEA_HD int64_t P() const { return (H + 2 * pad_h - kernel_h) / stride_h + 1; }
  FOVEA_HD int64_t Q() const { return (W + 2 * pad_w - kernel_w) / stride_w + 1; }
  FOVEA_HD int64_t x_size() const { return N * C * H * W; }
  FOVEA_HD int64_t y_size() const { return N * C * P() * Q(); }

  void validate(const char* op = "pool2d") const;
  std::string str() const;
};

// Adaptive average pooling x [N,C,H,W] -> y [N,C,OH,OW], PyTorch's bins: output row i averages input
// rows [floor(i*H/OH), ceil((i+1)*H/OH)) (likewise for columns); bins overlap or repeat rows when OH
// does not divide H or OH > H.
struct AdaptivePool2dParams {
  int64_t N = 1, C = 1, H = 1, W = 1, OH = 1, OW = 1;
  FOVEA_HD static int64_t start(int64_t i, int64_t in, int64_t out) { return i * in / out; }
  FOVEA_HD static int64_t end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }
  void validate(const char* op = "adaptive_avgpool2d") const;
};

namespace ops {

// ---- entry points. idx[n][c][p][q] is the flat index h * W + w of the window's maximum in its (n, c)
// plane; ties go to the first maximum in scan order, a NaN wins. Backward scatter-adds dy at the indices
// (overwriting dx). cuDNN keeps no indices: its backward reads the forward's x and y instead, so the
// cudnn slot gets idx == nullptr and ours get x == y == nullptr.
inline constinit DispatchStub<void(const Exec&, const Pool2dParams&, const float* x, float* y, int32_t* idx)>
    maxpool2d_forward_stub{"maxpool2d_forward"};
inline constinit DispatchStub<void(const Exec&, const Pool2dParams&, const float* x, const float* y, const int32_t* idx,
                                   const float* dy, float* dx)>
    maxpool2d_backward_stub{"maxpool2d_backward"};
inline constinit DispatchStub<void(const Exec&, const Pool2dParams&, const float* x, float* y)> avgpool2d_forward_stub{
    "avgpool2d_forward"};
inline constinit DispatchStub<void(const Exec&, const Pool2dParams&, const float* dy, float* dx)>
    avgpool2d_backward_stub{"avgpool2d_backward"};
inline constinit DispatchStub<void(const Exec&, int64_t N, int64_t C, int64_t H, int64_t W, const float* x, float* y)>
    global_avgpool_forward_stub{"global_avgpool_forward"};
inline constinit DispatchStub<void(const Exec&, int64_t N, int64_t C, int64_t H, int64_t W, const float* dy, float* dx)>
    global_avgpool_backward_stub{"global_avgpool_backward"};
// dx (overwritten) = the sum over the bins that hold each input pixel of dy / the bin's size.
inline constinit DispatchStub<void(const Exec&, const AdaptivePool2dParams&, const float* x, float* y)>
    adaptive_avgpool2d_forward_stub{"adaptive_avgpool2d_forward"};
inline constinit DispatchStub<void(const Exec&, const AdaptivePool2dParams&, const float* dy, float* dx)>
    adaptive_avgpool2d_backward_stub{"adaptive_avgpool2d_backward"};

// ---- tensor-level ops
struct Context;
struct Pool2dAttrs {
  int64_t kernel_h = 2, kernel_w = 2, stride_h = 2, stride_w = 2, pad_h = 0, pad_w = 0;
  bool count_include_pad = true;
};
Pool2dParams pool2d_params(const Shape& x, const Pool2dAttrs& a);
struct MaxPoolOut {
  Tensor y;
  Tensor indices;  // int32 argmax within each input plane (h*W + w); undefined on backend cudnn
  Tensor x;        // the input (a reference, no copy), kept only for backend cudnn's backward
};
MaxPoolOut maxpool2d_forward(Context& ctx, const Tensor& x, const Pool2dAttrs& a);
Tensor maxpool2d_backward(Context& ctx, const Tensor& dy, const MaxPoolOut& forward, const Shape& x_shape,
                          const Pool2dAttrs& a);
Tensor avgpool2d_forward(Context& ctx, const Tensor& x, const Pool2dAttrs& a);
Tensor avgpool2d_backward(Context& ctx, const Tensor& dy, const Shape& x_shape, const Pool2dAttrs& a);
Tensor global_avgpool_forward(Context& ctx, const Tensor& x);  // [N,C,H,W] -> [N,C]
Tensor global_avgpool_backward(Context& ctx, const Tensor& dy, const Shape& x_shape);
Tensor adaptive_avgpool2d_forward(Context& ctx, const Tensor& x, int64_t out_h, int64_t out_w);
Tensor adaptive_avgpool2d_backward(Context& ctx, const Tensor& dy, const Shape& x_shape);

}  // namespace ops
}  // namespace fovea
