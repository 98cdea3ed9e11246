#include "layers/ops/optimizers.h"

#include <algorithm>
#include <cmath>

#include "layers/ops/context.h"

namespace fovea {

namespace {
void check_finite_nonneg(const char* op, const char* arg, double v) {
  FOVEA_CHECK(std::isfinite(v) && v >= 0.0, op, ": argument '", arg, "' must be finite and >= 0, got ", v);
}
}  // namespace

void SgdParams::validate(const char* op) const {
  check_finite_nonneg(op, "lr", lr);
  check_finite_nonneg(op, "momentum", momentum);
  FOVEA_CHECK(std::isfinite(dampening), op, ": argument 'dampening' must be finite, got ", dampening);
  check_finite_nonneg(op, "weight_decay", weight_decay);
  // PyTorch: "Nesterov momentum requires a momentum and zero dampening".
  FOVEA_CHECK(!nesterov || (momentum > 0.0 && dampening == 0.0), op,
              ": argument 'nesterov' requires momentum > 0 and dampening 0, got momentum ", momentum, " dampening ",
              dampening);
}

void AdamWParams::validate(const char* op) const {
  check_finite_nonneg(op, "lr", lr);
  FOVEA_CHECK(beta1 >= 0.0 && beta1 < 1.0, op, ": argument 'beta1' must be in [0, 1), got ", beta1);
  FOVEA_CHECK(beta2 >= 0.0 && beta2 < 1.0, op, ": argument 'beta2' must be in [0, 1), got ", beta2);
  check_finite_nonneg(op, "eps", eps);
  check_finite_nonneg(op, "weight_decay", weight_decay);
}

namespace ops {

struct Context::OptimizerList {
  std::vector<OptimizerTensor> host;
  Buffer device;
  int64_t chunks = 0;
};

namespace {

void check_slots(Context& ctx, const char* op, std::vector<ParamSlot>& params, bool state1, bool state2) {
  for (size_t i = 0; i < params.size(); ++i) {
    ParamSlot& s = params[i];
    const std::string name = cat(op, " parameter ", i);
    check_tensor(ctx, name.c_str(), "param", s.param);
    check_tensor(ctx, name.c_str(), "grad", s.grad);
    check_same_shape(name.c_str(), "param", s.param, "grad", s.grad);
    if (state1) {
      check_tensor(ctx, name.c_str(), "state1", s.state1);
      check_same_shape(name.c_str(), "param", s.param, "state1", s.state1);
    }
    if (state2) {
      check_tensor(ctx, name.c_str(), "state2", s.state2);
      check_same_shape(name.c_str(), "param", s.param, "state2", s.state2);
    }
  }
}

// The descriptor list on the device, uploaded (an explicit, small copy) only when the tensors change.
fovea::OptimizerList optimizer_list(Context& ctx, std::vector<ParamSlot>& params, const char* op, bool state1,
                                    bool state2) {
  std::vector<OptimizerTensor> host;
  for (ParamSlot& s : params)
    host.push_back({data_or_null(s.param), data_or_null(s.grad), state1 ? data_or_null(s.state1) : nullptr,
                    state2 ? data_or_null(s.state2) : nullptr, s.param.numel(), 0});
  const int64_t chunks = plan_optimizer_chunks(host.data(), int64_t(host.size()), op, state1, state2);
  auto& cache = ctx.optimizer_list;
  const bool same =
      cache && cache->host.size() == host.size() &&
      std::equal(host.begin(), host.end(), cache->host.begin(), [](auto& a, auto& b) {
        return a.w == b.w && a.grad == b.grad && a.state0 == b.state0 && a.state1 == b.state1 && a.n == b.n;
      });
  if (!same) {
    cache = std::make_shared<Context::OptimizerList>();
    cache->host = host;
    cache->chunks = chunks;
    if (!host.empty()) {
      cache->device = Buffer(host.size() * sizeof(OptimizerTensor), ctx.device);
      copy_bytes(cache->device.data(), ctx.device, host.data(), kCPU, host.size() * sizeof(OptimizerTensor),
                 ctx.stream);
    }
  }
  return {cache->device.as<OptimizerTensor>(), int64_t(cache->host.size()), cache->chunks};
}

}  // namespace

void sgd_step(Context& ctx, std::vector<ParamSlot>& params, const SgdParams& p, int64_t step) {
  p.validate("sgd");
  const bool momentum = p.momentum != 0;
  check_slots(ctx, "sgd", params, momentum, false);
  const fovea::OptimizerList list = optimizer_list(ctx, params, "sgd", momentum, false);
  if (list.chunks > 0) sgd_step_stub(ctx.exec(), p, list, step);
}

void adamw_step(Context& ctx, std::vector<ParamSlot>& params, const AdamWParams& p, int64_t step) {
  p.validate("adamw");
  check_slots(ctx, "adamw", params, true, true);
  const fovea::OptimizerList list = optimizer_list(ctx, params, "adamw", true, true);
  if (list.chunks > 0) adamw_step_stub(ctx.exec(), p, list, step);
}

Tensor l1_l2_penalty(Context& ctx, std::vector<ParamSlot>& params, float l1, float l2) {
  FOVEA_CHECK(std::isfinite(l1) && std::isfinite(l2) && l1 >= 0 && l2 >= 0,
              "penalty: coefficients must be finite and >= 0, got l1=", l1, " l2=", l2);
  Tensor penalties = empty_like(ctx, {int64_t(params.size())});
  for (size_t i = 0; i < params.size(); ++i) {
    ParamSlot& s = params[i];
    check_tensor(ctx, "penalty", "param", s.param);
    check_tensor(ctx, "penalty", "grad", s.grad);
    check_same_shape("penalty", "param", s.param, "grad", s.grad);
    elastic_net_penalty_stub(ctx.exec(), s.param.numel(), s.param.data<float>(), l1, l2, s.grad.data<float>(),
                             penalties.data<float>() + i);
  }
  return penalties;
}

void max_norm(Context& ctx, Tensor& w, float max_norm_value) {
  check_tensor(ctx, "max_norm", "w", w);
  FOVEA_CHECK(w.ndim() >= 2, "max_norm: 'w' must have at least 2 dimensions (rows = output units), got ",
              w.shape().str());
  const int64_t rows = w.size(0), cols = w.numel() / rows;
  max_norm_rows_stub(ctx.exec(), rows, cols, w.data<float>(), max_norm_value);
}

}  // namespace ops
}  // namespace fovea
