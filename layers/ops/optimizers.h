// Optimizer steps with PyTorch's exact update rules (torch.optim.SGD; torch.optim.AdamW, amsgrad=False)
// over ALL parameter tensors of a model in one call (multi-tensor apply on the devices), weight penalties
// and the max-norm constraint. `step` is the 1-based count of this update (PyTorch's state['step']).
//   reference : cpu_reference/optimizers.cpp, regularizers.cpp   kernels : kernels/optimizer.cu, regularizers.cu
#pragma once
#include <cstdint>
#include <vector>

#include "core/dispatch.h"
#include "core/error.h"
#include "core/tensor.h"

namespace fovea {

// torch.optim.SGD: d = g + weight_decay * w; buf = d on the first step, else momentum * buf + (1 - dampening) * d;
// d = nesterov ? d + momentum * buf : buf (when momentum != 0); w -= lr * d.
struct SgdParams {
  double lr = 0.01, momentum = 0.0, dampening = 0.0, weight_decay = 0.0;
  bool nesterov = false;
  void validate(const char* op = "sgd") const;
};

// torch.optim.AdamW (amsgrad=False): w *= 1 - lr * weight_decay; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), t the 1-based step count.
struct AdamWParams {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 1e-2;
  void validate(const char* op = "adamw") const;
};

// One parameter tensor: pointers on the device and its element count. state0 is SGD's momentum buffer
// (nullptr when momentum == 0) or AdamW's m; state1 is AdamW's v (unused by SGD). first_chunk is set by
// plan_optimizer_chunks.
struct OptimizerTensor {
  float* w = nullptr;
  const float* grad = nullptr;
  float* state0 = nullptr;
  float* state1 = nullptr;
  int64_t n = 0;
  int64_t first_chunk = 0;
};

inline constexpr int64_t kOptimizerChunk = 4096;  // elements per block: a multiple of 4 (float4 alignment)

// On the host copy of the list: checks every descriptor (pointers the update needs are non-null, n >= 0),
// sets first_chunk, returns the total number of chunks (the grid of a device launch).
inline int64_t plan_optimizer_chunks(OptimizerTensor* tensors, int64_t count, const char* op, bool needs_state0,
                                     bool needs_state1) {
  FOVEA_CHECK(count >= 0 && (count == 0 || tensors), op, ": bad tensor list (", count, " tensors at ",
              static_cast<const void*>(tensors), ")");
  int64_t chunks = 0;
  for (int64_t t = 0; t < count; ++t) {
    OptimizerTensor& d = tensors[t];
    FOVEA_CHECK(d.n >= 0, op, ": tensor ", t, " has n=", d.n);
    FOVEA_CHECK(d.n == 0 || (d.w && d.grad), op, ": tensor ", t, " has a null 'w' or 'grad'");
    FOVEA_CHECK(d.n == 0 || !needs_state0 || d.state0, op, ": tensor ", t, " has a null first state buffer");
    FOVEA_CHECK(d.n == 0 || !needs_state1 || d.state1, op, ": tensor ", t, " has a null second state buffer");
    d.first_chunk = chunks;
    chunks += (d.n + kOptimizerChunk - 1) / kOptimizerChunk;
  }
  return chunks;
}

// The tensors of one update: `tensors` [count] lives on the Exec's device (planned on the host, then copied).
struct OptimizerList {
  const OptimizerTensor* tensors = nullptr;
  int64_t count = 0;
  int64_t chunks = 0;
};

namespace ops {

// ---- entry points
inline constinit DispatchStub<void(const Exec&, const SgdParams&, const OptimizerList&, int64_t step)> sgd_step_stub{
    "sgd_step"};
inline constinit DispatchStub<void(const Exec&, const AdamWParams&, const OptimizerList&, int64_t step)>
    adamw_step_stub{"adamw_step"};
// grad += l1 * sign(w) + l2 * w (grad may be null); penalty[0] (a device scalar, overwritten) =
// l1 * sum|w| + l2 / 2 * sum w^2, summed in a fixed order. Scratch from ex.workspace.
inline constinit DispatchStub<void(const Exec&, int64_t n, const float* w, float l1, float l2, float* grad,
                                   float* penalty)>
    elastic_net_penalty_stub{"elastic_net_penalty"};
// Each row of w [rows, cols] with L2 norm > max_norm is scaled by max_norm / (norm + 1e-7) (torch.renorm).
inline constinit DispatchStub<void(const Exec&, int64_t rows, int64_t cols, float* w, float max_norm)>
    max_norm_rows_stub{"max_norm_rows"};

// ---- tensor-level ops
struct Context;
struct ParamSlot {
  Tensor param, grad;
  Tensor state1, state2;  // SGD: momentum buffer (state1); AdamW: exp_avg, exp_avg_sq. Allocated by the caller.
};
void sgd_step(Context& ctx, std::vector<ParamSlot>& params, const SgdParams& p, int64_t step);
void adamw_step(Context& ctx, std::vector<ParamSlot>& params, const AdamWParams& p, int64_t step);
// Adds the elastic-net gradient to each grad in place; returns the penalties, one per tensor, as a device
// tensor [params.size()] (nothing is read back).
Tensor l1_l2_penalty(Context& ctx, std::vector<ParamSlot>& params, float l1, float l2);
void max_norm(Context& ctx, Tensor& w, float max_norm_value);  // renormalise each row (dim 0) to norm <= c

}  // namespace ops
}  // namespace fovea
