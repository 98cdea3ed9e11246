// fovea parity: train the same model on two devices in lock-step and compare (layers/train/parity.h).
#include <fmt/core.h>

#include <memory>

#include "apps/command.h"
#include "apps/flags.h"
#include "layers/data/image.h"
#include "layers/data/loader.h"
#include "layers/train/parity.h"
#include "layers/train/session.h"

namespace fovea::app {
namespace {

struct ParityCli {
  std::string model = "small_cnn", dataset = "synthetic", data_dir, device_a = "cpu", device_b = "emu";
  std::string backend_a = "custom", backend_b = "custom";
  int64_t steps = 20, batch = 16;
  uint64_t seed = 1;
  double lr = 0.01, tolerance = 1e-4, layer_tolerance = 1e-4;
};

int run_parity_cli(const ParityCli& o) {
  const Device da = resolve_device(o.device_a, "--device-a", false),
               db = resolve_device(o.device_b, "--device-b", false);
  ops::Context ca(da, resolve_backend(o.backend_a, da, "--backend-a")),
      cb(db, resolve_backend(o.backend_b, db, "--backend-b"));
  const data::Dataset train = nn::load_split(o.dataset, o.data_dir, data::Split::train);
  data::LoaderOptions lo;
  lo.batch_size = o.batch;
  lo.seed = o.seed;
  lo.prefetch = 0;
  if (train.from_files())  // a folder dataset: ImageNet's statistics, as fovea train uses
    lo.normalization = {data::EvalTransform{}.mean, data::EvalTransform{}.stddev};
  else if (train.is_image())
    lo.normalization = data::channel_stats(data::subset(train, std::min<int64_t>(train.size(), 2000)));
  data::BatchLoader loader(train, lo);
  loader.start_epoch(0);
  std::vector<std::pair<Tensor, Tensor>> batches;
  data::Batch b;
  while (int64_t(batches.size()) < o.steps && loader.next(b))
    batches.emplace_back(b.images.to(kCPU), b.labels.to(kCPU));

  auto ma = nn::build_model(o.model, train.sample_shape(), train.num_classes());
  auto mb = nn::build_model(o.model, train.sample_shape(), train.num_classes());
  ma->to(da);
  mb->to(db);
  ma->initialize(ca, o.seed);
  nn::ParityOptions po;
  po.steps = o.steps;
  po.tolerance = o.tolerance;
  po.layer_tolerance = o.layer_tolerance;
  po.lr = o.lr;
  po.seed = o.seed;
  fmt::print(
      "parity: {} ({} parameters) on {} (A, backend {}) and {} (B, backend {}), {} steps of batch {}, SGD lr {}\n",
      ma->name(), ma->num_parameters(), da.str(), o.backend_a, db.str(), o.backend_b, o.steps, o.batch, o.lr);
  const nn::ParityReport r = nn::run_parity(*ma, ca, *mb, cb, batches, po);
  fmt::print("{}", r.summary());
  return r.ok ? 0 : 1;
}

Command parity_command(
    "parity", "Train one model on two devices in lock-step; name the first layer that differs", [](CLI::App& app) {
      auto o = std::make_shared<ParityCli>();
      app.add_option("--model", o->model, "zoo name or spec")->capture_default_str();
      app.add_option("--dataset", o->dataset, "dataset")->capture_default_str();
      app.add_option("--data", o->data_dir, "dataset folder");
      app.add_option("--device-a", o->device_a, "reference device")->capture_default_str();
      app.add_option("--device-b", o->device_b, "device under test")->capture_default_str();
      app.add_option("--backend-a", o->backend_a, std::string("backend of device A: ") + kBackendHelp)
          ->capture_default_str()
          ->check(one_of(kBackendNames));
      // --backend: the name this flag had before device A could have a backend too.
      app.add_option("--backend-b,--backend", o->backend_b, std::string("backend of device B: ") + kBackendHelp)
          ->capture_default_str()
          ->check(one_of(kBackendNames));
      app.add_option("--steps", o->steps, "training steps")->capture_default_str()->check(kPositiveInt);
      app.add_option("--batch", o->batch, "batch size")->capture_default_str()->check(kPositiveInt);
      app.add_option("--seed", o->seed, "seed")->capture_default_str()->check(unsigned_integer());
      app.add_option("--lr", o->lr, "SGD learning rate (momentum 0.9)")->capture_default_str()->check(kNonNegative);
      app.add_option("--tolerance", o->tolerance, "relative loss tolerance per step")
          ->capture_default_str()
          ->check(kNonNegative);
      app.add_option("--layer-tolerance", o->layer_tolerance,
                     "relative L2 tolerance of each layer's output and gradients")
          ->capture_default_str()
          ->check(kNonNegative);
      return [o] { return run_parity_cli(*o); };
    });

}  // namespace
}  // namespace fovea::app
