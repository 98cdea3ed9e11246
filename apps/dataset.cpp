// fovea dataset: writes a split of a dataset as files in the CIFAR-10 binary layout, so that tools outside
// fovea (scripts/check_checkpoint_torch.py) read exactly the images fovea trains and evaluates on (the
// built-in synthetic shapes exist nowhere else); or, with --format folder, as PNG files in class folders
// (torchvision's ImageFolder layout, fovea's --dataset folder), e.g. a few classes of CIFAR-10 with
// --per-class images each for the transfer-learning experiment.
#include <fmt/core.h>

#include <filesystem>
#include <memory>

#include "apps/command.h"
#include "apps/flags.h"
#include "core/io.h"
#include "core/parse.h"
#include "layers/train/session.h"

namespace fovea::app {
namespace {

struct DatasetOptions {
  std::string dataset = "synthetic", data_dir, split = "test", out, format = "cifar", classes;
  int64_t per_class = 0;
  bool overwrite = false;
};

// "5-9" or "0,2,4-6": class indices, each in [0, classes).
std::vector<int64_t> parse_classes(const std::string& text, int64_t classes) {
  std::vector<int64_t> out;
  for (std::string_view item : split(text, ',')) {
    const size_t dash = item.find('-', 1);
    const int64_t lo = parse_int(item.substr(0, dash), "--classes");
    const int64_t hi = dash == std::string_view::npos ? lo : parse_int(item.substr(dash + 1), "--classes");
    FOVEA_CHECK(lo >= 0 && lo <= hi && hi < classes, "--classes: '", item, "' must be classes in [0, ", classes - 1,
                "], low to high");
    for (int64_t c = lo; c <= hi; ++c) out.push_back(c);
  }
  return out;
}

int write_folder(const DatasetOptions& o, const data::Dataset& ds) {
  std::vector<int64_t> classes;
  if (o.classes.empty())
    for (int64_t c = 0; c < ds.num_classes(); ++c) classes.push_back(c);
  else
    classes = parse_classes(o.classes, ds.num_classes());
  // The first --per-class images of each class, in the dataset's order.
  std::vector<int64_t> picked, count(size_t(ds.num_classes()), 0);
  std::vector<char> wanted(size_t(ds.num_classes()), 0);
  for (int64_t c : classes) wanted[size_t(c)] = 1;
  for (int64_t i = 0; i < ds.size(); ++i) {
    const int64_t c = ds.labels.data<int64_t>()[i];
    if (!wanted[size_t(c)] || (o.per_class > 0 && count[size_t(c)] >= o.per_class)) continue;
    ++count[size_t(c)];
    picked.push_back(i);
  }
  for (int64_t c : classes)
    FOVEA_CHECK(o.per_class == 0 || count[size_t(c)] == o.per_class, "--per-class ", o.per_class, ": class ", c, " (",
                ds.class_names[size_t(c)], ") of ", ds.name, " has only ", count[size_t(c)], " images");
  const int64_t n = data::write_image_folder(ds, picked, o.out, o.overwrite);
  fmt::print("{}: {} images of {} classes written to {} as <class>/NNNNN.png (NNNNN: the image's index in {})\n",
             ds.name, n, classes.size(), o.out, ds.name);
  return 0;
}

int run_dataset(const DatasetOptions& o) {
  const data::Split split = o.split == "train" ? data::Split::train : data::Split::test;
  const data::Dataset ds = nn::load_split(o.dataset, o.data_dir, split);
  if (o.format == "folder") return write_folder(o, ds);
  FOVEA_CHECK(o.classes.empty() && o.per_class == 0, "--classes and --per-class need --format folder");
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
    "dataset",
    "Write a dataset split (the built-in synthetic shapes, CIFAR-10) as CIFAR-10 binary batches, or as a folder of "
    "class folders of PNG images (--format folder)",
    [](CLI::App& app) {
      auto o = std::make_shared<DatasetOptions>();
      app.add_option("--dataset", o->dataset,
                     "synthetic or cifar10 (32x32 RGB images of 10 classes); --format folder: also mnist, "
                     "fashion-mnist, cifar100")
          ->capture_default_str();
      app.add_option("--data", o->data_dir, "folder with the dataset's files (real datasets)");
      app.add_option("--split", o->split, "test or train")->capture_default_str()->check(one_of({"test", "train"}));
      app.add_option("--out", o->out,
                     "folder to write test_batch.bin (or data_batch_1..5.bin) and batches.meta.txt; --format folder: "
                     "the class folders (an empty or new folder)")
          ->required();
      app.add_option("--format", o->format, "cifar (binary batches) or folder (OUT/<class>/NNNNN.png)")
          ->capture_default_str()
          ->check(one_of({"cifar", "folder"}));
      app.add_option("--classes", o->classes, "--format folder: the classes to write, e.g. 5-9 or 0,2,4 (default all)");
      app.add_option("--per-class", o->per_class, "--format folder: the first N images of each class (0: all)")
          ->check(kNonNegativeInt);
      app.add_flag("--overwrite", o->overwrite, "--format folder: replace the folder dataset in --out");
      return [o] { return run_dataset(*o); };
    });

}  // namespace
}  // namespace fovea::app
