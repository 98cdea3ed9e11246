// Helpers of the tests of scripts/check_checkpoint_torch.py (checkpoint_torch_test.cpp, and
// checkpoint_torch_slow_test.cpp for trained checkpoints and the large zoo models).
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/philox.h"
#include "layers/nn/checkpoint.h"
#include "tests/cli_test_util.h"
#include "tests/python_util.h"
#include "tests/temp_dir.h"

namespace fovea::test {

namespace fs = std::filesystem;

// "" when /usr/bin/python3 has torch and numpy (the script's imports), else why not; asked once per test binary.
inline const std::string& torch_missing() {
  static const std::string why = python_missing("torch, numpy");
  return why;
}

#define FOVEA_SKIP_WITHOUT_TORCH() \
  if (!::fovea::test::torch_missing().empty()) GTEST_SKIP() << ::fovea::test::torch_missing()

// `check_checkpoint_torch.py ARGS`.
inline CliResult run_checker(const std::string& args) {
  return run_command(std::string(kPython) + " " + FOVEA_SOURCE_DIR + "/scripts/check_checkpoint_torch.py " + args);
}

// A folder of the test binary's own under the temp directory, removed by the destructor.

// The synthetic test set in the CIFAR-10 layout as `fovea dataset` writes it for other tools (the script has no
// generator of its own), once per test binary; `code` and `output` are the command's.
struct TestSet {
  std::string dir;
  CliResult written;
};
inline const TestSet& synthetic_test_set() {
  static const TempDir dir("fovea_checkpoint_torch_data");
  static const TestSet set{dir / "data", run_fovea("dataset --dataset synthetic --split test --out " + dir / "data")};
  return set;
}

// Writes a checkpoint of zoo model `model` for the synthetic shapes (3x32x32, 10 classes) whose every tensor is
// random: the initialisation for conv and linear weights, and random batch-norm scales, shifts and running
// statistics, so that a mix-up of any two names (weight/bias, running_mean/running_var) changes the outputs.
inline void write_random_checkpoint(const std::string& model, const std::string& path, uint64_t seed) {
  ops::Context ctx(kCPU);
  std::unique_ptr<nn::Model> m = nn::build_model(model, Shape{3, 32, 32}, 10);
  m->initialize(ctx, seed);
  uint64_t stream = 0;
  auto fill = [&](Tensor& t, float lo, float hi) {
    std::vector<float> v(size_t(t.numel()));
    for (size_t i = 0; i < v.size(); ++i) v[i] = lo + (hi - lo) * philox_uniform(seed, stream, i);
    ++stream;
    t = Tensor::from_vector(v, t.shape());
  };
  for (nn::StateRef& s : m->states()) {
    const bool var = s.path.ends_with("running_var");
    fill(s.state->value, var ? 0.5f : -0.2f, var ? 1.5f : 0.2f);
  }
  for (nn::ParamRef& p : m->parameters()) {
    const bool bias = p.path.ends_with("bias");
    if (p.param->value.ndim() == 1) fill(p.param->value, bias ? -0.2f : 0.5f, bias ? 0.2f : 1.5f);  // bn, biases
  }
  nn::CheckpointMeta meta;
  meta.dataset = "synthetic";
  meta.class_names = {"circle", "square", "triangle", "cross",   "ring",
                      "h-bars", "v-bars", "diagonal", "ellipse", "plus"};
  meta.normalization.mean = {0.45f, 0.5f, 0.55f};
  meta.normalization.stddev = {0.25f, 0.3f, 0.2f};
  nn::save_checkpoint(path, *m, nullptr, meta);
}

// Checks `ckpt` in PyTorch against `fovea eval` on the first `subset` (0: all) synthetic test images, which
// `data_dir` holds in the CIFAR-10 layout (fovea dataset): the same confusion matrix.
inline ::testing::AssertionResult torch_agrees(const std::string& ckpt, const std::string& data_dir, int subset) {
  const std::string eval_json = ckpt + ".eval.json";
  const std::string sub = subset > 0 ? " --subset " + std::to_string(subset) : std::string();
  const CliResult eval = run_fovea("eval --device cpu --no-shifts --checkpoint " + ckpt + sub + " --json " + eval_json);
  if (eval.code != 0) return ::testing::AssertionFailure() << "fovea eval failed:\n" << eval.output;
  const CliResult check =
      run_checker(ckpt + " --data " + data_dir + sub + " --fovea-eval " + eval_json + " --threads 2");
  if (check.code != 0 || check.output.find("confusion matrix: identical") == std::string::npos ||
      check.output.find("load_state_dict(strict=True) ok") == std::string::npos)
    return ::testing::AssertionFailure() << "check_checkpoint_torch.py (exit " << check.code << "):\n" << check.output;
  return ::testing::AssertionSuccess() << check.output;
}

}  // namespace fovea::test
