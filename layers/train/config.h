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

// The arithmetic of the training step's convolutions and linear layers (ops::Context::precision; the semantics
// are cpu_reference/gemm.h's): fp32, tf32 or bf16. The weights, gradients, activations and the optimizer stay
// FP32 (master weights); each conv/linear op rounds its operands to the type, sums in FP32 and rounds its output
// once, forward and both gradients (PyTorch's autocast, without casting the tensors). fp16 trains with loss scaling
// (TrainConfig::loss_scale, torch.cuda.amp.GradScaler's semantics: FP16 gradients overflow at 65504 and small
// ones underflow); BF16 and TF32 need none (FP32's exponent range).
Precision parse_precision(std::string_view text, std::string_view what = "precision");  // fp32 | tf32 | bf16 | fp16

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
  std::string classes;       // train and score on these classes only ("0-4", "1,3,5"), relabelled 0..k-1; "" all
  data::Augment augment;     // of the training images (data::parse_augment)
  // ---- folder datasets (dataset "folder", data::load_image_folder)
  int64_t image_size = 224;                     // the side of the samples the images are cropped and resized to
  bool skip_bad_images = false;                 // skip (and count) files that do not decode, instead of stopping
  int decode_threads = 0;                       // image decoding threads of the loader (0: the cores, at most 8)
  std::string image_transform = "torchvision";  // data::FolderOptions::transform
  // ---- model
  std::string model = "small_cnn";  // zoo name or spec (build_model)
  std::string resume;               // checkpoint to continue from (model, optimizer, step, normalisation)
  std::string init_from;      // weights that initialise the model: a fovea checkpoint (the tensors that match by name
                              // and shape), or a PyTorch .pth / safetensors state_dict (strict, as load_weights)
  bool replace_head = false;  // init_from: the classifier (Model::head_paths) keeps its fresh initialisation
  std::string freeze;         // what to freeze (Model::freeze: a module name and all before it, or indices), ""
  // ---- optimisation
  int64_t epochs = 3;
  int64_t batch = 64;
  OptimizerKind optimizer = OptimizerKind::sgd;
  double lr = 0;           // peak learning rate; 0: default_lr(optimizer)
  double lr_backbone = 0;  // peak learning rate of every parameter but the head's; 0: lr
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
  LossScaleConfig loss_scale;  // enabled with precision fp16, and only then
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
