// FP32 NCHW <-> 16-bit NHWC (BF16 or FP16 bits) conversions: what a library that wants 16-bit channels-last
// tensors (cuDNN's tensor-op convolutions, cuBLASLt's 16-bit GEMMs, layers/cudnn/cudnn_precision.cpp) needs
// around our FP32 NCHW tensors. Narrowing rounds to nearest even (as cpu_reference/gemm.h's operands and outputs
// are rounded), widening is exact. A weight [K,C,R,S] is the tensor n = K, c = C, hw = R*S (KRSC once narrowed);
// a row-major matrix [rows, cols] is n = rows, c = cols, hw = 1 (the layout is unchanged).
// Slots emu and cuda (kernels/nhwc16.cu); precision bf16 or fp16 (anything else is an error naming it).
#pragma once
#include <cstdint>

#include "core/dispatch.h"
#include "core/float_formats.h"

namespace fovea::ops {

// y[(n*hw + i)*c + ch] = round(x[(n*c + ch)*hw + i])
inline constinit DispatchStub<void(const Exec&, Precision, int64_t n, int64_t c, int64_t hw, const float* x,
                                   uint16_t* y)>
    nchw_to_nhwc16_stub{"nchw_to_nhwc16"};
// x[(n*c + ch)*hw + i] = widen(y[(n*hw + i)*c + ch])
inline constinit DispatchStub<void(const Exec&, Precision, int64_t n, int64_t c, int64_t hw, const uint16_t* y,
                                   float* x)>
    nhwc16_to_nchw_stub{"nhwc16_to_nchw"};
// y[r*c + ch] = round(b[ch]) for r < rows: a bias as the starting value of a 16-bit [rows, c] output.
inline constinit DispatchStub<void(const Exec&, Precision, int64_t rows, int64_t c, const float* b, uint16_t* y)>
    broadcast_rows16_stub{"broadcast_rows16"};

}  // namespace fovea::ops
