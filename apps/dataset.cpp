// fovea dataset: writes a split of a dataset as files in the CIFAR-10 binary layout, so that tools outside
// fovea (scripts/check_checkpoint_torch.py) read exactly the images fovea trains and evaluates on. The
// built-in synthetic shapes exist nowhere else.
#include <fmt/core.h>

#include <filesystem>
#include <memory>

#include "apps/command.h"
#include "apps/flags.h"
#include "core/io.h"
#include "layers/train/session.h"

namespace fovea::app {
namespace {

struct DatasetOptions {
  std::string dataset = "synthetic", data_dir, split = "test", out;
};

int run_dataset(const DatasetOptions& o) {
  const data::Split split = o.split == "train" ? data::Split::train : data::Split::test;
  const data::Dataset ds = nn::load_split(o.dataset, o.data_dir, split);
  std::filesystem::create_directories(o.out);
  // CIFAR-10's file names: the test batch, or the training set in five batches (fovea's cifar10 loader
  // reads data_batch_1..5).
  const int parts = split == data::Split::train ? 5 : 1;
  for (int p = 0; p < parts; ++p) {
    const int64_t begin = ds.size() * p / parts, end = ds.size() * (p + 1) / parts;
    const std::string name = parts == 1 ? "test_batch.bin" : fmt::format("data_batch_{}.bin", p + 1);
    write_file_atomic((std::filesystem::path(o.out) / name).string(), data::encode_cifar10(ds, begin, end));
  }
  std::string names;
  for (const std::string& n : ds.class_names) names += n + "\n";
  write_file_atomic((std::filesystem::path(o.out) / "batches.meta.txt").string(), names);
  fmt::print("{}: {} examples written to {} in the CIFAR-10 binary layout ({})\n", ds.name, ds.size(), o.out,
             parts == 1 ? "test_batch.bin" : "data_batch_1..5.bin");
  return 0;
}

Command dataset_command(
    "dataset", "Write a dataset split (the built-in synthetic shapes, CIFAR-10) as CIFAR-10 binary batches",
    [](CLI::App& app) {
      auto o = std::make_shared<DatasetOptions>();
      app.add_option("--dataset", o->dataset, "synthetic or cifar10 (32x32 RGB images of 10 classes)")
          ->capture_default_str();
      app.add_option("--data", o->data_dir, "folder with the dataset's files (real datasets)");
      app.add_option("--split", o->split, "test or train")->capture_default_str()->check(one_of({"test", "train"}));
      app.add_option("--out", o->out, "folder to write test_batch.bin (or data_batch_1..5.bin) and batches.meta.txt")
          ->required();
      return [o] { return run_dataset(*o); };
    });

}  // namespace
}  // namespace fovea::app
