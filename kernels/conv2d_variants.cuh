// The three versions of our convolution (see kernels/conv2d.h), for kernels/conv2d.cu, which picks one per
// call by ConvConfig::algo and registers the result in the conv2d stubs. Only .cu files include this.
// Outputs are overwritten; scratch comes from ex.workspace.
#pragma once
#include "kernels/conv2d.h"

namespace fovea::FOVEA_KERNEL_NS {

// direct (kernels/conv2d_direct.cu): no scratch.
void conv2d_forward_direct(const Exec& ex, const Conv2dParams& p, const float* x, const float* w, const float* b,
                           float* y);
void conv2d_backward_data_direct(const Exec& ex, const Conv2dParams& p, const float* dy, const float* w, float* dx);
void conv2d_backward_filter_direct(const Exec& ex, const Conv2dParams& p, const float* x, const float* dy, float* dw);

// implicit GEMM (kernels/conv2d_igemm_fprop.cu, _dgrad.cu, _wgrad.cu): plan {} = conv2d_igemm_plan();
// split-K partials (conv2d_igemm_workspace_bytes) from the workspace.
void conv2d_forward_implicit_gemm(const Exec& ex, const Conv2dParams& p, const float* x, const float* w, const float* b,
                                  float* y, const ConvGemmPlan& plan);
void conv2d_backward_data_implicit_gemm(const Exec& ex, const Conv2dParams& p, const float* dy, const float* w,
                                        float* dx, const ConvGemmPlan& plan);
// dgrad's copy of w in its GEMM's layout (ops::conv2d_dgrad_weight_copy_stub), into wt.
void conv2d_dgrad_weight_copy(const Exec& ex, const Conv2dParams& p, const float* w, float* wt);
void conv2d_backward_filter_implicit_gemm(const Exec& ex, const Conv2dParams& p, const float* x, const float* dy,
                                          float* dw, const ConvGemmPlan& plan);

// im2col + SGEMM (kernels/conv2d_im2col.cu): one image's column matrix from the workspace.
void im2col(const Exec& ex, const Conv2dParams& p, const float* x, float* col);
void col2im(const Exec& ex, const Conv2dParams& p, const float* col, float* x);
void conv2d_forward_im2col(const Exec& ex, const Conv2dParams& p, const float* x, const float* w, const float* b,
                           float* y);
void conv2d_backward_data_im2col(const Exec& ex, const Conv2dParams& p, const float* dy, const float* w, float* dx);
void conv2d_backward_filter_im2col(const Exec& ex, const Conv2dParams& p, const float* x, const float* dy, float* dw);

}  // namespace fovea::FOVEA_KERNEL_NS
