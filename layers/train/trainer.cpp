#include "layers/train/trainer.h"

#include <fmt/core.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/build_info.h"
#include "core/io.h"
#include "core/plot.h"
#include "core/png_io.h"
#include "cpu_reference/threading.h"
#include "layers/data/loader.h"
#include "layers/nn/checkpoint.h"
#include "layers/nn/loss.h"
#include "layers/nn/optimizer.h"

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

// A progress bar on a terminal (redrawn in place, at most 10 times a second), plain lines at every
// tenth of the epoch otherwise (logs, pipes, CI).
class Progress {
 public:
  Progress(bool enabled, int64_t epoch, int64_t epochs, int64_t steps)
      : enabled_(enabled), tty_(isatty(STDOUT_FILENO) == 1), epoch_(epoch), epochs_(epochs), steps_(steps) {}

  void update(int64_t step, double loss, double acc, double images_per_s, double elapsed) {
    if (!enabled_) return;
    const double eta = step > 0 ? elapsed / double(step) * double(steps_ - step) : NAN;
    if (tty_) {
      if (step < steps_ && seconds_since(last_) < 0.1) return;
      last_ = Clock::now();
      const int width = 24, filled = int(double(width) * double(step) / double(std::max<int64_t>(steps_, 1)));
      fmt::print("\r\033[Kepoch {}/{} [{}{}] {}/{} loss {:.4f} acc {:5.1f}% {:.0f} img/s ETA {}", epoch_, epochs_,
                 std::string(size_t(filled), '#'), std::string(size_t(width - filled), '.'), step, steps_, loss,
                 100 * acc, images_per_s, hms(eta));
      std::fflush(stdout);
    } else {
      const int64_t tenth = std::max<int64_t>(steps_ / 10, 1);
      if (step % tenth != 0 && step != steps_) return;
      fmt::print("epoch {}/{} step {}/{} loss {:.4f} acc {:.1f}% {:.0f} img/s ETA {}\n", epoch_, epochs_, step, steps_,
                 loss, 100 * acc, images_per_s, hms(eta));
      std::fflush(stdout);
    }
  }
  void finish() {
    if (enabled_ && tty_) {
      fmt::print("\r\033[K");
      std::fflush(stdout);
    }
  }

 private:
  bool enabled_, tty_;
  int64_t epoch_, epochs_, steps_;
  Clock::time_point last_{};
};

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
  return m;
}

void write_metrics(const std::string& dir, const std::vector<EpochMetrics>& history) {
  std::string jsonl, csv =
                         "epoch,train_loss,train_acc,test_loss,test_acc,val_loss,val_acc,lr,images_per_s,seconds,"
                         "loader_wait_share,loader_prepare_share,steps\n";
  for (const EpochMetrics& m : history) {
    jsonl += metrics_json(m).dump() + "\n";
    auto opt = [](double v) { return v >= 0 ? fmt::format("{:.6g}", v) : std::string(); };
    csv += fmt::format("{},{:.6g},{:.6g},{:.6g},{:.6g},{},{},{:.6g},{:.6g},{:.6g},{:.4f},{:.4f},{}\n", m.epoch,
                       m.train_loss, m.train_acc, m.test_loss, m.test_acc, opt(m.val_loss), opt(m.val_acc), m.lr,
                       m.images_per_s, m.seconds, m.loader_wait_share, m.loader_prepare_share, m.steps);
  }
  write_file_atomic(dir + "/metrics.jsonl", jsonl);
  write_file_atomic(dir + "/metrics.csv", csv);

  // curves.png: loss above, accuracy below, one image.
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
  write_png(dir + "/curves.png", both);
}

std::string default_run_dir(const TrainConfig& c) {
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&now));
  std::string model = c.model;
  for (char& ch : model)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_') ch = '_';
  if (model.size() > 24) model = "custom";
  return fmt::format("runs/{}-{}-{}", model, c.dataset, stamp);
}

nlohmann::json config_json(const TrainConfig& c) {
  nlohmann::json j;
  j["dataset"] = c.dataset;
  j["data"] = c.data_dir;
  j["model"] = c.model;
  j["epochs"] = c.epochs;
  j["batch"] = c.batch;
  j["lr"] = c.lr;
  j["optimizer"] = c.optimizer;
  j["momentum"] = c.momentum;
  j["nesterov"] = c.nesterov;
  j["schedule"] = c.schedule;
  j["warmup_epochs"] = c.warmup_epochs;
  j["weight_decay"] = c.weight_decay;
  j["l1"] = c.l1;
  j["l2"] = c.l2;
  j["max_norm"] = c.max_norm;
  j["device"] = c.device;
  j["backend"] = c.backend;
  j["seed"] = c.seed;
  j["deterministic"] = c.deterministic;
  j["max_steps"] = c.max_steps;
  j["out"] = c.out;
  j["resume"] = c.resume;
  j["init_from"] = c.init_from;
  j["freeze"] = c.freeze;
  j["subset"] = c.subset;
  j["augment"] = c.augment;
  j["label_smoothing"] = c.label_smoothing;
  j["val_split"] = c.val_split;
  j["early_stop"] = c.early_stop;
  j["eval_batch"] = c.eval_batch;
  j["threads"] = c.threads;
  return j;
}

bool finite(float v) {
  return std::isfinite(v);
}

}  // namespace

// ---------------------------------------------------------------- setup helpers

Device resolve_device(const std::string& text, std::string* notice) {
  if (text == "auto") {
    if (cuda_available()) return kCUDA;
    if (notice)
      *notice = fmt::format("no GPU is visible ({}), so this runs on the CPU device (--device cpu)",
                            cuda_unavailable_reason());
    return kCPU;
  }
  Device d;
  try {
    d = parse_device(text);
  } catch (const Error&) {
    FOVEA_FAIL("--device: '", text, "' is not a device (expected auto, cpu, emu, cuda or cuda:N)");
  }
  require_device(d);
  return d;
}

data::Augment parse_augment(const std::string& text) {
  data::Augment a;
  if (text.empty() || text == "none") return a;
  if (text == "standard") {
    a.pad_crop = 4;
    a.hflip = true;
    return a;
  }
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const size_t colon = item.find(':');
    const std::string name = item.substr(0, colon);
    const std::string arg = colon == std::string::npos ? "" : item.substr(colon + 1);
    auto number = [&](double lo, double hi) {
      FOVEA_CHECK(!arg.empty(), "--augment: '", name, "' needs a value, e.g. ", name, ":", hi / 2);
      double v = 0;
      try {
        size_t used = 0;
        v = std::stod(arg, &used);
        FOVEA_CHECK(used == arg.size(), "");
      } catch (...) {
        FOVEA_FAIL("--augment: '", item, "': '", arg, "' is not a number");
      }
      FOVEA_CHECK(v >= lo && v <= hi, "--augment: '", item, "': value must be in [", lo, ", ", hi, "]");
      return v;
    };
    if (name == "crop") {
      a.pad_crop = int(number(0, 64));
    } else if (name == "flip") {
      FOVEA_CHECK(arg.empty(), "--augment: 'flip' takes no value");
      a.hflip = true;
    } else if (name == "translate") {
      a.translate = float(number(0, 0.5));
    } else if (name == "rotate") {
      a.rotate_deg = float(number(0, 180));
    } else if (name == "zoom") {
      a.zoom = float(number(0, 0.9));
    } else if (name == "shear") {
      a.shear_deg = float(number(0, 60));
    } else {
      FOVEA_FAIL("--augment: unknown augmentation '", item,
                 "' (expected none, standard, or a list of crop:PAD, flip, translate:FRACTION, rotate:DEGREES, "
                 "zoom:FRACTION, shear:DEGREES)");
    }
  }
  return a;
}

data::Dataset load_split(const std::string& dataset, const std::string& dir, data::Split split) {
  std::string name = dataset == "synthetic" ? "shapes" : dataset;
  static const char* const known[] = {"shapes", "rings", "mnist", "fashion-mnist", "cifar10", "cifar100"};
  bool ok = false;
  for (const char* k : known) ok = ok || name == k;
  FOVEA_CHECK(ok, "--dataset: unknown dataset '", dataset,
              "' (expected synthetic, rings, mnist, fashion-mnist, cifar10 or cifar100)");
  std::string d = dir;
  if (name == "shapes" || name == "rings") return data::load_dataset(name, d, split);
  if (d.empty() && name == "fashion-mnist" && std::filesystem::exists("/usr/share/datasets/fashion-mnist"))
    d = "/usr/share/datasets/fashion-mnist";
  FOVEA_CHECK(!d.empty(), "--data: dataset '", dataset, "' needs --data DIR, the folder with its files");
  FOVEA_CHECK(std::filesystem::is_directory(d), "--data: '", d, "' is not a directory");
  return data::load_dataset(name, d, split);
}

data::Dataset shift_images(const data::Dataset& ds, int dx, int dy) {
  FOVEA_CHECK(ds.is_image(), "shift_images: dataset '", ds.name, "' has no images");
  data::Dataset out = ds;
  out.images = Tensor::zeros(ds.images.shape(), ds.images.dtype(), kCPU);
  const int64_t planes = ds.size() * ds.channels(), H = ds.height(), W = ds.width();
  const size_t es = dtype_size(ds.images.dtype());
  const auto* src = static_cast<const unsigned char*>(ds.images.raw_data());
  auto* dst = static_cast<unsigned char*>(out.images.raw_data());
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t y = 0; y < H; ++y) {
      const int64_t sy = y - dy;
      if (sy < 0 || sy >= H) continue;
      for (int64_t x = 0; x < W; ++x) {
        const int64_t sx = x - dx;
        if (sx < 0 || sx >= W) continue;
        std::memcpy(dst + ((p * H + y) * W + x) * es, src + ((p * H + sy) * W + sx) * es, es);
      }
    }
  out.name = fmt::format("{} shifted ({}, {})", ds.name, dx, dy);
  return out;
}

std::vector<double> EvalResult::per_class_accuracy() const {
  std::vector<double> out;
  for (size_t c = 0; c < confusion.size(); ++c) {
    int64_t total = 0;
    for (int64_t v : confusion[c]) total += v;
    out.push_back(total ? double(confusion[c][c]) / double(total) : NAN);
  }
  return out;
}

EvalResult evaluate(Model& model, ops::Context& ctx, const data::Dataset& ds, const data::Normalization& norm,
                    int64_t batch) {
  const bool was_training = model.training();
  model.train(false);
  data::LoaderOptions lo;
  lo.batch_size = batch;
  lo.shuffle = false;
  lo.normalization = norm;
  lo.prefetch = 1;
  data::BatchLoader loader(ds, lo);
  loader.start_epoch(0);
  const int64_t C = model.classes();
  EvalResult r;
  r.confusion.assign(size_t(C), std::vector<int64_t>(size_t(C), 0));
  double loss_sum = 0;
  int64_t correct = 0;
  data::Batch b;
  while (loader.next(b)) {
    const Tensor x = ctx.device == kCPU ? b.images : b.images.to(ctx.device);
    const Tensor y = ctx.device == kCPU ? b.labels : b.labels.to(ctx.device);
    Output out = model.forward(ctx, x);
    ops::CrossEntropyOut ce = ops::cross_entropy(ctx, out.y, y, 0.0f);
    const int64_t n = b.labels.numel();
    loss_sum += double(loss_value(ce.loss)) * double(n);
    const std::vector<float> logits = out.y.to_vector<float>();
    const int64_t* labels = b.labels.data<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      const float* row = logits.data() + i * C;
      int64_t best = 0;
      for (int64_t c = 1; c < C; ++c)
        if (row[c] > row[best]) best = c;
      FOVEA_CHECK(labels[i] >= 0 && labels[i] < C, "evaluate: label ", labels[i], " of dataset '", ds.name,
                  "' is outside the model's ", C, " classes");
      ++r.confusion[size_t(labels[i])][size_t(best)];
      correct += best == labels[i];
    }
    r.count += n;
  }
  model.train(was_training);
  r.loss = r.count ? loss_sum / double(r.count) : NAN;
  r.accuracy = r.count ? double(correct) / double(r.count) : NAN;
  return r;
}

// ---------------------------------------------------------------- training

TrainResult train(const TrainConfig& cfg) {
  FOVEA_CHECK(cfg.epochs > 0, "--epochs must be > 0, got ", cfg.epochs);
  FOVEA_CHECK(cfg.batch > 0, "--batch must be > 0, got ", cfg.batch);
  FOVEA_CHECK(cfg.lr >= 0 && std::isfinite(cfg.lr), "--lr must be >= 0, got ", cfg.lr);
  FOVEA_CHECK(cfg.weight_decay >= 0, "--weight-decay must be >= 0, got ", cfg.weight_decay);
  FOVEA_CHECK(cfg.max_steps >= 0, "--max-steps must be >= 0, got ", cfg.max_steps);
  FOVEA_CHECK(cfg.subset >= 0, "--subset must be >= 0, got ", cfg.subset);
  FOVEA_CHECK(cfg.val_split >= 0, "--val-split must be >= 0, got ", cfg.val_split);
  FOVEA_CHECK(cfg.early_stop >= 0, "--early-stop must be >= 0, got ", cfg.early_stop);
  FOVEA_CHECK(cfg.early_stop == 0 || cfg.val_split > 0, "--early-stop needs a validation split (--val-split)");
  FOVEA_CHECK(cfg.label_smoothing >= 0 && cfg.label_smoothing < 1, "--label-smoothing must be in [0, 1), got ",
              cfg.label_smoothing);
  FOVEA_CHECK(cfg.resume.empty() || cfg.init_from.empty(), "--resume and --init-from cannot be combined");
  const OptimizerKind opt_kind = [&] {
    try {
      return parse_optimizer(cfg.optimizer);
    } catch (const Error& e) {
      rethrow_with_prefix(e, "--optimizer: ");
    }
  }();
  ScheduleConfig sched;
  try {
    sched = parse_schedule(cfg.schedule);
  } catch (const Error& e) {
    rethrow_with_prefix(e, "--schedule: ");
  }
  sched.warmup_epochs = cfg.warmup_epochs;
  const data::Augment augment = parse_augment(cfg.augment);
  ops::Backend backend;
  try {
    backend = ops::parse_backend(cfg.backend);
  } catch (const Error& e) {
    rethrow_with_prefix(e, "--backend: ");
  }

  std::string notice;
  const Device device = resolve_device(cfg.device, &notice);
  if (!notice.empty()) std::fprintf(stderr, "fovea: %s\n", notice.c_str());
  FOVEA_CHECK(cfg.threads >= 0, "--threads must be >= 0, got ", cfg.threads);
  if (cfg.threads > 0) ref::set_num_threads(cfg.threads);
  ops::Context ctx(device, backend);
  ctx.deterministic = cfg.deterministic || device.type != DeviceType::cuda;

  // ---- data
  data::Dataset train_ds = load_split(cfg.dataset, cfg.data_dir, data::Split::train);
  const data::Dataset test_ds = load_split(cfg.dataset, cfg.data_dir, data::Split::test);
  FOVEA_CHECK(cfg.subset <= train_ds.size(), "--subset ", cfg.subset, " is larger than the training set (",
              train_ds.size(), " examples)");
  if (cfg.subset > 0) train_ds = data::random_subset(train_ds, cfg.subset, cfg.seed);
  data::Dataset val_ds;
  if (cfg.val_split > 0) {
    const int64_t n_val =
        cfg.val_split < 1 ? int64_t(std::llround(cfg.val_split * double(train_ds.size()))) : int64_t(cfg.val_split);
    FOVEA_CHECK(n_val > 0 && n_val < train_ds.size(), "--val-split ", cfg.val_split, " leaves ", n_val,
                " validation examples of ", train_ds.size());
    data::TrainVal tv = data::split_validation(train_ds, n_val, cfg.seed);
    train_ds = tv.train;
    val_ds = tv.val;
  }
  FOVEA_CHECK(augment.any() == false || train_ds.is_image(), "--augment needs an image dataset");
  {
    std::vector<int64_t> a = train_ds.images.shape().vec(), b = test_ds.images.shape().vec();
    a.erase(a.begin());
    b.erase(b.begin());
    FOVEA_CHECK(a == b && train_ds.num_classes() == test_ds.num_classes(), "dataset '", train_ds.name,
                "' has samples of shape ", Shape(a).str(), " and ", train_ds.num_classes(), " classes but '",
                test_ds.name, "' has ", Shape(b).str(), " and ", test_ds.num_classes());
  }

  // ---- model (and, when resuming, everything else from the checkpoint)
  std::unique_ptr<Model> model;
  Checkpoint resume_ckpt;
  data::Normalization norm;
  if (!cfg.resume.empty()) {
    resume_ckpt = load_checkpoint(cfg.resume);
    model = model_from_checkpoint(resume_ckpt, cfg.resume);
    norm = resume_ckpt.meta.normalization;
  } else {
    if (train_ds.is_image()) norm = data::channel_stats(train_ds);
    std::vector<int64_t> dims = train_ds.images.shape().vec();
    dims.erase(dims.begin());
    model = build_model(cfg.model, Shape(dims), train_ds.num_classes());
  }
  {
    std::vector<int64_t> want = train_ds.images.shape().vec();
    want.erase(want.begin());
    FOVEA_CHECK(Shape(want) == model->sample_shape(), "the model expects samples of shape ",
                model->sample_shape().str(), " but dataset '", train_ds.name, "' has ", Shape(want).str());
    FOVEA_CHECK(model->classes() == train_ds.num_classes(), "the model has ", model->classes(),
                " outputs but dataset '", train_ds.name, "' has ", train_ds.num_classes(), " classes");
  }
  model->to(device);
  if (cfg.resume.empty()) model->initialize(ctx, cfg.seed);
  if (!cfg.init_from.empty()) {
    const Checkpoint src = load_checkpoint(cfg.init_from);
    std::vector<std::string> skipped;
    model->load_state_dict(src.model, /*strict=*/false, &skipped);
    if (cfg.progress) {
      fmt::print("initialised from {}", cfg.init_from);
      if (!skipped.empty()) {
        fmt::print("; kept the fresh initialisation of:");
        for (const std::string& s : skipped) fmt::print(" {}", s);
      }
      fmt::print("\n");
    }
  }
  if (!cfg.freeze.empty()) {
    std::vector<std::string> frozen;
    try {
      frozen = model->freeze(cfg.freeze);
    } catch (const Error& e) {
      rethrow_with_prefix(e, "--freeze: ");
    }
  }

  OptimizerConfig oc;
  oc.kind = opt_kind;
  oc.momentum = opt_kind == OptimizerKind::sgd ? cfg.momentum : 0.0;
  oc.nesterov = cfg.nesterov;
  oc.weight_decay = cfg.weight_decay;
  oc.l1 = cfg.l1;
  oc.l2 = cfg.l2;
  oc.max_norm = cfg.max_norm;
  Optimizer optimizer(oc, model->parameters());
  FOVEA_CHECK(optimizer.size() > 0, "nothing to train: every parameter is frozen (--freeze ", cfg.freeze, ")");
  const double lr = cfg.lr > 0 ? cfg.lr : (opt_kind == OptimizerKind::sgd ? 0.01 : 1e-3);

  data::LoaderOptions lo;
  lo.batch_size = cfg.batch;
  lo.shuffle = true;
  lo.drop_last = train_ds.size() > cfg.batch;  // equal-sized batches keep BatchNorm statistics sane
  lo.augment = augment;
  lo.normalization = norm;
  lo.seed = cfg.seed;
  lo.prefetch = 2;
  lo.pin_memory = device.type == DeviceType::cuda;
  // On emu and cuda the device warps and normalises (ops::augment_forward); the loader only gathers raw pixels.
  lo.device_augment =
      device.type != DeviceType::cpu && train_ds.is_image() && train_ds.channels() <= AugmentParams::kMaxChannels;
  data::BatchLoader loader(train_ds, lo);
  const int64_t steps_per_epoch = loader.batches_per_epoch();
  const LrSchedule schedule(sched, lr, cfg.epochs * steps_per_epoch, steps_per_epoch);

  int64_t step = 0;
  if (!cfg.resume.empty()) {
    step = resume_ckpt.meta.step;
    const nlohmann::json& rc = resume_ckpt.meta.config;
    const int64_t spe = rc.value("steps_per_epoch", int64_t(-1));
    FOVEA_CHECK(spe == steps_per_epoch, "--resume: the checkpoint was written with ", spe,
                " steps per epoch but this run has ", steps_per_epoch,
                " (use the same dataset, --subset, --val-split and --batch)");
    FOVEA_CHECK(!resume_ckpt.optimizer.empty(), "--resume: checkpoint '", cfg.resume, "' has no optimizer state");
    FOVEA_CHECK(rc.value("optimizer", std::string()) == cfg.optimizer, "--resume: the checkpoint used optimizer '",
                rc.value("optimizer", std::string()), "', this run '", cfg.optimizer, "'");
    optimizer.load_state_dict(resume_ckpt.optimizer, device);
    FOVEA_CHECK(optimizer.step_count() == step, "--resume: optimizer step ", optimizer.step_count(),
                " differs from the checkpoint's step ", step);
  }
  const int64_t total_steps = cfg.epochs * steps_per_epoch;
  FOVEA_CHECK(step <= total_steps, "--resume: the checkpoint is at step ", step, ", past the ", total_steps,
              " steps of --epochs ", cfg.epochs);

  // ---- run directory
  TrainResult result;
  result.device = device.str();
  result.run_dir = !cfg.out.empty()      ? cfg.out
                   : !cfg.resume.empty() ? std::filesystem::path(cfg.resume).parent_path().string()
                                         : default_run_dir(cfg);
  if (result.run_dir.empty()) result.run_dir = ".";
  std::filesystem::create_directories(result.run_dir);
  const std::string ckpt_path = result.run_dir + "/checkpoint.safetensors";
  const std::string best_path = result.run_dir + "/best.safetensors";
  if (!cfg.resume.empty() && std::filesystem::exists(result.run_dir + "/metrics.jsonl")) {
    std::ifstream in(result.run_dir + "/metrics.jsonl");
    std::string line;
    while (std::getline(in, line))
      if (!line.empty()) {
        EpochMetrics m = metrics_from_json(nlohmann::json::parse(line));
        if (m.steps <= step) result.history.push_back(m);
      }
  }

  nlohmann::json config = config_json(cfg);
  config["lr"] = lr;
  config["steps_per_epoch"] = steps_per_epoch;
  config["device_resolved"] = device.str();
  config["model_spec"] = model->spec();
  config["parameters"] = model->num_parameters();
  config["train_examples"] = train_ds.size();
  config["val_examples"] = val_ds.size();
  config["test_examples"] = test_ds.size();
  config["fovea_version"] = build_info().version;
  config["git_revision"] = build_info().git_revision;
  {
    nlohmann::json top;
    top["command"] = cfg.command;
    top["config"] = config;
    top["model_summary"] = model->summary();
    write_file_atomic(result.run_dir + "/config.json", top.dump(2) + "\n");
  }

  CheckpointMeta meta;
  meta.dataset = cfg.dataset;
  meta.class_names = train_ds.class_names;
  meta.normalization = norm;
  meta.config = config;

  if (cfg.progress) {
    fmt::print("model {} ({} parameters{}), {} on {} ({} training, {} test{} examples), {} {} lr {:g} {}\n",
               model->name(), model->num_parameters(),
               model->num_trainable() != model->num_parameters() ? fmt::format(", {} trainable", model->num_trainable())
                                                                 : std::string(),
               cfg.dataset, device.str(), train_ds.size(), test_ds.size(),
               val_ds.size() ? fmt::format(", {} validation", val_ds.size()) : std::string(), cfg.optimizer,
               schedule_name(sched), lr, step ? fmt::format("(resuming at step {})", step) : std::string());
    fmt::print("run directory {}\n", result.run_dir);
    std::fflush(stdout);
  }

  CrossEntropyLoss loss_fn(float(cfg.label_smoothing));
  double best_val = INFINITY;
  int64_t epochs_without_improvement = 0;
  std::string last_good = cfg.resume.empty() ? std::string() : cfg.resume;
  model->train(true);

  for (int64_t epoch = step / steps_per_epoch; epoch < cfg.epochs; ++epoch) {
    if (cfg.max_steps > 0 && step >= cfg.max_steps) break;
    const auto t_epoch = Clock::now();
    const data::LoaderStats stats0 = loader.stats();
    loader.start_epoch(epoch);
    const int64_t skip = step - epoch * steps_per_epoch;  // resuming inside this epoch
    data::Batch batch;
    for (int64_t i = 0; i < skip; ++i) loader.next(batch);
    Progress progress(cfg.progress, epoch + 1, cfg.epochs, steps_per_epoch);
    double loss_sum = 0;
    int64_t correct = 0, seen = 0, b = skip;
    bool partial = false;
    double last_lr = schedule.lr(step);
    while (loader.next(batch)) {
      const Tensor x = device == kCPU      ? batch.images
                       : lo.device_augment ? ops::augment_forward(ctx, batch.images.to(device),
                                                                  augment.any() ? batch.warps.to(device) : Tensor(),
                                                                  norm.mean, norm.stddev)
                                           : batch.images.to(device);
      const Tensor y = device == kCPU ? batch.labels : batch.labels.to(device);
      model->set_rng(cfg.seed, uint64_t(step));
      model->zero_grad();
      Output out = model->forward(ctx, x);
      LossOut l = loss_fn.compute(ctx, out.y, y);
      const float loss = loss_value(l.loss);
      if (!finite(loss)) {
        progress.finish();
        throw TrainingDiverged(fmt::format(
            "training diverged: the loss is {} at step {} (epoch {}, batch {} of {}); {}. Try a lower --lr.", loss,
            step + 1, epoch + 1, b + 1, steps_per_epoch,
            last_good.empty() ? std::string("no checkpoint was written yet")
                              : "the last good checkpoint is " + last_good));
      }
      const int64_t n = batch.labels.numel();
      const int64_t ok = ops::count_correct(ctx, out.y, y);
      model->backward(ctx, l.dpred, *out.saved, false);
      last_lr = schedule.lr(step);
      optimizer.step(ctx, last_lr);
      ++step;
      ++b;
      loss_sum += double(loss) * double(n);
      correct += ok;
      seen += n;
      const double elapsed = seconds_since(t_epoch);
      progress.update(b, loss_sum / double(seen), double(correct) / double(seen), double(seen) / elapsed, elapsed);
      if (cfg.max_steps > 0 && step >= cfg.max_steps && b < steps_per_epoch) {
        partial = true;
        break;
      }
    }
    progress.finish();
    const double train_seconds = seconds_since(t_epoch);
    const data::LoaderStats stats1 = loader.stats();

    EpochMetrics m;
    m.epoch = epoch + 1;
    m.train_loss = seen ? loss_sum / double(seen) : NAN;
    m.train_acc = seen ? double(correct) / double(seen) : NAN;
    m.lr = last_lr;
    m.images_per_s = double(seen) / train_seconds;
    m.loader_wait_share = (stats1.wait_seconds - stats0.wait_seconds) / train_seconds;
    m.loader_prepare_share = (stats1.prepare_seconds - stats0.prepare_seconds) / train_seconds;
    m.steps = step;
    m.partial = partial;
    const EvalResult test = evaluate(*model, ctx, test_ds, norm, cfg.eval_batch);
    m.test_loss = test.loss;
    m.test_acc = test.accuracy;
    bool improved = false;
    if (val_ds.size() > 0) {
      const EvalResult val = evaluate(*model, ctx, val_ds, norm, cfg.eval_batch);
      m.val_loss = val.loss;
      m.val_acc = val.accuracy;
      improved = val.loss < best_val;
      if (improved) best_val = val.loss;
      epochs_without_improvement = improved ? 0 : epochs_without_improvement + 1;
    }
    m.seconds = seconds_since(t_epoch);
    result.history.push_back(m);

    meta.epoch = step / steps_per_epoch;
    meta.step = step;
    save_checkpoint(ckpt_path, *model, &optimizer, meta);
    if (improved) save_checkpoint(best_path, *model, nullptr, meta);
    last_good = ckpt_path;
    result.checkpoint = ckpt_path;
    write_metrics(result.run_dir, result.history);

    if (cfg.progress) {
      fmt::print(
          "epoch {}/{}{}: train loss {:.4f} acc {:.2f}% | {}test loss {:.4f} acc {:.2f}% | lr {:.3g} | "
          "{:.0f} img/s | {:.1f} s (loader wait {:.1f}%)\n",
          epoch + 1, cfg.epochs, partial ? " (partial)" : "", m.train_loss, 100 * m.train_acc,
          val_ds.size() ? fmt::format("val loss {:.4f} acc {:.2f}% | ", m.val_loss, 100 * m.val_acc) : std::string(),
          m.test_loss, 100 * m.test_acc, m.lr, m.images_per_s, m.seconds, 100 * m.loader_wait_share);
      std::fflush(stdout);
    }
    if (cfg.early_stop > 0 && epochs_without_improvement >= cfg.early_stop) {
      result.stopped_early = true;
      if (cfg.progress)
        fmt::print("early stop: no better validation loss for {} epochs; the best model is {}\n", cfg.early_stop,
                   best_path);
      break;
    }
  }
  result.steps = step;
  return result;
}

}  // namespace fovea::nn
