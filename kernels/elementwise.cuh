// Elementwise map kernels shared by activations, residual add and the other pointwise ops:
//   y[i] = f(a[i])          launch_map1
//   y[i] = f(a[i], b[i])    launch_map2
// f is a functor with a FOVEA_HD operator(). y may alias a or b (each element is read, then written,
// by the same thread), so in-place activations work.
//
// Design (H100): 4 (map1) or 8 (map2) bytes read + 4 written per element, a few FLOPs: purely
// HBM-bound, target >= 85% of 3.35 TB/s on tensors larger than the 50 MB L2. Grid-stride loops over
// 16-byte float4 accesses when every pointer is 16-byte aligned (one 128-byte transaction per 8
// lanes); a scalar grid-stride loop otherwise. The grid is capped (reduce.cuh) so that each thread
// keeps several loads in flight across iterations.
#pragma once
#include <cstdint>

#include "kernels/reduce.cuh"

namespace fovea::FOVEA_KERNEL_NS {

constexpr int kMapBlock = 256;

template <class F>
__global__ void map1_vec4_kernel(const float* a, float* y, int64_t n, F f) {
  const int64_t n4 = n >> 2, stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t t0 = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int64_t i = t0; i < n4; i += stride) {
    float4 v = reinterpret_cast<const float4*>(a)[i];
    v.x = f(v.x), v.y = f(v.y), v.z = f(v.z), v.w = f(v.w);
    reinterpret_cast<float4*>(y)[i] = v;
  }
  const int64_t t = (n4 << 2) + t0;  // the last n % 4 elements: one each for the first threads
  if (t < n) y[t] = f(a[t]);
}

template <class F>
__global__ void map1_scalar_kernel(const float* a, float* y, int64_t n, F f) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) y[i] = f(a[i]);
}

template <class F>
__global__ void map2_vec4_kernel(const float* a, const float* b, float* y, int64_t n, F f) {
  const int64_t n4 = n >> 2, stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t t0 = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int64_t i = t0; i < n4; i += stride) {
    const float4 u = reinterpret_cast<const float4*>(a)[i];
    const float4 v = reinterpret_cast<const float4*>(b)[i];
    const float4 r{f(u.x, v.x), f(u.y, v.y), f(u.z, v.z), f(u.w, v.w)};  // stored whole: see batchnorm.cu
    reinterpret_cast<float4*>(y)[i] = r;
  }
  const int64_t t = (n4 << 2) + t0;
  if (t < n) y[t] = f(a[t], b[t]);
}

template <class F>
__global__ void map2_scalar_kernel(const float* a, const float* b, float* y, int64_t n, F f) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) y[i] = f(a[i], b[i]);
}

// `op` names the public launcher in errors, and `names` its pointer arguments. n == 0 launches nothing.
template <class F>
void launch_map1(const Exec& ex, const char* op, const float* a, float* y, int64_t n, F f) {
  const StreamHandle stream = ex.stream;
  FOVEA_CHECK(n >= 0, op, ": argument 'n' must be >= 0, got ", n);
  if (n == 0) return;
  check_ptr(op, "x", a), check_ptr(op, "y", y);
  if (aligned16(a) && aligned16(y))
    launch<map1_vec4_kernel<F>>(op, dim3(grid_stride_blocks(n / 4 + 1, kMapBlock)), dim3(kMapBlock), 0, stream, a, y, n,
                                f);
  else
    launch<map1_scalar_kernel<F>>(op, dim3(grid_stride_blocks(n, kMapBlock)), dim3(kMapBlock), 0, stream, a, y, n, f);
}

struct Map2Names {
  const char *a, *b, *y;
};

template <class F>
void launch_map2(const Exec& ex, const char* op, const float* a, const float* b, float* y, int64_t n, F f,
                 Map2Names names) {
  const StreamHandle stream = ex.stream;
  FOVEA_CHECK(n >= 0, op, ": argument 'n' must be >= 0, got ", n);
  if (n == 0) return;
  check_ptr(op, names.a, a), check_ptr(op, names.b, b), check_ptr(op, names.y, y);
  if (aligned16(a) && aligned16(b) && aligned16(y))
    launch<map2_vec4_kernel<F>>(op, dim3(grid_stride_blocks(n / 4 + 1, kMapBlock)), dim3(kMapBlock), 0, stream, a, b, y,
                                n, f);
  else
    launch<map2_scalar_kernel<F>>(op, dim3(grid_stride_blocks(n, kMapBlock)), dim3(kMapBlock), 0, stream, a, b, y, n,
                                  f);
}

}  // namespace fovea::FOVEA_KERNEL_NS
