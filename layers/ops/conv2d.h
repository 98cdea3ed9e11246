// 2-D convolution, PyTorch's torch.nn.functional.conv2d: x [N,C,H,W], w [K,C/groups,R,S] (KCRS), optional
// b [K], y [N,K,P,Q]; stride, padding, dilation, groups. Forward (fprop), input gradient (dgrad), weight
// gradient (wgrad), bias gradient.
//   reference : cpu_reference/conv2d.cpp (im2col + OpenBLAS)
//   kernels   : kernels/conv2d_direct.cu, conv2d_igemm_*.cu, conv2d_im2col.cu (ConvAlgo picks one)
//   cudnn     : layers/cudnn/cudnn_conv.cpp
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "core/dispatch.h"
#include "core/float_formats.h"
#include "core/hostdevice.h"
#include "core/tensor.h"

namespace fovea {

struct Conv2dParams {
  int64_t N = 1, C = 1, H = 1, W = 1;  // input
  int64_t K = 1, R = 1, S = 1;         // output channels, kernel height, kernel width
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dil_h = 1, dil_w = 1;
  int64_t groups = 1;

  FOVEA_HD int64_t P() const { return (H + 2 * pad_h - dil_h * (R - 1) - 1) / stride_h + 1; }
  FOVEA_HD int64_t Q() const { return (W + 2 * pad_w - dil_w * (S - 1) - 1) / stride_w + 1; }
  FOVEA_HD int64_t C_per_group() const { return C / groups; }
  FOVEA_HD int64_t K_per_group() const { return K / groups; }
  FOVEA_HD int64_t x_size() const { return N * C * H * W; }
  FOVEA_HD int64_t w_size() const { return K * (C / groups) * R * S; }
  FOVEA_HD int64_t y_size() const { return N * K * P() * Q(); }
  // Multiply-adds x 2 of the forward pass (also the FLOPs of dgrad and of wgrad).
  double flops() const { return 2.0 * double(N) * K * P() * Q() * (C / groups) * R * S; }

  // Throws a UsageError naming `op`, the argument and its value when the geometry is invalid.
  void validate(const char* op = "conv2d") const;
  std::string str() const;
};

// Our kernels' convolution versions, kept side by side (all tested; implicit_gemm is the default).
enum class ConvAlgo : uint8_t { direct, implicit_gemm, im2col_gemm };
enum class ConvOp : uint8_t { forward, backward_data, backward_filter };
const char* conv_algo_name(ConvAlgo a);
ConvAlgo parse_conv_algo(std::string_view s);  // "direct" | "implicit_gemm" | "im2col_gemm"
const char* conv_op_name(ConvOp op);           // "conv2d_forward", ...

// Block tile (bm x bn of the GEMM's output) and reduction split of an implicit-GEMM launch
// (kernels/conv2d.h plans it): bm = 0 lets the kernels choose from the shape.
struct ConvGemmPlan {
  int bm = 0, bn = 0;
  int64_t splits = 1;
};
// What our kernels run; the reference and cuDNN ignore it.
struct ConvConfig {
  ConvAlgo algo = ConvAlgo::implicit_gemm;
  ConvGemmPlan plan;
};

namespace ops {

// ---- entry points: pointers on the Exec's device; outputs overwritten, never accumulated; scratch from
// ex.workspace. Deterministic everywhere: no float atomics, every sum in a fixed order.
inline constinit DispatchStub<void(const Exec&, const ConvConfig&, const Conv2dParams&, const float* x, const float* w,
                                   const float* b /* or null */, float* y)>
    conv2d_forward_stub{"conv2d_forward"};
inline constinit DispatchStub<void(const Exec&, const ConvConfig&, const Conv2dParams&, const float* dy, const float* w,
                                   float* dx)>
    conv2d_backward_data_stub{"conv2d_backward_data"};
inline constinit DispatchStub<void(const Exec&, const ConvConfig&, const Conv2dParams&, const float* x, const float* dy,
                                   float* dw)>
    conv2d_backward_filter_stub{"conv2d_backward_filter"};
// db[k] = sum over n, p, q of dy[n,k,p,q] (only N, K and the output size of p matter).
inline constinit DispatchStub<void(const Exec&, const Conv2dParams&, const float* dy, float* db)>
    conv2d_backward_bias_stub{"conv2d_backward_bias"};
// At a reduced precision (Context::precision tf32, bf16 or fp16; cpu_reference/gemm.h's semantics): cpu, the
// reference of that precision; emu and cuda, the implicit-GEMM tensor-core kernels (kernels/conv2d_tc_igemm.cu; the
// simple im2col + tensor-core GEMM path beside them: kernels/conv2d_tc.h); cudnn, cuDNN's tensor-op convolution at
// that precision on 16-bit NHWC copies (layers/cudnn/cudnn_precision.cpp).
inline constinit DispatchStub<void(const Exec&, Precision, const Conv2dParams&, const float* x, const float* w,
                                   const float* b /* or null */, float* y)>
    conv2d_forward_precision_stub{"conv2d_forward_precision"};
inline constinit DispatchStub<void(const Exec&, Precision, const Conv2dParams&, const float* dy, const float* w,
                                   float* dx)>
    conv2d_backward_data_precision_stub{"conv2d_backward_data_precision"};
inline constinit DispatchStub<void(const Exec&, Precision, const Conv2dParams&, const float* x, const float* dy,
                                   float* dw)>
    conv2d_backward_filter_precision_stub{"conv2d_backward_filter_precision"};
// One image: x [C,H,W] -> col [C*R*S, P*Q] (cpu_reference/conv2d.h's layout); col2im overwrites x.
inline constinit DispatchStub<void(const Exec&, const Conv2dParams&, const float* x, float* col)> im2col_stub{"im2col"};
inline constinit DispatchStub<void(const Exec&, const Conv2dParams&, const float* col, float* x)> col2im_stub{"col2im"};
// The implicit-GEMM dgrad's weight copy (kernels/conv2d_igemm_dgrad.cu): w [K, C/g, R, S] -> wt (K*C/g*R*S floats):
// per group, the taps of each stride phase (phase ah of the rows: r*dil_h mod stride_h = ah, then aw of the
// columns) as rows (k, r, s) of C/g contiguous channels. A building block (slots emu and cuda only), exposed
// for its test.
inline constinit DispatchStub<void(const Exec&, const Conv2dParams&, const float* w, float* wt)>
    conv2d_dgrad_weight_copy_stub{"conv2d_dgrad_weight_copy"};

// ---- tensor-level ops
struct Context;
struct Conv2dAttrs {
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1, groups = 1;
};
Conv2dParams conv2d_params(const Shape& x, const Shape& w, const Conv2dAttrs& a);  // validated
Tensor conv2d_forward(Context& ctx, const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dAttrs& a);
Tensor conv2d_backward_data(Context& ctx, const Tensor& dy, const Tensor& w, const Shape& x_shape,
                            const Conv2dAttrs& a);
Tensor conv2d_backward_filter(Context& ctx, const Tensor& x, const Tensor& dy, const Shape& w_shape,
                              const Conv2dAttrs& a);
Tensor conv2d_backward_bias(Context& ctx, const Tensor& dy);  // [K]

}  // namespace ops
}  // namespace fovea
