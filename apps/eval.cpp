// fovea eval: accuracy, per-class accuracy, confusion matrix and the translation test of a checkpoint.
#include <fmt/core.h>

#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>

#include "apps/command.h"
#include "apps/flags.h"
#include "core/io.h"
#include "layers/nn/checkpoint.h"
#include "layers/train/evaluation.h"
#include "layers/train/session.h"

namespace fovea::app {
namespace {

struct EvalOptions {
  std::string checkpoint, dataset, data_dir, device = "auto", backend = "auto", json;
  int64_t batch = 256, subset = 0, image_size = 0;
  double val_split = -1;
  bool skip_bad_images = false;
  std::vector<int> shifts{1, 2, 3};
  bool no_shifts = false;
};

// Progress on stderr: a line redrawn in place on a terminal, one line per pass otherwise (logs, pipes).
struct EvalProgress {
  bool tty = isatty(STDERR_FILENO) == 1;
  std::chrono::steady_clock::time_point last{};
  std::string label;
  void start(std::string what, int64_t total) {
    label = std::move(what);
    if (!tty) fmt::print(stderr, "eval: {} ({} examples)\n", label, total);
  }
  std::function<void(int64_t, int64_t)> callback() {
    return [this](int64_t done, int64_t total) {
      if (!tty) return;
      const auto now = std::chrono::steady_clock::now();
      if (done < total && now - last < std::chrono::milliseconds(100)) return;
      last = now;
      fmt::print(stderr, "\r\033[Keval: {} {}/{}", label, done, total);
      if (done == total) fmt::print(stderr, "\r\033[K");
    };
  }
};

int run_eval(const EvalOptions& o) {
  refuse_output_over_input(o.json, "--json", o.checkpoint, "--checkpoint");
  const nn::Checkpoint ckpt = nn::load_checkpoint(o.checkpoint);
  std::unique_ptr<nn::Model> model = nn::model_from_checkpoint(ckpt, o.checkpoint);
  const std::string dataset = o.dataset.empty() ? ckpt.meta.dataset : o.dataset;
  const std::string dir = o.data_dir.empty() ? ckpt.meta.config.value("data", std::string()) : o.data_dir;
  const Device device = resolve_device(o.device, "--device");
  const ops::Backend backend = resolve_backend(o.backend, device, "--backend");
  ops::Context ctx(device, backend);
  model->to(device);
  // Folder datasets: the checkpoint's run settings, unless given here.
  const nlohmann::json& rc = ckpt.meta.config;
  data::FolderOptions fo;
  fo.image_size = o.image_size > 0 ? o.image_size : rc.value("image_size", int64_t(224));
  fo.val_split = o.val_split >= 0 ? o.val_split : rc.value("val_split", 0.0);
  fo.seed = rc.value("seed", uint64_t(1));
  fo.skip_bad_images = o.skip_bad_images || rc.value("skip_bad_images", false);
  fo.transform = rc.value("image_transform", std::string("torchvision"));
  data::Dataset test = nn::load_split(dataset, dir, data::Split::test, fo);
  // A model trained on some of the classes (--classes) is scored on those, unless told another dataset.
  const std::string classes = o.dataset.empty() ? ckpt.meta.config.value("classes", std::string()) : std::string();
  if (!classes.empty())
    test = data::select_classes(test, data::parse_class_list(classes, test.num_classes(), "the checkpoint's classes"));
  FOVEA_CHECK(o.subset <= test.size(), "--subset ", o.subset, " is larger than the test set (", test.size(),
              " examples)");
  if (o.subset > 0) test = data::subset(test, o.subset);
  FOVEA_CHECK(test.num_classes() == model->classes(), "eval: dataset '", dataset, "' has ", test.num_classes(),
              " classes but the checkpoint's model has ", model->classes());

  EvalProgress progress;
  progress.start(fmt::format("{} test set on {}", dataset, device.str()), test.size());
  const nn::EvalResult r = nn::evaluate(*model, ctx, test, ckpt.meta.normalization, o.batch, progress.callback());
  nlohmann::json j;
  j["checkpoint"] = o.checkpoint;
  j["dataset"] = dataset;
  j["examples"] = r.count;
  j["accuracy"] = r.accuracy;
  j["loss"] = r.loss;
  j["per_class_accuracy"] = r.per_class_accuracy();
  j["confusion"] = r.confusion;

  fmt::print("{}: model {} ({} parameters), {} epochs, {} steps\n", o.checkpoint, model->name(),
             model->num_parameters(), ckpt.meta.epoch, ckpt.meta.step);
  int64_t correct = 0;
  for (size_t c = 0; c < r.confusion.size(); ++c) correct += r.confusion[c][c];
  fmt::print("{} test set on {}: accuracy {:.2f}% ({}/{}), loss {:.4f}\n", dataset, device.str(), 100 * r.accuracy,
             correct, r.count, r.loss);
  if (r.skipped > 0) fmt::print("skipped {} unreadable images (--skip-bad-images)\n", r.skipped);
  fmt::print("\n");
  j["skipped_images"] = r.skipped;
  const std::vector<double> per_class = r.per_class_accuracy();
  fmt::print("per-class accuracy:\n");
  for (size_t c = 0; c < per_class.size(); ++c) {
    int64_t total = 0;
    for (int64_t v : r.confusion[c]) total += v;
    fmt::print("  {:>3} {:<14} {:6.2f}% ({}/{})\n", c, c < test.class_names.size() ? test.class_names[c] : "",
               100 * per_class[c], r.confusion[c][c], total);
  }
  fmt::print("\nconfusion matrix (rows: true class, columns: predicted class):\n     ");
  for (size_t c = 0; c < r.confusion.size(); ++c) fmt::print("{:>6}", c);
  fmt::print("\n");
  for (size_t t = 0; t < r.confusion.size(); ++t) {
    fmt::print("  {:>3}", t);
    for (int64_t v : r.confusion[t]) fmt::print("{:>6}", v);
    fmt::print("\n");
  }

  if (!o.no_shifts && test.from_files())
    fmt::print("\ntranslation test: skipped (a folder dataset is decoded per batch, not held in memory to shift)\n");
  if (!o.no_shifts && test.is_image() && !test.from_files()) {
    fmt::print("\ntranslation test: accuracy with the test images shifted by k pixels (zeros shifted in):\n");
    fmt::print("  {:>5} {:>8} {:>8} {:>8} {:>8} {:>8}\n", "k", "right", "left", "down", "up", "mean");
    nlohmann::json shifts = nlohmann::json::array();
    for (int k : o.shifts) {
      const int dirs[4][2] = {{k, 0}, {-k, 0}, {0, k}, {0, -k}};
      double acc[4], mean = 0;
      for (int d = 0; d < 4; ++d) {
        progress.start(fmt::format("shifted by ({}, {})", dirs[d][0], dirs[d][1]), test.size());
        acc[d] = nn::evaluate(*model, ctx, nn::shift_images(test, dirs[d][0], dirs[d][1]), ckpt.meta.normalization,
                              o.batch, progress.callback())
                     .accuracy;
        mean += acc[d] / 4;
      }
      fmt::print("  {:>5} {:>7.2f}% {:>7.2f}% {:>7.2f}% {:>7.2f}% {:>7.2f}%\n", k, 100 * acc[0], 100 * acc[1],
                 100 * acc[2], 100 * acc[3], 100 * mean);
      shifts.push_back(
          {{"pixels", k}, {"right", acc[0]}, {"left", acc[1]}, {"down", acc[2]}, {"up", acc[3]}, {"mean", mean}});
    }
    j["shifted"] = shifts;
  }
  if (!o.json.empty()) write_file_atomic(o.json, j.dump(2) + "\n");
  return 0;
}

Command eval_command(
    "eval", "Evaluate a checkpoint: accuracy, per-class accuracy, confusion matrix, shifted test images",
    [](CLI::App& app) {
      auto o = std::make_shared<EvalOptions>();
      app.add_option("--checkpoint", o->checkpoint, "a checkpoint written by fovea train")->required();
      app.add_option("--dataset", o->dataset, "dataset (default: the checkpoint's)");
      app.add_option("--data", o->data_dir, "folder with the dataset's files (default: the checkpoint's)");
      app.add_option("--image-size", o->image_size, "folder datasets: crop side (default: the checkpoint's)")
          ->check(in_range(1, 4096));
      app.add_option("--val-split", o->val_split,
                     "folder datasets without train/ and val/: the held-out fraction (default: the checkpoint's)")
          ->check(in_range(0, 1, /*hi_open=*/true));
      app.add_flag("--skip-bad-images", o->skip_bad_images,
                   "folder datasets: skip and count images that do not decode");
      app.add_option("--device", o->device, "auto, cpu, emu or cuda[:N]")->capture_default_str();
      app.add_option("--backend", o->backend, kBackendHelp)->capture_default_str()->check(one_of(kBackendNames));
      app.add_option("--batch", o->batch, "batch size")->capture_default_str()->check(kPositiveInt);
      app.add_option("--shifts", o->shifts, "pixel shifts of the translation test")
          ->delimiter(',')
          ->check(in_range(0, 64));
      app.add_flag("--no-shifts", o->no_shifts, "skip the translation test");
      app.add_option("--subset", o->subset, "evaluate the first N test examples only")->check(kNonNegativeInt);
      app.add_option("--json", o->json, "also write the results to this JSON file");
      return [o] { return run_eval(*o); };
    });

}  // namespace
}  // namespace fovea::app
