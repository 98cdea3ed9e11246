#include "layers/nn/optimizer.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "core/error.h"
#include "core/parse.h"

namespace fovea::nn {

OptimizerKind parse_optimizer(std::string_view text, std::string_view what) {
  if (text == "sgd") return OptimizerKind::sgd;
  if (text == "adamw") return OptimizerKind::adamw;
  FOVEA_FAIL(what, ": unknown optimizer '", text, "' (expected sgd or adamw)");
}

const char* optimizer_name(OptimizerKind k) {
  return k == OptimizerKind::sgd ? "sgd" : "adamw";
}

Optimizer::Optimizer(const OptimizerConfig& config, const std::vector<ParamRef>& params) : config_(config) {
  FOVEA_CHECK(config.l1 >= 0 && config.l2 >= 0, "optimizer: l1 and l2 must be >= 0, got ", config.l1, ", ", config.l2);
  FOVEA_CHECK(config.max_norm >= 0, "optimizer: max_norm must be >= 0, got ", config.max_norm);
  if (config.kind == OptimizerKind::sgd) {
    SgdParams p;
    p.momentum = config.momentum;
    p.dampening = config.dampening;
    p.weight_decay = config.weight_decay;
    p.nesterov = config.nesterov;
    p.validate("sgd");
  } else {
    AdamWParams p;
    p.beta1 = config.beta1;
    p.beta2 = config.beta2;
    p.eps = config.eps;
    p.weight_decay = config.weight_decay;
    p.validate("adamw");
  }
  for (const ParamRef& r : params)
    if (r.param->trainable) params_.push_back({r, Tensor(), Tensor(), 1.0});
}

LossScaleConfig parse_loss_scale(std::string_view text, std::string_view what) {
  LossScaleConfig c;
  c.enabled = true;
  const std::vector<std::string_view> f = split(text, ':');
  if (f[0] == "dynamic" && f.size() <= 2) {
    if (f.size() == 2) {
      const std::optional<double> v = try_parse_float(f[1]);
      FOVEA_CHECK(v && std::isfinite(*v) && *v > 0 && *v <= 3.4e38, what, ": '", text,
                  "': the initial scale must be a finite number > 0, got '", f[1], "'");
      c.init_scale = *v;
    }
    return c;
  }
  const std::optional<double> v = try_parse_float(text);
  FOVEA_CHECK(v && std::isfinite(*v) && *v > 0 && *v <= 3.4e38, what, ": '", text,
              "' is not a loss scale (expected dynamic, dynamic:INIT_SCALE or a fixed scale > 0)");
  c.dynamic = false;
  c.init_scale = *v;
  return c;
}

std::string loss_scale_name(const LossScaleConfig& c) {
  if (!c.enabled) return "none";
  return c.dynamic ? (c.init_scale == 65536.0 ? std::string("dynamic") : fmt::format("dynamic:{}", c.init_scale))
                   : fmt::format("{}", c.init_scale);
}

void Optimizer::set_lr_scale(const std::vector<std::string>& paths, double scale) {
  FOVEA_CHECK(std::isfinite(scale) && scale >= 0, "optimizer: learning-rate scale must be finite and >= 0, got ",
              scale);
  for (const std::string& path : paths) {
    auto it = std::find_if(params_.begin(), params_.end(), [&](const Slot& s) { return s.ref.path == path; });
    FOVEA_CHECK(it != params_.end(), "optimizer: '", path, "' is not a trainable parameter of this optimizer");
    it->lr_scale = scale;
  }
}

void Optimizer::ensure_state(Slot& s) {
  const Tensor& w = s.ref.param->value;
  const bool need1 = config_.kind == OptimizerKind::adamw || config_.momentum != 0.0;
  const bool need2 = config_.kind == OptimizerKind::adamw;
  if (need1 && (!s.state1.defined() || s.state1.device() != w.device())) {
    s.state1 = s.state1.defined() ? s.state1.to(w.device()) : Tensor::zeros(w.shape(), DType::float32, w.device());
  }
  if (need2 && (!s.state2.defined() || s.state2.device() != w.device())) {
    s.state2 = s.state2.defined() ? s.state2.to(w.device()) : Tensor::zeros(w.shape(), DType::float32, w.device());
  }
}

void Optimizer::enable_loss_scaling(ops::Context& ctx, const LossScaleConfig& config) {
  FOVEA_CHECK(config.enabled, "optimizer: enable_loss_scaling with a disabled config");
  LossScaleParams p;
  p.growth_factor = config.growth_factor, p.backoff_factor = config.backoff_factor;
  p.growth_interval = config.growth_interval, p.dynamic = config.dynamic;
  p.validate("loss scaling");
  amp_config_ = config;
  amp_ = ops::amp_state(ctx, config.init_scale);
}

void Optimizer::scale_loss_grad(ops::Context& ctx, Tensor& dloss) {
  FOVEA_ASSERT(loss_scaling(), "scale_loss_grad without loss scaling");
  ops::amp_scale(ctx, dloss, amp_);
}

LossScalerState Optimizer::loss_scaler_state() const {
  FOVEA_ASSERT(loss_scaling(), "loss_scaler_state without loss scaling");
  const std::vector<float> v = amp_.to(kCPU).to_vector<float>();
  return {double(v[kAmpScale]), int64_t(v[kAmpGrowthTracker]), int64_t(v[kAmpSkipped])};
}

void Optimizer::step(ops::Context& ctx, double lr) {
  FOVEA_CHECK(std::isfinite(lr) && lr >= 0, "optimizer: learning rate must be finite and >= 0, got ", lr);
  // One fused update per learning rate (group), in the order the groups first appear.
  std::vector<double> scales;
  std::vector<std::vector<ops::ParamSlot>> groups;
  std::vector<ops::ParamSlot> weights;
  for (Slot& s : params_) {
    Param& p = *s.ref.param;
    if (!p.grad.defined()) continue;
    ensure_state(s);
    const size_t g = size_t(std::find(scales.begin(), scales.end(), s.lr_scale) - scales.begin());
    if (g == scales.size()) {
      scales.push_back(s.lr_scale);
      groups.emplace_back();
    }
    groups[g].push_back({p.value, p.grad, s.state1, s.state2});
    if (p.value.ndim() >= 2) weights.push_back({p.value, p.grad, Tensor(), Tensor()});
  }
  if (groups.empty()) return;
  if (loss_scaling()) {
    // Unscaled before anything reads them (the penalties add to them; PyTorch: unscale_ before clipping).
    std::vector<Tensor> grads;
    for (const auto& group : groups)
      for (const ops::ParamSlot& slot : group) grads.push_back(slot.grad);
    ops::amp_unscale(ctx, grads, amp_);
  }
  penalties_ = Tensor();
  if ((config_.l1 > 0 || config_.l2 > 0) && !weights.empty())
    penalties_ = ops::l1_l2_penalty(ctx, weights, float(config_.l1), float(config_.l2));
  ++steps_;
  for (size_t g = 0; g < groups.size(); ++g) {
    if (config_.kind == OptimizerKind::sgd) {
      SgdParams p;
      p.lr = lr * scales[g];
      p.momentum = config_.momentum;
      p.dampening = config_.dampening;
      p.weight_decay = config_.weight_decay;
      p.nesterov = config_.nesterov;
      ops::sgd_step(ctx, groups[g], p, steps_, amp_);
    } else {
      AdamWParams p;
      p.lr = lr * scales[g];
      p.beta1 = config_.beta1;
      p.beta2 = config_.beta2;
      p.eps = config_.eps;
      p.weight_decay = config_.weight_decay;
      ops::adamw_step(ctx, groups[g], p, steps_, amp_);
    }
  }
  if (config_.max_norm > 0)
    for (ops::ParamSlot& w : weights) ops::max_norm(ctx, w.param, float(config_.max_norm), amp_);
  if (loss_scaling()) {
    LossScaleParams p;
    p.growth_factor = amp_config_.growth_factor, p.backoff_factor = amp_config_.backoff_factor;
    p.growth_interval = amp_config_.growth_interval, p.dynamic = amp_config_.dynamic;
    ops::amp_update(ctx, p, amp_);
  }
}

double Optimizer::last_penalty() const {
  if (!penalties_.defined()) return 0.0;
  double total = 0.0;
  for (float v : penalties_.to_vector<float>()) total += double(v);
  return total;
}

std::map<std::string, Tensor> Optimizer::state_dict() const {
  std::map<std::string, Tensor> out;
  for (const Slot& s : params_) {
    if (config_.kind == OptimizerKind::sgd) {
      if (s.state1.defined()) out[s.ref.path + ".momentum_buffer"] = s.state1.to(kCPU);
    } else {
      if (s.state1.defined()) out[s.ref.path + ".exp_avg"] = s.state1.to(kCPU);
      if (s.state2.defined()) out[s.ref.path + ".exp_avg_sq"] = s.state2.to(kCPU);
    }
  }
  out["step"] = Tensor::from_vector(std::vector<int64_t>{steps_}, {1});
  if (loss_scaling()) out["grad_scaler"] = amp_.to(kCPU);
  return out;
}

void Optimizer::load_state_dict(const std::map<std::string, Tensor>& state, Device device) {
  auto it = state.find("step");
  FOVEA_CHECK(it != state.end() && it->second.dtype() == DType::int64 && it->second.numel() == 1,
              "optimizer state: missing int64 entry 'step'");
  steps_ = it->second.to(kCPU).to_vector<int64_t>()[0];
  if (loss_scaling()) {
    auto a = state.find("grad_scaler");
    FOVEA_CHECK(a != state.end() && a->second.dtype() == DType::float32 && a->second.numel() == kAmpStateSize,
                "optimizer state: missing float32 [", kAmpStateSize,
                "] entry 'grad_scaler' (the loss scaler's state; was the run trained with loss scaling?)");
    amp_ = a->second.to(device);
  }
  auto load = [&](const std::string& name, const Tensor& like, Tensor& dst) {
    auto f = state.find(name);
    if (f == state.end()) {
      // A parameter that had no gradient yet has no state: only allowed before the first step.
      FOVEA_CHECK(steps_ == 0, "optimizer state: missing entry '", name, "'");
      dst = Tensor();
      return;
    }
    FOVEA_CHECK(f->second.shape() == like.shape() && f->second.dtype() == DType::float32, "optimizer state: entry '",
                name, "' is ", f->second.str(), ", the parameter is ", like.str());
    dst = f->second.to(device);
  };
  for (Slot& s : params_) {
    const Tensor& w = s.ref.param->value;
    if (config_.kind == OptimizerKind::sgd) {
      if (config_.momentum != 0.0) load(s.ref.path + ".momentum_buffer", w, s.state1);
    } else {
      load(s.ref.path + ".exp_avg", w, s.state1);
      load(s.ref.path + ".exp_avg_sq", w, s.state2);
    }
  }
}

// ---------------------------------------------------------------- schedules

ScheduleConfig parse_schedule(std::string_view text, std::string_view what) {
  ScheduleConfig c;
  const std::vector<std::string_view> f = split(text, ':');
  const std::string_view name = f[0];
  auto arity = [&](size_t lo, size_t hi) {
    FOVEA_CHECK(f.size() >= lo + 1 && f.size() <= hi + 1, what, ": '", text, "': '", name, "' takes ", lo, " to ", hi,
                " arguments, got ", f.size() - 1);
  };
  auto number = [&](std::string_view arg, std::string_view meaning) {
    const std::optional<double> v = try_parse_float(arg);
    FOVEA_CHECK(v, what, ": '", text, "': ", meaning, " must be a number, got '", arg, "'");
    return *v;
  };
  if (name == "constant") {
    arity(0, 0);
    c.kind = ScheduleKind::constant;
  } else if (name == "step") {
    arity(1, 2);
    c.kind = ScheduleKind::step;
    c.milestones = {number(f[1], "the step size in epochs")};
    FOVEA_CHECK(c.milestones[0] > 0, what, ": '", text, "': the step size must be > 0");
    if (f.size() > 2) c.gamma = number(f[2], "gamma");
  } else if (name == "multistep") {
    arity(1, 2);
    c.kind = ScheduleKind::multistep;
    c.milestones.clear();
    for (std::string_view m : split(f[1], ',')) c.milestones.push_back(number(m, "a milestone epoch"));
    for (size_t i = 1; i < c.milestones.size(); ++i)
      FOVEA_CHECK(c.milestones[i] > c.milestones[i - 1], what, ": '", text, "': milestones must increase");
    if (f.size() > 2) c.gamma = number(f[2], "gamma");
  } else if (name == "cosine") {
    arity(0, 1);
    c.kind = ScheduleKind::cosine;
    if (f.size() > 1) c.min_lr = number(f[1], "the minimum learning rate");
    FOVEA_CHECK(c.min_lr >= 0, what, ": '", text, "': the minimum learning rate must be >= 0");
  } else if (name == "onecycle" || name == "onecycle-linear") {
    arity(0, 1);
    c.kind = ScheduleKind::onecycle;
    c.linear = name == "onecycle-linear";
    if (f.size() > 1) c.pct_start = number(f[1], "pct_start");
    FOVEA_CHECK(c.pct_start > 0 && c.pct_start < 1, what, ": '", text, "': pct_start must be in (0, 1)");
  } else {
    FOVEA_FAIL(what, ": unknown schedule '", text,
               "' (expected constant, step:EPOCHS[:GAMMA], multistep:E1,E2,...[:GAMMA], cosine[:MIN_LR], "
               "onecycle[:PCT_START] or onecycle-linear[:PCT_START])");
  }
  FOVEA_CHECK(c.gamma > 0, what, ": '", text, "': gamma must be > 0");
  return c;
}

std::string schedule_name(const ScheduleConfig& c) {
  std::string s;
  switch (c.kind) {
    case ScheduleKind::constant: s = "constant"; break;
    case ScheduleKind::step: s = fmt::format("step:{}:{}", c.milestones.at(0), c.gamma); break;
    case ScheduleKind::multistep: {
      s = "multistep:";
      for (size_t i = 0; i < c.milestones.size(); ++i) s += fmt::format("{}{}", i ? "," : "", c.milestones[i]);
      s += fmt::format(":{}", c.gamma);
      break;
    }
    case ScheduleKind::cosine: s = c.min_lr > 0 ? fmt::format("cosine:{}", c.min_lr) : "cosine"; break;
    case ScheduleKind::onecycle:
      s = fmt::format("{}:{}", c.linear ? "onecycle-linear" : "onecycle", c.pct_start);
      break;
  }
  return s;
}

LrSchedule::LrSchedule(const ScheduleConfig& c, double base_lr, int64_t total_steps, int64_t steps_per_epoch)
    : c_(c), base_(base_lr), total_(total_steps), per_epoch_(steps_per_epoch) {
  FOVEA_CHECK(total_steps > 0 && steps_per_epoch > 0, "schedule: total steps and steps per epoch must be > 0, got ",
              total_steps, " and ", steps_per_epoch);
  FOVEA_CHECK(std::isfinite(base_lr) && base_lr >= 0, "schedule: learning rate must be >= 0, got ", base_lr);
  FOVEA_CHECK(c.warmup_epochs >= 0, "schedule: warm-up must be >= 0 epochs, got ", c.warmup_epochs);
  warmup_ = c.kind == ScheduleKind::onecycle ? 0 : int64_t(std::llround(c.warmup_epochs * double(steps_per_epoch)));
  if (warmup_ >= total_steps) warmup_ = total_steps - 1;
}

double LrSchedule::lr(int64_t t) const {
  if (t < warmup_) return base_ * double(t + 1) / double(warmup_);
  t -= warmup_;
  const int64_t total = total_ - warmup_;
  constexpr double kPi = 3.14159265358979323846;
  switch (c_.kind) {
    case ScheduleKind::constant: return base_;
    case ScheduleKind::step: {
      const int64_t epoch = t / per_epoch_;
      return base_ * std::pow(c_.gamma, std::floor(double(epoch) / c_.milestones[0]));
    }
    case ScheduleKind::multistep: {
      const int64_t epoch = t / per_epoch_;
      int passed = 0;
      for (double m : c_.milestones) passed += double(epoch) >= m;
      return base_ * std::pow(c_.gamma, passed);
    }
    case ScheduleKind::cosine: {
      const double tt = double(std::min(t, total));
      return c_.min_lr + (base_ - c_.min_lr) * (1.0 + std::cos(kPi * tt / double(total))) / 2.0;
    }
    case ScheduleKind::onecycle: {
      const double initial = base_ / c_.div_factor, final_lr = initial / c_.final_div_factor;
      const double end1 = c_.pct_start * double(total) - 1.0, end2 = double(total) - 1.0;
      auto anneal = [&](double start, double end, double pct) {
        return c_.linear ? (end - start) * pct + start : end + (start - end) / 2.0 * (std::cos(kPi * pct) + 1.0);
      };
      const double s = double(t);
      if (s <= end1) return anneal(initial, base_, end1 > 0 ? s / end1 : 1.0);
      return anneal(base_, final_lr, end2 > end1 ? (s - end1) / (end2 - end1) : 1.0);
    }
  }
  return base_;
}

}  // namespace fovea::nn
