// The linear layer at a reduced precision on the tensor cores (layers/ops/linear.h, *_precision_stub): the
// multistage tensor-core GEMM (kernels/tc_gemm_multistage.cuh) on FP32 tensors, with the reference semantics of
// cpu_reference/gemm.h (operands rounded to the type, exact products, FP32 sums, the output and the bias as values
// of the output type).
//   tf32       : the GEMM reads the FP32 tensors directly (cvt.rna on each fragment); y = acc + b in FP32.
//   bf16, fp16 : the operands are rounded (nearest even) into 16-bit copies in the call's workspace; C starts as
//                the bias rounded to the type and the GEMM runs with beta = 1, so y = round(acc + b) is rounded
//                once, in the GEMM's epilogue; the 16-bit result is widened into y.
// Where the GEMM splits K (few output tiles, long K: kernels/tc_gemm.h) its FP32 partials follow the 16-bit copies in
// the same workspace request.
// Cost beyond the GEMM, 16-bit only: each FP32 operand read once and written as 2 bytes, C written and read as 2
// bytes and widened: memory-bound element-wise kernels, 6 bytes per operand element. Models kept in 16-bit
// tensors (issue 16's NHWC path) will not need them; this path is for running FP32 models at these precisions.
#include <optional>

#include "core/memory.h"  // Workspace
#include "kernels/common.cuh"
#include "kernels/reduce.cuh"  // workspace_array
#include "kernels/tc_gemm.cuh"
#include "kernels/tc_gemm.h"
#include "layers/ops/linear.h"

namespace fovea::FOVEA_KERNEL_NS {
namespace {

using tcg::Bf16, tcg::Fp16;

template <class P>
__global__ void narrow_kernel(const float* __restrict__ x, typename P::Raw* __restrict__ y, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = P::from_float(x[i]);
}

template <class P>
__global__ void widen_kernel(const typename P::Raw* __restrict__ x, float* __restrict__ y, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = P::to_float(x[i]);
}

// c[r][j] = b[j] rounded to the type, for rows x cols.
template <class P>
__global__ void bias_rows_kernel(const float* __restrict__ b, typename P::Raw* __restrict__ c, int64_t rows,
                                 int64_t cols) {
  const int64_t n = rows * cols;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    c[i] = P::from_float(b[i % cols]);
}

unsigned grid_for(int64_t n) {
  const int64_t blocks = (n + 255) / 256;
  return unsigned(blocks < 4096 ? (blocks > 0 ? blocks : 1) : 4096);
}

// 16-byte aligned element offsets for the pieces of one workspace (cp.async reads 16-byte chunks).
int64_t aligned(int64_t elements) {
  return (elements + 7) / 8 * 8;
}

// C[M,N] (FP32) = op(A) op(B) (+ bias over C's rows) at precision prec; A and B are FP32 of a_n and b_n elements.
void gemm_at(const Exec& ex, Precision prec, const SgemmParams& g, const float* A, int64_t a_n, const float* B,
             int64_t b_n, const float* bias, float* C, const char* op) {
  const int64_t c_n = g.M * g.N;
  if (c_n == 0) return;
  FOVEA_CHECK(prec == Precision::tf32 || prec == Precision::bf16 || prec == Precision::fp16, op, ": precision ",
              precision_name(prec), " is not a tensor-core precision");
  // One workspace request per call: the 16-bit copies (BF16/FP16) and, after them, the GEMM's split-K partials
  // (tc_gemm_multistage_workspace_bytes), handed to the GEMM as a workspace of its own.
  const bool narrow = prec != Precision::tf32;
  const int64_t copies = narrow ? aligned(a_n) + aligned(b_n) + aligned(c_n) : 0;  // 16-bit elements
  const int64_t partial_bytes = ops::tc_gemm_multistage_workspace_bytes(prec, g);
  unsigned char* ws =
      copies + partial_bytes > 0 ? workspace_array<unsigned char>(ex, copies * 2 + partial_bytes, op) : nullptr;
  std::optional<Workspace> gemm_ws;
  Exec gx = ex;
  if (partial_bytes > 0) {
    gemm_ws.emplace(ex.workspace->device(), ws + copies * 2, size_t(partial_bytes));
    gx.workspace = &*gemm_ws;
  }
  if (!narrow) {
    ops::tc_gemm_multistage_tf32_stub(gx, g, A, B, C);
    if (bias) ops::bias_add_stub(ex, C, bias, g.M, g.N, 1);
    return;
  }
  uint16_t *a16 = reinterpret_cast<uint16_t*>(ws), *b16 = a16 + aligned(a_n), *c16 = b16 + aligned(b_n);
  SgemmParams g16 = g;
  g16.beta = bias ? 1.0f : 0.0f;
  auto run = [&]<class P>(P) {
    FOVEA_LAUNCH(narrow_kernel<P>, grid_for(a_n), 256, 0, ex.stream, A, a16, a_n);
    FOVEA_LAUNCH(narrow_kernel<P>, grid_for(b_n), 256, 0, ex.stream, B, b16, b_n);
    if (bias) FOVEA_LAUNCH(bias_rows_kernel<P>, grid_for(c_n), 256, 0, ex.stream, bias, c16, g.M, g.N);
    if constexpr (std::is_same_v<P, Bf16>)
      ops::tc_gemm_multistage_bf16_stub(gx, g16, reinterpret_cast<const BFloat16*>(a16),
                                        reinterpret_cast<const BFloat16*>(b16), reinterpret_cast<BFloat16*>(c16));
    else
      ops::tc_gemm_multistage_fp16_stub(gx, g16, reinterpret_cast<const Half*>(a16), reinterpret_cast<const Half*>(b16),
                                        reinterpret_cast<Half*>(c16));
    FOVEA_LAUNCH(widen_kernel<P>, grid_for(c_n), 256, 0, ex.stream, c16, C, c_n);
  };
  if (prec == Precision::bf16)
    run(Bf16{});
  else
    run(Fp16{});
}

void linear_forward_tc(const Exec& ex, Precision prec, const LinearParams& p, const float* x, const float* w,
                       const float* b, float* y) {
  p.validate("linear_forward_precision");
  gemm_at(ex, prec, sgemm_params(Trans::N, Trans::T, p.N, p.out_features, p.in_features), x, p.N * p.in_features, w,
          p.out_features * p.in_features, b, y, "linear_forward_precision");
}

void linear_backward_data_tc(const Exec& ex, Precision prec, const LinearParams& p, const float* dy, const float* w,
                             float* dx) {
  p.validate("linear_backward_data_precision");
  gemm_at(ex, prec, sgemm_params(Trans::N, Trans::N, p.N, p.in_features, p.out_features), dy, p.N * p.out_features, w,
          p.out_features * p.in_features, nullptr, dx, "linear_backward_data_precision");
}

void linear_backward_weight_tc(const Exec& ex, Precision prec, const LinearParams& p, const float* x, const float* dy,
                               float* dw) {
  p.validate("linear_backward_weight_precision");
  gemm_at(ex, prec, sgemm_params(Trans::T, Trans::N, p.out_features, p.in_features, p.N), dy, p.N * p.out_features, x,
          p.N * p.in_features, nullptr, dw, "linear_backward_weight_precision");
}

[[maybe_unused]] const bool registered =
    ops::linear_forward_precision_stub.define(kThisSlot, &linear_forward_tc) &&
    ops::linear_backward_data_precision_stub.define(kThisSlot, &linear_backward_data_tc) &&
    ops::linear_backward_weight_precision_stub.define(kThisSlot, &linear_backward_weight_tc);

}  // namespace
}  // namespace fovea::FOVEA_KERNEL_NS
