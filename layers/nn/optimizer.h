// Optimizers (torch.optim.SGD with momentum/Nesterov/weight decay, torch.optim.AdamW), weight
// penalties (L1, L2, elastic net) and the max-norm constraint, and learning-rate schedules.
// The updates themselves are the fused ops in layers/ops/ops.h, on the parameters' device.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "layers/nn/layer.h"

namespace fovea::nn {

enum class OptimizerKind : uint8_t { sgd, adamw };
OptimizerKind parse_optimizer(std::string_view text, std::string_view what = "optimizer");  // "sgd" | "adamw"
const char* optimizer_name(OptimizerKind k);

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::sgd;
  double momentum = 0.9, dampening = 0.0;         // sgd
  bool nesterov = false;                          // sgd
  double weight_decay = 0.0;                      // sgd: coupled (added to the gradient); adamw: decoupled
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // adamw
  // Penalties on the weights (parameters of rank >= 2: conv and linear weights, not biases or
  // BatchNorm), added to the loss: l1 * sum|w| + l2 / 2 * sum w^2 (both: elastic net).
  double l1 = 0.0, l2 = 0.0;
  // Max-norm constraint after each update: each output unit's weight row (dim 0) is rescaled to L2
  // norm <= max_norm (Srivastava et al. 2014). 0: off.
  double max_norm = 0.0;
};

// Loss scaling for FP16 training, torch.cuda.amp.GradScaler's semantics: the loss gradient is seeded with `scale`
// instead of 1; after the backward pass every gradient is multiplied by 1/scale in one pass that also flags an
// Inf or NaN; a step with a non-finite gradient is skipped (weights and optimizer state untouched) and the scale
// multiplied by backoff_factor; after growth_interval finite steps in a row it is multiplied by growth_factor.
// Not dynamic: the scale stays at init_scale (non-finite steps are still skipped).
struct LossScaleConfig {
  bool enabled = false;
  bool dynamic = true;
  double init_scale = 65536.0;  // GradScaler's defaults
  double growth_factor = 2.0, backoff_factor = 0.5;
  int64_t growth_interval = 2000;
};
// "dynamic", "dynamic:INIT_SCALE" or a fixed scale ("1024"), into an enabled config with GradScaler's defaults.
LossScaleConfig parse_loss_scale(std::string_view text, std::string_view what = "loss scale");
std::string loss_scale_name(const LossScaleConfig& c);  // the text parse_loss_scale reads back

// The loss scaler's state as read back to the host (one small copy).
struct LossScalerState {
  double scale = 0;
  int64_t growth_tracker = 0, skipped = 0;
};

class Optimizer {
 public:
  // Keeps the trainable parameters among `params` (in that order).
  Optimizer(const OptimizerConfig& config, const std::vector<ParamRef>& params);

  // Parameter groups with their own learning rate, as PyTorch's param_groups: the parameters whose path is
  // in `paths` are updated with lr * scale (the schedule scales every group alike, as PyTorch's schedulers
  // do with each group's initial lr). Throws naming a path that is not a trainable parameter here.
  void set_lr_scale(const std::vector<std::string>& paths, double scale);
  // One update with learning rate `lr` from the gradients in Param::grad (parameters without a
  // gradient are skipped). Adds the penalties' gradients first. Reads nothing back from the device.
  // With loss scaling (enable_loss_scaling): first unscales the gradients and flags a non-finite one, then
  // updates unless flagged (decided on the device: no host synchronisation), then updates the scale. step_count()
  // counts every call, skipped or not; the updates themselves use the count of those not skipped.
  void step(ops::Context& ctx, double lr);

  // ---- loss scaling (FP16 training)
  void enable_loss_scaling(ops::Context& ctx, const LossScaleConfig& config);
  bool loss_scaling() const { return amp_.defined(); }
  // The loss gradient times the current scale, in place (before the backward pass).
  void scale_loss_grad(ops::Context& ctx, Tensor& dloss);
  // Reads the scaler's state (one device-to-host copy: call it where the host waits anyway).
  LossScalerState loss_scaler_state() const;
  // The L1/L2 penalty of the last step's weights (0 if none): one number read back from the device.
  double last_penalty() const;
  int64_t step_count() const { return steps_; }
  const OptimizerConfig& config() const { return config_; }
  size_t size() const { return params_.size(); }

  // State for checkpoints, host copies named like PyTorch's optimizer state:
  // "<param path>.momentum_buffer" (sgd), "<path>.exp_avg", "<path>.exp_avg_sq" (adamw), and "step"; with loss
  // scaling "grad_scaler" (float32 [4]: scale, growth tracker, 0, skipped steps).
  std::map<std::string, Tensor> state_dict() const;
  // Restores it onto `device`; throws naming the first missing or mis-shaped entry.
  void load_state_dict(const std::map<std::string, Tensor>& state, Device device);

 private:
  struct Slot {
    ParamRef ref;
    Tensor state1, state2;
    double lr_scale = 1.0;
  };
  void ensure_state(Slot& s);
  OptimizerConfig config_;
  std::vector<Slot> params_;
  int64_t steps_ = 0;
  Tensor penalties_;  // per weight tensor, on the device; undefined without L1/L2
  LossScaleConfig amp_config_;
  Tensor amp_;  // the loss scaler's state on the device (ops::kAmp*); undefined without loss scaling
};

// ---- learning-rate schedules, evaluated per step (update) t = 0, 1, ..., total - 1
enum class ScheduleKind : uint8_t { constant, step, multistep, cosine, onecycle };

struct ScheduleConfig {
  ScheduleKind kind = ScheduleKind::constant;
  std::vector<double> milestones{30};  // step: every milestones[0] epochs; multistep: at these epochs
  double gamma = 0.1;                  // step, multistep
  double min_lr = 0.0;                 // cosine: eta_min
  double pct_start = 0.3, div_factor = 25.0, final_div_factor = 1e4;  // onecycle (PyTorch defaults)
  bool linear = false;                                                // onecycle: linear instead of cosine annealing
  double warmup_epochs = 0.0;  // linear warm-up before the schedule (not onecycle)
};

// "constant", "step:EPOCHS[:GAMMA]", "multistep:E1,E2,...[:GAMMA]", "cosine[:MIN_LR]",
// "onecycle[:PCT_START]", "onecycle-linear[:PCT_START]". Throws a UsageError naming `what` and the text.
ScheduleConfig parse_schedule(std::string_view text, std::string_view what = "schedule");
// The canonical text of c (not its warm-up), which parse_schedule reads back.
std::string schedule_name(const ScheduleConfig& c);

// lr(t) for the update t (0-based), the formulas of PyTorch's schedulers stepped once per update:
//   warm-up (W = warmup_epochs * steps_per_epoch updates): lr = base * (t + 1) / W for t < W
//     (LinearLR(start_factor = 1/W, total_iters = W - 1)); the schedule then runs on t - W over total - W;
//   step       base * gamma^floor(epoch / E), epoch = t / steps_per_epoch (StepLR stepped per epoch)
//   multistep  base * gamma^(number of milestones <= epoch)
//   cosine     min + (base - min) (1 + cos(pi t / total)) / 2 (CosineAnnealingLR, T_max = total)
//   onecycle   OneCycleLR(max_lr = base, total_steps = total, pct_start, div_factor, final_div_factor,
//              anneal cos or linear, no momentum cycling)
class LrSchedule {
 public:
  LrSchedule(const ScheduleConfig& c, double base_lr, int64_t total_steps, int64_t steps_per_epoch);
  double lr(int64_t t) const;

 private:
  ScheduleConfig c_;
  double base_;
  int64_t total_, per_epoch_, warmup_;
};

}  // namespace fovea::nn
