// The emulator-lab test kernels (see tests/emu_lab_kernels.h): ordinary CUDA, built by nvcc for the GPU and by g++
// for the emulator. The sample-style reduction is written as NVIDIA's CUDA samples write it (an `extern
// __shared__` array, a SharedMemory<T> helper, unsigned indices); the emulator build must take it unchanged.
#include "kernels/common.cuh"
#include "tests/emu_lab_kernels.h"

namespace fovea::FOVEA_KERNEL_NS {

namespace {
constexpr int kTileDim = 32;
constexpr int kBlockRows = 8;
}  // namespace

// ------------------------------------------------------------------ transposes
__global__ void lab_transpose_naive_kernel(const float* in, float* out, int n) {
  const int x = blockIdx.x * kTileDim + threadIdx.x;
  const int y = blockIdx.y * kTileDim + threadIdx.y;
  for (int j = 0; j < kTileDim; j += kBlockRows) out[x * n + (y + j)] = in[(y + j) * n + x];
}

void lab_transpose_naive(const float* in, float* out, int n, StreamHandle stream) {
  FOVEA_LAUNCH(lab_transpose_naive_kernel, dim3(n / kTileDim, n / kTileDim), dim3(kTileDim, kBlockRows), 0, stream, in,
               out, n);
}

template <int kPad>
__global__ void lab_transpose_shared_kernel(const float* in, float* out, int n) {
  __shared__ float tile[kTileDim][kTileDim + kPad];
  int x = blockIdx.x * kTileDim + threadIdx.x;
  int y = blockIdx.y * kTileDim + threadIdx.y;
  for (int j = 0; j < kTileDim; j += kBlockRows) tile[threadIdx.y + j][threadIdx.x] = in[(y + j) * n + x];
  __syncthreads();
  x = blockIdx.y * kTileDim + threadIdx.x;
  y = blockIdx.x * kTileDim + threadIdx.y;
  for (int j = 0; j < kTileDim; j += kBlockRows) out[(y + j) * n + x] = tile[threadIdx.x][threadIdx.y + j];
}

void lab_transpose_shared(const float* in, float* out, int n, bool pad, StreamHandle stream) {
  const dim3 grid(n / kTileDim, n / kTileDim), block(kTileDim, kBlockRows);
  if (pad)
    FOVEA_LAUNCH(lab_transpose_shared_kernel<1>, grid, block, 0, stream, in, out, n);
  else
    FOVEA_LAUNCH(lab_transpose_shared_kernel<0>, grid, block, 0, stream, in, out, n);
}

// ------------------------------------------------------------------ vector accesses, broadcasts
__global__ void lab_copy_float4_kernel(const float4* in, float4* out, int n4) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n4) out[i] = in[i];
}

void lab_copy_float4(const float* in, float* out, int n4, StreamHandle stream) {
  FOVEA_LAUNCH(lab_copy_float4_kernel, grid_1d(n4, 64), 64, 0, stream, reinterpret_cast<const float4*>(in),
               reinterpret_cast<float4*>(out), n4);
}

__global__ void lab_shared_vectors_kernel(float* out) {
  __shared__ float2 s2[32];
  __shared__ float4 s4[32];
  const int lane = threadIdx.x;
  s2[lane] = make_float2(float(lane), 1.0f);
  s4[lane] = make_float4(float(lane), 1.0f, 2.0f, 3.0f);
  __syncwarp();
  const float2 a = s2[lane];
  const float4 b = s4[lane];
  out[lane] = a.x + a.y + b.x + b.y + b.z + b.w;
}

void lab_shared_vectors(float* out, StreamHandle stream) {
  FOVEA_LAUNCH(lab_shared_vectors_kernel, 1, 32, 0, stream, out);
}

__global__ void lab_broadcast_kernel(const float* in, float* out) {
  __shared__ float s[32];
  const int lane = threadIdx.x;
  if (lane == 0) s[0] = 2.0f;
  __syncwarp();
  out[lane] = s[0] + in[0];
}

void lab_broadcast(const float* in, float* out, StreamHandle stream) {
  FOVEA_LAUNCH(lab_broadcast_kernel, 1, 32, 0, stream, in, out);
}

// ------------------------------------------------------------------ written as in NVIDIA's samples
// Utility class used to avoid linker errors with extern unsized shared memory arrays with templated type
template <class T>
struct SharedMemory {
  __device__ inline operator T*() {
    extern __shared__ int __smem[];
    return (T*)__smem;
  }

  __device__ inline operator const T*() const {
    extern __shared__ int __smem[];
    return (T*)__smem;
  }
};

__global__ void lab_sample_reduce_kernel(const float* g_idata, float* g_odata, unsigned int n) {
  extern __shared__ float sdata[];

  // each thread loads one element from global to shared mem
  unsigned int tid = threadIdx.x;
  unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
  sdata[tid] = (i < n) ? g_idata[i] : 0;
  __syncthreads();

  // do reduction in shared mem
  for (unsigned int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (tid < s) {
      sdata[tid] += sdata[tid + s];
    }
    __syncthreads();
  }

  // write result for this block to global mem
  if (tid == 0) g_odata[blockIdx.x] = sdata[0];
}

template <class T, unsigned int blockSize>
__global__ void lab_sample_reduce_templated_kernel(const T* g_idata, T* g_odata, unsigned int n) {
  T* sdata = SharedMemory<T>();

  unsigned int tid = threadIdx.x;
  unsigned int i = blockIdx.x * blockSize + threadIdx.x;
  T mySum = (i < n) ? g_idata[i] : 0;
  sdata[tid] = mySum;
  __syncthreads();

  for (unsigned int s = blockSize / 2; s > 0; s >>= 1) {
    if (tid < s) {
      sdata[tid] = mySum = mySum + sdata[tid + s];
    }
    __syncthreads();
  }

  if (tid == 0) g_odata[blockIdx.x] = mySum;
}

void lab_sample_reduce(const float* in, float* block_sum, int n, StreamHandle stream) {
  FOVEA_LAUNCH(lab_sample_reduce_kernel, grid_1d(n, 256), 256, 256 * sizeof(float), stream, in, block_sum, unsigned(n));
}

void lab_sample_reduce_templated(const float* in, float* block_sum, int n, StreamHandle stream) {
  FOVEA_LAUNCH((lab_sample_reduce_templated_kernel<float, 256>), grid_1d(n, 256), 256, 256 * sizeof(float), stream, in,
               block_sum, unsigned(n));
}

// ------------------------------------------------------------------ architecture, limits, printf
__global__ void lab_cuda_arch_kernel(int* out) {
#if defined(__CUDA_ARCH__)
  out[threadIdx.x] = __CUDA_ARCH__;
#else
  out[threadIdx.x] = 0;
#endif
}

void lab_cuda_arch(int* out, StreamHandle stream) {
  FOVEA_LAUNCH(lab_cuda_arch_kernel, 1, 32, 0, stream, out);
}

__global__ void lab_big_dynamic_shared_kernel(int* out, int words) {
  extern __shared__ int big[];
  const int t = threadIdx.x;
  big[words - 1 - t] = t;
  __syncthreads();
  out[t] = big[words - 1 - t];
}

int lab_big_dynamic_shared(int* out, size_t bytes, bool opt_in, StreamHandle stream) {
  int err = 0;
  if (opt_in)
    err = int(
        cudaFuncSetAttribute(lab_big_dynamic_shared_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
  if (err != 0) return err;
  FOVEA_LAUNCH(lab_big_dynamic_shared_kernel, 1, 32, bytes, stream, out, int(bytes / sizeof(int)));
  return err;
}

__global__ void lab_printf_kernel() {
  printf("block %d thread %d\n", int(blockIdx.x), int(threadIdx.x));
}

void lab_printf(StreamHandle stream) {
  FOVEA_LAUNCH(lab_printf_kernel, 2, 4, 0, stream);
}

// ------------------------------------------------------------------ planted bugs
__global__ void lab_planted_race_kernel(float* out) {
  __shared__ float s[32];
  const int t = threadIdx.x;
  s[t] = float(t);
  out[t] = s[t ^ 1];  // no barrier: the neighbour may not have written yet
}

void lab_planted_race(float* out, StreamHandle stream) {
  FOVEA_LAUNCH(lab_planted_race_kernel, 1, 32, 0, stream, out);
}

__global__ void lab_race_fixed_by_syncwarp_kernel(float* out) {
  __shared__ float s[32];
  const int t = threadIdx.x;
  s[t] = float(t);
  __syncwarp();
  out[t] = s[t ^ 1];
}

void lab_race_fixed_by_syncwarp(float* out, StreamHandle stream) {
  FOVEA_LAUNCH(lab_race_fixed_by_syncwarp_kernel, 1, 32, 0, stream, out);
}

__global__ void lab_off_by_one_kernel(float* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i <= n) out[i] = float(i);
}

void lab_off_by_one(float* out, int n, StreamHandle stream) {
  FOVEA_LAUNCH(lab_off_by_one_kernel, grid_1d(n + 1, 64), 64, 0, stream, out, n);
}

__global__ void lab_misaligned_float4_kernel(const float* in, float* out) {
  const float4 v = *reinterpret_cast<const float4*>(in + 1);
  out[threadIdx.x] = v.x;
}

void lab_misaligned_float4(const float* in, float* out, StreamHandle stream) {
  FOVEA_LAUNCH(lab_misaligned_float4_kernel, 1, 32, 0, stream, in, out);
}

__global__ void lab_copy_kernel(const float* in, float* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = in[i];
}

void lab_copy(const float* in, float* out, int n, StreamHandle stream) {
  FOVEA_LAUNCH(lab_copy_kernel, grid_1d(n, 64), 64, 0, stream, in, out, n);
}

__global__ void lab_blocks_write_same_kernel(float* out) {
  out[threadIdx.x] = float(blockIdx.x);
}

void lab_blocks_write_same(float* out, StreamHandle stream) {
  FOVEA_LAUNCH(lab_blocks_write_same_kernel, 2, 32, 0, stream, out);
}

__global__ void lab_atomic_count_kernel(int* counter) {
  atomicAdd(counter, 1);
}

void lab_atomic_count(int* counter, int blocks, StreamHandle stream) {
  FOVEA_LAUNCH(lab_atomic_count_kernel, blocks, 64, 0, stream, counter);
}

}  // namespace fovea::FOVEA_KERNEL_NS
