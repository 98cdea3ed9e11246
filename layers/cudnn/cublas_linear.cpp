// linear on cuBLAS: the forward GEMM on cuBLASLt with the bias fused as an epilogue, the backward GEMMs
// and the bias reduction on classic cuBLAS; our SGEMM's contract on cuBLAS (the cudnn slot of ops::sgemm_stub,
// the benchmarks' GEMM baseline).
//
// Row-major tensors are column-major transposes, so every product is written for cuBLAS as its
// transpose: row-major y[N,O] = x[N,I] w[O,I]^T is column-major y^T (O x N) = w^T' x^T', etc.
#include <memory>
#include <tuple>
#include <vector>

#include "layers/cudnn/cudnn_common.h"

namespace fovea::cudnn {

using namespace detail;

namespace {

// ---------------------------------------------------------------- cuBLASLt plans (per thread)

struct LtKey {
  int device;
  int m, n, k;
  bool bias, tf32, deterministic;
  uint32_t align_a, align_b, align_c, align_bias;
  size_t max_workspace;
  bool operator<(const LtKey& o) const {
    return std::tie(device, m, n, k, bias, tf32, deterministic, align_a, align_b, align_c, align_bias, max_workspace) <
           std::tie(o.device, o.m, o.n, o.k, o.bias, o.tf32, o.deterministic, o.align_a, o.align_b, o.align_c,
                    o.align_bias, o.max_workspace);
  }
};

// D (m x n) = op(A) B (+ bias per row), A stored k x m (transposed), B stored k x n, column-major.
const LtPlan& lt_plan(const LtKey& key, cublasLtHandle_t lt, const float* bias) {
  thread_local std::map<LtKey, std::unique_ptr<LtPlan>> plans;
  auto it = plans.find(key);
  if (it != plans.end()) return *it->second;
  auto pl = std::make_unique<LtPlan>();
  // A compute type this cuBLASLt does not take (pedantic float32 is documented for classic cuBLAS)
  // means no plan: the classic path runs, with the same math.
  if (cublasLtMatmulDescCreate(&pl->op, blas_compute(), CUDA_R_32F) != CUBLAS_STATUS_SUCCESS) {
    pl->op = nullptr;
    return *plans.emplace(key, std::move(pl)).first->second;
  }
  set_desc(pl->op, CUBLASLT_MATMUL_DESC_TRANSA, cublasOperation_t(CUBLAS_OP_T));
  set_desc(pl->op, CUBLASLT_MATMUL_DESC_TRANSB, cublasOperation_t(CUBLAS_OP_N));
  set_desc(pl->op, CUBLASLT_MATMUL_DESC_EPILOGUE, key.bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT);
  if (key.bias) set_desc(pl->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, static_cast<const void*>(bias));
  FOVEA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&pl->a, CUDA_R_32F, uint64_t(key.k), uint64_t(key.m), int64_t(key.k)));
  FOVEA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&pl->b, CUDA_R_32F, uint64_t(key.k), uint64_t(key.n), int64_t(key.k)));
  FOVEA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&pl->c, CUDA_R_32F, uint64_t(key.m), uint64_t(key.n), int64_t(key.m)));
  FOVEA_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pl->pref));
  g_descriptors += 5;
  set_pref(pl->pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, uint64_t(key.max_workspace));
  set_pref(pl->pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, key.align_a);
  set_pref(pl->pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, key.align_b);
  set_pref(pl->pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, key.align_c);
  set_pref(pl->pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, key.align_c);
  // Split-K reductions are not documented as reproducible: deterministic mode keeps each output's sum
  // in one kernel.
  if (key.deterministic)
    set_pref(pl->pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, uint32_t(CUBLASLT_REDUCTION_SCHEME_NONE));
  int count = 0;
  const cublasStatus_t st =
      cublasLtMatmulAlgoGetHeuristic(lt, pl->op, pl->a, pl->b, pl->c, pl->c, pl->pref, 1, &pl->result, &count);
  pl->found = st == CUBLAS_STATUS_SUCCESS && count > 0 && pl->result.state == CUBLAS_STATUS_SUCCESS;
  return *plans.emplace(key, std::move(pl)).first->second;
}

// ---------------------------------------------------------------- a ones vector per thread and device

const float* ones(int device, int64_t n) {
  struct Ones {
    Buffer buf;
    int64_t n = 0;
  };
  thread_local std::map<int, Ones> cache;
  Ones& o = cache[device];
  if (o.n < n) {
    const int64_t size = n < 1024 ? 1024 : n;
    std::vector<float> host(size_t(size), 1.0f);
    o.buf = Buffer(size_t(size) * sizeof(float), Device(DeviceType::cuda, device));
    copy_bytes(o.buf.data(), Device(DeviceType::cuda, device), host.data(), kCPU, host.size() * sizeof(float));
    o.n = size;
  }
  return o.buf.as<float>();
}

cublasHandle_t blas(const Exec& ctx) {
  cublasHandle_t h = cublas_handle(ctx.device.index, stream_of(ctx));
  FOVEA_CUBLAS_CHECK(cublasSetMathMode(h, blas_math()));
  return h;
}

constexpr size_t kLtWorkspace = size_t(32) << 20;

// ---------------------------------------------------------------- linear

void linear_forward(const Exec& ctx, const LinearParams& p, const float* x, const float* w, const float* b, float* y) {
  const char* op = "linear";
  require_cuda(ctx, op);
  DeviceGuard guard(ctx.device.index);
  const int N = to_int(p.N, op, "N"), I = to_int(p.in_features, op, "in_features"),
            O = to_int(p.out_features, op, "out_features");
  const size_t max_ws = std::min(kLtWorkspace, workspace_limit(ctx));
  const LtKey key{ctx.device.index,
                  O,
                  N,
                  I,
                  b != nullptr,
                  settings().allow_tf32,
                  ctx.deterministic,
                  alignment(w),
                  alignment(x),
                  alignment(y),
                  b ? alignment(b) : 256u,
                  max_ws};
  cublasLtHandle_t lt = cublaslt_handle(ctx.device.index);
  const LtPlan& pl = lt_plan(key, lt, b);
  if (pl.found) {
    if (b) set_desc(pl.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, static_cast<const void*>(b));
    void* ws = workspace(ctx, pl.result.workspaceSize);
    FOVEA_CUBLAS_CHECK(cublasLtMatmul(lt, pl.op, &kOne, w, pl.a, x, pl.b, &kZero, y, pl.c, y, pl.c, &pl.result.algo, ws,
                                      pl.result.workspaceSize, stream_of(ctx)));
    return;
  }
  // No cuBLASLt kernel for these operands: y = b broadcast (cuDNN; beta 0 does not read y), then y += x w^T.
  float beta = 0.0f;
  if (b) {
    FOVEA_CUDNN_CHECK(
        cudnnAddTensor(cudnn_handle(ctx), &kOne, tensor_desc(1, O, 1, 1), b, &kZero, tensor_desc(N, O, 1, 1), y));
    beta = 1.0f;
  }
  FOVEA_CUBLAS_CHECK(cublasSgemm(blas(ctx), CUBLAS_OP_T, CUBLAS_OP_N, O, N, I, &kOne, w, I, x, I, &beta, y, O));
}

// dx[N,I] = dy[N,O] w[O,I]: column-major dx^T (I x N) = w^T (I x O) dy^T (O x N).
void linear_backward_data(const Exec& ctx, const LinearParams& p, const float* dy, const float* w, float* dx) {
  const char* op = "linear_backward_data";
  require_cuda(ctx, op);
  DeviceGuard guard(ctx.device.index);
  const int N = to_int(p.N, op, "N"), O = to_int(p.out_features, op, "out_features"),
            I = to_int(p.in_features, op, "in_features");
  FOVEA_CUBLAS_CHECK(cublasSgemm(blas(ctx), CUBLAS_OP_N, CUBLAS_OP_N, I, N, O, &kOne, w, I, dy, O, &kZero, dx, I));
}

// dw[O,I] = dy[N,O]^T x[N,I]: column-major dw^T (I x O) = x^T (I x N) (dy^T)^T (N x O).
void linear_backward_weight(const Exec& ctx, const LinearParams& p, const float* x, const float* dy, float* dw) {
  const char* op = "linear_backward_weight";
  require_cuda(ctx, op);
  DeviceGuard guard(ctx.device.index);
  const int N = to_int(p.N, op, "N"), I = to_int(p.in_features, op, "in_features"),
            O = to_int(p.out_features, op, "out_features");
  FOVEA_CUBLAS_CHECK(cublasSgemm(blas(ctx), CUBLAS_OP_N, CUBLAS_OP_T, I, O, N, &kOne, x, I, dy, O, &kZero, dw, I));
}

// db[O] = sum over rows of dy[N,O]: column-major dy^T (O x N) times a ones vector.
void linear_backward_bias(const Exec& ctx, const LinearParams& p, const float* dy, float* db) {
  const char* op = "linear_backward_bias";
  require_cuda(ctx, op);
  DeviceGuard guard(ctx.device.index);
  const int N = to_int(p.N, op, "N"), O = to_int(p.out_features, op, "out_features");
  FOVEA_CUBLAS_CHECK(
      cublasSgemv(blas(ctx), CUBLAS_OP_N, O, N, &kOne, dy, O, ones(ctx.device.index, N), 1, &kZero, db, 1));
}

// ---------------------------------------------------------------- GEMM: the cudnn slot of ops::sgemm_stub

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T, and a row-major matrix read
// column-major is its transpose: so B goes first, with the same transpose flags.
void sgemm(const Exec& ctx, GemmAlgo, const SgemmParams& g, const float* A, const float* B, float* C) {
  const char* op = "cublas_sgemm";
  g.validate(op);
  require_cuda(ctx, op);
  if (g.M == 0 || g.N == 0) return;
  DeviceGuard guard(ctx.device.index);
  const auto t = [](Trans x) { return x == Trans::N ? CUBLAS_OP_N : CUBLAS_OP_T; };
  FOVEA_CUBLAS_CHECK(cublasSgemmStridedBatched(
      blas(ctx), t(g.trans_b), t(g.trans_a), to_int(g.N, op, "N"), to_int(g.M, op, "M"), to_int(g.K, op, "K"), &g.alpha,
      B, to_int(g.ldb, op, "ldb"), g.stride_b, A, to_int(g.lda, op, "lda"), g.stride_a, &g.beta, C,
      to_int(g.ldc, op, "ldc"), g.stride_c, to_int(g.batch, op, "batch")));
}

const bool registered = ops::linear_forward_stub.define(Slot::cudnn, linear_forward) &&
                        ops::linear_backward_data_stub.define(Slot::cudnn, linear_backward_data) &&
                        ops::linear_backward_weight_stub.define(Slot::cudnn, linear_backward_weight) &&
                        ops::linear_backward_bias_stub.define(Slot::cudnn, linear_backward_bias) &&
                        ops::sgemm_stub.define(Slot::cudnn, sgemm);

}  // namespace
}  // namespace fovea::cudnn
