// Training as a session: set up once (data, model, optimizer, run folder), then epochs of steps, each epoch
// followed by evaluation, a checkpoint and the run record. `fovea train` calls run(); a caller that needs to
// stop, resume or watch a run drives the pieces (run_epoch, or upload/step/read_metrics) itself.
//
// Everything random is a function of the seed: initialisation (Philox on the device), the data order and
// augmentation (data::permutation / augment_affine of (seed, epoch, sample)), dropout masks (of (seed,
// step)). With the same config a run repeats bit for bit on the same device and thread count, and a resumed
// run continues exactly where the checkpoint left off.
//
// A step never waits for the device. Its loss and accuracy are added into a small tensor of sums on the
// device (ops::accumulate_metrics), which the host reads at the read points: every log_every steps, whenever
// the progress display redraws, and at the end of an epoch. The NaN/Inf check is a flag in the same sums: a
// diverged loss is reported at the next read point, naming the step where it happened and the step where it
// was noticed. Batches are uploaded through page-locked staging memory without waiting either
// (Tensor::upload), so a whole step, upload included, performs no host synchronisation: tests/session_test.cpp
// counts them on emu (TrainStepSyncs.StepOnEmuPerformsNoHostSynchronisation).
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "layers/data/data.h"
#include "layers/data/loader.h"
#include "layers/nn/checkpoint.h"
#include "layers/nn/loss.h"
#include "layers/nn/models.h"
#include "layers/nn/optimizer.h"
#include "layers/ops/metrics.h"
#include "layers/ops/ops.h"
#include "layers/train/config.h"
#include "layers/train/evaluation.h"
#include "layers/train/run_record.h"

namespace fovea::nn {

struct TrainResult {
  std::vector<EpochMetrics> history;
  int64_t steps = 0;
  std::string run_dir, checkpoint;  // the last checkpoint written
  bool stopped_early = false;       // early stopping on the validation loss
  bool stopped = false;             // request_stop()
  std::string device;
};

// Training stopped because the loss became NaN or Inf.
class TrainingDiverged : public Error {
 public:
  using Error::Error;
};

// A batch on the training device, as step() takes it.
struct DeviceBatch {
  Tensor images;  // the raw pixels when the device augments (uint8 or float32), else the prepared float32 batch
  Tensor warps;   // device augmentation with --augment: float32 [N, 6], one Affine per image; else undefined
  Tensor labels;  // int64 [N]
};

// A dataset name (synthetic -> shapes) and directory (a default for fashion-mnist when the Debian package is
// installed) into a loaded split. Errors name the flag (--dataset, --data) or the file.
// "folder" is a folder dataset (data::load_image_folder with `folder`'s options).
data::Dataset load_split(const std::string& dataset, const std::string& dir, data::Split split,
                         const data::FolderOptions& folder = {});

class TrainSession {
 public:
  // Setup: loads and splits the data, builds the model (or restores it, its optimizer state and step from
  // config.resume), creates the run folder and writes config.json; prints the run's header line.
  explicit TrainSession(const TrainConfig& config);
  ~TrainSession();
  TrainSession(const TrainSession&) = delete;
  TrainSession& operator=(const TrainSession&) = delete;

  // Epochs until the last one, --max-steps, early stopping or a stop request.
  TrainResult run();
  bool finished() const;
  // The epoch of the current step, from that step on (a run resumed inside an epoch skips the batches done),
  // then the evaluation, the checkpoint and the run record. Throws TrainingDiverged.
  EpochMetrics run_epoch();
  // Ends the current epoch after the step in progress, as a partial epoch with its checkpoint, and then the
  // run. Safe from another thread; a signal handler can call it (it only sets an atomic flag).
  void request_stop() { stop_.store(true, std::memory_order_relaxed); }
  bool stop_requested() const { return stop_.load(std::memory_order_relaxed); }
  // Called by run_epoch after every step (before its read point), e.g. to stop at a given step.
  std::function<void(TrainSession&)> after_step;

  // ---- a step, in pieces
  // Starts the metric sums of an epoch (run_epoch calls it; zeroed on the device, no synchronisation).
  void begin_epoch_metrics();
  // The batch onto the training device, without waiting for it (the loader may refill `batch` at once).
  DeviceBatch upload(const data::Batch& batch);
  // One update on a batch on the device: augmentation (when the device does it), forward, loss, backward,
  // optimizer step (with its penalties and max-norm constraint), metric accumulation. Enqueues work and reads
  // nothing back: no host synchronisation.
  void step(const DeviceBatch& batch);
  // The sums of the epoch so far (one device-to-host copy); throws TrainingDiverged if a loss was NaN or Inf.
  ops::MetricSums read_metrics();

  EvalResult evaluate(const data::Dataset& ds);
  // checkpoint.safetensors (with the optimizer), and best.safetensors (without) when `best`.
  void write_checkpoint(bool best);

  // ---- state
  const TrainConfig& config() const { return cfg_; }
  int64_t step_count() const { return step_; }
  int64_t steps_per_epoch() const { return steps_per_epoch_; }
  // The steps of the run: --epochs of them, or --max-steps when fewer; the schedule, the progress display
  // and the epoch count (epochs()) are of this run, not of the --epochs it would have been.
  int64_t total_steps() const {
    const int64_t all = cfg_.epochs * steps_per_epoch_;
    return cfg_.max_steps > 0 ? std::min(all, cfg_.max_steps) : all;
  }
  int64_t epochs() const { return (total_steps() + steps_per_epoch_ - 1) / steps_per_epoch_; }
  int64_t log_every() const { return log_every_; }
  double peak_lr() const { return lr_; }
  Model& model() { return *model_; }
  ops::Context& context() { return ctx_; }
  data::BatchLoader& loader() { return *loader_; }
  const data::Dataset& train_set() const { return train_ds_; }
  const data::Dataset& val_set() const { return val_ds_; }
  const data::Dataset& test_set() const { return test_ds_; }
  const TrainResult& result() const { return result_; }

 private:
  void load_data();
  void build_model();
  void restore_optimizer(const Checkpoint& ckpt);
  void open_record();
  [[noreturn]] void diverged(const ops::MetricSums& s) const;

  TrainConfig cfg_;
  ops::Context ctx_;
  data::Dataset train_ds_, val_ds_, test_ds_;
  data::Normalization norm_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Checkpoint> resume_;  // while setting up from config.resume
  std::unique_ptr<Optimizer> optimizer_;
  double lr_ = 0;  // the schedule's peak
  data::LoaderOptions loader_options_;
  std::unique_ptr<data::BatchLoader> loader_;
  int64_t steps_per_epoch_ = 0, log_every_ = 1;
  std::unique_ptr<LrSchedule> schedule_;
  CrossEntropyLoss loss_fn_;
  std::unique_ptr<RunRecord> record_;
  CheckpointMeta meta_;
  TrainResult result_;

  int64_t step_ = 0;       // updates done
  double last_lr_ = 0;     // of the last update
  std::string last_good_;  // the last checkpoint written or resumed from
  double best_val_ = 0;    // the best validation loss so far (+inf before the first)
  int64_t epochs_without_improvement_ = 0;
  std::atomic<bool> stop_{false};

  Tensor sums_;       // the metric sums of the epoch in progress, on the device
  int64_t seen_ = 0;  // examples in them
};

// --resume RUN_DIR or CHECKPOINT: the checkpoint file (RUN_DIR/checkpoint.safetensors for a folder).
std::string resume_checkpoint(const std::string& resume);

// The configuration of a run resumed from given.resume: what the checkpoint recorded (dataset, model, epochs,
// batch, optimizer and its settings, schedule, seed, augmentation, subsets, penalties, ...), so that the run
// continues exactly as the uninterrupted one. `flags` are the flags given on this command line ("--lr"); one
// whose value differs from the checkpoint's is refused, naming it. These may differ, as they leave the
// arithmetic of the steps alone: --device, --backend, --deterministic, --threads, --data (the folder moved),
// --out, --eval-batch, --eval-subset, --early-stop, --log-every; and the run's length, --epochs and
// --max-steps (a longer run: a schedule that depends on the length, like cosine, then follows the new length
// from the resumed step on, so it is not the original run continued).
TrainConfig resumed_config(const TrainConfig& given, const std::vector<std::string>& flags);

// TrainSession(config).run().
TrainResult train(const TrainConfig& config);

}  // namespace fovea::nn
