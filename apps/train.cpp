// fovea train: train a CNN (or MLP) end to end; see layers/train/trainer.h.
#include <fmt/core.h>

#include <cstdio>
#include <memory>

#include "apps/command.h"
#include "apps/command_line.h"
#include "layers/nn/models.h"
#include "layers/train/trainer.h"

namespace fovea::app {
namespace {

// Short messages for number ranges ("must be > 0, got 0") instead of CLI11's range with DBL_MAX.
CLI::Validator number_at_least(double lo, bool strict) {
  return CLI::Validator(
      [lo, strict](std::string& v) -> std::string {
        double x = 0;
        try {
          size_t used = 0;
          x = std::stod(v, &used);
          if (used != v.size()) return "must be a number, got '" + v + "'";
        } catch (...) {
          return "must be a number, got '" + v + "'";
        }
        if (strict ? x > lo : x >= lo) return std::string();
        return fmt::format("must be {} {}, got {}", strict ? ">" : ">=", lo, v);
      },
      strict ? "> 0" : ">= 0");
}
const CLI::Validator kPositive = number_at_least(0, true), kNonNegative = number_at_least(0, false);

int run_train(const nn::TrainConfig& cfg, bool list_models) {
  if (list_models) {
    for (const nn::ZooEntry& e : nn::model_zoo())
      fmt::print("{:<12} {}\n{:<12} {}\n\n", e.name, e.description, "", e.spec);
    return 0;
  }
  nn::TrainConfig c = cfg;
  c.command = quoted_command_line();
  try {
    const nn::TrainResult r = nn::train(c);
    if (!r.history.empty()) {
      const nn::EpochMetrics& m = r.history.back();
      fmt::print("done: {} steps, test accuracy {:.2f}%, checkpoint {}\n", r.steps, 100 * m.test_acc, r.checkpoint);
    }
  } catch (const nn::TrainingDiverged& e) {
    std::fprintf(stderr, "fovea: error: %s\n", e.what());
    return 3;
  }
  return 0;
}

Command train_command(
    "train", "Train a network (with no arguments: a small CNN on the built-in synthetic dataset)", [](CLI::App& app) {
      auto c = std::make_shared<nn::TrainConfig>();
      auto list = std::make_shared<bool>(false);
      auto quiet = std::make_shared<bool>(false);
      app.add_option("--dataset", c->dataset, "synthetic, rings, mnist, fashion-mnist, cifar10 or cifar100")
          ->capture_default_str();
      app.add_option("--data", c->data_dir,
                     "folder with the dataset's files (mnist, fashion-mnist, cifar10, cifar100)");
      app.add_option("--model", c->model,
                     "a zoo name (--list-models) or a spec like conv:32:3:pad=1,relu,maxpool:2,linear")
          ->capture_default_str();
      app.add_flag("--list-models", *list, "print the model zoo and exit");
      app.add_option("--epochs", c->epochs, "epochs")->capture_default_str()->check(kPositive);
      app.add_option("--batch", c->batch, "batch size")->capture_default_str()->check(kPositive);
      app.add_option("--lr", c->lr, "peak learning rate (default 0.01 for sgd, 0.001 for adamw)")->check(kNonNegative);
      app.add_option("--optimizer", c->optimizer, "sgd or adamw")
          ->capture_default_str()
          ->check(CLI::IsMember({"sgd", "adamw"}));
      app.add_option("--momentum", c->momentum, "sgd momentum")->capture_default_str()->check(CLI::Range(0.0, 1.0));
      app.add_flag("--nesterov", c->nesterov, "Nesterov momentum (sgd)");
      app.add_option("--schedule", c->schedule,
                     "constant, step:EPOCHS[:GAMMA], multistep:E1,E2[:GAMMA], cosine[:MIN_LR], onecycle[:PCT], "
                     "onecycle-linear[:PCT]")
          ->capture_default_str();
      app.add_option("--warmup", c->warmup_epochs, "linear learning-rate warm-up, in epochs")->check(kNonNegative);
      app.add_option("--weight-decay", c->weight_decay, "weight decay (sgd: L2 in the gradient; adamw: decoupled)")
          ->capture_default_str()
          ->check(kNonNegative);
      app.add_option("--l1", c->l1, "L1 penalty on the weights")->check(kNonNegative);
      app.add_option("--l2", c->l2, "L2 penalty on the weights (l2/2 * sum w^2); with --l1: elastic net")
          ->check(kNonNegative);
      app.add_option("--max-norm", c->max_norm, "max-norm constraint on each unit's weights")->check(kNonNegative);
      app.add_option("--device", c->device, "auto, cpu, emu or cuda[:N]")->capture_default_str();
      app.add_option("--backend", c->backend, "custom (our kernels) or cudnn")
          ->capture_default_str()
          ->check(CLI::IsMember({"custom", "cudnn"}));
      app.add_option("--seed", c->seed, "seed of the initialisation, data order, augmentation and dropout")
          ->capture_default_str();
      app.add_flag("--deterministic", c->deterministic, "deterministic algorithms only (cudnn; ours always are)");
      app.add_option("--max-steps", c->max_steps, "stop after this many updates in total")->check(kNonNegative);
      app.add_option("--out", c->out, "run directory (default runs/MODEL-DATASET-TIME)");
      app.add_option("--resume", c->resume, "continue from this checkpoint (same config)");
      app.add_option("--init-from", c->init_from,
                     "initialise matching weights from this checkpoint (transfer learning)");
      app.add_option("--freeze", c->freeze, "freeze top-level layers: indices and ranges like 0-5,7, or all-but-last");
      app.add_option("--subset", c->subset, "train on N random training examples")->check(kNonNegative);
      app.add_option(
             "--augment", c->augment,
             "none, standard (crop:4,flip), or a list of crop:PAD, flip, translate:F, rotate:DEG, zoom:F, shear:DEG")
          ->capture_default_str();
      app.add_option("--label-smoothing", c->label_smoothing, "label smoothing of the cross-entropy")
          ->check(CLI::Range(0.0, 0.999));
      app.add_option("--val-split", c->val_split, "hold out a fraction (< 1) or a number of training examples")
          ->check(kNonNegative);
      app.add_option("--early-stop", c->early_stop, "stop after N epochs without a better validation loss")
          ->check(kNonNegative);
      app.add_option("--eval-batch", c->eval_batch, "batch size for evaluation")
          ->capture_default_str()
          ->check(kPositive);
      app.add_option("--threads", c->threads, "CPU threads for device cpu (default: all cores)")->check(kNonNegative);
      app.add_flag("--quiet", *quiet, "no progress output");
      return [c, list, quiet] {
        c->progress = !*quiet;
        return run_train(*c, *list);
      };
    });

}  // namespace
}  // namespace fovea::app
