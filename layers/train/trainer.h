// The training loop behind `fovea train`, and evaluation behind `fovea eval`.
// Everything random is a function of the seed: initialisation (Philox on the device), the data order
// and augmentation (data::permutation / augment_affine of (seed, epoch, sample)), dropout masks (of
// (seed, step)). With the same config a run repeats bit for bit on the same device and thread count,
// and --resume continues exactly where the checkpoint left off.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "layers/data/data.h"
#include "layers/nn/models.h"
#include "layers/ops/ops.h"

namespace fovea::nn {

struct TrainConfig {
  std::string dataset =
      "synthetic";  // synthetic (= shapes) | shapes | rings | mnist | fashion-mnist | cifar10 | cifar100
  std::string data_dir;
  std::string model = "small_cnn";  // zoo name or spec
  int64_t epochs = 3;
  int64_t batch = 64;
  double lr = 0;  // 0: 0.01 for sgd, 0.001 for adamw
  std::string optimizer = "sgd";
  double momentum = 0.9;
  bool nesterov = false;
  std::string schedule = "cosine";
  double warmup_epochs = 0;
  double weight_decay = 5e-4;
  double l1 = 0, l2 = 0, max_norm = 0;
  std::string device = "auto";     // auto | cpu | emu | cuda[:i]
  std::string backend = "custom";  // custom | cudnn
  uint64_t seed = 1;
  bool deterministic = false;    // cudnn: deterministic algorithms only (ours always are)
  int64_t max_steps = 0;         // stop after this many updates in total (0: no limit)
  std::string out;               // run directory (default runs/<model>-<dataset>-<time>)
  std::string resume;            // checkpoint to continue from
  std::string init_from;         // checkpoint whose matching weights initialise the model
  std::string freeze;            // top-level layers to freeze (Model::freeze)
  int64_t subset = 0;            // train on this many random training examples (0: all)
  std::string augment = "none";  // none | standard | crop:P,flip,translate:F,rotate:DEG,zoom:F,shear:DEG
  double label_smoothing = 0;
  double val_split = 0;    // fraction (< 1) or number of training examples held out
  int64_t early_stop = 0;  // stop after this many epochs without a better validation loss
  int64_t eval_batch = 256;
  int threads = 0;       // device cpu: OpenMP threads (0: all cores)
  bool progress = true;  // print the progress bar / lines and epoch summaries
  std::string command;   // the exact command line, recorded in config.json
};

struct EpochMetrics {
  int64_t epoch = 0;  // 1-based
  double train_loss = 0, train_acc = 0, test_loss = 0, test_acc = 0;
  double val_loss = -1, val_acc = -1;  // -1: no validation split
  double lr = 0, images_per_s = 0, seconds = 0;
  double loader_wait_share = 0;     // share of the training time spent waiting for batches
  double loader_prepare_share = 0;  // loader thread busy time / training time (CPU work beside the step)
  int64_t steps = 0;                // updates done at the end of this epoch
  bool partial = false;             // stopped by --max-steps inside the epoch
};

struct TrainResult {
  std::vector<EpochMetrics> history;
  int64_t steps = 0;
  std::string run_dir, checkpoint;  // the last checkpoint written
  bool stopped_early = false;
  std::string device;
};

// Training stopped because the loss became NaN or Inf.
class TrainingDiverged : public Error {
 public:
  using Error::Error;
};

// "auto" is cuda when a GPU is visible, else cpu, and then `notice` says so in one line.
Device resolve_device(const std::string& text, std::string* notice);
// Parses --augment.
data::Augment parse_augment(const std::string& text);
// --dataset name (synthetic -> shapes) and --data directory (a default for fashion-mnist when the
// Debian package is installed) into a loaded split. Errors name the file.
data::Dataset load_split(const std::string& dataset, const std::string& dir, data::Split split);

TrainResult train(const TrainConfig& config);

struct EvalResult {
  double loss = 0, accuracy = 0;
  int64_t count = 0;
  std::vector<std::vector<int64_t>> confusion;  // [true class][predicted class]
  std::vector<double> per_class_accuracy() const;
};
// Eval mode, no gradients; batches of `batch` through the model on ctx's device.
EvalResult evaluate(Model& model, ops::Context& ctx, const data::Dataset& ds, const data::Normalization& norm,
                    int64_t batch);
// The images moved by (dx, dy) pixels (right and down for positive values), zeros shifted in (black in
// pixel space, before normalisation). A copy.
data::Dataset shift_images(const data::Dataset& ds, int dx, int dy);

}  // namespace fovea::nn
