#include "cpu_reference/common.h"
#include "cpu_reference/blas.h"
#include "layers/ops/gemm.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <mutex>

namespace fovea::ref::detail {

void blas_init() {
  (void)blas_info();  // chooses the kernels (cpu_reference/blas.cpp) and pins OpenBLAS to one thread
}

int max_threads() {
  return omp_get_max_threads();
}

float* scratch(int slot, size_t n) {
  constexpr int kSlots = 8;
  FOVEA_CHECK(slot >= 0 && slot < kSlots, "ref::scratch: slot ", slot, " out of range");
  thread_local std::vector<float> buffers[kSlots];
  std::vector<float>& b = buffers[slot];
  if (b.size() < n) b.resize(std::max(n, b.size() + b.size() / 2));
  return b.data();
}

double sum_double(const float* x, int64_t n) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += double(x[i + j]);
  for (; i < n; ++i) acc[i & 7] += double(x[i]);
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

double dot_double(const float* x, const float* y, int64_t n) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += double(x[i + j]) * double(y[i + j]);
  for (; i < n; ++i) acc[i & 7] += double(x[i]) * double(y[i]);
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  constexpr int64_t kMax = 0x7fffffff;
  FOVEA_CHECK(M <= kMax && N <= kMax && K <= kMax && lda <= kMax && ldb <= kMax && ldc <= kMax,
              "ref::sgemm: dimensions exceed BLAS int range: M=", M, " N=", N, " K=", K);
  if (M == 0 || N == 0) return;
  if (K == 0) {  // BLAS would skip the product; keep beta * C semantics explicit.
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
    return;
  }
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, int(M), int(N),
              int(K), alpha, A, int(lda), B, int(ldb), beta, C, int(ldc));
}

void parallel_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                    int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  blas_init();
  const int threads = max_threads();
  const double work = double(M) * double(N) * double(K);
  if (work < 4e6 || std::max(M, N) < 2 * 16) {
    sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  // Split the larger output dimension into 8 blocks (multiples of 16, at least 64 wide), handed out
  // dynamically: on a busy machine a preempted thread then holds up one small block. The split depends on
  // the shape only, never on the thread count: OpenBLAS's kernels round the edge columns of a block
  // differently from its interior on some CPUs (Haswell kernels on AMD Zen 4), so the same split is what
  // keeps the bits the same for any number of threads.
  const bool split_n = N >= M;
  const int64_t extent = split_n ? N : M;
  const int64_t block = std::max<int64_t>(64, ((extent + 7) / 8 + 15) / 16 * 16);
  const int64_t blocks = (extent + block - 1) / block;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t lo = b * block, len = std::min(block, extent - lo);
    if (split_n) {
      // Columns lo..lo+len of op(B) and C.
      const float* Bb = trans_b ? B + lo * ldb : B + lo;
      sgemm(trans_a, trans_b, M, len, K, alpha, A, lda, Bb, ldb, beta, C + lo, ldc);
    } else {
      const float* Ab = trans_a ? A + lo : A + lo * lda;
      sgemm(trans_a, trans_b, len, N, K, alpha, Ab, lda, B, ldb, beta, C + lo * ldc, ldc);
    }
  }
}

// ---- the cpu slot of layers/ops/gemm.h's sgemm stub: OpenBLAS per batch entry (the algorithm is for our kernels)

namespace {
void sgemm_slot(const Exec&, GemmAlgo, const SgemmParams& p, const float* A, const float* B, float* C) {
  p.validate("sgemm");
  for (int64_t i = 0; i < p.batch; ++i)
    parallel_sgemm(p.trans_a == Trans::T, p.trans_b == Trans::T, p.M, p.N, p.K, p.alpha, A + i * p.stride_a, p.lda,
                   B + i * p.stride_b, p.ldb, p.beta, C + i * p.stride_c, p.ldc);
}
const bool registered = ops::sgemm_stub.define(Slot::cpu, sgemm_slot);
}  // namespace

}  // namespace fovea::ref::detail
