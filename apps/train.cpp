// fovea train: train a CNN (or MLP) end to end; see layers/train/session.h. Every flag is checked here
// (ranges, choices, combinations) and turned into the typed TrainConfig; the session checks only what needs
// the data or the model.
#include <fmt/core.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <memory>

#include "apps/command.h"
#include "apps/command_line.h"
#include "apps/flags.h"
#include "layers/nn/models.h"
#include "layers/train/session.h"
#include "layers/train/stop_signals.h"

namespace fovea::app {
namespace {

// The flags that arrive as text and become typed fields of TrainConfig.
struct TextFlags {
  std::string optimizer = "sgd", schedule = "cosine", device = "auto", backend = "auto", augment = "none";
  std::string precision = "fp32", loss_scale = "dynamic";
  int64_t loss_scale_growth_interval = 2000;
  double warmup = 0;
};

int run_train(nn::TrainConfig c, const TextFlags& t, bool list_models, const std::vector<std::string>& given) {
  if (list_models) {
    for (const nn::ZooEntry& e : nn::model_zoo())
      fmt::print("{:<12} {}\n{:<12} {}\n\n", e.name, e.description, "", e.spec);
    return 0;
  }
  FOVEA_CHECK(c.early_stop == 0 || c.val_split > 0, "--early-stop needs a validation split (--val-split)");
  FOVEA_CHECK(c.resume.empty() || c.init_from.empty(), "--resume and --init-from cannot be combined");
  FOVEA_CHECK(!c.replace_head || !c.init_from.empty(), "--replace-head needs --init-from (the weights it loads)");
  c.optimizer = nn::parse_optimizer(t.optimizer, "--optimizer");
  c.schedule = nn::parse_schedule(t.schedule, "--schedule");
  c.schedule.warmup_epochs = t.warmup;
  c.augment = data::parse_augment(t.augment, "--augment");
  c.precision = nn::parse_precision(t.precision, "--precision");
  const bool scale_given = std::find(given.begin(), given.end(), "--loss-scale") != given.end() ||
                           std::find(given.begin(), given.end(), "--loss-scale-growth-interval") != given.end();
  if (c.precision == Precision::fp16 || (scale_given && !c.resume.empty())) {
    c.loss_scale = nn::parse_loss_scale(t.loss_scale, "--loss-scale");
    c.loss_scale.growth_interval = t.loss_scale_growth_interval;
  }
  c.device = resolve_device(t.device, "--device");
  c.backend = resolve_backend(t.backend, c.device, "--backend");
  c.command = quoted_command_line();
  if (!c.resume.empty()) c = nn::resumed_config(c, given);
  FOVEA_CHECK(!scale_given || c.precision == Precision::fp16,
              "--loss-scale and --loss-scale-growth-interval need --precision fp16 (fp32, tf32 and bf16 train "
              "without loss scaling)");
  try {
    nn::StopOnSignals signals;  // Ctrl-C, SIGTERM: finish the step, write the checkpoint, exit 130 / 143
    nn::TrainSession session(c);
    signals.attach(session);
    const nn::TrainResult r = session.run();
    signals.detach();
    if (signals.signal()) {
      std::fprintf(stderr,
                   "fovea: stopped by %s after step %lld; checkpoint %s\ncontinue with: fovea train --resume %s\n",
                   signals.signal() == SIGINT ? "SIGINT" : "SIGTERM", static_cast<long long>(r.steps),
                   r.checkpoint.c_str(), r.run_dir.c_str());
      return signals.exit_code();
    }
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
      auto t = std::make_shared<TextFlags>();
      auto list = std::make_shared<bool>(false);
      auto quiet = std::make_shared<bool>(false);
      app.add_option("--dataset", c->dataset,
                     "synthetic, rings, mnist, fashion-mnist, cifar10, cifar100, or folder (images in class folders)")
          ->capture_default_str();
      app.add_option("--data", c->data_dir,
                     "folder with the dataset's files (mnist, fashion-mnist, cifar10, cifar100); folder: DIR/train/"
                     "<class>/*.png|jpg and DIR/val/<class>/*, or DIR/<class>/* with --val-split F");
      app.add_option("--image-size", c->image_size, "folder datasets: side of the square crops (224; 32 for small)")
          ->capture_default_str()
          ->check(in_range(1, 4096));
      app.add_option("--image-transform", c->image_transform,
                     "folder datasets: torchvision (train: RandomResizedCrop + flip; test: resize to round(S*256/224), "
                     "centre crop S) or resize (all: shorter side to S, centre crop; augment with --augment)")
          ->capture_default_str()
          ->check(one_of({"torchvision", "resize"}));
      app.add_flag("--skip-bad-images", c->skip_bad_images,
                   "folder datasets: skip and count images that do not decode instead of stopping");
      app.add_option("--decode-threads", c->decode_threads,
                     "folder datasets: image decoding threads (0: the cores, at most 8; same batches for any number)")
          ->check(in_range(0, 256));
      app.add_option("--model", c->model,
                     "a zoo name (--list-models) or a spec like conv:32:3:pad=1,relu,maxpool:2,linear")
          ->capture_default_str();
      app.add_flag("--list-models", *list, "print the model zoo and exit");
      app.add_option("--epochs", c->epochs, "epochs")->capture_default_str()->check(kPositiveInt);
      app.add_option("--batch", c->batch, "batch size")->capture_default_str()->check(kPositiveInt);
      app.add_option("--lr", c->lr,
                     "peak learning rate (default 0.01 for sgd, 0.001 for adamw); of the head only "
                     "with --lr-backbone")
          ->check(kNonNegative);
      app.add_option("--optimizer", t->optimizer, "sgd or adamw")
          ->capture_default_str()
          ->check(one_of({"sgd", "adamw"}));
      app.add_option("--momentum", c->momentum, "sgd momentum")->capture_default_str()->check(in_range(0, 1));
      app.add_flag("--nesterov", c->nesterov, "Nesterov momentum (sgd)");
      app.add_option("--schedule", t->schedule,
                     "constant, step:EPOCHS[:GAMMA], multistep:E1,E2[:GAMMA], cosine[:MIN_LR], onecycle[:PCT], "
                     "onecycle-linear[:PCT]")
          ->capture_default_str();
      app.add_option("--warmup", t->warmup, "linear learning-rate warm-up, in epochs")->check(kNonNegative);
      app.add_option("--weight-decay", c->weight_decay, "weight decay (sgd: L2 in the gradient; adamw: decoupled)")
          ->capture_default_str()
          ->check(kNonNegative);
      app.add_option("--l1", c->l1, "L1 penalty on the weights")->check(kNonNegative);
      app.add_option("--l2", c->l2, "L2 penalty on the weights (l2/2 * sum w^2); with --l1: elastic net")
          ->check(kNonNegative);
      app.add_option("--max-norm", c->max_norm, "max-norm constraint on each unit's weights")->check(kNonNegative);
      app.add_option("--device", t->device, "auto, cpu, emu or cuda[:N]")->capture_default_str();
      app.add_option("--backend", t->backend, kBackendHelp)->capture_default_str()->check(one_of(kBackendNames));
      app.add_option("--precision", t->precision,
                     "arithmetic of the convolutions and linear layers: fp32, tf32, bf16 or fp16 (FP32 weights and "
                     "optimizer; fp16 with loss scaling, --loss-scale)")
          ->capture_default_str();
      app.add_option("--loss-scale", t->loss_scale,
                     "with --precision fp16: dynamic (torch.cuda.amp.GradScaler: from 65536, x0.5 and the step "
                     "skipped on a non-finite gradient, x2 after --loss-scale-growth-interval finite steps), "
                     "dynamic:INIT_SCALE, or a fixed scale (non-finite steps still skipped)")
          ->capture_default_str();
      app.add_option("--loss-scale-growth-interval", t->loss_scale_growth_interval,
                     "with --loss-scale dynamic: finite steps in a row before the scale doubles")
          ->capture_default_str()
          ->check(in_range(1, 1 << 24));
      app.add_option("--seed", c->seed, "seed of the initialisation, data order, augmentation and dropout")
          ->capture_default_str()
          ->check(unsigned_integer());
      app.add_flag("--deterministic", c->deterministic, "deterministic algorithms only (cudnn; ours always are)");
      app.add_option("--max-steps", c->max_steps, "stop after this many updates in total")->check(kNonNegativeInt);
      app.add_option("--out", c->out,
                     "run directory (default runs/MODEL-DATASET-TIME-RANDOM); never one that holds "
                     "another run, unless --overwrite or --resume");
      app.add_flag("--overwrite", c->overwrite, "replace the run in --out (its config, metrics and checkpoints)");
      app.add_option("--resume", c->resume,
                     "continue a run: its folder or a checkpoint; restores the whole configuration (a differing flag "
                     "is refused; --epochs, --max-steps, --device and the like may change)");
      app.add_option("--init-from", c->init_from,
                     "initialise the model from weights (transfer learning): a fovea checkpoint (the tensors that "
                     "match by name and shape), or a PyTorch .pth / safetensors state_dict (all tensors must match)");
      app.add_flag("--replace-head", c->replace_head,
                   "with --init-from: the classifier (fc, classifier.6, ..., the last module with parameters) is "
                   "not loaded but freshly initialised for the dataset's classes");
      app.add_option("--freeze", c->freeze,
                     "freeze a module and everything before it (a name like layer3 or features.10), top-level layers "
                     "by index and range (0-5,7), or all-but-head; frozen batch norms stay in eval mode");
      app.add_option("--lr-backbone", c->lr_backbone,
                     "peak learning rate of every parameter but the head's (default: --lr); the schedule scales both")
          ->check(kNonNegative);
      app.add_option("--classes", c->classes,
                     "train and test on these classes only, relabelled 0..k-1: indices and ranges like 0-4 or 1,3,5");
      app.add_option("--subset", c->subset, "train on N random training examples")->check(kNonNegativeInt);
      app.add_option("--eval-subset", c->eval_subset,
                     "score N random test examples each epoch (0: all; default: as many as --subset, or all)")
          ->check(kNonNegativeInt);
      app.add_option(
             "--augment", t->augment,
             "none, standard (crop:4,flip), or a list of crop:PAD, flip, translate:F, rotate:DEG, zoom:F, shear:DEG")
          ->capture_default_str();
      app.add_option("--label-smoothing", c->label_smoothing, "label smoothing of the cross-entropy")
          ->check(in_range(0, 1, /*hi_open=*/true));
      app.add_option("--val-split", c->val_split, "hold out a fraction (< 1) or a number of training examples")
          ->check(kNonNegative);
      app.add_option("--early-stop", c->early_stop, "stop after N epochs without a better validation loss")
          ->check(kNonNegativeInt);
      app.add_option("--eval-batch", c->eval_batch, "batch size for evaluation")
          ->capture_default_str()
          ->check(kPositiveInt);
      app.add_option("--log-every", c->log_every,
                     "steps between reads of the loss and accuracy from the device (default: a tenth of an epoch)")
          ->check(kNonNegativeInt);
      app.add_option("--threads", c->threads, "CPU threads for device cpu (default: all cores)")
          ->check(kNonNegativeInt);
      app.add_flag("--quiet", *quiet, "no progress output");
      return [c, t, list, quiet, &app] {
        nn::TrainConfig config = *c;
        config.progress = !*quiet;
        std::vector<std::string> given;  // the flags on the command line, for --resume
        for (const CLI::Option* o : app.get_options())
          if (o->count() > 0) given.push_back(o->get_name());
        return run_train(config, *t, *list, given);
      };
    });

}  // namespace
}  // namespace fovea::app
