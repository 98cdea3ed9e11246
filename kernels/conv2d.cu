// The emu/cuda slots of the conv2d stubs (layers/ops/conv2d.h): ConvConfig::algo picks one of our three
// versions (kernels/conv2d_variants.cuh); the implicit GEMM takes ConvConfig::plan.
#include "kernels/common.cuh"
#include "kernels/conv2d_variants.cuh"

namespace fovea::FOVEA_KERNEL_NS {
namespace {

void conv2d_forward(const Exec& ex, const ConvConfig& cfg, const Conv2dParams& p, const float* x, const float* w,
                    const float* b, float* y) {
  switch (cfg.algo) {
    case ConvAlgo::direct: return conv2d_forward_direct(ex, p, x, w, b, y);
    case ConvAlgo::implicit_gemm: return conv2d_forward_implicit_gemm(ex, p, x, w, b, y, cfg.plan);
    case ConvAlgo::im2col_gemm: return conv2d_forward_im2col(ex, p, x, w, b, y);
  }
  FOVEA_FAIL("conv2d_forward: unknown algorithm ", int(cfg.algo));
}

void conv2d_backward_data(const Exec& ex, const ConvConfig& cfg, const Conv2dParams& p, const float* dy, const float* w,
                          float* dx) {
  switch (cfg.algo) {
    case ConvAlgo::direct: return conv2d_backward_data_direct(ex, p, dy, w, dx);
    case ConvAlgo::implicit_gemm: return conv2d_backward_data_implicit_gemm(ex, p, dy, w, dx, cfg.plan);
    case ConvAlgo::im2col_gemm: return conv2d_backward_data_im2col(ex, p, dy, w, dx);
  }
  FOVEA_FAIL("conv2d_backward_data: unknown algorithm ", int(cfg.algo));
}

void conv2d_backward_filter(const Exec& ex, const ConvConfig& cfg, const Conv2dParams& p, const float* x,
                            const float* dy, float* dw) {
  switch (cfg.algo) {
    case ConvAlgo::direct: return conv2d_backward_filter_direct(ex, p, x, dy, dw);
    case ConvAlgo::implicit_gemm: return conv2d_backward_filter_implicit_gemm(ex, p, x, dy, dw, cfg.plan);
    case ConvAlgo::im2col_gemm: return conv2d_backward_filter_im2col(ex, p, x, dy, dw);
  }
  FOVEA_FAIL("conv2d_backward_filter: unknown algorithm ", int(cfg.algo));
}

}  // namespace

const bool registered = ops::conv2d_forward_stub.define(kThisSlot, conv2d_forward) &&
                        ops::conv2d_backward_data_stub.define(kThisSlot, conv2d_backward_data) &&
                        ops::conv2d_backward_filter_stub.define(kThisSlot, conv2d_backward_filter) &&
                        ops::im2col_stub.define(kThisSlot, im2col) && ops::col2im_stub.define(kThisSlot, col2im) &&
                        ops::conv2d_dgrad_weight_copy_stub.define(kThisSlot, conv2d_dgrad_weight_copy);

}  // namespace fovea::FOVEA_KERNEL_NS
