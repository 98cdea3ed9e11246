// The linear layer at a reduced precision on the tensor cores (layers/ops/linear.h, *_precision_stub): the
// multistage tensor-core GEMM (kernels/tc_gemm_multistage.cuh) on FP32 tensors, with the reference semantics of
// cpu_reference/gemm.h (operands rounded to the type, exact products, FP32 sums, the output and the bias as values
// of the output type).
//   tf32       : the GEMM reads the FP32 tensors directly (cvt.rna on each fragment); y = acc + b in FP32.
//   bf16, fp16 : the operands are rounded (nearest even) into 16-bit copies in the call's workspace; C starts as
//                the bias rounded to the type and the GEMM runs with beta = 1, so y = round(acc + b) is rounded
//                once, in the GEMM's epilogue; the 16-bit result is widened into y.
// The 16-bit copies are always laid out for the GEMM's cp.async path ("TN": A as M x K rows, B as N x K rows, each
// row padded to a multiple of 8 elements so that every row starts 16-byte aligned): an operand already k-contiguous
// is narrowed row by row (narrow_rows_kernel); an m- or n-contiguous one (B = W in dx = dy W, both dy and x in
// dW = dy^T x) is narrowed and transposed in the same pass (narrow_transpose_kernel, a 32 x 32 tile through shared
// memory). So all three GEMMs of the layer stage both operands by 16-byte cp.async instead of element loads and
// transposing shared stores. The GEMM adds the same products in the same order whatever the staging path, so the
// results are bitwise those of running it on the untransposed copies (tests/tc_gemm_kernel_test.cpp,
// PrecisionOps.LinearTransposedCopiesAreBitwiseTheElementPath).
// Where the GEMM splits K (few output tiles, long K: kernels/tc_gemm.h) its FP32 partials follow the 16-bit copies in
// the same workspace request.
// Cost beyond the GEMM, 16-bit only: each FP32 operand read once and written as 2 bytes, C written and read as 2
// bytes and widened: memory-bound kernels, 6 bytes per operand element, transposed or not. The transpose: a block of
// 256 threads reads a 32 x 32 tile (each warp one 128-byte row: coalesced), and writes it transposed, each warp one
// 64-byte row of the copy (coalesced); the tile's rows are padded to 33 floats so that the column reads of the write
// phase hit 32 distinct banks. So a transposed copy costs what a plain one does (plus one barrier per tile), and the
// padding of rows to 8 elements adds at most 14 bytes of workspace per row. Models kept in 16-bit tensors (issue 16's
// NHWC path) will not need the copies; this path is for running FP32 models at these precisions. Checked on the
// emulator's metrics (tests/tc_gemm_kernel_test.cpp, TcGemmMultistage.LinearBackwardStagesBothOperandsByCpAsync):
// the backward GEMMs issue only 16-byte cp.async, and the tile kernel 4 sectors per warp read, 2 per warp write, one
// wavefront per shared access. ptxas (nvcc 13): narrow_transpose_kernel 34 registers on sm_80, 40 on sm_90, no spills.
// TF32 keeps the element path for its transposed operands (dx's W, dW's dy and x): a transposed FP32 copy would be a
// pass of its own (the 16-bit copies are made anyway, transposing them is free), 4 bytes read and 4 written per
// element. Per element of an operand the GEMM does 2 x (the other dimension of C) FLOP and reads it once (4 B): for
// W in dx at a batch of 128, 256 FLOP per 4 B. The linear GEMMs are then memory-bound on that operand (64 FLOP/B,
// under an H100's ~150 FLOP/B ridge at TF32), so the copy would triple that operand's compulsory traffic (4 B -> 12
// B) to save the element staging's stalls, whose loads read the same bytes, coalesced along the contiguous dimension.
// That trade is not clearly a win without a GPU measurement, so it is not made.
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

// y[r * ldy + c] = x[r * cols + c] rounded to the type, for rows x cols (ldy >= cols; the padding is never read).
template <class P>
__global__ void narrow_rows_kernel(const float* __restrict__ x, typename P::Raw* __restrict__ y, int64_t rows,
                                   int64_t cols, int64_t ldy) {
  const int64_t n = rows * cols;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / cols;
    y[r * ldy + (i - r * cols)] = P::from_float(x[i]);
  }
}

// y[c * ldy + r] = x[r * cols + c] rounded to the type: x (rows x cols) transposed into cols rows of ldy >= rows.
// One block of 256 threads (8 warps) per 32 x 32 tile: warp w reads tile rows w, w + 8, ... (128 contiguous bytes
// each), then writes copy rows w, w + 8, ... (64 contiguous bytes each) from the tile's columns.
constexpr int kTransposeTile = 32, kTransposeThreads = 256;
template <class P>
__global__ void narrow_transpose_kernel(const float* __restrict__ x, typename P::Raw* __restrict__ y, int64_t rows,
                                        int64_t cols, int64_t ldy) {
  constexpr int T = kTransposeTile, kWarps = kTransposeThreads / 32;
  __shared__ float tile[T][T + 1];  // odd row length: a column read hits 32 banks
  const int64_t col_tiles = (cols + T - 1) / T;
  const int64_t r0 = int64_t(blockIdx.x) / col_tiles * T, c0 = int64_t(blockIdx.x) % col_tiles * T;
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32;
  for (int i = warp; i < T; i += kWarps)
    if (r0 + i < rows && c0 + lane < cols) tile[i][lane] = x[(r0 + i) * cols + c0 + lane];
  __syncthreads();
  for (int j = warp; j < T; j += kWarps)
    if (c0 + j < cols && r0 + lane < rows) y[(c0 + j) * ldy + r0 + lane] = P::from_float(tile[lane][j]);
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

// Rounds the operand X (FP32, stored as sgemm_params lays it out) into dst as rows x ld 16-bit rows of K: as stored
// when it is k-contiguous (k_contig), else transposed.
template <class P>
void narrow_operand(const Exec& ex, const float* X, bool k_contig, int64_t rows, int64_t K, int64_t ld,
                    typename P::Raw* dst) {
  if (rows == 0 || K == 0) return;
  if (k_contig) {
    FOVEA_LAUNCH(narrow_rows_kernel<P>, grid_for(rows * K), 256, 0, ex.stream, X, dst, rows, K, ld);
    return;
  }
  const int64_t tiles = ((K + kTransposeTile - 1) / kTransposeTile) * ((rows + kTransposeTile - 1) / kTransposeTile);
  FOVEA_CHECK(tiles <= INT32_MAX, "linear precision: transposed copy of ", K, " x ", rows, " needs ", tiles,
              " blocks, above the grid's limit");
  FOVEA_LAUNCH(narrow_transpose_kernel<P>, unsigned(tiles), kTransposeThreads, 0, ex.stream, X, dst, K, rows, ld);
}

// C[M,N] (FP32) = op(A) op(B) (+ bias over C's rows) at precision prec; A, B and C have sgemm_params' dense strides.
void gemm_at(const Exec& ex, Precision prec, const SgemmParams& g, const float* A, const float* B, const float* bias,
             float* C, const char* op) {
  const int64_t c_n = g.M * g.N;
  if (c_n == 0) return;
  FOVEA_CHECK(prec == Precision::tf32 || prec == Precision::bf16 || prec == Precision::fp16, op, ": precision ",
              precision_name(prec), " is not a tensor-core precision");
  // BF16/FP16: the GEMM runs "TN" on the copies, rows padded to 8 elements (16 bytes).
  const bool narrow = prec != Precision::tf32;
  SgemmParams g16 = sgemm_params(Trans::N, Trans::T, g.M, g.N, g.K, g.alpha, bias ? 1.0f : 0.0f);
  g16.lda = g16.ldb = aligned(g.K > 0 ? g.K : 1);
  const SgemmParams& gr = narrow ? g16 : g;  // what the GEMM runs
  // One workspace request per call: the 16-bit copies (BF16/FP16) and, after them, the GEMM's split-K partials
  // (tc_gemm_multistage_workspace_bytes), handed to the GEMM as a workspace of its own.
  const int64_t a_elems = g.M * g16.lda, b_elems = g.N * g16.ldb;        // multiples of 8
  const int64_t copies = narrow ? a_elems + b_elems + aligned(c_n) : 0;  // 16-bit elements
  const int64_t partial_bytes = ops::tc_gemm_multistage_workspace_bytes(prec, gr);
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
  uint16_t *a16 = reinterpret_cast<uint16_t*>(ws), *b16 = a16 + a_elems, *c16 = b16 + b_elems;
  auto run = [&]<class P>(P) {
    narrow_operand<P>(ex, A, g.trans_a == Trans::N, g.M, g.K, g16.lda, a16);
    narrow_operand<P>(ex, B, g.trans_b == Trans::T, g.N, g.K, g16.ldb, b16);
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
  gemm_at(ex, prec, sgemm_params(Trans::N, Trans::T, p.N, p.out_features, p.in_features), x, w, b, y,
          "linear_forward_precision");
}

void linear_backward_data_tc(const Exec& ex, Precision prec, const LinearParams& p, const float* dy, const float* w,
                             float* dx) {
  p.validate("linear_backward_data_precision");
  gemm_at(ex, prec, sgemm_params(Trans::N, Trans::N, p.N, p.in_features, p.out_features), dy, w, nullptr, dx,
          "linear_backward_data_precision");
}

void linear_backward_weight_tc(const Exec& ex, Precision prec, const LinearParams& p, const float* x, const float* dy,
                               float* dw) {
  p.validate("linear_backward_weight_precision");
  gemm_at(ex, prec, sgemm_params(Trans::T, Trans::N, p.out_features, p.in_features, p.N), dy, x, nullptr, dw,
          "linear_backward_weight_precision");
}

[[maybe_unused]] const bool registered =
    ops::linear_forward_precision_stub.define(kThisSlot, &linear_forward_tc) &&
    ops::linear_backward_data_precision_stub.define(kThisSlot, &linear_backward_data_tc) &&
    ops::linear_backward_weight_precision_stub.define(kThisSlot, &linear_backward_weight_tc);

}  // namespace
}  // namespace fovea::FOVEA_KERNEL_NS
