// FP32 NCHW <-> 16-bit NHWC conversions (kernels/nhwc16.h). Element-wise and memory-bound: one thread per
// output element, grid-stride; writes are coalesced, reads of the transposed side are strided by hw (or c). They
// run around the vendor library's 16-bit convolutions and GEMMs only (6 bytes moved per element each way); models
// kept in 16-bit tensors will not need them.
#include "kernels/common.cuh"
#include "kernels/nhwc16.h"
#include "kernels/reduce.cuh"   // grid_stride_blocks
#include "kernels/tc_gemm.cuh"  // tcg::Bf16, tcg::Fp16: the rounding conversions

namespace fovea::FOVEA_KERNEL_NS {
namespace {

using tcg::Bf16, tcg::Fp16;
constexpr int kBlock = 256;

template <class P>
__global__ void narrow_nhwc_kernel(const float* __restrict__ x, uint16_t* __restrict__ y, int64_t n, int64_t c,
                                   int64_t hw) {
  const int64_t total = n * c * hw;
  for (int64_t o = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; o < total; o += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ch = o % c, i = (o / c) % hw, img = o / (c * hw);
    y[o] = P::from_float(x[(img * c + ch) * hw + i]);
  }
}

template <class P>
__global__ void widen_nchw_kernel(const uint16_t* __restrict__ y, float* __restrict__ x, int64_t n, int64_t c,
                                  int64_t hw) {
  const int64_t total = n * c * hw;
  for (int64_t o = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; o < total; o += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = o % hw, ch = (o / hw) % c, img = o / (c * hw);
    x[o] = P::to_float(y[(img * hw + i) * c + ch]);
  }
}

template <class P>
__global__ void broadcast_rows_kernel(const float* __restrict__ b, uint16_t* __restrict__ y, int64_t rows, int64_t c) {
  const int64_t total = rows * c;
  for (int64_t o = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; o < total; o += int64_t(gridDim.x) * blockDim.x)
    y[o] = P::from_float(b[o % c]);
}

void check_args(const char* op, Precision prec, int64_t n, int64_t c, int64_t hw) {
  FOVEA_CHECK(prec == Precision::bf16 || prec == Precision::fp16, op, ": precision ", precision_name(prec),
              " is not a 16-bit format (expected bf16 or fp16)");
  FOVEA_CHECK(n >= 0 && c >= 0 && hw >= 0, op, ": negative size n = ", n, ", c = ", c, ", hw = ", hw);
}

void nchw_to_nhwc16(const Exec& ex, Precision prec, int64_t n, int64_t c, int64_t hw, const float* x, uint16_t* y) {
  constexpr const char* op = "nchw_to_nhwc16";
  check_args(op, prec, n, c, hw);
  const int64_t total = n * c * hw;
  if (total == 0) return;
  check_ptr(op, "x", x), check_ptr(op, "y", y);
  if (prec == Precision::bf16)
    FOVEA_LAUNCH(narrow_nhwc_kernel<Bf16>, grid_stride_blocks(total, kBlock), kBlock, 0, ex.stream, x, y, n, c, hw);
  else
    FOVEA_LAUNCH(narrow_nhwc_kernel<Fp16>, grid_stride_blocks(total, kBlock), kBlock, 0, ex.stream, x, y, n, c, hw);
}

void nhwc16_to_nchw(const Exec& ex, Precision prec, int64_t n, int64_t c, int64_t hw, const uint16_t* y, float* x) {
  constexpr const char* op = "nhwc16_to_nchw";
  check_args(op, prec, n, c, hw);
  const int64_t total = n * c * hw;
  if (total == 0) return;
  check_ptr(op, "y", y), check_ptr(op, "x", x);
  if (prec == Precision::bf16)
    FOVEA_LAUNCH(widen_nchw_kernel<Bf16>, grid_stride_blocks(total, kBlock), kBlock, 0, ex.stream, y, x, n, c, hw);
  else
    FOVEA_LAUNCH(widen_nchw_kernel<Fp16>, grid_stride_blocks(total, kBlock), kBlock, 0, ex.stream, y, x, n, c, hw);
}

void broadcast_rows16(const Exec& ex, Precision prec, int64_t rows, int64_t c, const float* b, uint16_t* y) {
  constexpr const char* op = "broadcast_rows16";
  check_args(op, prec, rows, c, 1);
  const int64_t total = rows * c;
  if (total == 0) return;
  check_ptr(op, "b", b), check_ptr(op, "y", y);
  if (prec == Precision::bf16)
    FOVEA_LAUNCH(broadcast_rows_kernel<Bf16>, grid_stride_blocks(total, kBlock), kBlock, 0, ex.stream, b, y, rows, c);
  else
    FOVEA_LAUNCH(broadcast_rows_kernel<Fp16>, grid_stride_blocks(total, kBlock), kBlock, 0, ex.stream, b, y, rows, c);
}

[[maybe_unused]] const bool registered = ops::nchw_to_nhwc16_stub.define(kThisSlot, &nchw_to_nhwc16) &&
                                         ops::nhwc16_to_nchw_stub.define(kThisSlot, &nhwc16_to_nchw) &&
                                         ops::broadcast_rows16_stub.define(kThisSlot, &broadcast_rows16);

}  // namespace
}  // namespace fovea::FOVEA_KERNEL_NS
