// conv2d and linear at the tensor cores' precisions on cuDNN and cuBLASLt: the cudnn slots of the *_precision_stub
// entry points (layers/ops/conv2d.h, linear.h), and the raw-buffer calls of the precision benchmark
// (cudnn_backend.h: lt_gemm_raw, conv_precision_algorithms, conv_precision_raw).
//
//   tf32       : the op's FP32 NCHW tensors as they are; cuDNN with CUDNN_DEFAULT_MATH (which permits TF32 tensor
//                cores on FP32 data, as PyTorch's allow_tf32 sets it; never ..._ALLOW_CONVERSION, which would mean
//                FP16), cuBLASLt with CUBLAS_COMPUTE_32F_FAST_TF32.
//                The bias is added in FP32 (cuDNN's add, cuBLASLt's bias epilogue), as the reference does.
//   bf16, fp16 : the op's FP32 NCHW tensors narrowed (round to nearest even, kernels/nhwc16.h) into 16-bit NHWC
//                copies (weights KRSC), cuDNN's convolution on them with FP32 compute (CUDNN_DATA_FLOAT in the
//                convolution descriptor: the "pseudo" 16-bit configuration, products summed in FP32), cuBLASLt with
//                16-bit matrices and CUBLAS_COMPUTE_32F; the 16-bit result widened back. A bias starts in the 16-bit
//                output (rounded) and the call runs with beta = 1, so y = round(acc + b) as in the reference, if
//                the library rounds once (it is not documented to; the tests' bound allows a second rounding).
// The copies live in one block of ctx.workspace with the library's own workspace (a second Workspace::get may move
// the first), so every call makes one request.
//
// Algorithms of the ops (not of the benchmark, which times all): only the GEMM-like ones (implicit / precomputed /
// explicit GEMM; backward ALGO_0, ALGO_1, ALGO_3): they compute the reference's semantics (products of the rounded
// operands summed in FP32), while Winograd and FFT transform the operands first and round the transformed values,
// which the reference's bound does not cover. Among those, the first of cuDNN's heuristic list (cudnnGet*_v7) that
// is supported, deterministic when ctx.deterministic (the default) and fits the workspace limit; cached per shape.
// Settings::force_*_algo and conv_search do not apply here (they are for the FP32 ops). cuBLASLt: its heuristic's
// first algorithm (lt_gemm_raw: any rank, for the benchmark), no split-K reduction when ctx.deterministic.
#include <algorithm>
#include <array>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/nhwc16.h"
#include "layers/cudnn/cudnn_common.h"
#include "layers/ops/linear.h"

namespace fovea::cudnn {

using namespace detail;

namespace {

// ---------------------------------------------------------------- common

void check_precision(const char* op, Precision p) {
  FOVEA_CHECK(p == Precision::tf32 || p == Precision::bf16 || p == Precision::fp16, op, ": precision ",
              precision_name(p), " is not a tensor-core precision (expected tf32, bf16 or fp16)");
}
bool is16(Precision p) {
  return p == Precision::bf16 || p == Precision::fp16;
}
cudnnDataType_t cudnn_type(Precision p) {
  return p == Precision::bf16 ? CUDNN_DATA_BFLOAT16 : p == Precision::fp16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
}
cudaDataType_t blas_type(Precision p) {
  return p == Precision::bf16 ? CUDA_R_16BF : p == Precision::fp16 ? CUDA_R_16F : CUDA_R_32F;
}

// Pieces of one workspace block, each 256-byte aligned (cuBLASLt and cuDNN pick kernels by alignment).
size_t round_up(size_t bytes) {
  return (bytes + 255) / 256 * 256;
}
struct Carve {
  char* base;
  size_t at = 0;
  template <class T>
  T* take(int64_t elements) {
    T* p = reinterpret_cast<T*>(base + at);
    at += round_up(size_t(elements) * sizeof(T));
    return p;
  }
};

// ---------------------------------------------------------------- cuBLASLt at a precision

struct LtKey {
  int device;
  Precision prec;
  bool ta, tb;
  int m, n, k, lda, ldb, ldd;
  bool bias, deterministic;
  uint32_t align_a, align_b, align_d;
  size_t max_workspace;
  int rank = 0;  // which of cuBLASLt's heuristic results (0: its first choice; the benchmark times the others)
  auto tie() const {
    return std::tie(device, prec, ta, tb, m, n, k, lda, ldb, ldd, bias, deterministic, align_a, align_b, align_d,
                    max_workspace, rank);
  }
  bool operator<(const LtKey& o) const { return tie() < o.tie(); }
};

// Column-major D (m x n) = op(A) op(B) (+ beta D) (+ bias per row, FP32, tf32 only); A stored k x m when ta
// (else m x k), B stored n x k when tb (else k x n).
const LtPlan& lt_plan(const LtKey& key, cublasLtHandle_t lt, const char* op) {
  thread_local std::map<LtKey, std::unique_ptr<LtPlan>> plans;
  auto it = plans.find(key);
  if (it != plans.end()) return *it->second;
  auto pl = std::make_unique<LtPlan>();
  const cublasComputeType_t compute =
      key.prec == Precision::tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;  // FP32 sums either way
  FOVEA_CUBLAS_CHECK(cublasLtMatmulDescCreate(&pl->op, compute, CUDA_R_32F));
  set_desc(pl->op, CUBLASLT_MATMUL_DESC_TRANSA, cublasOperation_t(key.ta ? CUBLAS_OP_T : CUBLAS_OP_N));
  set_desc(pl->op, CUBLASLT_MATMUL_DESC_TRANSB, cublasOperation_t(key.tb ? CUBLAS_OP_T : CUBLAS_OP_N));
  set_desc(pl->op, CUBLASLT_MATMUL_DESC_EPILOGUE, key.bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT);
  const cudaDataType_t t = blas_type(key.prec);
  FOVEA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&pl->a, t, uint64_t(key.ta ? key.k : key.m),
                                                uint64_t(key.ta ? key.m : key.k), int64_t(key.lda)));
  FOVEA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&pl->b, t, uint64_t(key.tb ? key.n : key.k),
                                                uint64_t(key.tb ? key.k : key.n), int64_t(key.ldb)));
  FOVEA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&pl->c, t, uint64_t(key.m), uint64_t(key.n), int64_t(key.ldd)));
  FOVEA_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pl->pref));
  g_descriptors += 5;
  set_pref(pl->pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, uint64_t(key.max_workspace));
  set_pref(pl->pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, key.align_a);
  set_pref(pl->pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, key.align_b);
  set_pref(pl->pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, key.align_d);
  set_pref(pl->pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, key.align_d);
  if (key.deterministic)  // split-K reductions are not documented as reproducible
    set_pref(pl->pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, uint32_t(CUBLASLT_REDUCTION_SCHEME_NONE));
  int count = 0;
  std::vector<cublasLtMatmulHeuristicResult_t> results(size_t(key.rank) + 1);
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(lt, pl->op, pl->a, pl->b, pl->c, pl->c, pl->pref,
                                                           key.rank + 1, results.data(), &count);
  FOVEA_CHECK(st == CUBLAS_STATUS_SUCCESS && count > 0 && results[0].state == CUBLAS_STATUS_SUCCESS, op,
              ": cuBLASLt has no ", precision_name(key.prec), " algorithm for m = ", key.m, ", n = ", key.n,
              ", k = ", key.k, " (status ", cublasGetStatusString(st), ", ", count, " found); use --backend custom");
  pl->found = count > key.rank && results[size_t(key.rank)].state == CUBLAS_STATUS_SUCCESS;
  if (pl->found) pl->result = results[size_t(key.rank)];
  return *plans.emplace(key, std::move(pl)).first->second;
}

// One cuBLASLt call; ws/ws_bytes: its workspace (a piece of the caller's block).
// One cuBLASLt call; ws/ws_bytes: its workspace (a piece of the caller's block); rank: which heuristic result (false,
// nothing run, when the heuristic lists fewer).
bool lt_matmul(const Exec& ctx, const char* op, Precision prec, bool ta, bool tb, int m, int n, int k, const void* A,
               int lda, const void* B, int ldb, void* D, int ldd, const float* bias, float beta, void* ws,
               size_t ws_bytes, int rank = 0) {
  FOVEA_CHECK(k > 0, op, ": a product over k = 0 terms is not run on cuBLASLt (backend cudnn); use --backend custom");
  const LtKey key{
      ctx.device.index,  prec,         ta,           tb,           m,        n,   k, lda, ldb, ldd, bias != nullptr,
      ctx.deterministic, alignment(A), alignment(B), alignment(D), ws_bytes, rank};
  cublasLtHandle_t lt = cublaslt_handle(ctx.device.index);
  const LtPlan& pl = lt_plan(key, lt, op);
  if (!pl.found) return false;
  if (bias) set_desc(pl.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, static_cast<const void*>(bias));
  FOVEA_CUBLAS_CHECK(cublasLtMatmul(lt, pl.op, &kOne, A, pl.a, B, pl.b, &beta, D, pl.c, D, pl.c, &pl.result.algo, ws,
                                    pl.result.workspaceSize, stream_of(ctx)));
  return true;
}

constexpr size_t kLtWorkspace = size_t(32) << 20;

// Row-major C[M,N] = op(A) op(B) at prec, FP32 operands of a_n and b_n elements, FP32 C (+ bias over rows):
// column-major C^T = op(B)^T op(A)^T, so B goes first with the same flags (cublas_linear.cpp's sgemm).
void gemm_at(const Exec& ctx, const char* op, Precision prec, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
             const float* A, const float* B, const float* bias, float* C) {
  check_precision(op, prec);
  require_cuda(ctx, op);
  DeviceGuard guard(ctx.device.index);
  const int m = to_int(N, op, "columns"), n = to_int(M, op, "rows"), k = to_int(K, op, "k");
  to_int(M * K, op, "A elements"), to_int(K * N, op, "B elements"), to_int(M * N, op, "C elements");
  if (M == 0 || N == 0) return;
  // Leading dimensions of B and A read column-major (B first: it is cuBLAS's left operand here).
  const int lda_b = tb ? k : m, ldb_a = ta ? n : k;
  const size_t lt_ws = std::min(kLtWorkspace, workspace_limit(ctx));
  if (!is16(prec)) {
    void* ws = workspace(ctx, lt_ws);
    lt_matmul(ctx, op, prec, tb, ta, m, n, k, B, lda_b, A, ldb_a, C, m, bias, 0.0f, ws, lt_ws);
    return;
  }
  const size_t scratch = round_up(size_t(M * K) * 2) + round_up(size_t(K * N) * 2) + round_up(size_t(M * N) * 2);
  FOVEA_CHECK(ctx.workspace, op, ": the context has no workspace");
  Carve cv{static_cast<char*>(ctx.workspace->get(scratch + lt_ws))};
  uint16_t *a16 = cv.take<uint16_t>(M * K), *b16 = cv.take<uint16_t>(K * N), *c16 = cv.take<uint16_t>(M * N);
  void* ws = cv.base + cv.at;
  ops::nchw_to_nhwc16_stub(ctx, prec, M * K, 1, 1, A, a16);  // n = elements, c = hw = 1: a plain narrowing copy
  ops::nchw_to_nhwc16_stub(ctx, prec, K * N, 1, 1, B, b16);
  if (bias) ops::broadcast_rows16_stub(ctx, prec, M, N, bias, c16);
  lt_matmul(ctx, op, prec, tb, ta, m, n, k, b16, lda_b, a16, ldb_a, c16, m, nullptr, bias ? 1.0f : 0.0f, ws, lt_ws);
  ops::nhwc16_to_nchw_stub(ctx, prec, M * N, 1, 1, c16, C);
}

void linear_forward(const Exec& ctx, Precision prec, const LinearParams& p, const float* x, const float* w,
                    const float* b, float* y) {
  p.validate("linear_forward_precision");
  // y[N,O] = x[N,I] w[O,I]^T; a tf32 bias goes to cuBLASLt's epilogue (column-major: per row of y^T).
  gemm_at(ctx, "linear_forward_precision", prec, false, true, p.N, p.out_features, p.in_features, x, w, b, y);
}
void linear_backward_data(const Exec& ctx, Precision prec, const LinearParams& p, const float* dy, const float* w,
                          float* dx) {
  p.validate("linear_backward_data_precision");
  gemm_at(ctx, "linear_backward_data_precision", prec, false, false, p.N, p.in_features, p.out_features, dy, w, nullptr,
          dx);
}
void linear_backward_weight(const Exec& ctx, Precision prec, const LinearParams& p, const float* x, const float* dy,
                            float* dw) {
  p.validate("linear_backward_weight_precision");
  gemm_at(ctx, "linear_backward_weight_precision", prec, true, false, p.out_features, p.in_features, p.N, dy, x,
          nullptr, dw);
}

// ---------------------------------------------------------------- cuDNN at a precision

// Descriptors of one shape at one precision (cached per thread): FP32 NCHW / KCRS for tf32, 16-bit NHWC / KRSC
// otherwise; the convolution descriptor is the FP32 ops' (FP32 compute, cross-correlation), its math type set
// before each use.
struct PPlan {
  cudnnTensorDescriptor_t x, y, bias;
  cudnnFilterDescriptor_t w;
  cudnnConvolutionDescriptor_t conv;
};

using PKey = std::array<int64_t, 15>;
PKey pkey(Precision prec, const Conv2dParams& p) {
  return {int64_t(prec), p.N,        p.C,     p.H,     p.W,     p.K,     p.R,     p.S,
          p.stride_h,    p.stride_w, p.pad_h, p.pad_w, p.dil_h, p.dil_w, p.groups};
}

const PPlan& pplan(Precision prec, const Conv2dParams& p) {
  struct Owned {
    TensorDesc x, y, bias;
    FilterDesc w;
    PPlan plan;
  };
  thread_local std::map<PKey, std::unique_ptr<Owned>> cache;
  const PKey key = pkey(prec, p);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second->plan;
  const char* op = "conv2d_precision";
  const int N = to_int(p.N, op, "N"), C = to_int(p.C, op, "C"), H = to_int(p.H, op, "H"), W = to_int(p.W, op, "W");
  const int K = to_int(p.K, op, "K"), P = to_int(p.P(), op, "P"), Q = to_int(p.Q(), op, "Q");
  const int Cg = to_int(p.C_per_group(), op, "C/groups"), R = to_int(p.R, op, "R"), S = to_int(p.S, op, "S");
  to_int(p.x_size(), op, "x elements"), to_int(p.y_size(), op, "y elements"), to_int(p.w_size(), op, "w elements");
  auto o = std::make_unique<Owned>();  // the descriptors count themselves (g_descriptors)
  const cudnnTensorFormat_t fmt = is16(prec) ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
  const cudnnDataType_t t = cudnn_type(prec);
  FOVEA_CUDNN_CHECK(cudnnSetTensor4dDescriptor(o->x, fmt, t, N, C, H, W));
  FOVEA_CUDNN_CHECK(cudnnSetTensor4dDescriptor(o->y, fmt, t, N, K, P, Q));
  FOVEA_CUDNN_CHECK(cudnnSetTensor4dDescriptor(o->bias, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, K, 1, 1));
  FOVEA_CUDNN_CHECK(cudnnSetFilter4dDescriptor(o->w, t, fmt, K, Cg, R, S));
  o->plan = {o->x, o->y, o->bias, o->w, conv_desc(p)};
  int n = 0, k = 0, h = 0, w = 0;
  FOVEA_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(o->plan.conv, o->x, o->w, &n, &k, &h, &w));
  FOVEA_CHECK(n == N && k == K && h == P && w == Q, op, ": cuDNN computes output [", n, ", ", k, ", ", h, ", ", w,
              "] for ", p.str(), ", expected [", N, ", ", K, ", ", P, ", ", Q, "]");
  return cache.emplace(key, std::move(o)).first->second->plan;
}

// The legacy API per direction: list (heuristics), workspace size, run. Buffers: forward (x, w) -> y,
// backward data (dy, w) -> dx, backward filter (x, dy) -> dw.
struct Perf {
  int algo;
  cudnnStatus_t status;
  cudnnDeterminism_t determinism;
  cudnnMathType_t math;
};

// The math type the list is asked under: CUDNN_DEFAULT_MATH for tf32 (the one that permits TF32 tensor cores on FP32
// data from Ampere on, as PyTorch's allow_tf32 sets it; TENSOR_OP_MATH promises no conversion of the data type),
// CUDNN_TENSOR_OP_MATH for 16-bit data. Each entry then runs with the math type it reports.
cudnnMathType_t query_math(Precision prec) {
  return prec == Precision::tf32 ? CUDNN_DEFAULT_MATH : CUDNN_TENSOR_OP_MATH;
}

std::vector<Perf> heuristics(cudnnHandle_t h, const PPlan& pl, Precision prec, ConvOp op) {
  FOVEA_CUDNN_CHECK(cudnnSetConvolutionMathType(pl.conv, query_math(prec)));
  std::vector<Perf> out;
  auto take = [&](const auto& perf, int got) {
    for (int i = 0; i < got; ++i)
      out.push_back(
          {int(perf[size_t(i)].algo), perf[size_t(i)].status, perf[size_t(i)].determinism, perf[size_t(i)].mathType});
  };
  int n = 0, got = 0;
  switch (op) {
    case ConvOp::forward: {
      FOVEA_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &n));
      std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(size_t(n > 0 ? n : 1));
      FOVEA_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, pl.x, pl.w, pl.conv, pl.y, n, &got, perf.data()));
      take(perf, got);
      break;
    }
    case ConvOp::backward_data: {
      FOVEA_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &n));
      std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(size_t(n > 0 ? n : 1));
      FOVEA_CUDNN_CHECK(
          cudnnGetConvolutionBackwardDataAlgorithm_v7(h, pl.w, pl.y, pl.conv, pl.x, n, &got, perf.data()));
      take(perf, got);
      break;
    }
    case ConvOp::backward_filter: {
      FOVEA_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &n));
      std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perf(size_t(n > 0 ? n : 1));
      FOVEA_CUDNN_CHECK(
          cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, pl.x, pl.y, pl.conv, pl.w, n, &got, perf.data()));
      take(perf, got);
      break;
    }
  }
  ++g_conv_algo_searches;
  return out;
}

// Workspace of algo under math, or false when cuDNN does not support it for the shape.
bool algo_workspace(cudnnHandle_t h, const PPlan& pl, ConvOp op, int algo, cudnnMathType_t math, size_t* bytes) {
  FOVEA_CUDNN_CHECK(cudnnSetConvolutionMathType(pl.conv, math));
  cudnnStatus_t st = CUDNN_STATUS_NOT_SUPPORTED;
  switch (op) {
    case ConvOp::forward:
      st =
          cudnnGetConvolutionForwardWorkspaceSize(h, pl.x, pl.w, pl.conv, pl.y, cudnnConvolutionFwdAlgo_t(algo), bytes);
      break;
    case ConvOp::backward_data:
      st = cudnnGetConvolutionBackwardDataWorkspaceSize(h, pl.w, pl.y, pl.conv, pl.x,
                                                        cudnnConvolutionBwdDataAlgo_t(algo), bytes);
      break;
    case ConvOp::backward_filter:
      st = cudnnGetConvolutionBackwardFilterWorkspaceSize(h, pl.x, pl.y, pl.conv, pl.w,
                                                          cudnnConvolutionBwdFilterAlgo_t(algo), bytes);
      break;
  }
  return st == CUDNN_STATUS_SUCCESS;
}

void run_algo(cudnnHandle_t h, const PPlan& pl, ConvOp op, int algo, cudnnMathType_t math, const void* in0,
              const void* in1, void* out, void* ws, size_t ws_bytes, float beta) {
  FOVEA_CUDNN_CHECK(cudnnSetConvolutionMathType(pl.conv, math));
  switch (op) {
    case ConvOp::forward:
      FOVEA_CUDNN_CHECK(cudnnConvolutionForward(h, &kOne, pl.x, in0, pl.w, in1, pl.conv,
                                                cudnnConvolutionFwdAlgo_t(algo), ws, ws_bytes, &beta, pl.y, out));
      break;
    case ConvOp::backward_data:
      FOVEA_CUDNN_CHECK(cudnnConvolutionBackwardData(h, &kOne, pl.w, in1, pl.y, in0, pl.conv,
                                                     cudnnConvolutionBwdDataAlgo_t(algo), ws, ws_bytes, &beta, pl.x,
                                                     out));
      break;
    case ConvOp::backward_filter:
      FOVEA_CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &kOne, pl.x, in0, pl.y, in1, pl.conv,
                                                       cudnnConvolutionBwdFilterAlgo_t(algo), ws, ws_bytes, &beta, pl.w,
                                                       out));
      break;
  }
}

const char* algo_name(ConvOp op, int a) {
  static const char* fwd[] = {"IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT", "FFT", "FFT_TILING",
                              "WINOGRAD",      "WINOGRAD_NONFUSED"};
  static const char* bwd_data[] = {"ALGO_0", "ALGO_1", "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
  static const char* bwd_filter[] = {"ALGO_0",    "ALGO_1", "FFT", "ALGO_3", "WINOGRAD", "WINOGRAD_NONFUSED",
                                     "FFT_TILING"};
  if (a < 0) return "UNKNOWN";
  if (op == ConvOp::forward) return a < int(std::size(fwd)) ? fwd[a] : "UNKNOWN";
  if (op == ConvOp::backward_data) return a < int(std::size(bwd_data)) ? bwd_data[a] : "UNKNOWN";
  return a < int(std::size(bwd_filter)) ? bwd_filter[a] : "UNKNOWN";
}

// The algorithms that compute products of the (rounded) operands summed in FP32 (the file's comment).
bool gemm_like(ConvOp op, int a) {
  if (op == ConvOp::forward)
    return a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM || a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ||
           a == CUDNN_CONVOLUTION_FWD_ALGO_GEMM;
  if (op == ConvOp::backward_data)
    return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
  return a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 || a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 ||
         a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3;
}

// ALLOW_CONVERSION would let cuDNN run FP32 data in FP16: never at these precisions.
bool math_allowed(cudnnMathType_t m) {
  return m != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

struct PChoice {
  int algo = -1;
  cudnnMathType_t math = CUDNN_TENSOR_OP_MATH;
  size_t workspace_bytes = 0;
  bool deterministic = false;
};

struct AlgoKey {
  int device;
  ConvOp op;
  PKey shape;
  bool deterministic;
  size_t limit;
  auto tie() const { return std::tie(device, op, shape, deterministic, limit); }
  bool operator<(const AlgoKey& o) const { return tie() < o.tie(); }
};

std::mutex g_mu;
std::map<AlgoKey, PChoice>& choices() {
  static auto* m = new std::map<AlgoKey, PChoice>();  // leaked: used until the process ends
  return *m;
}

PChoice choose(const Exec& ctx, cudnnHandle_t h, const PPlan& pl, Precision prec, ConvOp op, const Conv2dParams& p,
               size_t limit) {
  const AlgoKey key{ctx.device.index, op, pkey(prec, p), ctx.deterministic, limit};
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = choices().find(key);
    if (it != choices().end()) return it->second;
  }
  std::optional<PChoice> c;
  for (const Perf& r : heuristics(h, pl, prec, op)) {
    if (r.status != CUDNN_STATUS_SUCCESS || !gemm_like(op, r.algo) || !math_allowed(r.math)) continue;
    if (ctx.deterministic && r.determinism != CUDNN_DETERMINISTIC) continue;
    size_t bytes = 0;
    if (!algo_workspace(h, pl, op, r.algo, r.math, &bytes) || bytes > limit) continue;
    c = PChoice{r.algo, r.math, bytes, r.determinism == CUDNN_DETERMINISTIC};
    break;
  }
  FOVEA_CHECK(c.has_value(), conv_op_name(op), "_precision: cuDNN has no ", precision_name(prec),
              " GEMM-like algorithm for ", p.str(), " (deterministic=", ctx.deterministic ? "on" : "off",
              ", workspace limit ", limit, " bytes); use --backend custom");
  std::lock_guard<std::mutex> lock(g_mu);
  return choices().emplace(key, *c).first->second;
}

void conv_at(const Exec& ctx, Precision prec, ConvOp op, const Conv2dParams& p, const float* in0, const float* in1,
             const float* bias, float* out) {
  const std::string name = std::string(conv_op_name(op)) + "_precision";
  p.validate(name.c_str());
  check_precision(name.c_str(), prec);
  require_cuda(ctx, name.c_str());
  DeviceGuard guard(ctx.device.index);
  cudnnHandle_t h = cudnn_handle(ctx);
  const PPlan& pl = pplan(prec, p);
  const std::array<cudnn::ConvBufferDims, 3> d = cudnn::conv_buffer_dims(op, p);
  const size_t scratch = is16(prec) ? round_up(size_t(d[0].size()) * 2) + round_up(size_t(d[1].size()) * 2) +
                                          round_up(size_t(d[2].size()) * 2)
                                    : 0;
  const PChoice c = choose(ctx, h, pl, prec, op, p, workspace_limit(ctx));
  const size_t total = scratch + c.workspace_bytes;
  FOVEA_CHECK(total == 0 || ctx.workspace, name, ": the context has no workspace");
  Carve cv{total ? static_cast<char*>(ctx.workspace->get(total)) : nullptr};
  if (!is16(prec)) {
    run_algo(h, pl, op, c.algo, c.math, in0, in1, out, cv.base, c.workspace_bytes, 0.0f);
    if (bias) FOVEA_CUDNN_CHECK(cudnnAddTensor(h, &kOne, pl.bias, bias, &kOne, pl.y, out));
    return;
  }
  uint16_t *a16 = cv.take<uint16_t>(d[0].size()), *b16 = cv.take<uint16_t>(d[1].size()),
           *o16 = cv.take<uint16_t>(d[2].size());
  void* ws = c.workspace_bytes ? cv.base + cv.at : nullptr;
  ops::nchw_to_nhwc16_stub(ctx, prec, d[0].n, d[0].c, d[0].hw, in0, a16);
  ops::nchw_to_nhwc16_stub(ctx, prec, d[1].n, d[1].c, d[1].hw, in1, b16);
  if (bias) ops::broadcast_rows16_stub(ctx, prec, d[2].n * d[2].hw, d[2].c, bias, o16);  // NHWC rows of K
  run_algo(h, pl, op, c.algo, c.math, a16, b16, o16, ws, c.workspace_bytes, bias ? 1.0f : 0.0f);
  ops::nhwc16_to_nchw_stub(ctx, prec, d[2].n, d[2].c, d[2].hw, o16, out);
}

void conv2d_forward(const Exec& ctx, Precision prec, const Conv2dParams& p, const float* x, const float* w,
                    const float* b, float* y) {
  conv_at(ctx, prec, ConvOp::forward, p, x, w, b, y);
}
void conv2d_backward_data(const Exec& ctx, Precision prec, const Conv2dParams& p, const float* dy, const float* w,
                          float* dx) {
  conv_at(ctx, prec, ConvOp::backward_data, p, dy, w, nullptr, dx);
}
void conv2d_backward_filter(const Exec& ctx, Precision prec, const Conv2dParams& p, const float* x, const float* dy,
                            float* dw) {
  conv_at(ctx, prec, ConvOp::backward_filter, p, x, dy, nullptr, dw);
}

// ---------------------------------------------------------------- raw buffers (the precision benchmark)

bool lt_gemm_raw_impl(const Exec& ctx, Precision prec, int64_t M, int64_t N, int64_t K, const void* A, const void* B,
                      void* C, int rank) {
  const char* op = "lt_gemm_raw";
  check_precision(op, prec);
  require_cuda(ctx, op);
  DeviceGuard guard(ctx.device.index);
  // Row-major C[M,N] = A[M,K] B[N,K]^T: column-major C^T (N x M) = B (stored K x N, transposed) A^T.
  const int m = to_int(N, op, "N"), n = to_int(M, op, "M"), k = to_int(K, op, "K");
  const size_t lt_ws = std::min(kLtWorkspace, workspace_limit(ctx));
  void* ws = workspace(ctx, lt_ws);
  FOVEA_CHECK(rank >= 0, op, ": rank = ", rank, " (a heuristic result's index: 0, 1, ...)");
  return lt_matmul(ctx, op, prec, true, false, m, n, k, B, k, A, k, C, m, nullptr, 0.0f, ws, lt_ws, rank);
}

std::vector<ConvAlgoInfo> conv_precision_algorithms_impl(const Exec& ctx, Precision prec, ConvOp op,
                                                         const Conv2dParams& p) {
  const char* name = "conv_precision_algorithms";
  p.validate(name);
  check_precision(name, prec);
  require_cuda(ctx, name);
  DeviceGuard guard(ctx.device.index);
  cudnnHandle_t h = cudnn_handle(ctx);
  const PPlan& pl = pplan(prec, p);
  const size_t limit = workspace_limit(ctx);
  std::vector<ConvAlgoInfo> out;
  for (const Perf& r : heuristics(h, pl, prec, op)) {
    if (r.status != CUDNN_STATUS_SUCCESS || !math_allowed(r.math)) continue;
    bool seen = false;
    for (const ConvAlgoInfo& i : out) seen = seen || i.algo == r.algo;
    size_t bytes = 0;
    if (seen || !algo_workspace(h, pl, op, r.algo, r.math, &bytes) || bytes > limit) continue;
    ConvAlgoInfo i;
    i.op = op;
    i.algo = r.algo;
    i.name = algo_name(op, r.algo);
    i.workspace_bytes = bytes;
    i.deterministic = r.determinism == CUDNN_DETERMINISTIC;
    i.tensor_ops = r.math != CUDNN_FMA_MATH;  // tf32 under DEFAULT_MATH: TF32 permitted, not promised
    out.push_back(i);
  }
  return out;
}

void conv_precision_raw_impl(const Exec& ctx, Precision prec, ConvOp op, const Conv2dParams& p, int algo,
                             const void* in0, const void* in1, void* out) {
  const char* name = "conv_precision_raw";
  check_precision(name, prec);
  require_cuda(ctx, name);
  DeviceGuard guard(ctx.device.index);
  cudnnHandle_t h = cudnn_handle(ctx);
  const PPlan& pl = pplan(prec, p);
  // The math type and workspace of (shape, op, algo), looked up once: a heuristics query per call would put host
  // work between the timed launches of the benchmark.
  struct Known {
    cudnnMathType_t math;
    size_t bytes;
  };
  thread_local std::map<std::tuple<int, PKey, ConvOp, int>, Known> known;
  const auto key = std::make_tuple(ctx.device.index, pkey(prec, p), op, algo);
  auto it = known.find(key);
  if (it == known.end()) {
    for (const Perf& r : heuristics(h, pl, prec, op)) {
      if (r.algo != algo || r.status != CUDNN_STATUS_SUCCESS || !math_allowed(r.math)) continue;
      size_t bytes = 0;
      FOVEA_CHECK(algo_workspace(h, pl, op, algo, r.math, &bytes), name, ": cuDNN algorithm ", algo_name(op, algo),
                  " reports no workspace size for ", p.str());
      it = known.emplace(key, Known{r.math, bytes}).first;
      break;
    }
  }
  FOVEA_CHECK(it != known.end(), name, ": cuDNN algorithm ", algo_name(op, algo), " (", algo, ") does not support ",
              p.str(), " at ", precision_name(prec));
  run_algo(h, pl, op, algo, it->second.math, in0, in1, out, workspace(ctx, it->second.bytes), it->second.bytes, 0.0f);
}

const bool registered = ops::conv2d_forward_precision_stub.define(Slot::cudnn, conv2d_forward) &&
                        ops::conv2d_backward_data_precision_stub.define(Slot::cudnn, conv2d_backward_data) &&
                        ops::conv2d_backward_filter_precision_stub.define(Slot::cudnn, conv2d_backward_filter) &&
                        ops::linear_forward_precision_stub.define(Slot::cudnn, linear_forward) &&
                        ops::linear_backward_data_precision_stub.define(Slot::cudnn, linear_backward_data) &&
                        ops::linear_backward_weight_precision_stub.define(Slot::cudnn, linear_backward_weight) && [] {
                          ModuleApi& api = module_api();
                          api.lt_gemm_raw = lt_gemm_raw_impl;
                          api.conv_precision_algorithms = conv_precision_algorithms_impl;
                          api.conv_precision_raw = conv_precision_raw_impl;
                          return true;
                        }();

}  // namespace
}  // namespace fovea::cudnn
