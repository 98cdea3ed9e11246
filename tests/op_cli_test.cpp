// `fovea op` end to end: outputs written as .npy; bad input exits with code 2 and a message naming it.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>

#include "core/library_module.h"
#include "core/npy.h"
#include "core/philox.h"
#include "cpu_reference/blas.h"
#include "cpu_reference/conv2d.h"
#include "cpu_reference/linear.h"
#include "tests/cli_test_util.h"
#include "tests/test_util.h"

namespace fovea::test {
namespace {

namespace fs = std::filesystem;

using Result = test::CliResult;
constexpr auto run = &test::run_fovea;

struct Conv2dRun {
  std::vector<float> y, dx, dw, db;
};

class OpCli : public ::testing::Test {
 protected:
  // conv2d forward and backward through `fovea op` with `extra` flags: the outputs, and the reference's.
  std::pair<Conv2dRun, Conv2dRun> run_conv2d(const std::string& extra);
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("fovea_op_cli_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string save(const std::string& name, const std::vector<float>& v, const Shape& s) {
    const std::string path = (dir_ / (name + ".npy")).string();
    write_npy(path, Tensor::from_vector(v, s));
    return path;
  }
  fs::path dir_;
};

std::pair<Conv2dRun, Conv2dRun> OpCli::run_conv2d(const std::string& extra) {
  Conv2dParams p;
  p.N = 2, p.C = 4, p.H = 7, p.W = 6, p.K = 6, p.R = 3, p.S = 3, p.stride_h = 2, p.pad_h = p.pad_w = 1, p.groups = 2;
  const auto x = random_vector(size_t(p.x_size()), 1), w = random_vector(size_t(p.w_size()), 2),
             b = random_vector(size_t(p.K), 3), dy = random_vector(size_t(p.y_size()), 4);
  const std::string out = (dir_ / "out").string();
  const Result r = run("op conv2d --device cpu " + extra +
                       " --attr stride=2,1 --attr pad=1 --attr groups=2 --in x=" + save("x", x, {p.N, p.C, p.H, p.W}) +
                       " --in w=" + save("w", w, {p.K, p.C / 2, p.R, p.S}) + " --in b=" + save("b", b, {p.K}) +
                       " --in dy=" + save("dy", dy, {p.N, p.K, p.P(), p.Q()}) + " --out " + out);
  EXPECT_EQ(r.code, 0) << r.output;
  Conv2dRun want{std::vector<float>(size_t(p.y_size())), std::vector<float>(size_t(p.x_size())),
                 std::vector<float>(size_t(p.w_size())), std::vector<float>(size_t(p.K))};
  ref::conv2d_forward(p, x.data(), w.data(), b.data(), want.y.data());
  ref::conv2d_backward_data(p, dy.data(), w.data(), want.dx.data());
  ref::conv2d_backward_filter(p, x.data(), dy.data(), want.dw.data());
  ref::conv2d_backward_bias(p, dy.data(), want.db.data());
  if (r.code != 0) return {Conv2dRun{}, want};
  return {Conv2dRun{read_npy(out + "/y.npy").to_vector<float>(), read_npy(out + "/dx.npy").to_vector<float>(),
                    read_npy(out + "/dw.npy").to_vector<float>(), read_npy(out + "/db.npy").to_vector<float>()},
          want};
}

TEST_F(OpCli, Conv2dForwardAndBackwardOnCpuMatchTheReference) {
  const auto [got, want] = run_conv2d("");
  EXPECT_EQ(got.y, want.y);
  EXPECT_EQ(got.dx, want.dx);
  EXPECT_EQ(got.dw, want.dw);
  EXPECT_EQ(got.db, want.db);
}

// Backend onednn (its module, layers/onednn/) through the command: oneDNN's summation order, so float32
// rounding rather than bitwise.
TEST_F(OpCli, Conv2dOnBackendOnednnMatchesTheReference) {
#if !FOVEA_HAVE_ONEDNN
  GTEST_SKIP() << "this build has no oneDNN (libdnnl-dev 2.x not found or -DFOVEA_WITH_ONEDNN=OFF)";
#else
  const auto [got, want] = run_conv2d("--backend onednn");
  ASSERT_EQ(got.y.size(), want.y.size());
  EXPECT_TRUE(close_l2(got.y, want.y, 1e-5, "y"));
  EXPECT_TRUE(close_l2(got.dx, want.dx, 1e-5, "dx"));
  EXPECT_TRUE(close_l2(got.dw, want.dw, 1e-5, "dw"));
  EXPECT_TRUE(close_l2(got.db, want.db, 1e-5, "db"));
#endif
}

// --precision: the reference of that precision on cpu (cpu_reference/linear.h), the same bits on emu's tensor cores;
// ops without reduced-precision versions refuse it.
TEST_F(OpCli, PrecisionRunsLinearAtThatPrecision) {
  LinearParams p;
  p.N = 5, p.in_features = 19, p.out_features = 7;
  const auto x = random_vector(size_t(p.N * p.in_features), 1),
             w = random_vector(size_t(p.out_features * p.in_features), 2), b = random_vector(size_t(p.out_features), 3);
  const std::string in = " --in x=" + save("x", x, {p.N, p.in_features}) +
                         " --in w=" + save("w", w, {p.out_features, p.in_features}) +
                         " --in b=" + save("b", b, {p.out_features});
  std::vector<float> want(size_t(p.N * p.out_features));
  ref::linear_forward(p, Precision::bf16, x.data(), w.data(), b.data(), want.data());
  for (const char* device : {"cpu", "emu"}) {
    const std::string out = (dir_ / device).string();
    const Result r = run(std::string("op linear --precision bf16 --device ") + device + in + " --out " + out);
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_EQ(read_npy(out + "/y.npy").to_vector<float>(), want) << device;
  }
  std::vector<float> fp32(want.size());
  ref::linear_forward(p, x.data(), w.data(), b.data(), fp32.data());
  EXPECT_NE(fp32, want);  // the precision took effect
  const Result relu = run("op relu --precision bf16 --in x=" + save("rx", x, {p.N, p.in_features}) + " --out " +
                          (dir_ / "relu").string());
  EXPECT_EQ(relu.code, 2) << relu.output;
  EXPECT_NE(relu.output.find("op relu runs in fp32 only"), std::string::npos) << relu.output;
  const Result bad = run("op linear --precision int8" + in + " --out " + (dir_ / "bad").string());
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_NE(bad.output.find("--precision 'int8'"), std::string::npos) << bad.output;
}

TEST_F(OpCli, BadInputExitsWith2AndNamesIt) {
  const std::string x = save("x", random_vector(16, 5), {1, 1, 4, 4});
  const std::string out = (dir_ / "out").string();
  struct Case {
    std::string args, expect;
  } cases[] = {
      {"op frobnicate --in x=" + x + " --out " + out, "unknown op 'frobnicate'"},
      {"op conv2d --in x=" + x + " --out " + out, "missing input 'w'"},
      {"op maxpool2d --in x=" + x + " --attr stride=-1 --out " + out, "'stride_h' must be > 0, got -1"},
      {"op maxpool2d --in x=" + x + " --attr kernel=abc --out " + out, "attribute 'kernel': must be an integer"},
      {"op maxpool2d --in x=" + x + " --attr kernel=2 --attr kernel=3 --out " + out, "'kernel' given twice"},
      {"op maxpool2d --in x=" + x + " --attr color=red --out " + out, "unknown attribute 'color'"},
      {"op maxpool2d --in x=" + x + " --in y=" + x + " --out " + out, "unknown input 'y'"},
      {"op maxpool2d --in x=" + x + " --attr kernel=9 --out " + out, "larger than the padded input"},
      {"op relu --in x=/nonexistent.npy --out " + out, "/nonexistent.npy"},
      {"op relu --in x=" + x + " --device tpu --out " + out, "'tpu' is not a device"},
      {"op relu --in x=" + x + " --device cpu --backend cudnn --out " + out, "cudnn"},
      {"op relu --in x=" + x + " --device emu --backend onednn --out " + out, "onednn runs on device cpu only"},
      {"op linear --in x=" + x + " --in w=" + x + " --out " + out, "argument 'x' must be [N, in_features]"},
      {"op relu --in x=" + x + " --in dz=" + x + " --out " + out, "unknown input 'dz'"},
      {"op sgd --in param=" + x + " --in grad=" + x + " --in dnew_param=" + x + " --out " + out, "unknown input"},
      {"op --out " + out, "give an op name"},
  };
  for (const Case& c : cases) {
    const Result r = run(c.args);
    EXPECT_EQ(r.code, 2) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.expect), std::string::npos)
        << c.args << "\nexpected: " << c.expect << "\ngot: " << r.output;
  }
}

TEST_F(OpCli, CrossEntropyRejectsLabelsOutOfRange) {
  const std::string logits = save("logits", random_vector(6, 7), {2, 3});
  const std::string labels = (dir_ / "labels.npy").string();
  write_npy(labels, Tensor::from_vector(std::vector<int64_t>{0, 3}, {2}));
  for (const char* device : {"cpu", "emu"}) {
    const Result r = run(std::string("op cross_entropy --device ") + device + " --in logits=" + logits +
                         " --in labels=" + labels + " --out " + (dir_ / "o").string());
    EXPECT_EQ(r.code, 2) << device << ": " << r.output;
    EXPECT_NE(r.output.find("label"), std::string::npos) << device << ": " << r.output;
    EXPECT_NE(r.output.find("3"), std::string::npos) << device << ": " << r.output;
  }
}

// --list names every registered op; --json is the registry scripts/check_op_vs_torch.py reads.
TEST_F(OpCli, ListNamesEveryOpAndJsonHasTheirContract) {
  const Result r = run("op --list");
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* op : {"conv2d",        "maxpool2d", "avgpool2d", "global_avgpool", "linear",           "relu",
                         "leaky_relu",    "sigmoid",   "tanh",      "dropout",        "softmax",          "log_softmax",
                         "cross_entropy", "mse",       "lrn",       "batchnorm2d",    "batchnorm2d_eval", "add",
                         "augment",       "sgd",       "adamw"})
    EXPECT_NE(("\n" + r.output).find(std::string("\n") + op + "\n"), std::string::npos) << op << " missing";
  const Result j = run("op --list --json");
  ASSERT_EQ(j.code, 0) << j.output;
  for (const char* key : {"\"torch\"", "\"samples\"", "\"grads\"", "\"implementations\"", "F.conv2d"})
    EXPECT_NE(j.output.find(key), std::string::npos) << key;
#if FOVEA_HAVE_CUDNN
  // The cudnn slots exist once the program has loaded the cudnn module (core/library_module.h): the listing
  // loads it, so `fovea` itself can (it exports what the module needs from it).
  EXPECT_NE(r.output.find("implementations: cpu emu cuda cudnn"), std::string::npos) << r.output;
#endif
}

// cpu_reference/blas.h: the kernel set fovea selects where OpenBLAS chose a weaker one than the CPU runs.
TEST(BlasKernels, ChoiceFollowsTheCpuFeatures) {
  ref::CpuFeatures sse3;
  sse3.sse3 = true;
  ref::CpuFeatures avx2 = sse3;
  avx2.avx = avx2.avx2 = avx2.fma = true;
  ref::CpuFeatures avx512 = avx2;
  avx512.avx512f = avx512.avx512bw = avx512.avx512dq = avx512.avx512vl = true;
  ref::CpuFeatures avx512f_only = avx2;  // SkylakeX's kernels need BW, DQ and VL too
  avx512f_only.avx512f = true;
  EXPECT_EQ(ref::better_openblas_kernels(avx512, "Prescott"), "SkylakeX");  // issue 17's Xeon
  EXPECT_EQ(ref::better_openblas_kernels(avx512, "Haswell"), "SkylakeX");
  EXPECT_EQ(ref::better_openblas_kernels(avx512, "Zen"), "SkylakeX");
  EXPECT_EQ(ref::better_openblas_kernels(avx512, "SKYLAKEX"), "");
  EXPECT_EQ(ref::better_openblas_kernels(avx512, "Cooperlake"), "");
  EXPECT_EQ(ref::better_openblas_kernels(avx512f_only, "Prescott"), "Haswell");
  EXPECT_EQ(ref::better_openblas_kernels(avx2, "Sandybridge"), "Haswell");
  EXPECT_EQ(ref::better_openblas_kernels(avx2, "Zen"), "");
  EXPECT_EQ(ref::better_openblas_kernels(avx2, "Haswell"), "");
  EXPECT_EQ(ref::better_openblas_kernels(sse3, "Prescott"), "");
  EXPECT_EQ(ref::better_openblas_kernels(ref::CpuFeatures{}, "Katmai"), "");
}

TEST(BlasKernels, InfoNamesThemAndABadNameIsRefused) {
  const Result r = run("info");
  ASSERT_EQ(r.code, 0) << r.output;
  const ref::BlasInfo& b = ref::blas_info();
  EXPECT_NE(r.output.find("CPU features: " + ref::cpu_features().str()), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("BLAS: OpenBLAS"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("; kernels "), std::string::npos) << r.output;
  EXPECT_NE(b.library.find(b.kernels), std::string::npos) << b.library;  // OpenBLAS's config names its kernels
  // The default backend on cpu (--backend auto): onednn when its module loads, else the reference.
  const std::string backend = load_module(Backend::onednn) ? "onednn (its module loaded)" : "the reference";
  EXPECT_NE(r.output.find("the default (--backend auto): " + backend), std::string::npos) << r.output;
  const Result bad = run_command("FOVEA_BLAS_KERNELS=NoSuchCore " + std::string(FOVEA_BINARY) + " info");
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_NE(bad.output.find("FOVEA_BLAS_KERNELS=NoSuchCore"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("no kernel set of that name"), std::string::npos) << bad.output;
}

}  // namespace
}  // namespace fovea::test
