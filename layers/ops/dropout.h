// Dropout with a counter-based mask: element i is kept iff philox_uniform(seed, offset, i) >= float(p),
// kept values scaled by float(1 / (1 - p)); a copy when !training. The mask is a pure function of
// (seed, offset, i): the same on every device and schedule, and backward recomputes it (no mask storage).
//   reference : cpu_reference/dropout.cpp     kernels : kernels/dropout.cu
#pragma once
#include <cstdint>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace fovea {

struct DropoutParams {
  double p = 0.5;
  uint64_t seed = 0, offset = 0;
  bool training = true;
  void validate(const char* op = "dropout") const;  // p in [0, 1)
};

namespace ops {

inline constinit DispatchStub<void(const Exec&, const DropoutParams&, int64_t n, const float* x, float* y)>
    dropout_forward_stub{"dropout_forward"};
inline constinit DispatchStub<void(const Exec&, const DropoutParams&, int64_t n, const float* dy, float* dx)>
    dropout_backward_stub{"dropout_backward"};

struct Context;
Tensor dropout_forward(Context& ctx, const Tensor& x, float p, uint64_t seed, uint64_t offset);
Tensor dropout_backward(Context& ctx, const Tensor& dy, float p, uint64_t seed, uint64_t offset);

}  // namespace ops
}  // namespace fovea
