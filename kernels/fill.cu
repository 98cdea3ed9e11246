// Random and constant fills. Memory-bound: 4 bytes written per element (Philox's ~100 integer ops
// per 4 outputs are cheap next to that on an H100); grid-stride loops keep enough stores in flight.
#include "core/philox.h"
#include "kernels/common.cuh"
#include "layers/ops/fill.h"

namespace fovea::FOVEA_KERNEL_NS {

__global__ void fill_uniform_kernel(float* y, int64_t n, float lo, float hi, uint64_t seed, uint64_t offset) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = lo + (hi - lo) * philox_uniform(seed, offset, uint64_t(i));
}

__global__ void fill_normal_kernel(float* y, int64_t n, float mean, float stddev, uint64_t seed, uint64_t offset) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = mean + stddev * philox_normal(seed, offset, uint64_t(i));
}

__global__ void fill_value_kernel(float* y, int64_t n, float value) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = value;
}

static unsigned fill_grid(int64_t n) {
  const int64_t blocks = (n + 255) / 256;
  return unsigned(blocks < 4096 ? (blocks > 0 ? blocks : 1) : 4096);
}

void fill_uniform(const Exec& ex, float* y, int64_t n, float lo, float hi, uint64_t seed, uint64_t offset) {
  if (n == 0) return;
  FOVEA_LAUNCH(fill_uniform_kernel, fill_grid(n), 256, 0, ex.stream, y, n, lo, hi, seed, offset);
}

void fill_normal(const Exec& ex, float* y, int64_t n, float mean, float stddev, uint64_t seed, uint64_t offset) {
  if (n == 0) return;
  FOVEA_LAUNCH(fill_normal_kernel, fill_grid(n), 256, 0, ex.stream, y, n, mean, stddev, seed, offset);
}

void fill_value(const Exec& ex, float* y, int64_t n, float value) {
  if (n == 0) return;
  FOVEA_LAUNCH(fill_value_kernel, fill_grid(n), 256, 0, ex.stream, y, n, value);
}

const bool registered = ops::fill_uniform_stub.define(kThisSlot, fill_uniform) &&
                        ops::fill_normal_stub.define(kThisSlot, fill_normal) &&
                        ops::fill_value_stub.define(kThisSlot, fill_value);

}  // namespace fovea::FOVEA_KERNEL_NS
