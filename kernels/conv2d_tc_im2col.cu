// Convolution at a reduced precision on the tensor cores, the simple way: im2col / col2im (kernels/conv2d_im2col.cu's
// route, one image at a time, GEMMs batched over groups) with the multistage TF32 tensor-core GEMM
// (kernels/tc_gemm_multistage.cuh), with the reference semantics of cpu_reference/gemm.h: operands rounded to the
// type, exact products, FP32 sums, the output (and the bias) as values of the output type.
//   tf32       : the GEMM rounds its operands itself (cvt.rna); the output stays FP32.
//   bf16, fp16 : the operands are first rounded to the type (nearest even) into FP32 copies in the workspace. A
//                BF16 or FP16 value is exact in TF32 (8 and 11 significant bits against 11), so the TF32 mma on them
//                computes the same exact products as a BF16/FP16 mma, and sums them in FP32. The FP32 results are
//                summed further where the algorithm needs it (col2im, the images of the weight gradient) and
//                rounded to the type once, at the end, as the reference does; a 16-bit C would round each partial.
// These are the simple kernels beside the implicit-GEMM ones (kernels/conv2d_tc_igemm.cu, which serves layers/ops/
// conv2d.h's *_precision_stub): ops::conv2d_tc_im2col_*_stub (kernels/conv2d_tc.h). This path moves every image's C*R*S
// x P*Q column matrix through memory and runs 16-bit data at TF32's rate. Cost beyond the GEMMs: one read and write of
// each operand to round it (16-bit only), the column matrices (kernels/conv2d_im2col.cu), one pass over the output to
// round it (16-bit only).
#include <optional>

#include "core/memory.h"  // Workspace
#include "kernels/bias.cuh"
#include "kernels/conv2d.h"
#include "kernels/conv2d_tc.h"
#include "kernels/reduce.cuh"  // grid_stride_blocks, workspace_array
#include "kernels/tc_gemm.cuh"
#include "kernels/tc_gemm.h"

namespace fovea::FOVEA_KERNEL_NS {
namespace {

using tcg::Bf16, tcg::Fp16;

constexpr int kBlock = 256;

// y = x rounded to P's format, as FP32 (y may be x).
template <class P>
__global__ void round_kernel(const float* x, float* y, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = P::to_float(P::from_float(x[i]));
}

void round_to(const Exec& ex, Precision prec, const float* x, float* y, int64_t n) {
  if (n == 0) return;
  if (prec == Precision::bf16)
    FOVEA_LAUNCH(round_kernel<Bf16>, grid_stride_blocks(n, kBlock), kBlock, 0, ex.stream, x, y, n);
  else if (prec == Precision::fp16)
    FOVEA_LAUNCH(round_kernel<Fp16>, grid_stride_blocks(n, kBlock), kBlock, 0, ex.stream, x, y, n);
}

int64_t aligned(int64_t floats) {  // 16-byte aligned pieces of the workspace (cp.async reads 16-byte chunks)
  return (floats + 3) / 4 * 4;
}

// The workspace: the rounded copies of two operands (16-bit precisions only), one image's column matrix and the
// split-K partials of the GEMM g (tc_gemm_multistage_workspace_bytes; none where it does not split), one request.
struct Scratch {
  const float *a, *b;
  float* col;
  float* partial;
  int64_t partial_bytes;
};
Scratch scratch(const Exec& ex, Precision prec, const Conv2dParams& p, const float* a, int64_t a_n, const float* b,
                int64_t b_n, const SgemmParams& g, const char* op) {
  FOVEA_CHECK(prec == Precision::tf32 || prec == Precision::bf16 || prec == Precision::fp16, op, ": precision ",
              precision_name(prec), " is not a tensor-core precision");
  const bool round = prec != Precision::tf32;
  const int64_t col_n = p.C * p.R * p.S * p.P() * p.Q();
  const int64_t partial_bytes = ops::tc_gemm_multistage_workspace_bytes(Precision::tf32, g);
  const int64_t own = (round ? aligned(a_n) + aligned(b_n) : 0) + aligned(col_n);
  float* ws = workspace_array<float>(ex, own + partial_bytes / 4, op);
  if (!round) return {a, b, ws, ws + own, partial_bytes};
  float *ra = ws, *rb = ws + aligned(a_n);
  round_to(ex, prec, a, ra, a_n);
  round_to(ex, prec, b, rb, b_n);
  return {ra, rb, rb + aligned(b_n), ws + own, partial_bytes};
}

// ex with the GEMM's share of the scratch (its split-K partials) as its workspace.
Exec gemm_exec(const Exec& ex, const Scratch& s, std::optional<Workspace>& w) {
  Exec gx = ex;
  gx.workspace = nullptr;
  if (s.partial_bytes > 0) gx.workspace = &w.emplace(ex.workspace->device(), s.partial, size_t(s.partial_bytes));
  return gx;
}

void conv2d_forward_tc(const Exec& ex, Precision prec, const Conv2dParams& p, const float* x, const float* w,
                       const float* b, float* y) {
  constexpr const char* op = "conv2d_forward_precision";
  p.validate(op);
  check_ptr(op, "x", x), check_ptr(op, "w", w), check_ptr(op, "y", y);
  const int64_t PQ = p.P() * p.Q(), Kg = p.K_per_group(), CgRS = p.C_per_group() * p.R * p.S;
  SgemmParams g = sgemm_params(Trans::N, Trans::N, Kg, PQ, CgRS);
  g.batch = p.groups, g.stride_a = Kg * CgRS, g.stride_b = CgRS * PQ, g.stride_c = Kg * PQ;
  const Scratch s = scratch(ex, prec, p, x, p.N * p.C * p.H * p.W, w, p.K * CgRS, g, op);
  std::optional<Workspace> gws;
  const Exec gx = gemm_exec(ex, s, gws);
  for (int64_t n = 0; n < p.N; ++n) {
    ops::im2col_stub(ex, p, s.a + n * p.C * p.H * p.W, s.col);
    ops::tc_gemm_multistage_tf32_stub(gx, g, s.b, s.col, y + n * p.K * PQ);
  }
  if (b) {
    // The bias as a value of the output type (16-bit: rounded into the column buffer, free now).
    round_to(ex, prec, b, s.col, p.K);
    bias_add(ex, y, prec == Precision::tf32 ? b : s.col, p.N, p.K, PQ);
  }
  round_to(ex, prec, y, y, p.N * p.K * PQ);
}

void conv2d_backward_data_tc(const Exec& ex, Precision prec, const Conv2dParams& p, const float* dy, const float* w,
                             float* dx) {
  constexpr const char* op = "conv2d_backward_data_precision";
  p.validate(op);
  check_ptr(op, "dy", dy), check_ptr(op, "w", w), check_ptr(op, "dx", dx);
  const int64_t PQ = p.P() * p.Q(), Kg = p.K_per_group(), CgRS = p.C_per_group() * p.R * p.S;
  SgemmParams g = sgemm_params(Trans::T, Trans::N, CgRS, PQ, Kg);
  g.batch = p.groups, g.stride_a = Kg * CgRS, g.stride_b = Kg * PQ, g.stride_c = CgRS * PQ;
  const Scratch s = scratch(ex, prec, p, dy, p.N * p.K * PQ, w, p.K * CgRS, g, op);
  std::optional<Workspace> gws;
  const Exec gx = gemm_exec(ex, s, gws);
  for (int64_t n = 0; n < p.N; ++n) {
    ops::tc_gemm_multistage_tf32_stub(gx, g, s.b, s.a + n * p.K * PQ, s.col);
    ops::col2im_stub(ex, p, s.col, dx + n * p.C * p.H * p.W);
  }
  round_to(ex, prec, dx, dx, p.N * p.C * p.H * p.W);
}

void conv2d_backward_filter_tc(const Exec& ex, Precision prec, const Conv2dParams& p, const float* x, const float* dy,
                               float* dw) {
  constexpr const char* op = "conv2d_backward_filter_precision";
  p.validate(op);
  check_ptr(op, "x", x), check_ptr(op, "dy", dy), check_ptr(op, "dw", dw);
  const int64_t PQ = p.P() * p.Q(), Kg = p.K_per_group(), CgRS = p.C_per_group() * p.R * p.S;
  SgemmParams g = sgemm_params(Trans::N, Trans::T, Kg, CgRS, PQ);
  g.batch = p.groups, g.stride_a = Kg * PQ, g.stride_b = CgRS * PQ, g.stride_c = Kg * CgRS;
  const Scratch s = scratch(ex, prec, p, x, p.N * p.C * p.H * p.W, dy, p.N * p.K * PQ, g, op);
  std::optional<Workspace> gws;
  const Exec gx = gemm_exec(ex, s, gws);
  for (int64_t n = 0; n < p.N; ++n) {  // images summed in FP32, in image order
    ops::im2col_stub(ex, p, s.a + n * p.C * p.H * p.W, s.col);
    g.beta = n == 0 ? 0.0f : 1.0f;
    ops::tc_gemm_multistage_tf32_stub(gx, g, s.b + n * p.K * PQ, s.col, dw);
  }
  round_to(ex, prec, dw, dw, p.K * CgRS);
}

[[maybe_unused]] const bool registered =
    ops::conv2d_tc_im2col_forward_stub.define(kThisSlot, &conv2d_forward_tc) &&
    ops::conv2d_tc_im2col_backward_data_stub.define(kThisSlot, &conv2d_backward_data_tc) &&
    ops::conv2d_tc_im2col_backward_filter_stub.define(kThisSlot, &conv2d_backward_filter_tc);

}  // namespace
}  // namespace fovea::FOVEA_KERNEL_NS
