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

class Optimizer {
 public:
  // Keeps the trainable parameters among `params` (in that order).
  Optimizer(const OptimizerConfig& config, const std::vector<ParamRef>& params);

  // One update with learning rate `lr` from the gradients in Param::grad (parameters without a
  // gradient are skipped). Adds the penalties' gradients first. Reads nothing back from the device.
  void step(ops::Context& ctx, double lr);
  // The L1/L2 penalty of the last step's weights (0 if none): one number read back from the device.
  double last_penalty() const;
  int64_t step_count() const { return steps_; }
  const OptimizerConfig& config() const { return config_; }
  size_t size() const { return params_.size(); }

  // State for checkpoints, host copies named like PyTorch's optimizer state:
  // "<param path>.momentum_buffer" (sgd), "<path>.exp_avg", "<path>.exp_avg_sq" (adamw), and "step".
  std::map<std::string, Tensor> state_dict() const;
  // Restores it onto `device`; throws naming the first missing or mis-shaped entry.
  void load_state_dict(const std::map<std::string, Tensor>& state, Device device);

 private:
  struct Slot {
    ParamRef ref;
    Tensor state1, state2;
  };
  void ensure_state(Slot& s);
  OptimizerConfig config_;
  std::vector<Slot> params_;
  int64_t steps_ = 0;
  Tensor penalties_;  // per weight tensor, on the device; undefined without L1/L2
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
