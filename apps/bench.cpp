// fovea bench: kernel microbenchmarks (ours against cuDNN / cuBLAS and the measured roofline) and a
// train-step suite. The harness is in bench/bench_harness.h, the suites in bench/bench_suites.h.
//   fovea bench --device cuda --shapes cifar --out bench-out/
//   fovea bench --device cpu                      (the reference; seconds)
//   fovea bench --device cpu --shapes none --conv 8,16,32,32,16,3,3,1,1 --reps 20
//   fovea bench --device cpu --suites inference   (ResNet-50 at 224x224, batch 8 and 1, against torchvision)
//   fovea bench --device cuda --suites precision  (TF32/BF16/FP16 GEMM and conv: ours, cuBLASLt, cuDNN; issue 16's
//                                                 design targets; bench/precision_suite.h)
// Writes bench.txt (the table), bench.csv, bench.json and bench.png into --out; prints the table.
#include <fmt/core.h>

#include <filesystem>

#include "apps/command.h"
#include "apps/flags.h"
#include "bench/bench_harness.h"
#include "bench/bench_suites.h"
#include "bench/precision_suite.h"
#include "core/io.h"
#include "core/parse.h"

#ifndef FOVEA_BENCH_SOURCE_DIR
#define FOVEA_BENCH_SOURCE_DIR "."
#endif

namespace fovea::app {
namespace {

struct BenchOptions {
  std::string device = "cpu", shapes, out = "bench-out", suites = "kernels,train-step";
  std::vector<int64_t> batches;
  std::vector<std::string> convs, gemms, ops, train_models, infer_models;
  std::vector<int64_t> infer_batches;
  int64_t train_batch = 0, image_size = 224, precision_batch = 256;
  std::string precision_shapes;
  int warmup = -1, reps = -1, rotate = 3;
  double tolerance = 1e-4;
  bool no_cudnn = false, no_torch = false, cpu_time = false;
  std::string python = "/usr/bin/python3", torch_script = FOVEA_BENCH_SOURCE_DIR "/bench/train_step_torch.py",
              infer_torch_script = FOVEA_BENCH_SOURCE_DIR "/bench/inference_torch.py";
};

// The sentence for --device emu.
constexpr const char* kEmuRefusal =
    "fovea bench: refusing --device emu: the emulator runs each CUDA thread as a fiber on the host CPU, "
    "so its timings measure the emulator, not the kernel, and mean nothing about GPU speed; use --device cuda "
    "on a machine with a GPU, or --device cpu to benchmark the reference.";

int run_bench(BenchOptions o) {
  const Device device = parse_device(o.device);
  if (device.type == DeviceType::emu) {
    fmt::print(stderr, "{}\n", kEmuRefusal);
    return kUsageError;
  }
  require_device(device);
  const bool cuda = device.type == DeviceType::cuda;

  bench::BenchConfig c;
  c.device = device;
  // Defaults keep a CPU run to seconds; on a GPU, many repetitions are cheap.
  c.timing.warmup = o.warmup >= 0 ? o.warmup : (cuda ? 10 : 1);
  c.timing.reps = o.reps >= 1 ? o.reps : (cuda ? 50 : 5);
  c.timing.rotate = o.rotate;
  if (o.cpu_time && device.type != DeviceType::cpu) {
    fmt::print(stderr, "fovea bench: --cpu-time times the process's CPU time, on --device cpu only (got {})\n",
               o.device);
    return kUsageError;
  }
  c.timing.cpu_time = o.cpu_time;
  c.tolerance = o.tolerance;
  bench::check_op_names(o.ops);
  c.ops = o.ops;
  c.cudnn = !o.no_cudnn;
  c.torch = !o.no_torch;
  c.python = o.python;
  c.torch_script = o.torch_script;
  c.train_batch = o.train_batch > 0 ? o.train_batch : (cuda ? 128 : 32);
  c.train_models = !o.train_models.empty() ? o.train_models
                   : cuda                  ? std::vector<std::string>{"resnet20", "small_cnn"}
                                           : std::vector<std::string>{"small_cnn"};
  if (!o.infer_models.empty()) c.infer_models = o.infer_models;
  if (!o.infer_batches.empty()) c.infer_batches = o.infer_batches;
  c.infer_image_size = o.image_size;
  c.infer_torch_script = o.infer_torch_script;
  const std::string shapes = !o.shapes.empty() ? o.shapes : (cuda ? "cifar" : "tiny");
  const std::vector<int64_t> batches =
      !o.batches.empty() ? o.batches : (cuda ? std::vector<int64_t>{128, 512} : std::vector<int64_t>{8});

  bool kernels = false, train = false, inference = false, precision = false;
  for (std::string_view s : split(o.suites, ',')) {
    if (s == "kernels")
      kernels = true;
    else if (s == "train-step")
      train = true;
    else if (s == "inference")
      inference = true;
    else if (s == "precision")
      precision = true;
    else
      FOVEA_FAIL("fovea bench: unknown suite '", s,
                 "' in --suites (expected kernels, train-step, inference, precision)");
  }

  Stream stream(device);
  bench::Environment env = bench::describe_environment(device);
  env.timing = c.timing;
  env.command_line =
      fmt::format("fovea bench --device {} --shapes {} --suites {} --reps {} --warmup {} --rotate {}{}", o.device,
                  shapes, o.suites, c.timing.reps, c.timing.warmup, c.timing.rotate, o.cpu_time ? " --cpu-time" : "");
  if (kernels || train || inference) {
    fmt::print("fovea bench: measuring the roofline on {}...\n", device.str());
    env.roofline = bench::measure_roofline(c, stream);
  } else {
    fmt::print("fovea bench: roofline not measured (the precision suite compares with the tensor-core peak)\n");
  }

  std::vector<bench::Row> rows;
  if (kernels) {
    const bench::ShapeSet set = bench::make_shape_set(shapes, batches, o.convs, o.gemms);
    fmt::print("fovea bench: kernels on {} shapes: {}\n", shapes, set.notes);
    auto r = bench::run_kernel_suite(c, set, stream);
    rows.insert(rows.end(), r.begin(), r.end());
  }
  if (train) {
    fmt::print("fovea bench: train-step, batch {}\n", c.train_batch);
    auto r = bench::run_train_step_suite(c, stream);
    rows.insert(rows.end(), r.begin(), r.end());
  }
  if (inference) {
    fmt::print("fovea bench: inference at {}x{}\n", c.infer_image_size, c.infer_image_size);
    auto r = bench::run_inference_suite(c, stream);
    rows.insert(rows.end(), r.begin(), r.end());
  }
  std::string precision_table;
  if (precision) {
    bench::PrecisionSuiteOptions po;
    po.shapes = o.precision_shapes;
    po.batch = o.precision_batch;
    fmt::print("fovea bench: precision (tf32, bf16, fp16)\n");
    auto r = bench::run_precision_suite(c, po, stream, &precision_table);
    rows.insert(rows.end(), r.begin(), r.end());
  }
  bench::finish_rows(rows, env.roofline);
  bench::set_tensor_core_roofline(rows, device);

  const std::string table = bench::format_table(rows, env);
  fmt::print("{}", table);
  std::filesystem::create_directories(o.out);
  const std::filesystem::path dir(o.out);
  if (precision) {
    // The suite's own table: ratios to the anchor, the tensor-core roofline, the design targets.
    fmt::print("{}", precision_table);
    write_file_atomic((dir / "precision.txt").string(), precision_table);
  }
  write_file_atomic((dir / "bench.txt").string(), table);
  write_file_atomic((dir / "bench.csv").string(), bench::format_csv(rows, env));
  write_file_atomic((dir / "bench.json").string(), bench::format_json(rows, env));
  bench::write_chart((dir / "bench.png").string(), rows, env);
  fmt::print("fovea bench: wrote {}/bench.{{txt,csv,json,png}}{}\n", o.out, precision ? " and precision.txt" : "");
  int failed = 0;
  for (const bench::Row& r : rows) failed += r.verify.rfind("FAILED", 0) == 0;
  if (failed) fmt::print(stderr, "fovea bench: {} row(s) FAILED verification against the reference\n", failed);
  return failed ? 1 : 0;
}

Command bench_command(
    "bench", "Kernel microbenchmarks: ours vs cuDNN/cuBLAS and the roofline; train-step and inference images/s",
    [](CLI::App& app) {
      auto o = std::make_shared<BenchOptions>();
      app.add_option("--device", o->device, "cpu (the reference) or cuda; emu is refused")->capture_default_str();
      app.add_option("--shapes", o->shapes, "tiny, cifar, deepbench or none (default: cifar on cuda, tiny on cpu)");
      app.add_option("--batch", o->batches, "batch sizes of the cifar set (default 128 512 on cuda, 8 on cpu)")
          ->delimiter(',')
          ->check(kPositiveInt);
      app.add_option("--conv", o->convs, "extra conv shape N,C,H,W,K,R,S[,stride[,pad]] (repeatable)");
      app.add_option("--gemm", o->gemms, "extra GEMM shape M,N,K: C[M,N] = A[M,K] B[N,K]^T (repeatable)");
      app.add_option("--ops", o->ops, "only these: conv2d, gemm and op names (fovea op --list)")->delimiter(',');
      app.add_option("--suites", o->suites, "kernels, train-step, inference, precision (comma-separated)")
          ->capture_default_str();
      app.add_option("--precision-shapes", o->precision_shapes,
                     "shapes of the precision suite: design (GEMM 4096^3, resnet20/resnet9 layers) or tiny "
                     "(default: design on cuda, tiny on cpu)");
      app.add_option("--precision-batch", o->precision_batch, "batch of the precision suite's resnet shapes")
          ->capture_default_str()
          ->check(kPositiveInt);
      app.add_option("--out", o->out, "output folder")->capture_default_str();
      app.add_option("--warmup", o->warmup, "untimed runs first (default 10 on cuda, 1 on cpu)")
          ->check(kNonNegativeInt);
      app.add_option("--reps", o->reps, "timed runs; the median is reported (default 50 on cuda, 5 on cpu)")
          ->check(kPositiveInt);
      app.add_flag("--cpu-time", o->cpu_time,
                   "cpu: time the process's CPU time instead of wall time (with OMP_NUM_THREADS=1 it counts the "
                   "work, not the waits for a core: for comparisons on a machine busy with other work)");
      app.add_option("--rotate", o->rotate, "input buffer sets cycled through")
          ->capture_default_str()
          ->check(kPositiveInt);
      app.add_option("--tolerance", o->tolerance, "relative L2 error allowed vs the reference")
          ->capture_default_str()
          ->check(kNonNegative);
      app.add_option("--train-model", o->train_models, "zoo models of the train-step suite (repeatable)");
      app.add_option("--train-batch", o->train_batch, "train-step batch (default 128 on cuda, 32 on cpu)")
          ->check(kPositiveInt);
      app.add_option("--infer-model", o->infer_models, "zoo models of the inference suite (default resnet50)");
      app.add_option("--infer-batch", o->infer_batches, "inference batches (default 8,1)")
          ->delimiter(',')
          ->check(kPositiveInt);
      app.add_option("--image-size", o->image_size, "inference input height and width")
          ->capture_default_str()
          ->check(CLI::Range(int64_t(32), int64_t(4096)));
      app.add_flag("--no-cudnn", o->no_cudnn,
                   "leave out the vendor library rows: cuDNN / cuBLAS on cuda, oneDNN on cpu");
      app.add_flag("--no-torch", o->no_torch, "leave out PyTorch's CPU train-step figure");
      app.add_option("--python", o->python, "python with torch")->capture_default_str();
      app.add_option("--torch-script", o->torch_script, "PyTorch train-step script")->capture_default_str();
      app.add_option("--infer-torch-script", o->infer_torch_script, "PyTorch inference script")->capture_default_str();
      return [o] { return run_bench(*o); };
    });

}  // namespace
}  // namespace fovea::app
