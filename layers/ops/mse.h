// Mean squared error, torch.nn.functional.mse_loss(reduction='mean') over n elements (no 1/2 factor).
//   reference : cpu_reference/mse.cpp     kernels : kernels/mse.cu
#pragma once
#include <cstdint>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace fovea::ops {

// loss[0] (a device scalar) = mean((x - target)^2), summed in a fixed order (scratch from ex.workspace).
inline constinit DispatchStub<void(const Exec&, int64_t n, const float* x, const float* target, float* loss)>
    mse_forward_stub{"mse_forward"};
// dx = dloss * 2 (x - target) / n (overwritten; dx may alias x or target).
inline constinit DispatchStub<void(const Exec&, int64_t n, const float* x, const float* target, float dloss, float* dx)>
    mse_backward_stub{"mse_backward"};

struct Context;
struct MseOut {
  Tensor loss, dpred;
};
MseOut mse_loss(Context& ctx, const Tensor& pred, const Tensor& target);

}  // namespace fovea::ops
