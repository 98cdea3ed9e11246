// Optimizer steps with PyTorch's exact update rules (torch.optim.SGD; torch.optim.AdamW, amsgrad=False)
// over ALL parameter tensors of a model in one call (multi-tensor apply on the devices), weight penalties
// and the max-norm constraint. `step` is the 1-based count of this update (PyTorch's state['step']).
//   reference : cpu_reference/optimizers.cpp, regularizers.cpp   kernels : kernels/optimizer.cu, regularizers.cu
#pragma once
#include <cstdint>
#include <vector>

#include "core/dispatch.h"
#include "core/error.h"
#include "core/hostdevice.h"
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

// Dynamic loss scaling (torch.cuda.amp.GradScaler) keeps its state in a float32 tensor [kAmpStateSize] on the
// device, read and written only by kernels, so that a step needs no host synchronisation:
//   [kAmpScale]         the loss scale (the loss gradient is multiplied by it before the backward pass)
//   [kAmpGrowthTracker] finite steps since the scale last changed (exact as a float up to 2^24)
//   [kAmpFoundInf]      set by amp_unscale when this step's gradients hold an Inf or NaN; reset by amp_update
//   [kAmpSkipped]       optimizer updates skipped so far (exact up to 2^24)
inline constexpr int kAmpScale = 0, kAmpGrowthTracker = 1, kAmpFoundInf = 2, kAmpSkipped = 3, kAmpStateSize = 4;

// GradScaler's update (_amp_update_scale_) after a step: found_inf ? scale *= backoff_factor, tracker = 0 :
// ++tracker == growth_interval ? (scale *= growth_factor when that is finite), tracker = 0. Not dynamic: the
// scale stays (non-finite steps are still skipped and counted).
struct LossScaleParams {
  double growth_factor = 2.0, backoff_factor = 0.5;
  int64_t growth_interval = 2000;
  bool dynamic = true;
  void validate(const char* op = "loss scaling") const;
};

// That rule on the state amp[kAmpStateSize], in one place for the CPU reference and the one-thread kernel (the
// tests check it against their own rewrite of GradScaler's rule). growth_interval as a float (exact up to 2^24).
FOVEA_HD_INLINE void loss_scale_rule(float* amp, double growth_factor, double backoff_factor, float growth_interval,
                                     bool dynamic) {
  float &scale = amp[kAmpScale], &tracker = amp[kAmpGrowthTracker];
  const bool found_inf = amp[kAmpFoundInf] != 0.0f;
  if (found_inf) amp[kAmpSkipped] += 1.0f;
  amp[kAmpFoundInf] = 0.0f;
  if (!dynamic) return;
  if (found_inf) {
    scale = float(scale * backoff_factor);
    tracker = 0.0f;
  } else if (tracker + 1.0f == growth_interval) {
    const float grown = float(scale * growth_factor);
    if (grown <= 3.40282347e+38f) scale = grown;  // finite (a NaN fails the comparison too)
    tracker = 0.0f;
  } else {
    tracker += 1.0f;
  }
}

// The tensors of one update: `tensors` [count] lives on the Exec's device (planned on the host, then copied).
// With `amp` (a loss scaler's state, on the device) the update is skipped when amp[kAmpFoundInf] != 0, and the
// step count it uses (SGD's first step, AdamW's bias corrections) is step - amp[kAmpSkipped]: a skipped update
// does not count, as a skipped optimizer.step() under GradScaler does not advance PyTorch's state['step'].
struct OptimizerList {
  const OptimizerTensor* tensors = nullptr;
  int64_t count = 0;
  int64_t chunks = 0;
  const float* amp = nullptr;
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
// With `amp` (a loss scaler's state) nothing is done when amp[kAmpFoundInf] != 0 (a skipped step).
inline constinit DispatchStub<void(const Exec&, int64_t rows, int64_t cols, float* w, float max_norm, const float* amp)>
    max_norm_rows_stub{"max_norm_rows"};
// ---- loss scaling (state: kAmp* above)
// x[i] *= amp[kAmpScale]: the loss gradient seeded with the scale instead of 1.
inline constinit DispatchStub<void(const Exec&, int64_t n, float* x, const float* amp)> amp_scale_stub{"amp_scale"};
// Every tensor of `grads` (OptimizerTensor::w, the gradient, updated in place) times float(1 / double(scale)),
// PyTorch's inv_scale; amp[kAmpFoundInf] = 1 when any of them held an Inf or NaN (before the multiply, as
// _amp_foreach_non_finite_check_and_unscale_). One pass over all gradients, one launch.
inline constinit DispatchStub<void(const Exec&, const OptimizerList& grads, float* amp)> amp_unscale_stub{
    "amp_unscale"};
// LossScaleParams's update of amp after the optimizer step; counts a skipped step and resets found_inf.
inline constinit DispatchStub<void(const Exec&, const LossScaleParams& p, float* amp)> amp_update_stub{"amp_update"};

// ---- tensor-level ops
struct Context;
struct ParamSlot {
  Tensor param, grad;
  Tensor state1, state2;  // SGD: momentum buffer (state1); AdamW: exp_avg, exp_avg_sq. Allocated by the caller.
};
// `amp`: a loss scaler's state (see OptimizerList::amp), or undefined.
void sgd_step(Context& ctx, std::vector<ParamSlot>& params, const SgdParams& p, int64_t step,
              const Tensor& amp = Tensor());
void adamw_step(Context& ctx, std::vector<ParamSlot>& params, const AdamWParams& p, int64_t step,
                const Tensor& amp = Tensor());
// Adds the elastic-net gradient to each grad in place; returns the penalties, one per tensor, as a device
// tensor [params.size()] (nothing is read back).
Tensor l1_l2_penalty(Context& ctx, std::vector<ParamSlot>& params, float l1, float l2);
// Renormalise each row (dim 0) to norm <= c; not on a step a loss scaler skips (`amp`, optional).
void max_norm(Context& ctx, Tensor& w, float max_norm_value, const Tensor& amp = Tensor());
// ---- loss scaling: `amp` is the state tensor, float32 [kAmpStateSize] on the context's device
Tensor amp_state(Context& ctx, double init_scale);  // {init_scale, 0, 0, 0}
void amp_scale(Context& ctx, Tensor& x, const Tensor& amp);
void amp_unscale(Context& ctx, std::vector<Tensor>& grads, Tensor& amp);
void amp_update(Context& ctx, const LossScaleParams& p, Tensor& amp);

}  // namespace ops
}  // namespace fovea
