// Our two GEMM kernels (kernels/sgemm.cu), for the kernel files that build on them (linear, im2col
// convolution); the library's entry point is ops::sgemm_stub (layers/ops/gemm.h). Only .cu files include this.
//   sgemm_simple: one thread per element of C, a plain dot product. Obviously right; the oracle.
//   sgemm_tiled : shared-memory slabs + 8x8 (or 4x4) register tiles, double buffered, 16-byte loads when A, B,
//                 C are 16-byte aligned and their leading dimensions, batch strides and contiguous extents are
//                 multiples of 4. The one the library uses.
#pragma once
#include "layers/ops/gemm.h"

namespace fovea::FOVEA_KERNEL_NS {
void sgemm_simple(const Exec& ex, const SgemmParams& p, const float* A, const float* B, float* C);
void sgemm_tiled(const Exec& ex, const SgemmParams& p, const float* A, const float* B, float* C);
}  // namespace fovea::FOVEA_KERNEL_NS
