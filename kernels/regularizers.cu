// Penalties and constraints: memory-bound elementwise passes (8-12 bytes per weight, ~4 FLOPs), run
// once per step over the parameters; designed against HBM bandwidth, small next to the convolutions.
#include "kernels/common.cuh"
#include "kernels/reduce.cuh"
#include "layers/ops/optimizers.h"

namespace fovea::FOVEA_KERNEL_NS {

constexpr int kPenaltyBlocks = 256, kPenaltyThreads = 256;

// Pass 1: each block adds its grid-stride share in double, in a fixed order; writes one partial.
__global__ void elastic_net_partials_kernel(int64_t n, const float* w, float l1, float l2, float* grad,
                                            float* partials) {
  __shared__ double smem[32];
  double acc = 0;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float v = w[i];
    acc += double(l1) * fabs(double(v)) + 0.5 * double(l2) * double(v) * double(v);
    if (grad) grad[i] += l1 * float((v > 0.f) - (v < 0.f)) + l2 * v;
  }
  acc = block_sum(acc, smem);
  if (threadIdx.x == 0) partials[blockIdx.x] = float(acc);
}

// Pass 2: one block adds the partials in index order.
__global__ void sum_partials_kernel(const float* partials, int count, float* out) {
  __shared__ double smem[32];
  double acc = 0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partials[i];
  acc = block_sum(acc, smem);
  if (threadIdx.x == 0) out[0] = float(acc);
}

void elastic_net_penalty(const Exec& ex, int64_t n, const float* w, float l1, float l2, float* grad, float* penalty) {
  const char* op = "elastic_net_penalty";
  FOVEA_CHECK(n >= 0, op, ": argument 'n' must be >= 0, got ", n);
  check_ptr(op, "w", w), check_ptr(op, "penalty", penalty);
  float* partials = workspace_array<float>(ex, kPenaltyBlocks, op);
  FOVEA_LAUNCH(elastic_net_partials_kernel, kPenaltyBlocks, kPenaltyThreads, 0, ex.stream, n, w, l1, l2, grad,
               partials);
  FOVEA_LAUNCH(sum_partials_kernel, 1, kPenaltyThreads, 0, ex.stream, (const float*)partials, kPenaltyBlocks, penalty);
}

// One block per row: the row's squared norm in a fixed order, then every thread rescales its share.
__global__ void max_norm_rows_kernel(int64_t cols, float* w, float max_norm, const float* amp) {
  __shared__ double smem[32];
  if (amp && amp[kAmpFoundInf] != 0.0f) return;  // a step the loss scaler skips (uniform: no barrier waits)
  float* row = w + int64_t(blockIdx.x) * cols;
  double acc = 0;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) acc += double(row[j]) * row[j];
  const double norm = sqrt(block_sum(acc, smem));
  if (norm <= max_norm) return;  // uniform across the block: no thread waits at a later barrier
  const float scale = float(max_norm / (norm + 1e-7));
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) row[j] *= scale;
}

void max_norm_rows(const Exec& ex, int64_t rows, int64_t cols, float* w, float max_norm, const float* amp) {
  const char* op = "max_norm_rows";
  FOVEA_CHECK(rows >= 0 && cols >= 0, op, ": arguments 'rows' and 'cols' must be >= 0, got ", rows, " and ", cols);
  FOVEA_CHECK(max_norm > 0, op, ": argument 'max_norm' must be > 0, got ", max_norm);
  if (rows == 0 || cols == 0) return;
  check_ptr(op, "w", w);
  FOVEA_CHECK(rows <= 2147483647, op, ": ", rows, " rows exceed the grid limit");
  FOVEA_LAUNCH(max_norm_rows_kernel, unsigned(rows), 128, 0, ex.stream, cols, w, max_norm, amp);
}

const bool registered = ops::elastic_net_penalty_stub.define(kThisSlot, elastic_net_penalty) &&
                        ops::max_norm_rows_stub.define(kThisSlot, max_norm_rows);

}  // namespace fovea::FOVEA_KERNEL_NS
