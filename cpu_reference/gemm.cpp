#include "cpu_reference/gemm.h"

#include <algorithm>
#include <string>
#include <vector>

#include "cpu_reference/common.h"

namespace fovea::ref {

void round_operands(Precision p, const float* x, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = round_operand(p, x[i]);
}

void round_outputs(Precision p, const float* x, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = round_output(p, x[i]);
}

void gemm(Precision p, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const std::string op = std::string("ref::gemm (") + std::string(precision_name(p)) + ")";
  FOVEA_CHECK(M >= 0 && N >= 0 && K >= 0, op, ": sizes must be >= 0, got M=", M, " N=", N, " K=", K);
  const int64_t a_rows = trans_a ? K : M, a_cols = trans_a ? M : K;
  const int64_t b_rows = trans_b ? N : K, b_cols = trans_b ? K : N;
  FOVEA_CHECK(lda >= std::max<int64_t>(a_cols, 1), op, ": argument 'lda'=", lda, " is less than the ", a_cols,
              " columns of A as stored");
  FOVEA_CHECK(ldb >= std::max<int64_t>(b_cols, 1), op, ": argument 'ldb'=", ldb, " is less than the ", b_cols,
              " columns of B as stored");
  FOVEA_CHECK(ldc >= std::max<int64_t>(N, 1), op, ": argument 'ldc'=", ldc, " is less than N=", N);
  if (M == 0 || N == 0) return;
  detail::check_ptr(op.c_str(), "C", C);
  if (K > 0) detail::check_ptr(op.c_str(), "A", A), detail::check_ptr(op.c_str(), "B", B);
  if (p == Precision::fp32) {
    detail::parallel_sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  // Rounded, tightly packed copies of the operands as stored.
  std::vector<float> a(size_t(a_rows * a_cols)), b(size_t(b_rows * b_cols));
  for (int64_t r = 0; r < a_rows; ++r) round_operands(p, A + r * lda, a_cols, a.data() + r * a_cols);
  for (int64_t r = 0; r < b_rows; ++r) round_operands(p, B + r * ldb, b_cols, b.data() + r * b_cols);
  if (beta != 0.0f)
    for (int64_t m = 0; m < M; ++m) round_outputs(p, C + m * ldc, N, C + m * ldc);
  detail::parallel_sgemm(trans_a, trans_b, M, N, K, alpha, a.data(), std::max<int64_t>(a_cols, 1), b.data(),
                         std::max<int64_t>(b_cols, 1), beta, C, ldc);
  for (int64_t m = 0; m < M; ++m) round_outputs(p, C + m * ldc, N, C + m * ldc);
}

}  // namespace fovea::ref
