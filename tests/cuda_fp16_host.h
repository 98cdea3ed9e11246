// NVIDIA's own host implementations of the cuda_fp16.h / cuda_bf16.h functions the emulator provides, on raw
// bits: a second, independent definition of "what CUDA computes" for tests/float_formats_test.cpp and
// tests/half_kernel_test.cpp. Built only where the toolkit's headers are found (FOVEA_HAVE_CUDA_FP16_HOST);
// the .cpp includes them and nothing of the emulator (whose types would collide with the toolkit's).
#pragma once
#include <cstdint>

#include "core/float_formats.h"

namespace fovea::test::cuda_host {

// Conversions (Round::nearest_away is not a CUDA conversion and is refused).
uint16_t float2half(float x, Round r);
float half2float(uint16_t h);
uint16_t float2bfloat16(float x, Round r);
float bfloat162float(uint16_t h);

// Binary operations on one type's bits (bf16 = true: __nv_bfloat16, else __half). Results: bits of the
// 16-bit result, or 0/1 for comparisons, or __hisinf's -1/0/1. __hfma has no host implementation in CUDA.
enum class Op { add, sub, mul, neg, abs, max, min, eq, ne, lt, le, gt, ge, equ, neu, ltu, leu, gtu, geu, isnan, isinf };
int32_t apply(bool bf16, Op op, uint16_t a, uint16_t b);

}  // namespace fovea::test::cuda_host
