// Launchers of tests/tensor_core_test_kernels.cu: the instructions of kernels/mma.cuh (mma.sync, ldmatrix,
// cp.async, cvt.rna.tf32) in small kernels built for both devices. Pointers are device pointers.
#pragma once
#include <cstdint>

#include "core/dispatch.h"

// Bugs planted in tc_test_warp_gemm, which the emulator must expose.
enum class TcPlantedBug : int {
  none,
  missing_wait,         // the cp.async.wait_group before reading a stage is left out
  wrong_fragment_index  // a[1] and a[2] of the A fragment swapped
};

// Entry points, slots emu and cuda (tests/tensor_core_test_kernels.cu; the test links the library whole).
namespace fovea::test {
// count warps (one block each); warp w runs one mma of `kind` (0 tf32 m16n8k8, 1 bf16 m16n8k16, 2 f16 m16n8k16) on
// the registers a[(w*32 + lane)*4 + r], b[(w*32 + lane)*2 + r], c[(w*32 + lane)*4 + r]; d like c.
inline constinit DispatchStub<void(const Exec&, int kind, int count, const uint32_t* a, const uint32_t* b,
                                   const float* c, float* d)>
    tc_test_mma_stub{"tc_test_mma"};
// One warp whose lanes >= 16 return before a bf16 mma: an error on the emulator; never launch on a GPU.
inline constinit DispatchStub<void(const Exec&, float* d)> tc_test_mma_partial_warp_stub{"tc_test_mma_partial_warp"};
// One warp. src: 32 rows of 8 16-bit values, staged in shared memory with rows 32 bytes apart; lane l passes the
// address of row row_of_lane[l] (+ misalign bytes for lane 3) to ldmatrix .x{num}{.trans}; out[lane*4 + j] =
// register j.
inline constinit DispatchStub<void(const Exec&, int num, bool trans, const uint16_t* src, const int* row_of_lane,
                                   int misalign, uint32_t* out)>
    tc_test_ldmatrix_stub{"tc_test_ldmatrix"};
// 31 threads; thread t copies with (cp-size, src-size) = (4, 0..4), (8, 0..8), (16, 0..16) in that order from
// src + 16 t into a 16-byte shared slot pre-filled with 0xAB; out[16 t .. 16 t + 16) = the slot afterwards.
inline constinit DispatchStub<void(const Exec&, const uint8_t* src, uint8_t* out)> tc_test_cp_async_sizes_stub{
    "tc_test_cp_async_sizes"};
// One thread: groups {src[0]}, {src[1]}, {src[2]} committed, then src[3] issued uncommitted; the four
// destinations are read before any wait, after wait_group 2, 1, 0, and after wait_all: out[20].
inline constinit DispatchStub<void(const Exec&, const float* src, float* out)> tc_test_cp_async_groups_stub{
    "tc_test_cp_async_groups"};
// Two blocks of one thread: block 0 issues a copy of src[0] into shared memory and returns without waiting; block 1
// writes 7 there, waits for all its (no) copies, and stores what it reads in out[0].
inline constinit DispatchStub<void(const Exec&, const float* src, float* out)> tc_test_cp_async_abandoned_stub{
    "tc_test_cp_async_abandoned"};
// One thread issues cp.async<16> with a destination 4 bytes off (mode 0) or src-size 17 (mode 1).
inline constinit DispatchStub<void(const Exec&, int mode, const float* src, float* out)> tc_test_cp_async_misuse_stub{
    "tc_test_cp_async_misuse"};
// One warp: D[16 x 8] = A[16 x K] B^T with A row-major and B 8 x K (both BF16, k contiguous), K % 16 == 0, through a
// two-stage cp.async pipeline, ldmatrix and mma.sync, with an optional planted bug.
inline constinit DispatchStub<void(const Exec&, TcPlantedBug bug, const uint16_t* A, const uint16_t* B, float* D,
                                   int K)>
    tc_test_warp_gemm_stub{"tc_test_warp_gemm"};
// y[i] = cvt.rna.tf32.f32(x[i]).
inline constinit DispatchStub<void(const Exec&, const float* x, uint32_t* y, int n)> tc_test_cvt_rna_stub{
    "tc_test_cvt_rna"};
}  // namespace fovea::test
