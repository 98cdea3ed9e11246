// Launchers of the emulator's test kernels (tests/emu_test_kernels.cu), built for both devices.
// Pointers are device pointers: plain host memory on device 'emu'.
#pragma once
#include <cstdint>

#include "kernels/api.h"

#define FOVEA_EMU_TEST_KERNELS                                                                                     \
  /* C[m,n] = A[m,k] B[k,n], 16x16 shared-memory tiles. */                                                         \
  void emu_test_sgemm(const float* a, const float* b, float* c, int m, int n, int k, StreamHandle stream);         \
  /* The same kernel without the __syncthreads that ends each tile: a planted race. */                             \
  void emu_test_sgemm_missing_sync(const float* a, const float* b, float* c, int m, int n, int k,                  \
                                   StreamHandle stream);                                                           \
  /* out[block] = sum of the block's 256 inputs: shared-memory tree (block_reduce) or warp shuffles. */            \
  void emu_test_block_reduce(const float* x, float* out, int n, StreamHandle stream);                              \
  void emu_test_warp_reduce(const float* x, float* out, int n, StreamHandle stream);                               \
  /* Each half-warp sums its 16 values with its own mask (0x0000ffff, 0xffff0000); out[i] = its half's sum. */     \
  void emu_test_half_warp_sum(const int* x, int* out, int n, StreamHandle stream);                                 \
  /* 64 threads; out[t * 8 + k]: shuffle variants at width segments (see the test for the list). */                \
  void emu_test_shuffle_semantics(int* out, StreamHandle stream);                                                  \
  /* 64 threads; out[t * 5 + k]: ballot, any, all (two predicates), half-warp ballot. */                           \
  void emu_test_vote(unsigned* out, StreamHandle stream);                                                          \
  /* 256 threads; out[t * 3 + k]: __syncthreads_count / _and / _or of fixed predicates. */                         \
  void emu_test_barrier_predicates(int* out, StreamHandle stream);                                                 \
  /* blocks x 256 threads, every thread updates every counter (see the test for the expected values). */           \
  void emu_test_atomics(int blocks, int* count, float* fcount, unsigned* umax, int* imin, unsigned long long* sum, \
                        int* cas_count, unsigned* wrap, double* dsum, StreamHandle stream);                        \
  /* Reverses each block's slice of `in` through dynamic shared memory; aligned[block] = buffer is 16-aligned. */  \
  void emu_test_dynamic_reverse(const float* in, float* out, int* aligned, int n, int block, StreamHandle stream); \
  /* Reads dynamic shared memory that no thread wrote: out[t] = its bits. */                                       \
  void emu_test_read_unwritten_shared(unsigned* out, StreamHandle stream);                                         \
  /* grid (3,2,2) x block (4,3,2): out[(block * 24 + thread) * 8 + k] = threadIdx, blockIdx, blockDim.x*y*z,       \
     gridDim.x*y*z. */                                                                                             \
  void emu_test_indices(int* out, StreamHandle stream);                                                            \
  /* Per-thread 96 KiB array: needs a fiber stack bigger than the default 64 KiB. out[t] = checksum. */            \
  void emu_test_big_stack(const float* in, float* out, StreamHandle stream);                                       \
  /* Planted bugs: the emulator must report them; never launch them on a GPU. */                                   \
  /* lanes 0-15 of warp 0 in __shfl_sync(0xffffffff) while every other thread waits at __syncthreads. */           \
  void emu_test_deadlock(int* out, StreamHandle stream);                                                           \
  /* 128 threads; threads >= active return before the __syncthreads that the others reach. */                      \
  void emu_test_divergent_barrier(float* out, int active, StreamHandle stream);                                    \
  /* Lane 3 of warp 1 calls __shfl_sync with a mask that does not name it. */                                      \
  void emu_test_bad_mask(int* out, StreamHandle stream);                                                           \
  /* Lanes 0-15 shuffle with mask 0x0000ffff but read lane 20. */                                                  \
  void emu_test_shuffle_outside_mask(int* out, StreamHandle stream);                                               \
  /* Thread (7,0,0) of block 5 (of 8) calls __trap(). */                                                           \
  void emu_test_trap(int* out, StreamHandle stream);                                                               \
  /* Writes out[0..n] inclusive: one element past the end. */                                                      \
  void emu_test_out_of_bounds_write(float* out, int n, StreamHandle stream);                                       \
  /* Writes one element past a static __shared__ float[64] of a non-template kernel. */                            \
  void emu_test_static_shared_overflow(float* out, StreamHandle stream);                                           \
  /* __shfl_down_sync with width 12, not a power of 2. */                                                          \
  void emu_test_bad_width(int* out, StreamHandle stream);                                                          \
  /* An empty kernel (launch overhead). */                                                                         \
  void emu_test_empty(int blocks, int threads, StreamHandle stream);

FOVEA_DECLARE_KERNELS(FOVEA_EMU_TEST_KERNELS)
