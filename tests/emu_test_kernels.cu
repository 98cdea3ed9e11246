// Test kernels of the CUDA emulator: ordinary CUDA, compiled by nvcc for the GPU and by g++ for the emulator.
// Some carry planted bugs (missing barrier, deadlock, divergent barrier, bad masks, out-of-bounds write) that the
// emulator must detect; never launch those on a GPU.
#include "kernels/common.cuh"
#include "tests/emu_test_kernels.h"

namespace fovea::FOVEA_KERNEL_NS {

namespace {
constexpr unsigned kFull = 0xffffffffu;
constexpr int kTile = 16;
}  // namespace

template <bool kSyncAfterTile>
__global__ void sgemm_tiled_kernel(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ c,
                                   int m, int n, int k) {
  __shared__ float as[kTile][kTile];
  __shared__ float bs[kTile][kTile];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int row = blockIdx.y * kTile + ty, col = blockIdx.x * kTile + tx;
  float acc = 0.0f;
  for (int t = 0; t < k; t += kTile) {
    as[ty][tx] = (row < m && t + tx < k) ? a[row * k + t + tx] : 0.0f;
    bs[ty][tx] = (t + ty < k && col < n) ? b[(t + ty) * n + col] : 0.0f;
    __syncthreads();
    for (int i = 0; i < kTile; ++i) acc += as[ty][i] * bs[i][tx];
    if constexpr (kSyncAfterTile) __syncthreads();  // else the next tile overwrites what others still read
  }
  if (row < m && col < n) c[row * n + col] = acc;
}

void emu_test_sgemm(const float* a, const float* b, float* c, int m, int n, int k, StreamHandle stream) {
  const dim3 grid((n + kTile - 1) / kTile, (m + kTile - 1) / kTile);
  FOVEA_LAUNCH((sgemm_tiled_kernel<true>), grid, dim3(kTile, kTile), 0, stream, a, b, c, m, n, k);
}

void emu_test_sgemm_missing_sync(const float* a, const float* b, float* c, int m, int n, int k, StreamHandle stream) {
  const dim3 grid((n + kTile - 1) / kTile, (m + kTile - 1) / kTile);
  FOVEA_LAUNCH((sgemm_tiled_kernel<false>), grid, dim3(kTile, kTile), 0, stream, a, b, c, m, n, k);
}

// ------------------------------------------------------------------ reductions
__global__ void block_reduce_kernel(const float* x, float* out, int n) {
  __shared__ float s[256];
  const int t = threadIdx.x, i = blockIdx.x * blockDim.x + t;
  s[t] = i < n ? x[i] : 0.0f;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (t < stride) s[t] += s[t + stride];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = s[0];
}

void emu_test_block_reduce(const float* x, float* out, int n, StreamHandle stream) {
  FOVEA_LAUNCH(block_reduce_kernel, grid_1d(n, 256), 256, 0, stream, x, out, n);
}

__global__ void warp_reduce_kernel(const float* x, float* out, int n) {
  __shared__ float warp_sums[32];
  const int t = threadIdx.x, lane = t % 32, warp = t / 32, i = blockIdx.x * blockDim.x + t;
  float v = i < n ? x[i] : 0.0f;
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(kFull, v, offset);
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < int(blockDim.x / 32) ? warp_sums[lane] : 0.0f;
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(kFull, v, offset);
    if (lane == 0) out[blockIdx.x] = v;
  }
}

void emu_test_warp_reduce(const float* x, float* out, int n, StreamHandle stream) {
  FOVEA_LAUNCH(warp_reduce_kernel, grid_1d(n, 256), 256, 0, stream, x, out, n);
}

__global__ void half_warp_sum_kernel(const int* x, int* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x, lane = threadIdx.x % 32;
  const unsigned mask = lane < 16 ? 0x0000ffffu : 0xffff0000u;
  int v = i < n ? x[i] : 0;
  for (int offset = 8; offset > 0; offset /= 2) v += __shfl_xor_sync(mask, v, offset, 16);
  if (i < n) out[i] = v;
}

void emu_test_half_warp_sum(const int* x, int* out, int n, StreamHandle stream) {
  FOVEA_LAUNCH(half_warp_sum_kernel, grid_1d(n, 128), 128, 0, stream, x, out, n);
}

// ------------------------------------------------------------------ warp functions
__global__ void shuffle_semantics_kernel(int* out) {
  const int t = threadIdx.x, lane = t % 32;
  const int v = lane * 10;
  int* o = out + t * 8;
  o[0] = __shfl_up_sync(kFull, v, 3, 16);
  o[1] = __shfl_down_sync(kFull, v, 3, 16);
  o[2] = __shfl_xor_sync(kFull, v, 20, 16);
  o[3] = __shfl_sync(kFull, v, 37, 8);
  o[4] = __shfl_down_sync(kFull, v, 1);
  o[5] = int(2.0 * __shfl_sync(kFull, double(lane) + 0.5, 31 - lane));
  o[6] = int(__shfl_xor_sync(kFull, static_cast<long long>(lane) << 33, 1) >> 33);
  o[7] = __shfl_sync(kFull, v, lane ^ 1);
}

void emu_test_shuffle_semantics(int* out, StreamHandle stream) {
  FOVEA_LAUNCH(shuffle_semantics_kernel, 1, 64, 0, stream, out);
}

__global__ void vote_kernel(unsigned* out) {
  const int t = threadIdx.x, lane = t % 32;
  unsigned* o = out + t * 5;
  o[0] = __ballot_sync(kFull, lane % 3 == 0);
  o[1] = unsigned(__any_sync(kFull, lane == 7 && t < 32));
  o[2] = unsigned(__all_sync(kFull, lane < 32));
  o[3] = unsigned(__all_sync(kFull, lane != 5));
  if (lane < 16) {
    o[4] = __ballot_sync(0x0000ffffu, lane % 2 == 1);
  } else {
    o[4] = __ballot_sync(0xffff0000u, lane >= 24);
  }
}

void emu_test_vote(unsigned* out, StreamHandle stream) {
  FOVEA_LAUNCH(vote_kernel, 1, 64, 0, stream, out);
}

__global__ void barrier_predicates_kernel(int* out) {
  const int t = threadIdx.x;
  out[t * 3 + 0] = __syncthreads_count(t % 4 == 0);
  out[t * 3 + 1] = __syncthreads_and(t < 255);
  out[t * 3 + 2] = __syncthreads_or(t == 77);
}

void emu_test_barrier_predicates(int* out, StreamHandle stream) {
  FOVEA_LAUNCH(barrier_predicates_kernel, 1, 256, 0, stream, out);
}

// ------------------------------------------------------------------ atomics
__global__ void atomics_kernel(int* count, float* fcount, unsigned* umax, int* imin, unsigned long long* sum,
                               int* cas_count, unsigned* wrap, double* dsum) {
  const int gid = blockIdx.x * blockDim.x + threadIdx.x;
  atomicAdd(count, 1);
  atomicAdd(fcount, 1.0f);
  atomicMax(umax, unsigned(gid));
  atomicMin(imin, -gid);
  atomicAdd(sum, static_cast<unsigned long long>(gid));
  int old = *cas_count, seen;
  while ((seen = atomicCAS(cas_count, old, old + 1)) != old) old = seen;
  atomicInc(wrap, 99u);
  atomicAdd(dsum, 0.5);
}

void emu_test_atomics(int blocks, int* count, float* fcount, unsigned* umax, int* imin, unsigned long long* sum,
                      int* cas_count, unsigned* wrap, double* dsum, StreamHandle stream) {
  FOVEA_LAUNCH(atomics_kernel, blocks, 256, 0, stream, count, fcount, umax, imin, sum, cas_count, wrap, dsum);
}

// ------------------------------------------------------------------ dynamic shared memory
__global__ void dynamic_reverse_kernel(const float* in, float* out, int* aligned, int n) {
  FOVEA_DYNAMIC_SHARED(float, buf);
  const int t = threadIdx.x, base = blockIdx.x * blockDim.x;
  if (t == 0) aligned[blockIdx.x] = reinterpret_cast<uintptr_t>(buf) % 16 == 0;
  buf[t] = base + t < n ? in[base + t] : 0.0f;
  __syncthreads();
  const int r = blockDim.x - 1 - t;
  if (base + t < n) out[base + t] = buf[r];
}

void emu_test_dynamic_reverse(const float* in, float* out, int* aligned, int n, int block, StreamHandle stream) {
  FOVEA_LAUNCH(dynamic_reverse_kernel, grid_1d(n, block), block, block * sizeof(float), stream, in, out, aligned, n);
}

__global__ void read_unwritten_shared_kernel(unsigned* out) {
  FOVEA_DYNAMIC_SHARED(unsigned, buf);
  out[threadIdx.x] = buf[threadIdx.x];
}

void emu_test_read_unwritten_shared(unsigned* out, StreamHandle stream) {
  FOVEA_LAUNCH(read_unwritten_shared_kernel, 1, 64, 64 * sizeof(unsigned), stream, out);
}

// ------------------------------------------------------------------ indices
__global__ void indices_kernel(int* out) {
  const int block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const int thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  int* o = out + (block * int(blockDim.x * blockDim.y * blockDim.z) + thread) * 8;
  o[0] = threadIdx.x;
  o[1] = threadIdx.y;
  o[2] = threadIdx.z;
  o[3] = blockIdx.x;
  o[4] = blockIdx.y;
  o[5] = blockIdx.z;
  o[6] = blockDim.x * blockDim.y * blockDim.z;
  o[7] = gridDim.x * gridDim.y * gridDim.z;
}

void emu_test_indices(int* out, StreamHandle stream) {
  FOVEA_LAUNCH(indices_kernel, dim3(3, 2, 2), dim3(4, 3, 2), 0, stream, out);
}

// ------------------------------------------------------------------ per-thread stack
__global__ void big_stack_kernel(const float* in, float* out) {
  constexpr int kSize = 96 * 1024 / sizeof(float);
  float local[kSize];
  const int t = threadIdx.x;
  for (int i = 0; i < kSize; ++i) local[i] = in[(i + t) % 64];
  float sum = 0.0f;
  for (int i = 0; i < kSize; i += 97) sum += local[(i * 7 + t) % kSize];
  out[t] = sum;
}

void emu_test_big_stack(const float* in, float* out, StreamHandle stream) {
  FOVEA_LAUNCH(big_stack_kernel, 1, 8, 0, stream, in, out);
}

// ------------------------------------------------------------------ planted bugs
__global__ void deadlock_kernel(int* out) {
  const int t = threadIdx.x;
  int v = t;
  if (blockIdx.x == 2 && t < 16) {
    v = __shfl_sync(kFull, v, 0);  // names lanes 16-31, which wait at the barrier below
  } else {
    __syncthreads();
  }
  out[blockIdx.x * blockDim.x + t] = v;
}

void emu_test_deadlock(int* out, StreamHandle stream) {
  FOVEA_LAUNCH(deadlock_kernel, 3, 64, 0, stream, out);
}

__global__ void divergent_barrier_kernel(float* out, int active) {
  __shared__ float s[128];
  const int t = threadIdx.x;
  if (t >= active) return;  // the classic bug: these threads never reach the barrier
  s[t] = float(t);
  __syncthreads();
  out[blockIdx.x * blockDim.x + t] = s[active - 1 - t];
}

void emu_test_divergent_barrier(float* out, int active, StreamHandle stream) {
  FOVEA_LAUNCH(divergent_barrier_kernel, 3, 128, 0, stream, out, active);
}

__global__ void bad_mask_kernel(int* out) {
  const int t = threadIdx.x;
  const unsigned mask = (blockIdx.x == 2 && t == 32 + 3) ? 0x0000fff0u : kFull;  // lane 3 not in its mask
  out[blockIdx.x * blockDim.x + t] = __shfl_sync(mask, t, 0);
}

void emu_test_bad_mask(int* out, StreamHandle stream) {
  FOVEA_LAUNCH(bad_mask_kernel, 3, 64, 0, stream, out);
}

__global__ void shuffle_outside_mask_kernel(int* out) {
  const int t = threadIdx.x, lane = t % 32;
  int v = t;
  if (blockIdx.x == 2 && lane < 16) v = __shfl_sync(0x0000ffffu, v, 20);
  out[blockIdx.x * blockDim.x + t] = v;
}

void emu_test_shuffle_outside_mask(int* out, StreamHandle stream) {
  FOVEA_LAUNCH(shuffle_outside_mask_kernel, 3, 32, 0, stream, out);
}

__global__ void trap_kernel(int* out) {
  if (blockIdx.x == 5 && threadIdx.x == 7) __trap();
  __syncthreads();
  out[blockIdx.x * blockDim.x + threadIdx.x] = 1;
}

void emu_test_trap(int* out, StreamHandle stream) {
  FOVEA_LAUNCH(trap_kernel, 8, 32, 0, stream, out);
}

__global__ void out_of_bounds_write_kernel(float* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i <= n) out[i] = 1.0f;  // off by one: writes out[n]
}

void emu_test_out_of_bounds_write(float* out, int n, StreamHandle stream) {
  FOVEA_LAUNCH(out_of_bounds_write_kernel, grid_1d(n + 1, 64), 64, 0, stream, out, n);
}

__global__ void static_shared_overflow_kernel(float* out) {
  __shared__ float s[64];
  const int t = threadIdx.x;
  float* volatile p = s;  // opaque to UBSan's bounds and object-size checks: leaves it to ASan's red zones
  p[t] = float(t);        // 65 threads: thread 64 writes s[64]
  __syncthreads();
  out[t] = s[(t + 1) % 64];
}

void emu_test_static_shared_overflow(float* out, StreamHandle stream) {
  FOVEA_LAUNCH(static_shared_overflow_kernel, 1, 65, 0, stream, out);
}

__global__ void bad_width_kernel(int* out) {
  out[threadIdx.x] = __shfl_down_sync(kFull, int(threadIdx.x), 1, 12);
}

void emu_test_bad_width(int* out, StreamHandle stream) {
  FOVEA_LAUNCH(bad_width_kernel, 1, 32, 0, stream, out);
}

__global__ void empty_kernel() {}

void emu_test_empty(int blocks, int threads, StreamHandle stream) {
  FOVEA_LAUNCH(empty_kernel, blocks, threads, 0, stream);
}

}  // namespace fovea::FOVEA_KERNEL_NS
