// The record of a training run: its folder (config.json, metrics.jsonl, metrics.csv, curves.png; the
// checkpoints are the session's) and the progress display on stdout. Everything here runs on the host at
// the points where the session has read its numbers from the device; nothing here touches a device.
#pragma once
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "layers/train/config.h"

namespace fovea::nn {

struct EpochMetrics {
  int64_t epoch = 0;  // 1-based
  double train_loss = 0, train_acc = 0, test_loss = 0, test_acc = 0;
  double val_loss = -1, val_acc = -1;  // -1: no validation split
  double lr = 0, images_per_s = 0, seconds = 0;
  double loader_wait_share = 0;     // share of the training time spent waiting for batches
  double loader_prepare_share = 0;  // loader thread busy time / training time (CPU work beside the step)
  int64_t steps = 0;                // updates done at the end of this epoch
  bool partial = false;             // stopped inside the epoch (--max-steps, a stop request)
  double loss_scale = -1;           // with loss scaling (--precision fp16): the scale at the end of the epoch
  int64_t skipped_steps = -1;       // and the optimizer updates skipped so far (non-finite gradients); else -1
};

nlohmann::json metrics_json(const EpochMetrics& m);  // one line of metrics.jsonl
EpochMetrics metrics_from_json(const nlohmann::json& j);

// The "config" object of config.json and of the checkpoint's metadata: every field of `c`, the typed ones
// in their canonical text (parse_schedule, data::parse_augment, ... read them back).
nlohmann::json config_json(const TrainConfig& c);

// runs/<model>-<dataset>-<YYYYmmdd-HHMMSS>-<4 hex digits> (a spec that is not a plain name becomes "custom"): the
// random suffix keeps two runs started in the same second apart (and the folder lock catches the rest).
std::string default_run_dir(const std::string& model, const std::string& dataset);

class RunRecord {
 public:
  // Creates `dir` (and its parents) and locks it (flock on dir/.fovea.lock, held while this object lives): a
  // second run into the same folder is refused naming the process that holds it. A folder holding another run's
  // files (config.json, checkpoints, metrics) is refused unless `continues` (this run resumes that run's
  // checkpoint) or `overwrite` (--overwrite: those files are removed first). Temporary files of dead processes
  // (NAME.tmp.PID) are removed. With resume_step >= 0, keeps the epochs of an existing metrics.jsonl that ended
  // at or before that step, so that a resumed run continues its curves.
  RunRecord(std::string dir, int64_t resume_step, bool continues = false, bool overwrite = false);
  ~RunRecord();
  RunRecord(const RunRecord&) = delete;
  RunRecord& operator=(const RunRecord&) = delete;

  const std::string& dir() const { return dir_; }
  std::string checkpoint_path() const { return dir_ + "/checkpoint.safetensors"; }
  std::string best_path() const { return dir_ + "/best.safetensors"; }
  const std::vector<EpochMetrics>& history() const { return history_; }

  // The files of a run in a folder (the lock file aside).
  static const std::vector<std::string>& run_files();

  // config.json: {"command": ..., "config": ..., "model_summary": ...}, written atomically. A resumed run keeps
  // the "command" that started the run (when the folder's config.json has it) and adds its own command and step
  // to "resumes".
  void write_config(const std::string& command, const nlohmann::json& config, const nlohmann::json& model_summary);
  // Appends an epoch and rewrites metrics.jsonl, metrics.csv and curves.png (atomically).
  void add_epoch(const EpochMetrics& m);

 private:
  std::string dir_;
  int64_t resume_step_ = -1;
  int lock_fd_ = -1;
  std::vector<EpochMetrics> history_;
};

// A progress bar on a terminal (redrawn in place, at most 10 times a second), plain lines at every tenth of
// the epoch otherwise (logs, pipes, CI), nothing when disabled. The session asks due() after each step and,
// when it is, reads its metric sums from the device and calls show(): the display decides how often the
// host waits for the device.
class Progress {
 public:
  Progress(bool enabled, int64_t epoch, int64_t epochs, int64_t steps);

  bool due(int64_t step) const;  // step: batches done in this epoch (1-based)
  void show(int64_t step, double loss, double acc, double images_per_s, double elapsed);
  void finish();  // clears the bar of a terminal

 private:
  bool enabled_, tty_;
  int64_t epoch_, epochs_, steps_;
  std::chrono::steady_clock::time_point last_{};
};

// "epoch 2/3 (partial): train loss 0.1234 acc 95.00% | val ... | test loss ... | lr ... | img/s | s (loader wait %)"
void print_epoch_summary(const EpochMetrics& m, int64_t epochs);

}  // namespace fovea::nn
