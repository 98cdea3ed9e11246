// Single-precision GEMM: C = alpha * op(A) * op(B) + beta * C, row-major, with optional strided batches;
// beta == 0 means C is not read (it may hold NaN), as in BLAS. Not a layer: the building block of linear and
// of the im2col convolution, and the GEMM rows of `fovea bench`.
//   reference : OpenBLAS (cpu_reference/common.cpp)   kernels : kernels/sgemm.cu   cudnn slot : cuBLAS
#pragma once
#include <cstdint>

#include "core/dispatch.h"
#include "core/error.h"

namespace fovea {

enum class Trans : uint8_t { N, T };  // op(X) = X or X^T

struct SgemmParams {
  Trans trans_a = Trans::N, trans_b = Trans::N;
  int64_t M = 0, N = 0, K = 0;  // op(A) is M x K, op(B) is K x N, C is M x N
  float alpha = 1.0f, beta = 0.0f;
  int64_t lda = 0, ldb = 0, ldc = 0;                 // row strides of A, B, C as stored
  int64_t batch = 1;                                 // C_i = alpha op(A_i) op(B_i) + beta C_i for i < batch
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;  // element offsets between batch entries

  // Rows x columns of A and B as stored.
  int64_t a_rows() const { return trans_a == Trans::N ? M : K; }
  int64_t a_cols() const { return trans_a == Trans::N ? K : M; }
  int64_t b_rows() const { return trans_b == Trans::N ? K : N; }
  int64_t b_cols() const { return trans_b == Trans::N ? N : K; }

  // Throws naming `op` and the bad argument.
  void validate(const char* op = "sgemm") const {
    FOVEA_CHECK(M >= 0 && N >= 0 && K >= 0, op, ": sizes must be >= 0, got M=", M, " N=", N, " K=", K);
    FOVEA_CHECK(batch >= 1, op, ": argument 'batch' must be >= 1, got ", batch);
    FOVEA_CHECK(lda >= (a_cols() > 0 ? a_cols() : 1), op, ": argument 'lda'=", lda, " is less than the ", a_cols(),
                " columns of A as stored");
    FOVEA_CHECK(ldb >= (b_cols() > 0 ? b_cols() : 1), op, ": argument 'ldb'=", ldb, " is less than the ", b_cols(),
                " columns of B as stored");
    FOVEA_CHECK(ldc >= (N > 0 ? N : 1), op, ": argument 'ldc'=", ldc, " is less than N=", N);
    FOVEA_CHECK(stride_a >= 0 && stride_b >= 0 && stride_c >= 0, op, ": batch strides must be >= 0");
    FOVEA_CHECK(batch == 1 || M == 0 || N == 0 || stride_c >= (M - 1) * ldc + N, op, ": argument 'stride_c'=", stride_c,
                " makes batch entries of C overlap (need >= ", (M - 1) * ldc + N, ")");
  }
  // Elements spanned by each operand over all batches (for bounds checks by callers and tests).
  int64_t a_extent() const { return (batch - 1) * stride_a + (a_rows() - 1) * lda + a_cols(); }
  int64_t b_extent() const { return (batch - 1) * stride_b + (b_rows() - 1) * ldb + b_cols(); }
  int64_t c_extent() const { return (batch - 1) * stride_c + (M - 1) * ldc + N; }
};

// A plain (unbatched) product with tight leading dimensions.
inline SgemmParams sgemm_params(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha = 1.0f,
                                float beta = 0.0f) {
  SgemmParams g;
  g.trans_a = ta, g.trans_b = tb, g.M = M, g.N = N, g.K = K, g.alpha = alpha, g.beta = beta;
  auto at_least_1 = [](int64_t v) { return v > 0 ? v : int64_t(1); };  // BLAS: ld >= max(1, columns)
  g.lda = at_least_1(ta == Trans::N ? K : M);
  g.ldb = at_least_1(tb == Trans::N ? N : K);
  g.ldc = at_least_1(N);
  return g;
}

// Our two GEMM kernels, kept side by side: simple (one thread per element of C, a plain dot product: the
// oracle) and tiled (shared-memory slabs + register tiles, double buffered: what the library uses).
enum class GemmAlgo : uint8_t { tiled, simple };

namespace ops {
// Pointers on the Exec's device. The reference and cuBLAS ignore the algorithm.
inline constinit DispatchStub<void(const Exec&, GemmAlgo, const SgemmParams&, const float* A, const float* B, float* C)>
    sgemm_stub{"sgemm"};
}  // namespace ops

}  // namespace fovea
