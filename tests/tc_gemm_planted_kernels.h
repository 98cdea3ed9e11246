// Bugs planted in the optimised tensor-core GEMM (kernels/tc_gemm_multistage.cuh) and convolution
// (kernels/conv2d_tc_igemm.cuh), built for the emulator only
// (tests/tc_gemm_planted_kernels.cu): tests/tc_gemm_kernel_test.cpp checks that the emulator exposes them.
#pragma once
#include "core/dispatch.h"
#include "core/float_formats.h"
#include "layers/ops/conv2d.h"
#include "layers/ops/gemm.h"

namespace fovea::test {

enum class TcGemmPlant : int {
  missing_wait = 1,   // the cp.async.wait_group before a k-tile is read is left out
  wrong_fragment = 2  // the A fragment's matrices 1 and 2 swapped
};

// The BF16 multistage kernel with `bug` planted; slot emu only.
inline constinit DispatchStub<void(const Exec&, TcGemmPlant bug, const SgemmParams& g, const BFloat16* A,
                                   const BFloat16* B, BFloat16* C)>
    tc_gemm_planted_stub{"tc_gemm_planted"};

// The BF16 implicit-GEMM convolution forward (kernels/conv2d_tc_igemm.cuh, NHWC) with `bug` planted; slot emu only.
inline constinit DispatchStub<void(const Exec&, TcGemmPlant bug, const Conv2dParams& p, const BFloat16* x,
                                   const BFloat16* w, BFloat16* y)>
    conv2d_tc_planted_stub{"conv2d_tc_planted"};

// The BF16 wgrad fast path (kernels/conv2d_tc_igemm.cuh, conv2d_tc_wgrad_kernel<Bf16, true>) with `bug` planted
// (TcGemmPlant; the unplanted kernel is the library's), one split, its FP32 sums written to dw (K x R S C/g floats)
// unrounded; slot emu only. The shape must take the fast path (C/g and K/g multiples of 8, x and dy 16-byte aligned).
inline constinit DispatchStub<void(const Exec&, int bug, const Conv2dParams& p, const BFloat16* x, const BFloat16* dy,
                                   float* dw)>
    conv2d_tc_wgrad_planted_stub{"conv2d_tc_wgrad_planted"};

}  // namespace fovea::test
