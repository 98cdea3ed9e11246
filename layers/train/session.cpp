#include "layers/train/session.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <type_traits>

#include "core/build_info.h"
#include "core/stream.h"
#include "cpu_reference/threading.h"
#include "layers/data/image.h"

namespace fovea::nn {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

Shape sample_shape(const data::Dataset& ds) {
  return ds.sample_shape();
}

// "dynamic loss scaling from 65536 (x2 after 2000 finite steps, x0.5 on a non-finite one)" or "loss scale 1024".
std::string loss_scale_text(const LossScaleConfig& c) {
  if (!c.dynamic) return fmt::format("fixed loss scale {}, non-finite steps skipped", c.init_scale);
  return fmt::format("dynamic loss scaling from {} (x{:g} after {} finite steps, x{:g} on a non-finite one)",
                     c.init_scale, c.growth_factor, c.growth_interval, c.backoff_factor);
}

// The run folder of a --resume path: the folder itself, or the checkpoint's folder.
std::string resume_folder(const std::string& resume) {
  if (std::filesystem::is_directory(resume)) return resume;
  const std::string parent = std::filesystem::path(resume).parent_path().string();
  return parent.empty() ? "." : parent;
}

}  // namespace

Precision parse_precision(std::string_view text, std::string_view what) {
  const std::optional<Precision> p = precision_from_name(text);
  FOVEA_CHECK(p, what, ": '", text, "' is not a precision (expected fp32, tf32, bf16 or fp16)");
  return *p;
}

double default_lr(OptimizerKind k) {
  return k == OptimizerKind::sgd ? 0.01 : 1e-3;
}

data::Dataset load_split(const std::string& dataset, const std::string& dir, data::Split split,
                         const data::FolderOptions& folder) {
  std::string name = dataset == "synthetic" ? "shapes" : dataset;
  static const char* const known[] = {"shapes", "rings", "mnist", "fashion-mnist", "cifar10", "cifar100", "folder"};
  bool ok = false;
  for (const char* k : known) ok = ok || name == k;
  FOVEA_CHECK(ok, "--dataset: unknown dataset '", dataset,
              "' (expected synthetic, rings, mnist, fashion-mnist, cifar10, cifar100 or folder)");
  if (name == "folder") {
    FOVEA_CHECK(!dir.empty(), "--data: dataset 'folder' needs --data DIR, a folder of class folders of images");
    return data::load_image_folder(dir, split, folder);
  }
  std::string d = dir;
  if (name == "shapes" || name == "rings") return data::load_dataset(name, d, split);
  if (d.empty() && name == "fashion-mnist" && std::filesystem::exists("/usr/share/datasets/fashion-mnist"))
    d = "/usr/share/datasets/fashion-mnist";
  FOVEA_CHECK(!d.empty(), "--data: dataset '", dataset, "' needs --data DIR, the folder with its files");
  FOVEA_CHECK(std::filesystem::is_directory(d), "--data: '", d, "' is not a directory");
  return data::load_dataset(name, d, split);
}

// ---------------------------------------------------------------- setup

TrainSession::TrainSession(const TrainConfig& config)
    : cfg_(config), ctx_(config.device, config.backend), loss_fn_(float(config.label_smoothing)) {
  // What apps/train.cpp has checked.
  const TrainConfig& c = cfg_;
  FOVEA_ASSERT(c.epochs > 0 && c.batch > 0 && c.eval_batch > 0, "epochs ", c.epochs, ", batch ", c.batch,
               ", eval batch ", c.eval_batch);
  FOVEA_ASSERT(c.lr >= 0 && std::isfinite(c.lr), "lr ", c.lr);
  FOVEA_ASSERT(c.weight_decay >= 0 && c.l1 >= 0 && c.l2 >= 0 && c.max_norm >= 0, "weight decay ", c.weight_decay,
               ", l1 ", c.l1, ", l2 ", c.l2, ", max norm ", c.max_norm);
  FOVEA_ASSERT(
      c.max_steps >= 0 && c.subset >= 0 && c.val_split >= 0 && c.early_stop >= 0 && c.threads >= 0 && c.log_every >= 0,
      "max steps ", c.max_steps, ", subset ", c.subset, ", val split ", c.val_split, ", early stop ", c.early_stop,
      ", threads ", c.threads, ", log every ", c.log_every);
  FOVEA_ASSERT(c.early_stop == 0 || c.val_split > 0, "early stopping without a validation split");
  FOVEA_ASSERT(c.label_smoothing >= 0 && c.label_smoothing < 1, "label smoothing ", c.label_smoothing);
  FOVEA_ASSERT(c.resume.empty() || c.init_from.empty(), "resume and init_from together");
  FOVEA_ASSERT(c.loss_scale.enabled == (c.precision == Precision::fp16), "precision ", precision_name(c.precision),
               " with loss scaling ", loss_scale_name(c.loss_scale));

  if (c.threads > 0) ref::set_num_threads(c.threads);
  ctx_.deterministic = c.deterministic || c.device.type != DeviceType::cuda;
  ctx_.precision = c.precision;  // conv and linear, forward and both gradients; evaluation too
  // Everything this session copies, fills and runs is ordered on one stream: the thread's current one.
  ctx_.stream = current_stream();
  lr_ = c.lr > 0 ? c.lr : default_lr(c.optimizer);
  best_val_ = INFINITY;

  load_data();
  build_model();

  OptimizerConfig oc;
  oc.kind = c.optimizer;
  oc.momentum = c.optimizer == OptimizerKind::sgd ? c.momentum : 0.0;
  oc.nesterov = c.nesterov;
  oc.weight_decay = c.weight_decay;
  oc.l1 = c.l1;
  oc.l2 = c.l2;
  oc.max_norm = c.max_norm;
  optimizer_ = std::make_unique<Optimizer>(oc, model_->parameters());
  FOVEA_CHECK(optimizer_->size() > 0, "nothing to train: every parameter is frozen (--freeze ", c.freeze, ")");
  if (c.loss_scale.enabled) optimizer_->enable_loss_scaling(ctx_, c.loss_scale);  // restore_optimizer restores it
  if (c.lr_backbone > 0) {
    // Two parameter groups: the head at --lr, the rest (the trainable part of it) at --lr-backbone.
    const std::vector<std::string> head = model_->head_paths();
    std::vector<std::string> backbone;
    for (const ParamRef& r : model_->parameters())
      if (r.param->trainable && std::find(head.begin(), head.end(), r.path) == head.end()) backbone.push_back(r.path);
    optimizer_->set_lr_scale(backbone, c.lr_backbone / lr_);
  }

  data::LoaderOptions& lo = loader_options_;
  // A --batch beyond the training set makes one batch of all of it: the buffers are sized by what is there, not
  // by the flag (--batch 10^12 is not an allocation of terabytes).
  lo.batch_size = std::min(c.batch, std::max<int64_t>(train_ds_.size(), 1));
  lo.shuffle = true;
  lo.drop_last = train_ds_.size() > c.batch;  // equal-sized batches keep BatchNorm statistics sane
  lo.augment = c.augment;
  lo.normalization = norm_;
  lo.seed = c.seed;
  lo.prefetch = 2;
  lo.pin_memory = c.device.type == DeviceType::cuda;
  lo.decode_threads = c.decode_threads;
  // On emu and cuda the device warps and normalises (ops::augment_forward); the loader only gathers raw pixels.
  lo.device_augment =
      c.device.type != DeviceType::cpu && train_ds_.is_image() && train_ds_.channels() <= AugmentParams::kMaxChannels;
  loader_ = std::make_unique<data::BatchLoader>(train_ds_, lo);
  steps_per_epoch_ = loader_->batches_per_epoch();
  log_every_ = c.log_every > 0 ? c.log_every : std::max<int64_t>(steps_per_epoch_ / 10, 1);
  // The schedule spans the steps the run will make: --max-steps shortens it like fewer epochs would.
  schedule_ = std::make_unique<LrSchedule>(c.schedule, lr_, total_steps(), steps_per_epoch_);

  if (resume_) restore_optimizer(*resume_);
  FOVEA_CHECK(step_ <= total_steps(), "--resume: the checkpoint is at step ", step_, ", past the ", total_steps(),
              " steps of --epochs ", c.epochs, c.max_steps > 0 ? cat(" and --max-steps ", c.max_steps) : "");
  last_good_ = c.resume.empty() ? std::string() : resume_checkpoint(c.resume);
  resume_.reset();

  open_record();
  model_->train(true);
}

TrainSession::~TrainSession() = default;

void TrainSession::load_data() {
  const TrainConfig& c = cfg_;
  data::FolderOptions fo;
  fo.image_size = c.image_size;
  fo.seed = c.seed;
  fo.skip_bad_images = c.skip_bad_images;
  fo.transform = c.image_transform;
  // A folder dataset without train/ and val/: --val-split holds out part of each class as the test split.
  const bool one_folder = c.dataset == "folder" && !c.data_dir.empty() && std::filesystem::is_directory(c.data_dir) &&
                          !data::image_folder_has_splits(c.data_dir);
  if (one_folder) fo.val_split = c.val_split;
  FOVEA_CHECK(!one_folder || c.early_stop == 0, "--early-stop: folder dataset '", c.data_dir,
              "' has no train/ and val/, so --val-split makes its test split; early stopping needs the layout "
              "DIR/train, DIR/val and --val-split to hold out a validation set");
  train_ds_ = load_split(c.dataset, c.data_dir, data::Split::train, fo);
  test_ds_ = load_split(c.dataset, c.data_dir, data::Split::test, fo);
  if (!c.classes.empty()) {
    const std::vector<int64_t> classes = data::parse_class_list(c.classes, train_ds_.num_classes(), "--classes");
    train_ds_ = data::select_classes(train_ds_, classes);
    test_ds_ = data::select_classes(test_ds_, classes);
  }
  FOVEA_CHECK(c.subset <= train_ds_.size(), "--subset ", c.subset, " is larger than the training set (",
              train_ds_.size(), " examples)");
  if (c.subset > 0) train_ds_ = data::random_subset(train_ds_, c.subset, c.seed);
  // --eval-subset, or by default as many test examples as --subset trains on: a quick run scores quickly.
  const int64_t n_test = c.eval_subset >= 0 ? c.eval_subset : std::min(c.subset, test_ds_.size());
  FOVEA_CHECK(n_test <= test_ds_.size(), "--eval-subset: must be <= ", test_ds_.size(), " (the test set's size), got ",
              n_test);
  if (n_test > 0) test_ds_ = data::random_subset(test_ds_, n_test, c.seed);
  if (c.val_split > 0 && !one_folder) {
    const int64_t n_val =
        c.val_split < 1 ? int64_t(std::llround(c.val_split * double(train_ds_.size()))) : int64_t(c.val_split);
    FOVEA_CHECK(n_val > 0 && n_val < train_ds_.size(), "--val-split ", c.val_split, " leaves ", n_val,
                " validation examples of ", train_ds_.size());
    data::TrainVal tv = data::split_validation(train_ds_, n_val, c.seed);
    train_ds_ = tv.train;
    val_ds_ = tv.val;
    val_ds_.file_transform.random_crop = false;  // a folder dataset's validation images get the eval transform
  }
  FOVEA_CHECK(!c.augment.any() || train_ds_.is_image(), "--augment needs an image dataset");
  const Shape a = sample_shape(train_ds_), b = sample_shape(test_ds_);
  FOVEA_CHECK(a == b && train_ds_.num_classes() == test_ds_.num_classes(), "dataset '", train_ds_.name,
              "' has samples of shape ", a.str(), " and ", train_ds_.num_classes(), " classes but '", test_ds_.name,
              "' has ", b.str(), " and ", test_ds_.num_classes());
}

// The model, and when resuming everything else the checkpoint holds.
void TrainSession::build_model() {
  const TrainConfig& c = cfg_;
  if (!c.resume.empty()) {
    const std::string path = resume_checkpoint(c.resume);
    resume_ = std::make_unique<Checkpoint>(load_checkpoint(path));
    model_ = model_from_checkpoint(*resume_, path);
    norm_ = resume_->meta.normalization;
  } else {
    if (train_ds_.from_files()) {
      // ImageNet's mean and deviation, as torchvision's transforms (and pretrained weights) expect.
      const data::EvalTransform imagenet;
      norm_.mean = imagenet.mean;
      norm_.stddev = imagenet.stddev;
    } else if (train_ds_.is_image()) {
      norm_ = data::channel_stats(train_ds_);
    }
    model_ = nn::build_model(c.model, sample_shape(train_ds_), train_ds_.num_classes());
  }
  const Shape want = sample_shape(train_ds_);
  FOVEA_CHECK(want == model_->sample_shape(), "the model expects samples of shape ", model_->sample_shape().str(),
              " but dataset '", train_ds_.name, "' has ", want.str());
  FOVEA_CHECK(model_->classes() == train_ds_.num_classes(), "the model has ", model_->classes(),
              " outputs but dataset '", train_ds_.name, "' has ", train_ds_.num_classes(), " classes");
  model_->to(c.device);
  if (c.resume.empty()) model_->initialize(ctx_, c.seed);
  if (!c.init_from.empty()) init_weights();
  if (!c.freeze.empty()) model_->freeze(c.freeze, "--freeze");
}

// --init-from (and --replace-head): a fovea checkpoint gives the tensors that match by name and shape; another
// framework's state_dict must match exactly (Model::load_state_dict strict), but for the head with --replace-head.
void TrainSession::init_weights() {
  const TrainConfig& c = cfg_;
  bool fovea_checkpoint = false;
  const std::map<std::string, Tensor> tensors = read_weights(c.init_from, &fovea_checkpoint);
  const std::vector<std::string> head = c.replace_head ? model_->head_paths() : std::vector<std::string>{};
  std::vector<std::string> skipped;
  try {
    model_->load_state_dict(tensors, /*strict=*/!fovea_checkpoint, &skipped, head);
  } catch (const Error& e) {
    rethrow_with_prefix(e, cat("--init-from '", c.init_from, "' for model ", c.model,
                               c.replace_head ? ": " : " (--replace-head re-creates the classifier): "));
  }
  const size_t entries = model_->parameters().size() + model_->states().size();
  FOVEA_CHECK(skipped.size() + head.size() < entries, "--init-from: no tensor of '", c.init_from,
              "' matches the model by name and shape (", tensors.size(), " tensors in the file, ", entries,
              " in the model); nothing would be initialised from it");
  if (c.progress) {
    fmt::print("initialised from {}", c.init_from);
    if (c.replace_head)
      fmt::print("; new head {} ({} classes, freshly initialised)", model_->head_name(), model_->classes());
    if (!skipped.empty()) {
      fmt::print("; kept the fresh initialisation of:");
      for (const std::string& s : skipped) fmt::print(" {}", s);
    }
    fmt::print("\n");
  }
}

void TrainSession::restore_optimizer(const Checkpoint& ckpt) {
  step_ = ckpt.meta.step;
  const nlohmann::json& rc = ckpt.meta.config;
  const int64_t spe = rc.value("steps_per_epoch", int64_t(-1));
  FOVEA_CHECK(spe == steps_per_epoch_, "--resume: the checkpoint was written with ", spe,
              " steps per epoch but this run has ", steps_per_epoch_,
              " (use the same dataset, --subset, --val-split and --batch)");
  FOVEA_CHECK(!ckpt.optimizer.empty(), "--resume: checkpoint '", resume_checkpoint(cfg_.resume),
              "' has no optimizer state");
  const std::string was = rc.value("optimizer", std::string()), now = optimizer_name(cfg_.optimizer);
  FOVEA_CHECK(was == now, "--resume: the checkpoint used optimizer '", was, "', this run '", now, "'");
  optimizer_->load_state_dict(ckpt.optimizer, cfg_.device);
  FOVEA_CHECK(optimizer_->step_count() == step_, "--resume: optimizer step ", optimizer_->step_count(),
              " differs from the checkpoint's step ", step_);
}

// The run folder, config.json, the checkpoints' metadata and the header line.
void TrainSession::open_record() {
  const TrainConfig& c = cfg_;
  const std::string dir = !c.out.empty()      ? c.out
                          : !c.resume.empty() ? resume_folder(c.resume)
                                              : default_run_dir(c.model, c.dataset);
  // A resumed run goes on writing into its own folder; any other folder must not hold a run (or --overwrite).
  std::error_code ec;
  const bool continues = !c.resume.empty() && std::filesystem::exists(dir) &&
                         std::filesystem::equivalent(dir, resume_folder(c.resume), ec);
  record_ = std::make_unique<RunRecord>(dir, c.resume.empty() ? -1 : step_, continues, c.overwrite);
  result_.device = c.device.str();
  result_.run_dir = record_->dir();
  result_.history = record_->history();

  nlohmann::json config = config_json(c);
  config["steps_per_epoch"] = steps_per_epoch_;
  config["device_resolved"] = c.device.str();
  config["model_spec"] = model_->spec();
  config["parameters"] = model_->num_parameters();
  config["train_examples"] = train_ds_.size();
  config["val_examples"] = val_ds_.size();
  config["test_examples"] = test_ds_.size();
  config["fovea_version"] = build_info().version;
  config["git_revision"] = build_info().git_revision;
  record_->write_config(c.command, config, model_->summary());

  meta_.dataset = c.dataset;
  meta_.class_names = train_ds_.class_names;
  meta_.normalization = norm_;
  meta_.config = config;

  if (c.progress) {
    fmt::print(
        "model {} ({} parameters{}), {} on {} ({} training, {} test{} examples), {} {} lr {:g}, backend {}{} {}\n",
        model_->name(), model_->num_parameters(),
        model_->num_trainable() != model_->num_parameters() ? fmt::format(", {} trainable", model_->num_trainable())
                                                            : std::string(),
        c.dataset, c.device.str(), train_ds_.size(), test_ds_.size(),
        val_ds_.size() ? fmt::format(", {} validation", val_ds_.size()) : std::string(), optimizer_name(c.optimizer),
        schedule_name(c.schedule), lr_,
        c.device.type == DeviceType::cpu && c.backend == ops::Backend::custom ? "reference"
                                                                              : ops::backend_name(c.backend),
        c.precision != Precision::fp32
            ? fmt::format(", precision {} (conv and linear; FP32 weights and optimizer{})", precision_name(c.precision),
                          c.loss_scale.enabled ? "; " + loss_scale_text(c.loss_scale) : std::string())
            : std::string(),
        step_ ? fmt::format("(resuming at step {})", step_) : std::string());
    fmt::print("run directory {}\n", record_->dir());
    std::fflush(stdout);
  }
}

// ---------------------------------------------------------------- steps

void TrainSession::begin_epoch_metrics() {
  sums_ = ops::metric_sums(ctx_);
  seen_ = 0;
}

DeviceBatch TrainSession::upload(const data::Batch& batch) {
  if (cfg_.device == kCPU) return {batch.images, Tensor(), batch.labels};
  DeviceBatch d;
  d.images = batch.images.upload(cfg_.device, ctx_.stream);
  if (loader_options_.device_augment && cfg_.augment.any()) d.warps = batch.warps.upload(cfg_.device, ctx_.stream);
  d.labels = batch.labels.upload(cfg_.device, ctx_.stream);
  return d;
}

void TrainSession::step(const DeviceBatch& batch) {
  FOVEA_ASSERT(sums_.defined(), "step before begin_epoch_metrics");
  const Tensor x = loader_options_.device_augment
                       ? ops::augment_forward(ctx_, batch.images, batch.warps, norm_.mean, norm_.stddev)
                       : batch.images;
  model_->set_rng(cfg_.seed, uint64_t(step_));
  model_->zero_grad();
  Output out = model_->forward(ctx_, x);
  LossOut l = loss_fn_.compute(ctx_, out.y, batch.labels);
  ops::accumulate_metrics(ctx_, l.loss, out.y, batch.labels, sums_, step_);
  if (optimizer_->loss_scaling()) optimizer_->scale_loss_grad(ctx_, l.dpred);  // the backward pass runs scaled
  model_->backward(ctx_, l.dpred, *out.saved, false);
  last_lr_ = schedule_->lr(step_);
  optimizer_->step(ctx_, last_lr_);
  ++step_;
  seen_ += batch.labels.numel();
}

ops::MetricSums TrainSession::read_metrics() {
  const ops::MetricSums s = ops::read_metric_sums(ctx_, sums_);
  if (s.non_finite()) diverged(s);
  return s;
}

void TrainSession::diverged(const ops::MetricSums& s) const {
  const int64_t bad = s.first_non_finite;  // the 0-based update whose loss was not finite
  throw TrainingDiverged(fmt::format(
      "training diverged: the loss is {} at step {} (epoch {}, batch {} of {}), noticed at step {} (the loss is "
      "checked on the device and read every {} steps and at the end of each epoch); {}. Try a lower --lr.",
      s.non_finite_loss, bad + 1, bad / steps_per_epoch_ + 1, bad % steps_per_epoch_ + 1, steps_per_epoch_, step_,
      log_every_,
      last_good_.empty() ? std::string("no checkpoint was written yet") : "the last good checkpoint is " + last_good_));
}

EvalResult TrainSession::evaluate(const data::Dataset& ds) {
  return nn::evaluate(*model_, ctx_, ds, norm_, cfg_.eval_batch);
}

void TrainSession::write_checkpoint(bool best) {
  meta_.epoch = step_ / steps_per_epoch_;
  meta_.step = step_;
  try {
    save_checkpoint(record_->checkpoint_path(), *model_, optimizer_.get(), meta_);
    if (best) save_checkpoint(record_->best_path(), *model_, nullptr, meta_);
  } catch (const UsageError&) {
    throw;
  } catch (const Error& e) {
    // Disk full, a file-size limit, a read-only folder: the file was not replaced.
    throw Error(cat(e.what(), " (at step ", step_, "); ",
                    last_good_.empty() ? std::string("no checkpoint was written before")
                                       : "the previous checkpoint " + last_good_ + " is kept"));
  }
  last_good_ = record_->checkpoint_path();
  result_.checkpoint = last_good_;
}

// ---------------------------------------------------------------- epochs

bool TrainSession::finished() const {
  return step_ >= total_steps() || result_.stopped_early || stop_requested();
}

EpochMetrics TrainSession::run_epoch() {
  FOVEA_ASSERT(!finished(), "run_epoch after the end of the run (step ", step_, ")");
  const int64_t epoch = step_ / steps_per_epoch_;
  const auto t_epoch = Clock::now();
  const data::LoaderStats stats0 = loader_->stats();
  loader_->start_epoch(epoch);
  const int64_t skip = step_ - epoch * steps_per_epoch_;  // resuming inside this epoch
  data::Batch batch;
  for (int64_t i = 0; i < skip; ++i) loader_->next(batch);
  // The epoch's last step: the end of the epoch, or of the run when --max-steps ends it inside this epoch.
  const int64_t end = std::min(steps_per_epoch_, total_steps() - epoch * steps_per_epoch_);
  Progress progress(cfg_.progress, epoch + 1, epochs(), end);
  begin_epoch_metrics();
  ops::MetricSums sums;
  int64_t b = skip, read_at = skip;
  bool partial = false;
  last_lr_ = schedule_->lr(step_);
  try {
    while (loader_->next(batch)) {
      step(upload(batch));
      ++b;
      if (after_step) after_step(*this);
      const bool stop_here = b < steps_per_epoch_ && (b >= end || stop_requested());
      const bool show = progress.due(b);
      // A read point: the host waits here, and only here, for the device.
      if (show || stop_here || b == steps_per_epoch_ || b % log_every_ == 0) {
        sums = read_metrics();
        read_at = b;
        const double elapsed = seconds_since(t_epoch), n = double(seen_);
        if (show) progress.show(b, sums.loss_sum / n, double(sums.correct) / n, n / elapsed, elapsed);
      }
      if (stop_here) {
        partial = true;
        break;
      }
    }
    if (read_at != b) sums = read_metrics();
  } catch (const TrainingDiverged&) {
    progress.finish();
    throw;
  }
  progress.finish();
  const double train_seconds = seconds_since(t_epoch);
  const data::LoaderStats stats1 = loader_->stats();

  EpochMetrics m;
  m.epoch = epoch + 1;
  m.train_loss = seen_ ? sums.loss_sum / double(seen_) : NAN;
  m.train_acc = seen_ ? double(sums.correct) / double(seen_) : NAN;
  m.lr = last_lr_;
  m.images_per_s = double(seen_) / train_seconds;
  m.loader_wait_share = (stats1.wait_seconds - stats0.wait_seconds) / train_seconds;
  m.loader_prepare_share = (stats1.prepare_seconds - stats0.prepare_seconds) / train_seconds;
  m.steps = step_;
  m.partial = partial;
  if (optimizer_->loss_scaling()) {
    // At the epoch's last read point the device is idle: this small copy waits for nothing.
    const LossScalerState s = optimizer_->loss_scaler_state();
    m.loss_scale = s.scale;
    m.skipped_steps = s.skipped;
  }
  const int64_t skipped = stats1.skipped_images - stats0.skipped_images;
  const EvalResult test = evaluate(test_ds_);
  m.test_loss = test.loss;
  m.test_acc = test.accuracy;
  bool improved = false;
  if (val_ds_.size() > 0) {
    const EvalResult val = evaluate(val_ds_);
    m.val_loss = val.loss;
    m.val_acc = val.accuracy;
    improved = val.loss < best_val_;
    if (improved) best_val_ = val.loss;
    epochs_without_improvement_ = improved ? 0 : epochs_without_improvement_ + 1;
  }
  m.seconds = seconds_since(t_epoch);
  if (cfg_.progress && (skipped > 0 || test.skipped > 0))
    fmt::print("epoch {}: skipped {} unreadable training images and {} test images (--skip-bad-images)\n", epoch + 1,
               skipped, test.skipped);

  write_checkpoint(improved);
  record_->add_epoch(m);
  result_.history = record_->history();
  result_.steps = step_;
  if (cfg_.progress) print_epoch_summary(m, epochs());
  result_.stopped = stop_requested();
  if (cfg_.early_stop > 0 && epochs_without_improvement_ >= cfg_.early_stop) {
    result_.stopped_early = true;
    if (cfg_.progress)
      fmt::print("early stop: no better validation loss for {} epochs; the best model is {}\n", cfg_.early_stop,
                 record_->best_path());
  }
  return m;
}

TrainResult TrainSession::run() {
  while (!finished()) run_epoch();
  if (stop_requested()) result_.stopped = true;
  result_.steps = step_;
  return result_;
}

std::string resume_checkpoint(const std::string& resume) {
  return std::filesystem::is_directory(resume) ? (std::filesystem::path(resume) / "checkpoint.safetensors").string()
                                               : resume;
}

TrainConfig resumed_config(const TrainConfig& given, const std::vector<std::string>& flags) {
  TrainConfig c = given;
  c.resume = resume_checkpoint(given.resume);
  const Checkpoint ckpt = load_checkpoint(c.resume);
  const nlohmann::json& saved = ckpt.meta.config;
  const nlohmann::json now = config_json(given);
  auto given_flag = [&](const std::string& flag) { return std::find(flags.begin(), flags.end(), flag) != flags.end(); };
  struct Field {
    const char* flag;
    const char* key;
    bool may_change;
  };
  static const Field fields[] = {
      {"--dataset", "dataset", false},
      {"--data", "data", true},
      {"--model", "model", false},
      {"--epochs", "epochs", true},
      {"--batch", "batch", false},
      {"--lr", "lr", false},
      {"--lr-backbone", "lr_backbone", false},
      {"--optimizer", "optimizer", false},
      {"--momentum", "momentum", false},
      {"--nesterov", "nesterov", false},
      {"--schedule", "schedule", false},
      {"--warmup", "warmup_epochs", false},
      {"--weight-decay", "weight_decay", false},
      {"--l1", "l1", false},
      {"--l2", "l2", false},
      {"--max-norm", "max_norm", false},
      {"--precision", "precision", false},
      {"--loss-scale", "loss_scale", false},
      {"--loss-scale-growth-interval", "loss_scale_growth_interval", false},
      {"--seed", "seed", false},
      {"--max-steps", "max_steps", true},
      {"--freeze", "freeze", false},
      {"--classes", "classes", false},
      {"--subset", "subset", false},
      {"--eval-subset", "eval_subset", true},
      {"--augment", "augment", false},
      {"--image-size", "image_size", false},
      {"--image-transform", "image_transform", false},
      {"--label-smoothing", "label_smoothing", false},
      {"--val-split", "val_split", false},
      {"--early-stop", "early_stop", true},
      {"--eval-batch", "eval_batch", true},
  };
  for (const Field& f : fields) {
    if (!given_flag(f.flag) || f.may_change || !saved.contains(f.key)) continue;
    FOVEA_CHECK(saved[f.key] == now[f.key], "--resume: ", f.flag, " ", now[f.key].dump(), " differs from the run's ",
                saved[f.key].dump(), " in '", c.resume,
                "'; a resumed run keeps its configuration (leave the flag out, or start a new run)");
  }
  // Everything the command line did not give comes from the checkpoint.
  auto restore = [&](const char* flag, const char* key, auto& field) {
    if (!given_flag(flag) && saved.contains(key)) field = saved[key].get<std::decay_t<decltype(field)>>();
  };
  restore("--dataset", "dataset", c.dataset);
  restore("--data", "data", c.data_dir);
  restore("--model", "model", c.model);
  restore("--epochs", "epochs", c.epochs);
  restore("--batch", "batch", c.batch);
  restore("--lr", "lr", c.lr);
  restore("--lr-backbone", "lr_backbone", c.lr_backbone);
  restore("--momentum", "momentum", c.momentum);
  restore("--nesterov", "nesterov", c.nesterov);
  restore("--weight-decay", "weight_decay", c.weight_decay);
  restore("--l1", "l1", c.l1);
  restore("--l2", "l2", c.l2);
  restore("--max-norm", "max_norm", c.max_norm);
  restore("--seed", "seed", c.seed);
  if (!given_flag("--precision") && saved.contains("precision"))
    c.precision = parse_precision(saved["precision"].get<std::string>(), "--resume: the checkpoint's precision");
  if (!given_flag("--loss-scale") && saved.contains("loss_scale")) {
    const std::string ls = saved["loss_scale"].get<std::string>();
    const int64_t interval = c.loss_scale.growth_interval;
    c.loss_scale = ls == "none" ? LossScaleConfig{} : parse_loss_scale(ls, "--resume: the checkpoint's loss scale");
    c.loss_scale.growth_interval = interval;
  }
  if (c.loss_scale.enabled) {
    restore("--loss-scale-growth-interval", "loss_scale_growth_interval", c.loss_scale.growth_interval);
    restore("(no flag)", "loss_scale_growth_factor", c.loss_scale.growth_factor);
    restore("(no flag)", "loss_scale_backoff_factor", c.loss_scale.backoff_factor);
  }
  restore("--max-steps", "max_steps", c.max_steps);
  restore("--freeze", "freeze", c.freeze);
  restore("--classes", "classes", c.classes);
  restore("--subset", "subset", c.subset);
  restore("--eval-subset", "eval_subset", c.eval_subset);
  restore("--label-smoothing", "label_smoothing", c.label_smoothing);
  restore("--val-split", "val_split", c.val_split);
  restore("--early-stop", "early_stop", c.early_stop);
  restore("--eval-batch", "eval_batch", c.eval_batch);
  restore("--image-size", "image_size", c.image_size);
  restore("--skip-bad-images", "skip_bad_images", c.skip_bad_images);
  restore("--image-transform", "image_transform", c.image_transform);
  if (!given_flag("--optimizer") && saved.contains("optimizer"))
    c.optimizer = parse_optimizer(saved["optimizer"].get<std::string>(), "--resume: the checkpoint's optimizer");
  const double warmup = c.schedule.warmup_epochs;
  if (!given_flag("--schedule") && saved.contains("schedule"))
    c.schedule = parse_schedule(saved["schedule"].get<std::string>(), "--resume: the checkpoint's schedule");
  c.schedule.warmup_epochs = warmup;
  restore("--warmup", "warmup_epochs", c.schedule.warmup_epochs);
  if (!given_flag("--augment") && saved.contains("augment"))
    c.augment = data::parse_augment(saved["augment"].get<std::string>(), "--resume: the checkpoint's augment");
  return c;
}

TrainResult train(const TrainConfig& config) {
  return TrainSession(config).run();
}

}  // namespace fovea::nn
