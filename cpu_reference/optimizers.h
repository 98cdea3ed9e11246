// Optimizer steps with PyTorch's exact update rules (torch.optim.SGD, torch.optim.AdamW with
// amsgrad=False, maximize=False), elementwise over n parameters. Hyperparameters: SgdParams and
// AdamWParams in core/op_params.h. `step` is the 1-based count of this update (PyTorch's state['step']
// after its increment).
#pragma once
#include <cstdint>

#include "layers/ops/optimizers.h"

namespace fovea::ref {

// d = g + weight_decay * w; with momentum: buf = d on step 1 (PyTorch's clone on the first step),
// else buf = momentum * buf + (1 - dampening) * d; d = nesterov ? d + momentum * buf : buf;
// w -= lr * d. momentum_buf [n] may be nullptr when momentum == 0.
void sgd_step(const SgdParams& p, int64_t n, float* w, const float* grad, float* momentum_buf, int64_t step);

// w *= 1 - lr * wd; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// w -= lr / (1 - b1^step) * m / (sqrt(v) / sqrt(1 - b2^step) + eps). m and v [n] start at zero.
void adamw_step(const AdamWParams& p, int64_t n, float* w, const float* grad, float* m, float* v, int64_t step);

// Loss scaling (torch.cuda.amp.GradScaler; the state layout kAmp* in layers/ops/optimizers.h).
// x *= scale: the loss gradient seeded with the scale.
void loss_scale(int64_t n, float* x, float scale);
// g *= float(1 / double(scale)); true when any g was Inf or NaN before the multiply.
bool unscale_grad(int64_t n, float* g, float scale);
// The update of the state after a step (LossScaleParams): backoff or growth, the skipped count, found_inf reset.
void loss_scale_update(const LossScaleParams& p, float* amp);

}  // namespace fovea::ref
