#include "layers/train/run_record.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <sys/file.h>
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/build_info.h"
#include "core/io.h"
#include "core/plot.h"
#include "core/png_io.h"

namespace fovea::nn {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string hms(double s) {
  if (!std::isfinite(s) || s < 0) return "--:--";
  const int64_t t = int64_t(s + 0.5);
  return t >= 3600 ? fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
                   : fmt::format("{}:{:02}", t / 60, t % 60);
}

// curves.png: loss above, accuracy below, one image.
void write_curves(const std::string& path, const std::vector<EpochMetrics>& history) {
  std::vector<double> x, trl, tel, val, tra, tea, vaa;
  for (const EpochMetrics& m : history) {
    x.push_back(double(m.epoch));
    trl.push_back(m.train_loss);
    tel.push_back(m.test_loss);
    val.push_back(m.val_acc >= 0 ? m.val_loss : NAN);
    tra.push_back(100 * m.train_acc);
    tea.push_back(100 * m.test_acc);
    vaa.push_back(m.val_acc >= 0 ? 100 * m.val_acc : NAN);
  }
  const bool has_val = !history.empty() && history.back().val_acc >= 0;
  PlotOptions o;
  o.height = 360;
  o.x_label = "epoch";
  o.y_label = "loss";
  std::vector<PlotSeries> loss{{"train", x, trl, plot_palette(0)}, {"test", x, tel, plot_palette(1)}};
  std::vector<PlotSeries> acc{{"train", x, tra, plot_palette(0)}, {"test", x, tea, plot_palette(1)}};
  if (has_val) {
    loss.push_back({"validation", x, val, plot_palette(2)});
    acc.push_back({"validation", x, vaa, plot_palette(2)});
  }
  const Tensor top = render_curves("loss", loss, o);
  o.y_label = "accuracy (%)";
  const Tensor bottom = render_curves("accuracy", acc, o);
  Tensor both = Tensor::empty({3, top.size(1) + bottom.size(1), top.size(2)});
  const int64_t plane_top = top.size(1) * top.size(2), plane_bottom = bottom.size(1) * bottom.size(2);
  for (int64_t c = 0; c < 3; ++c) {
    std::copy_n(top.data<float>() + c * plane_top, plane_top, both.data<float>() + c * (plane_top + plane_bottom));
    std::copy_n(bottom.data<float>() + c * plane_bottom, plane_bottom,
                both.data<float>() + c * (plane_top + plane_bottom) + plane_top);
  }
  write_png(path, both);
}

}  // namespace

nlohmann::json metrics_json(const EpochMetrics& m) {
  nlohmann::json j;
  j["epoch"] = m.epoch;
  j["train_loss"] = m.train_loss;
  j["train_acc"] = m.train_acc;
  j["test_loss"] = m.test_loss;
  j["test_acc"] = m.test_acc;
  if (m.val_acc >= 0) {
    j["val_loss"] = m.val_loss;
    j["val_acc"] = m.val_acc;
  }
  j["lr"] = m.lr;
  j["images_per_s"] = m.images_per_s;
  j["seconds"] = m.seconds;
  j["loader_wait_share"] = m.loader_wait_share;
  j["loader_prepare_share"] = m.loader_prepare_share;
  j["steps"] = m.steps;
  if (m.partial) j["partial"] = true;
  if (m.skipped_steps >= 0) {
    j["loss_scale"] = m.loss_scale;
    j["skipped_steps"] = m.skipped_steps;
  }
  return j;
}

EpochMetrics metrics_from_json(const nlohmann::json& j) {
  EpochMetrics m;
  m.epoch = j.at("epoch").get<int64_t>();
  m.train_loss = j.at("train_loss").get<double>();
  m.train_acc = j.at("train_acc").get<double>();
  m.test_loss = j.at("test_loss").get<double>();
  m.test_acc = j.at("test_acc").get<double>();
  m.val_loss = j.value("val_loss", -1.0);
  m.val_acc = j.value("val_acc", -1.0);
  m.lr = j.value("lr", 0.0);
  m.images_per_s = j.value("images_per_s", 0.0);
  m.seconds = j.value("seconds", 0.0);
  m.loader_wait_share = j.value("loader_wait_share", 0.0);
  m.loader_prepare_share = j.value("loader_prepare_share", 0.0);
  m.steps = j.value("steps", int64_t(0));
  m.partial = j.value("partial", false);
  m.loss_scale = j.value("loss_scale", -1.0);
  m.skipped_steps = j.value("skipped_steps", int64_t(-1));
  return m;
}

nlohmann::json config_json(const TrainConfig& c) {
  nlohmann::json j;
  j["dataset"] = c.dataset;
  j["data"] = c.data_dir;
  j["model"] = c.model;
  j["epochs"] = c.epochs;
  j["batch"] = c.batch;
  j["lr"] = c.lr > 0 ? c.lr : default_lr(c.optimizer);
  j["lr_backbone"] = c.lr_backbone;
  j["optimizer"] = optimizer_name(c.optimizer);
  j["momentum"] = c.momentum;
  j["nesterov"] = c.nesterov;
  j["schedule"] = schedule_name(c.schedule);
  j["warmup_epochs"] = c.schedule.warmup_epochs;
  j["weight_decay"] = c.weight_decay;
  j["l1"] = c.l1;
  j["l2"] = c.l2;
  j["max_norm"] = c.max_norm;
  j["device"] = c.device.str();
  j["backend"] = ops::backend_name(c.backend);
  j["precision"] = std::string(precision_name(c.precision));
  j["loss_scale"] = loss_scale_name(c.loss_scale);
  if (c.loss_scale.enabled) {
    j["loss_scale_growth_factor"] = c.loss_scale.growth_factor;
    j["loss_scale_backoff_factor"] = c.loss_scale.backoff_factor;
    j["loss_scale_growth_interval"] = c.loss_scale.growth_interval;
  }
  j["seed"] = c.seed;
  j["deterministic"] = c.deterministic;
  j["max_steps"] = c.max_steps;
  j["out"] = c.out;
  j["overwrite"] = c.overwrite;
  j["resume"] = c.resume;
  j["init_from"] = c.init_from;
  j["replace_head"] = c.replace_head;
  j["freeze"] = c.freeze;
  j["classes"] = c.classes;
  j["subset"] = c.subset;
  j["eval_subset"] = c.eval_subset;
  j["augment"] = data::augment_spec(c.augment);
  j["image_size"] = c.image_size;
  j["skip_bad_images"] = c.skip_bad_images;
  j["image_transform"] = c.image_transform;
  j["label_smoothing"] = c.label_smoothing;
  j["val_split"] = c.val_split;
  j["early_stop"] = c.early_stop;
  j["eval_batch"] = c.eval_batch;
  j["threads"] = c.threads;
  return j;
}

std::string default_run_dir(const std::string& model, const std::string& dataset) {
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&now));
  std::string name = model;
  for (char& ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_') ch = '_';
  if (name.size() > 24) name = "custom";
  std::random_device random;
  for (;;) {
    const std::string dir = fmt::format("runs/{}-{}-{}-{:04x}", name, dataset, stamp, random() & 0xffff);
    if (!std::filesystem::exists(dir)) return dir;
  }
}

// ---------------------------------------------------------------- RunRecord

const std::vector<std::string>& RunRecord::run_files() {
  static const std::vector<std::string> files{"config.json", "metrics.jsonl",          "metrics.csv",
                                              "curves.png",  "checkpoint.safetensors", "best.safetensors"};
  return files;
}

RunRecord::RunRecord(std::string dir, int64_t resume_step, bool continues, bool overwrite)
    : dir_(dir.empty() ? "." : std::move(dir)), resume_step_(resume_step) {
  std::filesystem::create_directories(dir_);
  // The lock first: of two runs started together into one folder, exactly one goes on.
  const std::string lock = dir_ + "/.fovea.lock";
  lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) throw Error(cat("cannot create '", lock, "': ", std::strerror(errno)));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char pid[32] = {};
    const ssize_t n = ::pread(lock_fd_, pid, sizeof pid - 1, 0);
    ::close(lock_fd_);
    lock_fd_ = -1;
    if (err != EWOULDBLOCK) throw Error(cat("cannot lock '", lock, "': ", std::strerror(err)));
    FOVEA_FAIL("--out: the run folder '", dir_, "' is in use by another fovea process",
               n > 0 ? cat(" (pid ", std::string(pid, size_t(n)), ")") : std::string(),
               "; wait for it to finish or choose another --out");
  }
  const std::string me = std::to_string(::getpid());
  // The pid only serves the message of a run refused above: failing to write it changes nothing.
  if (::ftruncate(lock_fd_, 0) == 0) (void)!::pwrite(lock_fd_, me.data(), me.size(), 0);
  remove_stale_temp_files(dir_);
  if (!continues) {
    std::string found;
    for (const std::string& f : run_files())
      if (std::filesystem::exists(dir_ + "/" + f)) found += (found.empty() ? "" : ", ") + f;
    if (!found.empty() && !overwrite) {
      ::close(lock_fd_);
      lock_fd_ = -1;
      FOVEA_FAIL("--out: the folder '", dir_, "' holds another run (", found, "); continue it with --resume ", dir_,
                 ", replace it with --overwrite, or choose another --out");
    }
    for (const std::string& f : run_files()) std::filesystem::remove(dir_ + "/" + f);
  }
  if (resume_step >= 0 && std::filesystem::exists(dir_ + "/metrics.jsonl")) {
    std::ifstream in(dir_ + "/metrics.jsonl");
    std::string line;
    while (std::getline(in, line))
      if (!line.empty()) {
        EpochMetrics m = metrics_from_json(nlohmann::json::parse(line));
        if (m.steps <= resume_step) history_.push_back(m);
      }
  }
}

RunRecord::~RunRecord() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the lock
}

void RunRecord::write_config(const std::string& command, const nlohmann::json& config,
                             const nlohmann::json& model_summary) {
  nlohmann::json top;
  top["command"] = command;
  if (resume_step_ >= 0) {
    nlohmann::json resumes = nlohmann::json::array();
    const std::string path = dir_ + "/config.json";
    if (std::filesystem::exists(path)) {
      const nlohmann::json old = nlohmann::json::parse(read_file(path), nullptr, /*allow_exceptions=*/false);
      if (old.is_object() && old.contains("command")) top["command"] = old["command"];
      if (old.is_object() && old.contains("resumes") && old["resumes"].is_array()) resumes = old["resumes"];
    }
    resumes.push_back({{"command", command}, {"step", resume_step_}});
    top["resumes"] = resumes;
  }
  top["config"] = config;
  top["model_summary"] = model_summary;
  write_file_atomic(dir_ + "/config.json", top.dump(2) + "\n");
}

void RunRecord::add_epoch(const EpochMetrics& epoch) {
  history_.push_back(epoch);
  std::string jsonl, csv =
                         "epoch,train_loss,train_acc,test_loss,test_acc,val_loss,val_acc,lr,images_per_s,seconds,"
                         "loader_wait_share,loader_prepare_share,steps\n";
  for (const EpochMetrics& m : history_) {
    jsonl += metrics_json(m).dump() + "\n";
    auto opt = [](double v) { return v >= 0 ? fmt::format("{:.6g}", v) : std::string(); };
    csv += fmt::format("{},{:.6g},{:.6g},{:.6g},{:.6g},{},{},{:.6g},{:.6g},{:.6g},{:.4f},{:.4f},{}\n", m.epoch,
                       m.train_loss, m.train_acc, m.test_loss, m.test_acc, opt(m.val_loss), opt(m.val_acc), m.lr,
                       m.images_per_s, m.seconds, m.loader_wait_share, m.loader_prepare_share, m.steps);
  }
  write_file_atomic(dir_ + "/metrics.jsonl", jsonl);
  write_file_atomic(dir_ + "/metrics.csv", csv);
  write_curves(dir_ + "/curves.png", history_);
}

// ---------------------------------------------------------------- progress

Progress::Progress(bool enabled, int64_t epoch, int64_t epochs, int64_t steps)
    : enabled_(enabled), tty_(isatty(STDOUT_FILENO) == 1), epoch_(epoch), epochs_(epochs), steps_(steps) {}

bool Progress::due(int64_t step) const {
  if (!enabled_) return false;
  if (tty_) return step >= steps_ || seconds_since(last_) >= 0.1;
  const int64_t tenth = std::max<int64_t>(steps_ / 10, 1);
  return step % tenth == 0 || step == steps_;
}

void Progress::show(int64_t step, double loss, double acc, double images_per_s, double elapsed) {
  if (!enabled_) return;
  const double eta = step > 0 ? elapsed / double(step) * double(steps_ - step) : NAN;
  if (tty_) {
    last_ = Clock::now();
    const int width = 24, filled = int(double(width) * double(step) / double(std::max<int64_t>(steps_, 1)));
    fmt::print("\r\033[Kepoch {}/{} [{}{}] {}/{} loss {:.4f} acc {:5.1f}% {:.0f} img/s ETA {}", epoch_, epochs_,
               std::string(size_t(filled), '#'), std::string(size_t(width - filled), '.'), step, steps_, loss,
               100 * acc, images_per_s, hms(eta));
  } else {
    fmt::print("epoch {}/{} step {}/{} loss {:.4f} acc {:.1f}% {:.0f} img/s ETA {}\n", epoch_, epochs_, step, steps_,
               loss, 100 * acc, images_per_s, hms(eta));
  }
  std::fflush(stdout);
}

void Progress::finish() {
  if (enabled_ && tty_) {
    fmt::print("\r\033[K");
    std::fflush(stdout);
  }
}

void print_epoch_summary(const EpochMetrics& m, int64_t epochs) {
  fmt::print(
      "epoch {}/{}{}: train loss {:.4f} acc {:.2f}% | {}test loss {:.4f} acc {:.2f}% | lr {:.3g} | "
      "{:.0f} img/s | {:.1f} s (loader wait {:.1f}%)\n",
      m.epoch, epochs, m.partial ? " (partial)" : "", m.train_loss, 100 * m.train_acc,
      m.val_acc >= 0 ? fmt::format("val loss {:.4f} acc {:.2f}% | ", m.val_loss, 100 * m.val_acc) : std::string(),
      m.test_loss, 100 * m.test_acc, m.lr, m.images_per_s, m.seconds, 100 * m.loader_wait_share);
  if (m.skipped_steps >= 0)
    fmt::print("epoch {}/{}: loss scale {}, {} of {} steps skipped so far (non-finite FP16 gradients)\n", m.epoch,
               epochs, m.loss_scale, m.skipped_steps, m.steps);
  std::fflush(stdout);
}

}  // namespace fovea::nn
