// Launchers of the emulator-lab test kernels (tests/emu_lab_kernels.cu): textbook kernels whose memory metrics
// are known exactly, kernels written as in NVIDIA's CUDA samples, and planted bugs that the checks must find.
// Pointers are device pointers.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/api.h"

#define FOVEA_EMU_LAB_KERNELS                                                                                      \
  /* out[x * n + y] = in[y * n + x], n a multiple of 32; blocks of 32 x 8 threads, 32 x 32 tiles. Naive: */        \
  /* coalesced reads, writes one column (n floats apart) per warp. */                                              \
  void lab_transpose_naive(const float* in, float* out, int n, StreamHandle stream);                               \
  /* Through a shared __shared__ float tile[32][32] (pad 0) or [32][33] (pad 1). */                                \
  void lab_transpose_shared(const float* in, float* out, int n, bool pad, StreamHandle stream);                    \
  /* out[i] = in[i] as float4, n4 float4s, blocks of 64 threads. */                                                \
  void lab_copy_float4(const float* in, float* out, int n4, StreamHandle stream);                                  \
  /* One warp: each lane stores its float2 / float4 to shared memory and reads it back; out[lane] = sum. */        \
  void lab_shared_vectors(float* out, StreamHandle stream);                                                        \
  /* One warp: every lane reads shared s[0] and global in[0]; out[lane] = sum. */                                  \
  void lab_broadcast(const float* in, float* out, StreamHandle stream);                                            \
  /* block_sum[b] = sum of in[b * 256 .. +256): written as in NVIDIA's reduction sample, with an */                \
  /* `extern __shared__` array (sdata) and the SharedMemory<T> helper; 256 threads, 256 floats of dynamic */       \
  /* shared memory. */                                                                                             \
  void lab_sample_reduce(const float* in, float* block_sum, int n, StreamHandle stream);                           \
  void lab_sample_reduce_templated(const float* in, float* block_sum, int n, StreamHandle stream);                 \
  /* out[t] = the __CUDA_ARCH__ the file was compiled with (0 when undefined), 32 threads. */                      \
  void lab_cuda_arch(int* out, StreamHandle stream);                                                               \
  /* A kernel with `bytes` of dynamic shared memory; opt_in: cudaFuncSetAttribute first (returns its error code */ \
  /* without launching when it fails, else 0). out[t] = t after a round trip through the shared memory. */         \
  int lab_big_dynamic_shared(int* out, size_t bytes, bool opt_in, StreamHandle stream);                            \
  /* Thread t of block b prints "block b thread t\n" (device printf), 2 blocks of 4 threads. */                    \
  void lab_printf(StreamHandle stream);                                                                            \
  /* Planted bugs: the checks must report them; never launch them on a GPU. */                                     \
  /* Thread t writes s[t] and reads s[t ^ 1] with no barrier between (one warp). */                                \
  void lab_planted_race(float* out, StreamHandle stream);                                                          \
  /* The same with __syncwarp() between: no hazard. */                                                             \
  void lab_race_fixed_by_syncwarp(float* out, StreamHandle stream);                                                \
  /* out[i] = i for i <= n: one element past the end. */                                                           \
  void lab_off_by_one(float* out, int n, StreamHandle stream);                                                     \
  /* out[t] = x of a float4 loaded from in + 1 (4 bytes past a 16-byte boundary). */                               \
  void lab_misaligned_float4(const float* in, float* out, StreamHandle stream);                                    \
  /* out[i] = in[i] for i < n: 64 threads. */                                                                      \
  void lab_copy(const float* in, float* out, int n, StreamHandle stream);                                          \
  /* Blocks 0 and 1 both write out[0..32). */                                                                      \
  void lab_blocks_write_same(float* out, StreamHandle stream);                                                     \
  /* *counter += 1 by every thread with atomicAdd, blocks x 64 threads. */                                         \
  void lab_atomic_count(int* counter, int blocks, StreamHandle stream);

FOVEA_DECLARE_KERNELS(FOVEA_EMU_LAB_KERNELS)

// The same file built for the emulator as sm_90 (EMU_CUDA_ARCH 900, namespace emu_sm90_kernels): only on 'emu'.
namespace fovea::emu_sm90_kernels {
FOVEA_EMU_LAB_KERNELS
}
