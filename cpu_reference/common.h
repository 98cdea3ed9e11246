// Internals shared by the cpu_reference sources (not part of the fovea::ref API).
//
// Threading model: ONE level of parallelism. OpenMP parallelises over images, channels or
// output columns; OpenBLAS is pinned to one thread (set once, programmatically) and called from
// inside the OpenMP regions. Two thread pools on the same cores oversubscribe and run ~7x slower.
// Every reduction has a fixed order that does not depend on scheduling, so results are bitwise
// reproducible for a given thread count.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/error.h"

namespace fovea::ref::detail {

// Pins OpenBLAS to one thread (first call only). Called by every function that calls BLAS.
void blas_init();

// Threads OpenMP would use for a parallel region here.
int max_threads();

// Throws "<op>: argument '<arg>' is null".
inline void check_ptr(const char* op, const char* arg, const void* p) {
  FOVEA_CHECK(p != nullptr, op, ": argument '", arg, "' is null");
}
inline void check_count(const char* op, const char* arg, int64_t n) {
  FOVEA_CHECK(n >= 0, op, ": argument '", arg, "' must be >= 0, got ", n);
}

// Per-thread scratch that only grows: slot s of the calling thread, at least n floats. Valid until
// the same thread asks for the same slot again.
float* scratch(int slot, size_t n);

// C[M,N] = alpha * op(A) op(B) + beta * C, row-major, split over the larger of M and N among the
// OpenMP threads when the product is big enough (each output element is computed by one call, so
// the result does not depend on the split). Must not be called from inside a parallel region.
void parallel_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                    int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Single-threaded sgemm with the same conventions (for use inside parallel regions).
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// sum of x[0..n) in double, with independent partial sums (vectorisable, fixed order).
double sum_double(const float* x, int64_t n);
// sum of x[i] * y[i] in double, same order rules.
double dot_double(const float* x, const float* y, int64_t n);

// Elementwise loops parallelise only above this many elements (below it the fork costs more).
constexpr int64_t kParallelGrain = 1 << 15;
// Parallel loops hand out work dynamically in chunks of about this many elements: on a busy
// machine a descheduled thread then delays a barrier by one chunk, not by half of the loop.
constexpr int64_t kChunk = 1 << 14;
// Iterations per dynamic chunk for a loop whose iterations touch `per_item` elements each.
inline int64_t chunk_items(int64_t per_item) {
  return per_item >= kChunk ? 1 : kChunk / (per_item > 0 ? per_item : 1);
}

}  // namespace fovea::ref::detail
