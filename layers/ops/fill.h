// Fills from the Philox stream (core/philox.h): element i gets the i-th number of (seed, offset), so every
// device produces the same tensor; and a constant fill.
//   reference : cpu_reference/fill.cpp     kernels : kernels/fill.cu
#pragma once
#include <cstdint>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace fovea::ops {

inline constinit DispatchStub<void(const Exec&, float* y, int64_t n, float lo, float hi, uint64_t seed,
                                   uint64_t offset)>
    fill_uniform_stub{"fill_uniform"};
inline constinit DispatchStub<void(const Exec&, float* y, int64_t n, float mean, float stddev, uint64_t seed,
                                   uint64_t offset)>
    fill_normal_stub{"fill_normal"};
inline constinit DispatchStub<void(const Exec&, float* y, int64_t n, float value)> fill_value_stub{"fill_value"};

struct Context;
void fill_uniform(Context& ctx, Tensor& t, float lo, float hi, uint64_t seed, uint64_t offset);
void fill_normal(Context& ctx, Tensor& t, float mean, float stddev, uint64_t seed, uint64_t offset);
void fill_value(Context& ctx, Tensor& t, float value);

}  // namespace fovea::ops
