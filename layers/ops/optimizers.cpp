#include "layers/ops/optimizers.h"

#include <algorithm>
#include <cmath>

#include "layers/ops/context.h"
#include "layers/ops/registry.h"

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

void LossScaleParams::validate(const char* op) const {
  FOVEA_CHECK(std::isfinite(growth_factor) && growth_factor >= 1.0, op, ": the growth factor must be >= 1, got ",
              growth_factor);
  FOVEA_CHECK(std::isfinite(backoff_factor) && backoff_factor > 0.0 && backoff_factor < 1.0, op,
              ": the backoff factor must be in (0, 1), got ", backoff_factor);
  // The tracker is a float on the device: exact up to 2^24.
  FOVEA_CHECK(growth_interval >= 1 && growth_interval <= (int64_t(1) << 24), op,
              ": the growth interval must be in [1, 2^24], got ", growth_interval);
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
                                    bool state2, std::shared_ptr<Context::OptimizerList>& cache) {
  std::vector<OptimizerTensor> host;
  for (ParamSlot& s : params)
    host.push_back({data_or_null(s.param), data_or_null(s.grad), state1 ? data_or_null(s.state1) : nullptr,
                    state2 ? data_or_null(s.state2) : nullptr, s.param.numel(), 0});
  const int64_t chunks = plan_optimizer_chunks(host.data(), int64_t(host.size()), op, state1, state2);
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
      // Staged, not waited for: the gradients are new tensors every step, so this runs every step.
      upload_bytes(cache->device.data(), ctx.device, host.data(), host.size() * sizeof(OptimizerTensor), ctx.stream);
    }
  }
  return {cache->device.as<OptimizerTensor>(), int64_t(cache->host.size()), cache->chunks};
}

const float* amp_or_null(Context& ctx, const char* op, const Tensor& amp) {
  if (!amp.defined()) return nullptr;
  check_tensor(ctx, op, "amp", amp);
  FOVEA_CHECK(amp.numel() == kAmpStateSize, op, ": argument 'amp' must have ", kAmpStateSize, " elements, got ",
              amp.shape().str());
  return amp.data<float>();
}

}  // namespace

void sgd_step(Context& ctx, std::vector<ParamSlot>& params, const SgdParams& p, int64_t step, const Tensor& amp) {
  p.validate("sgd");
  const bool momentum = p.momentum != 0;
  check_slots(ctx, "sgd", params, momentum, false);
  fovea::OptimizerList list = optimizer_list(ctx, params, "sgd", momentum, false, ctx.optimizer_list);
  list.amp = amp_or_null(ctx, "sgd", amp);
  if (list.chunks > 0) sgd_step_stub(ctx.exec(), p, list, step);
}

void adamw_step(Context& ctx, std::vector<ParamSlot>& params, const AdamWParams& p, int64_t step, const Tensor& amp) {
  p.validate("adamw");
  check_slots(ctx, "adamw", params, true, true);
  fovea::OptimizerList list = optimizer_list(ctx, params, "adamw", true, true, ctx.optimizer_list);
  list.amp = amp_or_null(ctx, "adamw", amp);
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

void max_norm(Context& ctx, Tensor& w, float max_norm_value, const Tensor& amp) {
  check_tensor(ctx, "max_norm", "w", w);
  FOVEA_CHECK(w.ndim() >= 2, "max_norm: 'w' must have at least 2 dimensions (rows = output units), got ",
              w.shape().str());
  const int64_t rows = w.size(0), cols = w.numel() / rows;
  max_norm_rows_stub(ctx.exec(), rows, cols, w.data<float>(), max_norm_value, amp_or_null(ctx, "max_norm", amp));
}

Tensor amp_state(Context& ctx, double init_scale) {
  FOVEA_CHECK(std::isfinite(init_scale) && init_scale > 0 && float(init_scale) <= 3.4e38f,
              "loss scaling: the initial scale must be finite and > 0, got ", init_scale);
  std::vector<float> host(kAmpStateSize, 0.0f);
  host[kAmpScale] = float(init_scale);
  return Tensor::from_vector(host, {kAmpStateSize}).to(ctx.device);
}

void amp_scale(Context& ctx, Tensor& x, const Tensor& amp) {
  check_tensor(ctx, "amp_scale", "x", x);
  const float* a = amp_or_null(ctx, "amp_scale", amp);
  FOVEA_CHECK(a, "amp_scale: argument 'amp' is undefined");
  if (x.numel() > 0) amp_scale_stub(ctx.exec(), x.numel(), x.data<float>(), a);
}

void amp_unscale(Context& ctx, std::vector<Tensor>& grads, Tensor& amp) {
  FOVEA_CHECK(amp_or_null(ctx, "amp_unscale", amp), "amp_unscale: argument 'amp' is undefined");
  // The gradients as an optimizer list whose 'w' is the gradient (updated in place), in a cache of its own.
  std::vector<ParamSlot> slots;
  for (Tensor& g : grads) {
    check_tensor(ctx, "amp_unscale", "grad", g);
    slots.push_back({g, g, Tensor(), Tensor()});
  }
  const fovea::OptimizerList list = optimizer_list(ctx, slots, "amp_unscale", false, false, ctx.amp_list);
  if (list.chunks > 0) amp_unscale_stub(ctx.exec(), list, amp.data<float>());
}

void amp_update(Context& ctx, const LossScaleParams& p, Tensor& amp) {
  p.validate("amp_update");
  FOVEA_CHECK(amp_or_null(ctx, "amp_update", amp), "amp_update: argument 'amp' is undefined");
  amp_update_stub(ctx.exec(), p, amp.data<float>());
}

}  // namespace ops
}  // namespace fovea

// ---------------------------------------------------------------- registry entries

namespace fovea::ops {
namespace {

// The steps update in place: on copies, so the caller's inputs stay as they were.
Tensor copy_of(Context& ctx, const Tensor& t) {
  return t.defined() ? t.to(ctx.device) : Tensor();
}

int64_t step_attr(const OpArgs& a, const char* op) {
  const int64_t step = a.integer("step");
  FOVEA_CHECK(step >= 1, "op ", op, ": attribute 'step' must be >= 1, got ", step);
  return step;
}

const std::vector<Sample> kParamSamples = {
    {"one", {{"param", {1}}, {"grad", {1}}}},
    {"odd", {{"param", {3, 5}}, {"grad", {3, 5}}}},
    {"conv_weight", {{"param", {16, 3, 3, 3}}, {"grad", {16, 3, 3, 3}}}},
};

std::vector<Sample> sgd_samples() {
  std::vector<Sample> out = kParamSamples;
  out[0].attrs = {{"momentum", "0"}};
  for (size_t i = 1; i < out.size(); ++i) out[i].shapes["momentum_buffer"] = out[i].shapes["param"];
  out[1].attrs = {{"momentum", "0.9"}, {"weight_decay", "0.0005"}, {"step", "3"}};
  out[2].attrs = {{"momentum", "0.9"}, {"nesterov", "1"}, {"dampening", "0"}, {"step", "2"}};
  out.push_back({"first_step", out[2].shapes, {{"momentum", "0.9"}, {"dampening", "0.1"}, {"step", "1"}}});
  out.push_back({"resnet18_1m",
                 {{"param", {1 << 20}}, {"grad", {1 << 20}}, {"momentum_buffer", {1 << 20}}},
                 {{"momentum", "0.9"}, {"step", "2"}},
                 true});
  return out;
}

std::vector<Sample> adamw_samples() {
  std::vector<Sample> out = kParamSamples;
  for (Sample& s : out) s.shapes["exp_avg"] = s.shapes["exp_avg_sq"] = s.shapes["param"];
  out[1].attrs = {{"step", "5"}, {"weight_decay", "0.05"}};
  out[2].attrs = {{"step", "1"}, {"lr", "0.01"}};
  out.push_back({"resnet18_1m",
                 {{"param", {1 << 20}}, {"grad", {1 << 20}}, {"exp_avg", {1 << 20}}, {"exp_avg_sq", {1 << 20}}},
                 {{"step", "2"}},
                 true});
  return out;
}

const RegisterOp sgd_op{{
    .name = "sgd",
    .doc = "one torch.optim.SGD step on a parameter (momentum, dampening, nesterov, weight_decay)",
    .inputs = {{.name = "param", .no_grad = true, .doc = "any shape"},
               {.name = "grad", .no_grad = true, .doc = "the shape of param"},
               {.name = "momentum_buffer",
                .optional = true,
                .no_grad = true,
                .doc = "the shape of param; needed when momentum != 0 (ignored on step 1, which sets it)"}},
    .attrs = {{"lr", AttrType::number, "0.1", "learning rate"},
              {"momentum", AttrType::number, "0", ""},
              {"dampening", AttrType::number, "0", ""},
              {"weight_decay", AttrType::number, "0", ""},
              {"nesterov", AttrType::boolean, "0", ""},
              {"step", AttrType::integer, "1", "1-based count of this update"}},
    .outputs = {"new_param", "new_momentum_buffer"},
    .forward = [](Context& ctx, const OpArgs& a) -> NamedTensors {
      SgdParams p;
      p.lr = a.number("lr"), p.momentum = a.number("momentum"), p.dampening = a.number("dampening");
      p.weight_decay = a.number("weight_decay"), p.nesterov = a.boolean("nesterov");
      std::vector<ParamSlot> slots{{copy_of(ctx, a.tensor("param")), a.tensor("grad"), Tensor(), Tensor()}};
      if (p.momentum != 0) {
        slots[0].state1 = a.has("momentum_buffer") ? copy_of(ctx, a.tensor("momentum_buffer"))
                                                   : empty_like(ctx, slots[0].param.shape());
      }
      sgd_step(ctx, slots, p, step_attr(a, "sgd"));
      NamedTensors out{{"new_param", slots[0].param}};
      if (p.momentum != 0) out.push_back({"new_momentum_buffer", slots[0].state1});
      return out;
    },
    .torch = "p = param.clone().requires_grad_()\n"
             "p.grad = grad.clone()\n"
             "opt = torch.optim.SGD([p], lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, "
             "nesterov=nesterov)\n"
             "if momentum != 0 and step > 1:\n"
             "    opt.state[p]['momentum_buffer'] = momentum_buffer.clone()\n"
             "opt.step()\n"
             "new_param = p.detach()\n"
             "if momentum != 0:\n"
             "    new_momentum_buffer = opt.state[p]['momentum_buffer']",
    .samples = sgd_samples(),
    .stubs = {&sgd_step_stub},
    .cost =
        [](const OpArgs& a) {
          const double n = double(a.tensor("param").numel());
          return std::pair{6.0 * n, 20.0 * n};
        },
}};

const RegisterOp adamw_op{{
    .name = "adamw",
    .doc = "one torch.optim.AdamW step on a parameter (amsgrad=False)",
    .inputs = {{.name = "param", .no_grad = true, .doc = "any shape"},
               {.name = "grad", .no_grad = true, .doc = "the shape of param"},
               {.name = "exp_avg", .no_grad = true, .doc = "the shape of param (zeros before step 1)"},
               {.name = "exp_avg_sq",
                .no_grad = true,
                .fill = Fill::positive,
                .doc = "the shape of param (zeros before step 1)"}},
    .attrs = {{"lr", AttrType::number, "0.001", "learning rate"},
              {"beta1", AttrType::number, "0.9", ""},
              {"beta2", AttrType::number, "0.999", ""},
              {"eps", AttrType::number, "1e-08", ""},
              {"weight_decay", AttrType::number, "0.01", "decoupled weight decay"},
              {"step", AttrType::integer, "1", "1-based count of this update"}},
    .outputs = {"new_param", "new_exp_avg", "new_exp_avg_sq"},
    .forward = [](Context& ctx, const OpArgs& a) -> NamedTensors {
      AdamWParams p;
      p.lr = a.number("lr"), p.beta1 = a.number("beta1"), p.beta2 = a.number("beta2"), p.eps = a.number("eps");
      p.weight_decay = a.number("weight_decay");
      std::vector<ParamSlot> slots{{copy_of(ctx, a.tensor("param")), a.tensor("grad"),
                                    copy_of(ctx, a.tensor("exp_avg")), copy_of(ctx, a.tensor("exp_avg_sq"))}};
      adamw_step(ctx, slots, p, step_attr(a, "adamw"));
      return {{"new_param", slots[0].param}, {"new_exp_avg", slots[0].state1}, {"new_exp_avg_sq", slots[0].state2}};
    },
    .torch = "p = param.clone().requires_grad_()\n"
             "p.grad = grad.clone()\n"
             "opt = torch.optim.AdamW([p], lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)\n"
             "opt.state[p]['step'] = torch.tensor(float(step - 1))\n"
             "opt.state[p]['exp_avg'] = exp_avg.clone()\n"
             "opt.state[p]['exp_avg_sq'] = exp_avg_sq.clone()\n"
             "opt.step()\n"
             "new_param = p.detach()\n"
             "new_exp_avg, new_exp_avg_sq = opt.state[p]['exp_avg'], opt.state[p]['exp_avg_sq']",
    .samples = adamw_samples(),
    .stubs = {&adamw_step_stub},
    .cost =
        [](const OpArgs& a) {
          const double n = double(a.tensor("param").numel());
          return std::pair{15.0 * n, 28.0 * n};
        },
}};

}  // namespace
}  // namespace fovea::ops
