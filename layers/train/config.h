// What a training run is asked to do, fully typed. apps/train.cpp parses and checks the flags (ranges,
// choices, combinations) and resolves the device; a TrainSession only asserts what it relies on, and checks
// what needs the data or the model (--subset against the training set, --freeze against the layers).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "core/device.h"
#include "layers/data/data.h"
#include "layers/nn/optimizer.h"
#include "layers/ops/ops.h"

namespace fovea::nn {

// The arithmetic of the training step. fp32 only for now: tf32, bf16 and fp16 come with the tensor-core work.
enum class Precision : uint8_t { fp32 };
const char* precision_name(Precision p);
Precision parse_precision(std::string_view text, std::string_view what = "precision");  // "fp32"

// --lr's default: 0.01 for sgd, 0.001 for adamw.
double default_lr(OptimizerKind k);

struct TrainConfig {
  // ---- data
  std::string dataset =
      "synthetic";           // synthetic (= shapes) | shapes | rings | mnist | fashion-mnist | cifar10 | cifar100
  std::string data_dir;      // the dataset's folder (load_split)
  int64_t subset = 0;        // train on this many random training examples (0: all)
  int64_t eval_subset = -1;  // score this many random test examples (0: all; -1: as many as subset, or all)
  double val_split = 0;      // fraction (< 1) or number of training examples held out
  data::Augment augment;     // of the training images (data::parse_augment)
  // ---- folder datasets (dataset "folder", data::load_image_folder)
  int64_t image_size = 224;                     // the side of the samples the images are cropped and resized to
  bool skip_bad_images = false;                 // skip (and count) files that do not decode, instead of stopping
  int decode_threads = 0;                       // image decoding threads of the loader (0: the cores, at most 8)
  std::string image_transform = "torchvision";  // data::FolderOptions::transform
  // ---- model
  std::string model = "small_cnn";  // zoo name or spec (build_model)
  std::string resume;               // checkpoint to continue from (model, optimizer, step, normalisation)
  std::string init_from;            // checkpoint whose matching weights initialise the model
  std::string freeze;               // top-level layers to freeze (Model::freeze), "" for none
  // ---- optimisation
  int64_t epochs = 3;
  int64_t batch = 64;
  OptimizerKind optimizer = OptimizerKind::sgd;
  double lr = 0;  // peak learning rate; 0: default_lr(optimizer)
  double momentum = 0.9;
  bool nesterov = false;
  ScheduleConfig schedule{.kind = ScheduleKind::cosine};  // warm-up included (schedule.warmup_epochs)
  double weight_decay = 5e-4;
  double l1 = 0, l2 = 0, max_norm = 0;
  double label_smoothing = 0;  // in [0, 1)
  int64_t max_steps = 0;       // stop after this many updates in total (0: no limit)
  int64_t early_stop = 0;      // stop after this many epochs without a better validation loss (needs val_split)
  // ---- execution
  Device device = kCPU;  // resolved: never "auto"
  ops::Backend backend = ops::Backend::custom;
  Precision precision = Precision::fp32;
  bool deterministic = false;  // cudnn: deterministic algorithms only (ours always are)
  int threads = 0;             // device cpu: OpenMP threads (0: all cores)
  uint64_t seed = 1;
  int64_t eval_batch = 256;
  // ---- the record
  std::string out;         // run directory (default runs/<model>-<dataset>-<time>-<random>)
  bool overwrite = false;  // out may hold another run's files: they are removed (RunRecord)
  bool progress = true;    // print the progress bar / lines and epoch summaries
  // Steps between reads of the metric sums on the device (the loss and accuracy of the progress display and
  // the NaN/Inf check); 0: a tenth of an epoch. A terminal's progress bar reads more often (10 times a second).
  int64_t log_every = 0;
  std::string command;  // the exact command line, recorded in config.json
};

}  // namespace fovea::nn
