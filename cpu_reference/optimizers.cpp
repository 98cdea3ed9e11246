#include "cpu_reference/optimizers.h"
#include "layers/ops/optimizers.h"

#include <cmath>

#include "cpu_reference/common.h"

namespace fovea::ref {

using detail::check_ptr;

// Scalars are rounded to float once, as PyTorch does for a float tensor op with a Python number.
void sgd_step(const SgdParams& p, int64_t n, float* w, const float* grad, float* buf, int64_t step) {
  const char* op = "sgd_step";
  p.validate(op);
  detail::check_count(op, "n", n);
  check_ptr(op, "w", w), check_ptr(op, "grad", grad);
  FOVEA_CHECK(step >= 1, op, ": argument 'step' must be >= 1, got ", step);
  FOVEA_CHECK(p.momentum == 0.0 || buf, op, ": argument 'momentum_buf' is null with momentum ", p.momentum);
  const float wd = float(p.weight_decay), mom = float(p.momentum), damp = float(1.0 - p.dampening),
              neg_lr = float(-p.lr);
  const bool use_wd = p.weight_decay != 0.0, use_mom = p.momentum != 0.0, first = step == 1;
#pragma omp parallel for schedule(dynamic, detail::kChunk) if (n >= detail::kParallelGrain)
  for (int64_t i = 0; i < n; ++i) {
    float d = grad[i];
    if (use_wd) d = d + wd * w[i];
    if (use_mom) {
      const float b = first ? d : buf[i] * mom + damp * d;
      buf[i] = b;
      d = p.nesterov ? d + mom * b : b;
    }
    w[i] = w[i] + neg_lr * d;
  }
}

void adamw_step(const AdamWParams& p, int64_t n, float* w, const float* grad, float* m, float* v, int64_t step) {
  const char* op = "adamw_step";
  p.validate(op);
  detail::check_count(op, "n", n);
  check_ptr(op, "w", w), check_ptr(op, "grad", grad), check_ptr(op, "m", m), check_ptr(op, "v", v);
  FOVEA_CHECK(step >= 1, op, ": argument 'step' must be >= 1, got ", step);
  const double bc1 = 1.0 - std::pow(p.beta1, double(step)), bc2 = 1.0 - std::pow(p.beta2, double(step));
  const float decay = float(1.0 - p.lr * p.weight_decay), b1 = float(p.beta1), b2 = float(p.beta2),
              one_b1 = float(1.0 - p.beta1), one_b2 = float(1.0 - p.beta2), bc2_sqrt = float(std::sqrt(bc2)),
              eps = float(p.eps), neg_step = float(-(p.lr / bc1));
#pragma omp parallel for schedule(dynamic, detail::kChunk) if (n >= detail::kParallelGrain)
  for (int64_t i = 0; i < n; ++i) {
    const float g = grad[i];
    const float wi = w[i] * decay;
    const float mi = m[i] * b1 + one_b1 * g;
    const float vi = v[i] * b2 + one_b2 * (g * g);
    m[i] = mi, v[i] = vi;
    const float denom = std::sqrt(vi) / bc2_sqrt + eps;
    w[i] = wi + neg_step * (mi / denom);
  }
}

void loss_scale(int64_t n, float* x, float scale) {
  detail::check_count("amp_scale", "n", n);
  if (n > 0) check_ptr("amp_scale", "x", x);
#pragma omp parallel for schedule(static) if (n >= detail::kParallelGrain)
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] * scale;
}

bool unscale_grad(int64_t n, float* g, float scale) {
  detail::check_count("amp_unscale", "n", n);
  if (n > 0) check_ptr("amp_unscale", "grad", g);
  const float inv = float(1.0 / double(scale));  // PyTorch: scale.double().reciprocal().float()
  bool found_inf = false;
#pragma omp parallel for schedule(static) reduction(|| : found_inf) if (n >= detail::kParallelGrain)
  for (int64_t i = 0; i < n; ++i) {
    found_inf = found_inf || !std::isfinite(g[i]);
    g[i] = g[i] * inv;
  }
  return found_inf;
}

void loss_scale_update(const LossScaleParams& p, float* amp) {
  p.validate("amp_update");
  check_ptr("amp_update", "amp", amp);
  loss_scale_rule(amp, p.growth_factor, p.backoff_factor, float(p.growth_interval), p.dynamic);
}

// ---- the cpu slots of layers/ops/optimizers.h's dispatch stubs

namespace {

// A loss scaler's verdict on this update (OptimizerList::amp): false to skip it; else the step count it uses.
bool amp_step(const OptimizerList& list, int64_t& step) {
  if (!list.amp) return true;
  if (list.amp[kAmpFoundInf] != 0.0f) return false;
  step -= int64_t(list.amp[kAmpSkipped]);
  return true;
}

// One tensor after the other: the same updates as the kernels' multi-tensor launch, element by element.
void sgd_step_slot(const Exec&, const SgdParams& p, const OptimizerList& list, int64_t step) {
  if (!amp_step(list, step)) return;
  for (int64_t t = 0; t < list.count; ++t) {
    const OptimizerTensor& d = list.tensors[t];
    sgd_step(p, d.n, d.w, d.grad, d.state0, step);
  }
}
void adamw_step_slot(const Exec&, const AdamWParams& p, const OptimizerList& list, int64_t step) {
  if (!amp_step(list, step)) return;
  for (int64_t t = 0; t < list.count; ++t) {
    const OptimizerTensor& d = list.tensors[t];
    adamw_step(p, d.n, d.w, d.grad, d.state0, d.state1, step);
  }
}
void amp_scale_slot(const Exec&, int64_t n, float* x, const float* amp) {
  loss_scale(n, x, amp[kAmpScale]);
}
void amp_unscale_slot(const Exec&, const OptimizerList& grads, float* amp) {
  bool found_inf = false;
  for (int64_t t = 0; t < grads.count; ++t) {
    const OptimizerTensor& d = grads.tensors[t];
    found_inf = unscale_grad(d.n, d.w, amp[kAmpScale]) || found_inf;
  }
  if (found_inf) amp[kAmpFoundInf] = 1.0f;
}
void amp_update_slot(const Exec&, const LossScaleParams& p, float* amp) {
  loss_scale_update(p, amp);
}

const bool registered = ops::sgd_step_stub.define(Slot::cpu, sgd_step_slot) &&
                        ops::adamw_step_stub.define(Slot::cpu, adamw_step_slot) &&
                        ops::amp_scale_stub.define(Slot::cpu, amp_scale_slot) &&
                        ops::amp_unscale_stub.define(Slot::cpu, amp_unscale_slot) &&
                        ops::amp_update_stub.define(Slot::cpu, amp_update_slot);

}  // namespace

}  // namespace fovea::ref
