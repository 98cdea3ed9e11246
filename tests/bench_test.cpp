// `fovea bench`: the CPU run writes every output format with the environment in each; emu is refused
// with the sentence; the harness's statistics and roofline arithmetic; and the kernel suite run
// in-process on the emulator (where verification against the reference is real), including a
// tolerance that makes every row fail verification and so go untimed.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "bench/bench_harness.h"
#include "bench/bench_suites.h"
#include "bench/precision_suite.h"
#include "core/dispatch.h"
#include "core/library_module.h"
#include "tests/cli_test_util.h"
#include "tests/test_util.h"

namespace fovea::bench {
namespace {

namespace fs = std::filesystem;

using Result = test::CliResult;
constexpr auto run = &test::run_fovea;

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class BenchCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("fovea_bench_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(BenchCli, CpuRunWritesTableCsvJsonPngWithTheEnvironment) {
  const fs::path out = dir_ / "out";
  const Result r = run("bench --device cpu --shapes tiny --suites kernels --reps 3 --warmup 1 --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* f : {"bench.txt", "bench.csv", "bench.json", "bench.png"}) ASSERT_TRUE(fs::exists(out / f)) << f;

  const nlohmann::json j = nlohmann::json::parse(slurp(out / "bench.json"));
  EXPECT_EQ(j["environment"]["device"], "cpu");
  EXPECT_FALSE(j["environment"]["git_revision"].get<std::string>().empty());
  EXPECT_GT(j["environment"]["roofline"]["copy_gbs"].get<double>(), 0);
  EXPECT_GT(j["environment"]["roofline"]["sgemm_tflops"].get<double>(), 0);
  // The host's FMA peak is the FLOP/s ceiling on cpu: above any GEMM, which also moves data.
  EXPECT_GT(j["environment"]["roofline"]["fma_tflops"].get<double>(),
            j["environment"]["roofline"]["sgemm_tflops"].get<double>());
  std::set<std::string> ops, onednn;
  for (const auto& row : j["rows"]) {
    ops.insert(row["op"].get<std::string>());
    // Beside the reference: oneDNN's rows (conv2d and gemm, FP32 and BF16) when its module loads, each verified
    // against the reference of its precision.
    const std::string impl = row["impl"].get<std::string>();
    if (impl.rfind("onednn:", 0) == 0) {
      onednn.insert(row["op"].get<std::string>() + " " + impl);
      EXPECT_EQ(row["verify"].get<std::string>().rfind("ok ", 0), 0u) << row.dump();
    } else {
      EXPECT_EQ(impl, "reference") << row.dump();
      EXPECT_EQ(row["verify"], "oracle") << row.dump();
    }
    ASSERT_TRUE(row["timed"].get<bool>()) << row.dump();
    EXPECT_EQ(row["reps"], 3);
    EXPECT_GT(row["median_ms"].get<double>(), 0) << row.dump();
    EXPECT_LE(row["p10_ms"].get<double>(), row["median_ms"].get<double>());
    EXPECT_GE(row["p90_ms"].get<double>(), row["median_ms"].get<double>());
    EXPECT_GT(row["flops"].get<double>(), 0);
    EXPECT_GT(row["gbs"].get<double>(), 0);
    EXPECT_GT(row["roofline_fraction"].get<double>(), 0);
  }
  for (const char* op :
       {"conv2d_forward", "conv2d_backward_data", "conv2d_backward_filter", "gemm", "maxpool2d", "maxpool2d_backward",
        "cross_entropy", "cross_entropy_backward", "batchnorm2d", "batchnorm2d_backward", "sgd", "lrn", "avgpool2d"})
    EXPECT_TRUE(ops.count(op)) << op;
  if (load_module(Backend::onednn)) {
    for (const char* op : {"conv2d_forward", "conv2d_backward_data", "conv2d_backward_filter", "gemm"})
      for (const char* impl : {"onednn:fp32", "onednn:bf16"})
        EXPECT_TRUE(onednn.count(std::string(op) + " " + impl)) << op << " " << impl;
  }

  const std::string csv = slurp(out / "bench.csv");
  EXPECT_NE(csv.find("# fovea "), std::string::npos);
  EXPECT_NE(csv.find("suite,op,shape,impl,verify,timed,median_ms"), std::string::npos);
  size_t data_lines = 0;
  std::istringstream lines(csv);
  for (std::string l; std::getline(lines, l);)
    if (l.rfind("kernels,", 0) == 0) ++data_lines;
  EXPECT_EQ(data_lines, j["rows"].size());

  const std::string table = slurp(out / "bench.txt");
  EXPECT_NE(table.find("median ms"), std::string::npos);
  EXPECT_NE(table.find("roofline (measured)"), std::string::npos);
  EXPECT_NE(r.output.find("conv2d_backward_filter"), std::string::npos);  // the table goes to the terminal too
  EXPECT_EQ(slurp(out / "bench.png").substr(0, 4), "\x89PNG");
}

TEST_F(BenchCli, InferenceSuiteTimesTheZooModelInEvalModeBesidePyTorchsRow) {
  const fs::path out = dir_ / "inference";
  const Result r =
      run("bench --device cpu --suites inference --infer-model resnet18 --infer-batch 2,1 --image-size 32 "
          "--no-torch --no-cudnn --reps 1 --warmup 0 --out " +  // --no-cudnn: no oneDNN rows on cpu
          out.string());
  ASSERT_EQ(r.code, 0) << r.output;
  const nlohmann::json j = nlohmann::json::parse(slurp(out / "bench.json"));
  std::vector<std::string> seen;
  for (const auto& row : j["rows"]) {
    EXPECT_EQ(row["suite"], "inference") << row.dump();
    EXPECT_EQ(row["op"], "inference:resnet18") << row.dump();
    const std::string impl = row["impl"].get<std::string>();
    seen.push_back(row["shape"].get<std::string>() + " " + impl.substr(0, impl.find(',')));
    if (impl.rfind("reference", 0) == 0) {
      EXPECT_EQ(row["verify"], "finite logits") << row.dump();
      ASSERT_TRUE(row["timed"].get<bool>()) << row.dump();
      EXPECT_GT(row["images_per_s"].get<double>(), 0) << row.dump();
    } else {
      EXPECT_EQ(row["verify"], "skipped") << row.dump();  // --no-torch: the row says why
      EXPECT_EQ(row["note"], "--no-torch") << row.dump();
    }
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"batch 2 3x32x32 reference", "batch 2 3x32x32 pytorch-cpu",
                                            "batch 1 3x32x32 reference", "batch 1 3x32x32 pytorch-cpu"}));
}

TEST_F(BenchCli, TrainStepRowsCarryTheStepsFlopsForTheRoofline) {
  const fs::path out = dir_ / "train-step";
  const Result r =
      run("bench --device cpu --suites train-step --train-model small_cnn --train-batch 2 --no-torch "
          "--no-cudnn --reps 1 --warmup 0 --out " +
          out.string());
  ASSERT_EQ(r.code, 0) << r.output;
  const nlohmann::json j = nlohmann::json::parse(slurp(out / "bench.json"));
  // small_cnn at batch 2 (2 x multiply-adds): conv 3->16 3x3 at 32x32, conv 16->32 at 16x16, conv 32->64 at 8x8,
  // linear 1024->10; a step is 3 passes of them.
  const double forward = 2.0 * 2 * (16 * 1024 * 3 * 9 + 32 * 256 * 16 * 9 + 64 * 64 * 32 * 9 + 10 * 1024);
  ASSERT_EQ(j["rows"].size(), 2u) << j.dump();
  for (const auto& row : j["rows"]) {
    EXPECT_DOUBLE_EQ(row["flops"].get<double>(), 3 * forward) << row.dump();
    if (row["impl"] == "reference") {
      EXPECT_GT(row["roofline_fraction"].get<double>(), 0) << row.dump();
    }
  }
}

TEST_F(BenchCli, EmuIsRefusedWithTheReason) {
  const Result r = run("bench --device emu --out " + (dir_ / "emu").string());
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("emulator"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("mean nothing"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir_ / "emu" / "bench.csv"));
}

TEST_F(BenchCli, BadShapeIsAnError) {
  const Result r = run("bench --device cpu --shapes none --conv 1,2,3 --suites kernels --out " + dir_.string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("--conv"), std::string::npos) << r.output;
}

TEST(BenchHarness, MedianAndQuantiles) {
  const Stats s = summarize({5, 1, 3, 2, 4});
  EXPECT_DOUBLE_EQ(s.median_ms, 3);
  EXPECT_DOUBLE_EQ(s.min_ms, 1);
  EXPECT_DOUBLE_EQ(s.max_ms, 5);
  EXPECT_DOUBLE_EQ(s.p10_ms, 1.4);
  EXPECT_DOUBLE_EQ(s.p90_ms, 4.6);
  EXPECT_EQ(s.reps, 5);
}

TEST(BenchHarness, TimeRunsRotatesBuffers) {
  Stream stream(kCPU);
  TimingOptions o;
  o.warmup = 2, o.reps = 7, o.rotate = 3;
  std::vector<int> seen;
  const Stats s = time_runs(stream, o, [&](int i) { seen.push_back(i); });
  EXPECT_EQ(s.reps, 7);
  ASSERT_EQ(seen.size(), 9u);
  for (size_t k = 0; k < seen.size(); ++k) EXPECT_EQ(seen[k], int(k % 3));
}

// --cpu-time: a run that waits (sleeps) costs wall time but little CPU time (OpenMP's idle threads may spin for a
// while after an earlier test's parallel region: their CPU time counts too).
TEST(BenchHarness, CpuTimeLeavesOutWaiting) {
  Stream stream(kCPU);
  TimingOptions o;
  o.warmup = 0, o.reps = 2, o.rotate = 1;
  auto sleep = [](int) { std::this_thread::sleep_for(std::chrono::milliseconds(100)); };
  EXPECT_GE(time_runs(stream, o, sleep).median_ms, 99.0);
  o.cpu_time = true;
  EXPECT_LT(time_runs(stream, o, sleep).median_ms, 50.0);
}

TEST(BenchHarness, RooflineAndVendorRatio) {
  Roofline roof;
  roof.copy_gbs = 1000;  // 1 TB/s
  roof.sgemm_tflops = 10;
  // 1e10 flops at 10 TFLOP/s = 1 ms; 1e8 bytes at 1 TB/s = 0.1 ms: compute bound at 1 ms; ran in 2 ms.
  EXPECT_DOUBLE_EQ(roof.fraction(1e10, 1e8, 2.0), 0.5);
  EXPECT_DOUBLE_EQ(roof.fraction(1e6, 1e9, 4.0), 0.25);  // memory bound: 1 ms of traffic
  roof.fma_tflops = 20;                                  // a measured FMA peak replaces the GEMM as the ceiling
  EXPECT_DOUBLE_EQ(roof.fraction(1e10, 1e8, 2.0), 0.25);

  auto make = [](std::string impl, double ms) {
    Row r;
    r.op = "conv2d_forward";
    r.shape = "s";
    r.impl = std::move(impl);
    r.timed = true;
    r.flops = 1e9;
    r.bytes = 1e6;
    r.stats.median_ms = ms;
    return r;
  };
  std::vector<Row> rows{make("ours:implicit_gemm", 2), make("cudnn:A", 1), make("cudnn:B", 4)};
  finish_rows(rows, roof);
  EXPECT_DOUBLE_EQ(rows[0].vs_vendor, 0.5);  // half cuDNN's best speed
  EXPECT_DOUBLE_EQ(rows[1].vs_vendor, 1.0);
  EXPECT_DOUBLE_EQ(rows[0].tflops, 0.5);
}

// On the emulator the suite verifies our kernels against the reference for real (the CLI refuses
// to *time* emu; verification there is meaningful).
TEST(BenchSuite, EmuKernelsVerifyAgainstTheReferenceBeforeTiming) {
  BenchConfig c;
  c.device = kEmu;
  c.timing.warmup = 0, c.timing.reps = 1, c.timing.rotate = 2;
  c.ops = {"conv2d", "maxpool2d", "sgd"};
  const ShapeSet s = make_shape_set("none", {}, {"1,2,5,5,3,3,3,1,1"}, {});
  Stream stream(kEmu);
  const std::vector<Row> rows = run_kernel_suite(c, s, stream);
  ASSERT_EQ(rows.size(), 9u);  // 3 passes x 3 versions; no pooling or sgd shapes in set 'none'
  for (const Row& r : rows) {
    EXPECT_EQ(r.verify.rfind("ok ", 0), 0u) << r.op << " " << r.impl << " " << r.verify << " " << r.note;
    EXPECT_TRUE(r.timed);
  }

  c.tolerance = -1;  // nothing can pass: every row must fail and stay untimed
  for (const Row& r : run_kernel_suite(c, s, stream)) {
    EXPECT_EQ(r.verify.rfind("FAILED", 0), 0u) << r.verify;
    EXPECT_FALSE(r.timed);
  }
}

// The precision suite through the CLI on cpu: the tiny set at the reference of each precision, its own table with
// the peak (unknown on cpu) and the target columns, and its rows in the common outputs.
TEST_F(BenchCli, PrecisionSuiteOnCpuWritesItsTable) {
  const fs::path out = dir_ / "precision";
  const Result r = run("bench --device cpu --suites precision --reps 1 --warmup 0 --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string table = slurp(out / "precision.txt");
  EXPECT_NE(table.find("peak unknown"), std::string::npos) << table;
  EXPECT_NE(table.find("design targets"), std::string::npos) << table;
  EXPECT_NE(r.output.find("conv wgrad bf16"), std::string::npos) << r.output;
  const nlohmann::json j = nlohmann::json::parse(slurp(out / "bench.json"));
  std::set<std::string> ops;
  for (const auto& row : j["rows"]) {
    EXPECT_EQ(row["suite"], "precision") << row.dump();
    EXPECT_EQ(row["impl"], "reference") << row.dump();
    EXPECT_TRUE(row["timed"].get<bool>()) << row.dump();
    ops.insert(row["op"].get<std::string>());
  }
  for (const char* p : {"tf32", "bf16", "fp16"})
    for (const char* op : {"gemm", "conv fprop", "conv dgrad", "conv wgrad"})
      EXPECT_TRUE(ops.count(std::string(op) + " " + p)) << op << " " << p;
  const Result bad = run("bench --device cpu --suites precision --precision-shapes huge --out " + out.string());
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.output.find("'huge'"), std::string::npos) << bad.output;
}

// On the emulator the precision suite runs our tensor-core GEMM on raw 16-bit buffers (narrowed by
// kernels/nhwc16.h) and the op-level precision convolutions, each checked against the CPU reference of its
// precision (there is no vendor row off cuda); the design-target column has no anchor to compare with.
TEST(BenchSuite, EmuPrecisionSuiteChecksOursAgainstTheReference) {
  BenchConfig c;
  c.device = kEmu;
  c.timing.warmup = 0, c.timing.reps = 1, c.timing.rotate = 1;
  Stream stream(kEmu);
  PrecisionSuiteOptions o;
  o.shapes = "tiny";
  std::string table;
  const std::vector<Row> rows = run_precision_suite(c, o, stream, &table);
  // 3 precisions x (1 GEMM + 2 shapes x 3 convolutions at op level), + bf16/fp16 x 2 shapes x 3 raw NHWC convolutions
  ASSERT_EQ(rows.size(), 33u);
  for (const Row& r : rows) {
    EXPECT_EQ(r.verify.rfind("ok ", 0), 0u) << r.op << " " << r.impl << " " << r.verify << " " << r.note;
    EXPECT_NE(r.verify.find("vs reference"), std::string::npos) << r.verify;
    EXPECT_EQ(r.impl.rfind("ours:", 0), 0u) << r.impl;
    EXPECT_TRUE(r.timed);
  }
  EXPECT_NE(table.find("n/a >= 0.80x"), std::string::npos) << table;  // bf16 conv rows: the target, no anchor
  EXPECT_NE(table.find("peak unknown"), std::string::npos) << table;
  int raw = 0;
  for (const Row& r : rows) raw += r.impl.find("raw NHWC") != std::string::npos;
  EXPECT_EQ(raw, 12);  // every raw contender of raw_conv_contenders(): extend the counts when one is added
}

TEST(BenchSuite, CifarShapesComeFromTheModels) {
  const ShapeSet s = make_shape_set("cifar", {128}, {}, {});
  bool stem = false, resnet_stride2 = false, linear10 = false;
  for (const Conv2dParams& p : s.convs) {
    stem |= p.N == 128 && p.C == 3 && p.K == 16 && p.H == 32 && p.R == 3;
    resnet_stride2 |= p.C == 16 && p.K == 32 && p.stride_h == 2 && p.H == 32;
  }
  for (const GemmShape& g : s.gemms) linear10 |= g.M == 128 && g.N == 10 && g.K == 64;  // resnet20's head
  EXPECT_TRUE(stem);
  EXPECT_TRUE(resnet_stride2);
  EXPECT_TRUE(linear10);
  EXPECT_EQ(s.registry_rows, ShapeSet::RegistryRows::bench_samples);  // the other ops: the registry's bench rows
}

// --ops takes conv2d, gemm and the registry's op names; anything else is refused naming it (not run as nothing).
TEST(BenchSuite, UnknownOpNamesAreRefused) {
  EXPECT_NO_THROW(check_op_names({"conv2d", "gemm", "batchnorm2d", "lrn", "sgd"}));
  EXPECT_TRUE(test::throws_error([] { check_op_names({"conv2d", "batchnorm"}); }, {"--ops", "'batchnorm'", "lrn"}));
}

}  // namespace
}  // namespace fovea::bench
