// `fovea train` and `fovea eval` end to end, through the real binary: the run directory, bit-exact
// resume, evaluation, transfer learning, early stopping, divergence, and clear errors (exit code 2,
// naming the flag or the file) for bad flags and bad data files.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "core/device.h"
#include "core/io.h"
#include "core/png_io.h"
#include "core/safetensors.h"
#include "tests/temp_dir.h"

#ifndef FOVEA_BINARY
#error "FOVEA_BINARY must be the path of the fovea executable"
#endif

namespace fovea {
namespace {

namespace fs = std::filesystem;

struct Result {
  int rc = -1;
  std::string out;  // stdout and stderr
};

Result fovea(const std::string& args) {
  const std::string cmd = std::string(FOVEA_BINARY) + " " + args + " 2>&1";
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

class TempDir : public test::TempDir {
 public:
  TempDir() : test::TempDir("fovea_train_test") {}
};

// A small, fast configuration that still has BatchNorm (running statistics) and dropout (random masks).
const std::string kSmall =
    "--device cpu --subset 256 --batch 32 --model conv:8:3:pad=1,bn,relu,maxpool:4,dropout:0.2,linear --seed 7 ";

void expect_same_checkpoints(const std::string& a, const std::string& b) {
  const Safetensors x = read_safetensors(a), y = read_safetensors(b);
  ASSERT_EQ(x.tensors.size(), y.tensors.size());
  for (const auto& [name, t] : x.tensors) {
    ASSERT_TRUE(y.tensors.count(name)) << name;
    const Tensor& u = y.tensors.at(name);
    ASSERT_EQ(t.nbytes(), u.nbytes()) << name;
    EXPECT_EQ(std::memcmp(t.raw_data(), u.raw_data(), t.nbytes()), 0) << "tensor " << name << " differs";
  }
}

TEST(Train, WritesTheRunDirectory) {
  TempDir d;
  const Result r = fovea("train " + kSmall + "--epochs 2 --out " + (d / "run"));
  ASSERT_EQ(r.rc, 0) << r.out;
  // Not a terminal: plain progress lines and one summary per epoch.
  EXPECT_NE(r.out.find("epoch 1/2 step 8/8"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("epoch 2/2: train loss"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find('\r'), std::string::npos);
  std::ifstream jl(d / "run/metrics.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(jl, line)) {
    const nlohmann::json j = nlohmann::json::parse(line);
    for (const char* k :
         {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "images_per_s", "seconds", "loader_wait_share"})
      EXPECT_TRUE(j.contains(k)) << k << " missing in " << line;
    EXPECT_EQ(j["epoch"], ++lines);
  }
  EXPECT_EQ(lines, 2);
  const std::string csv = read_file(d / "run/metrics.csv");
  EXPECT_EQ(csv.rfind("epoch,train_loss,train_acc,test_loss,test_acc", 0), 0u) << csv;
  const PngImage png = read_png(d / "run/curves.png");
  EXPECT_EQ(png.pixels.size(0), 3);
  const nlohmann::json cfg = nlohmann::json::parse(read_file(d / "run/config.json"));
  EXPECT_NE(cfg["command"].get<std::string>().find("--subset 256"), std::string::npos) << cfg.dump();
  EXPECT_EQ(cfg["config"]["batch"], 32);
  EXPECT_EQ(cfg["config"]["steps_per_epoch"], 8);
  EXPECT_TRUE(fs::exists(d / "run/checkpoint.safetensors"));
}

TEST(Train, ResumeIsBitExact) {
  TempDir d;
  // Two epochs in one go, versus one epoch and a resumed second one (constant learning rate, so the
  // first run's schedule is the same).
  ASSERT_EQ(fovea("train " + kSmall + "--schedule constant --lr 0.02 --epochs 2 --out " + (d / "a")).rc, 0);
  ASSERT_EQ(fovea("train " + kSmall + "--schedule constant --lr 0.02 --epochs 1 --out " + (d / "b")).rc, 0);
  const Result r = fovea("train " + kSmall + "--schedule constant --lr 0.02 --epochs 2 --resume " +
                         (d / "b/checkpoint.safetensors") + " --out " + (d / "c"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("resuming at step 8"), std::string::npos) << r.out;
  expect_same_checkpoints(d / "a/checkpoint.safetensors", d / "c/checkpoint.safetensors");
  // Stopped in the middle of an epoch by --max-steps and resumed with the limit lifted (a constant schedule:
  // --max-steps shapes the schedule like fewer epochs would; session_test resumes a cosine schedule stopped
  // inside an epoch).
  const Result part =
      fovea("train " + kSmall + "--schedule constant --lr 0.02 --epochs 2 --max-steps 5 --out " + (d / "f"));
  ASSERT_EQ(part.rc, 0) << part.out;
  EXPECT_NE(part.out.find("(partial)"), std::string::npos) << part.out;
  // --resume RUN_DIR restores the rest of the configuration; a differing flag is refused by name.
  const Result conflict = fovea("train --resume " + (d / "f") + " --batch 16");
  EXPECT_EQ(conflict.rc, 2) << conflict.out;
  EXPECT_NE(conflict.out.find("--resume: --batch 16 differs from the run's 32"), std::string::npos) << conflict.out;
  const Result rest = fovea("train --device cpu --max-steps 0 --resume " + (d / "f"));
  ASSERT_EQ(rest.rc, 0) << rest.out;
  expect_same_checkpoints(d / "a/checkpoint.safetensors", d / "f/checkpoint.safetensors");
}

// --precision bf16 (conv and linear at BF16, FP32 weights): printed in the header, recorded in config.json and
// restored by --resume, which continues bit-exactly (tests/parity_test.cpp checks that BF16 runs differ from FP32).
TEST(Train, PrecisionIsRecordedAndResumed) {
  TempDir d;
  const std::string args =
      "train " + kSmall + "--schedule constant --lr 0.02 --epochs 1 --eval-subset 64 --precision bf16 ";
  const Result whole = fovea(args + "--max-steps 4 --out " + (d / "a"));
  ASSERT_EQ(whole.rc, 0) << whole.out;
  EXPECT_NE(whole.out.find("precision bf16 (conv and linear; FP32 weights and optimizer)"), std::string::npos)
      << whole.out;
  ASSERT_EQ(fovea(args + "--max-steps 2 --out " + (d / "b")).rc, 0);
  const nlohmann::json cfg = nlohmann::json::parse(read_file(d / "b/config.json"));
  EXPECT_EQ(cfg["config"]["precision"], "bf16") << cfg.dump();
  const Result resumed = fovea("train --device cpu --max-steps 4 --resume " + (d / "b"));
  ASSERT_EQ(resumed.rc, 0) << resumed.out;
  EXPECT_NE(resumed.out.find("precision bf16"), std::string::npos) << resumed.out;
  expect_same_checkpoints(d / "a/checkpoint.safetensors", d / "b/checkpoint.safetensors");
}

// --precision fp16 trains with dynamic loss scaling (GradScaler's rule): the header and config.json say so with its
// parameters, each epoch reports the scale and the skipped steps, --resume restores the scaler and continues
// bit-exactly (BadFlagsExitWithUsageErrorNamingTheFlag: --loss-scale without fp16, or a bad value).
TEST(Train, Fp16LossScalingIsRecordedAndResumed) {
  TempDir d;
  const std::string args = "train " + kSmall +
                           "--schedule constant --lr 0.02 --epochs 1 --eval-subset 64 --precision fp16 "
                           "--loss-scale dynamic:1048576 --loss-scale-growth-interval 2 ";
  const Result whole = fovea(args + "--max-steps 5 --out " + (d / "a"));
  ASSERT_EQ(whole.rc, 0) << whole.out;
  EXPECT_NE(whole.out.find("precision fp16 (conv and linear; FP32 weights and optimizer; dynamic loss scaling from "
                           "1048576 (x2 after 2 finite steps, x0.5 on a non-finite one))"),
            std::string::npos)
      << whole.out;
  EXPECT_NE(whole.out.find("loss scale "), std::string::npos) << whole.out;
  ASSERT_EQ(fovea(args + "--max-steps 3 --out " + (d / "b")).rc, 0);
  const nlohmann::json cfg = nlohmann::json::parse(read_file(d / "b/config.json"));
  EXPECT_EQ(cfg["config"]["precision"], "fp16") << cfg.dump();
  EXPECT_EQ(cfg["config"]["loss_scale"], "dynamic:1048576") << cfg.dump();
  EXPECT_EQ(cfg["config"]["loss_scale_growth_interval"], 2) << cfg.dump();
  EXPECT_EQ(cfg["config"]["loss_scale_backoff_factor"], 0.5) << cfg.dump();
  const Result resumed = fovea("train --device cpu --max-steps 5 --resume " + (d / "b"));
  ASSERT_EQ(resumed.rc, 0) << resumed.out;
  EXPECT_NE(resumed.out.find("dynamic loss scaling"), std::string::npos) << resumed.out;
  expect_same_checkpoints(d / "a/checkpoint.safetensors", d / "b/checkpoint.safetensors");
  const Result other = fovea("train --resume " + (d / "b") + " --loss-scale 8");
  EXPECT_EQ(other.rc, 2) << other.out;
  EXPECT_NE(other.out.find("--resume: --loss-scale"), std::string::npos) << other.out;
}

TEST(Train, EvalReportsAccuracyConfusionAndShiftedAccuracy) {
  TempDir d;
  ASSERT_EQ(fovea("train --device cpu --subset 2000 --epochs 2 --out " + (d / "a")).rc, 0);
  const Result r = fovea("eval --device cpu --subset 1000 --checkpoint " + (d / "a/checkpoint.safetensors") +
                         " --json " + (d / "e.json"));
  ASSERT_EQ(r.rc, 0) << r.out;
  // Progress: one line per pass when stderr is not a terminal (the test set, then 4 shifts of 3 sizes).
  EXPECT_NE(r.out.find("eval: synthetic test set on cpu (1000 examples)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("eval: shifted by (0, -3)"), std::string::npos) << r.out;
  for (const char* s : {"accuracy", "per-class accuracy", "confusion matrix", "translation test"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
  const nlohmann::json j = nlohmann::json::parse(read_file(d / "e.json"));
  EXPECT_EQ(j["examples"].get<int64_t>(), 1000);
  EXPECT_EQ(j["confusion"].size(), 10u);
  int64_t total = 0;
  for (const auto& row : j["confusion"])
    for (const auto& v : row) total += v.get<int64_t>();
  EXPECT_EQ(total, j["examples"].get<int64_t>());
  // One per-class line per class with its name and its count of correct / all test examples of that class.
  const std::string per_class = r.out.substr(r.out.find("per-class accuracy:"));
  const char* const names[] = {"circle", "square", "triangle"};
  for (int c = 0; c < 3; ++c) {
    int64_t row = 0;
    for (const auto& v : j["confusion"][c]) row += v.get<int64_t>();
    const std::string counts =
        "(" + std::to_string(j["confusion"][c][c].get<int64_t>()) + "/" + std::to_string(row) + ")";
    const size_t line = per_class.find("\n    " + std::to_string(c) + " " + names[c]);
    ASSERT_NE(line, std::string::npos) << names[c] << "\n" << per_class;
    EXPECT_NE(per_class.substr(line, per_class.find('\n', line + 1) - line).find(counts), std::string::npos)
        << counts << "\n"
        << per_class;
  }
  ASSERT_EQ(j["shifted"].size(), 3u);
  EXPECT_EQ(j["shifted"][2]["pixels"], 3);
  EXPECT_GT(j["accuracy"].get<double>(), 0.2);  // far above chance (0.1) after two small epochs
}

TEST(Train, TransferLearningKeepsFrozenLayers) {
  TempDir d;
  ASSERT_EQ(fovea("train " + kSmall + "--epochs 1 --out " + (d / "a")).rc, 0);
  const Result r = fovea("train " + kSmall + "--epochs 1 --lr 0.1 --init-from " + (d / "a/checkpoint.safetensors") +
                         " --freeze all-but-last --out " + (d / "b"));
  ASSERT_EQ(r.rc, 0) << r.out;
  const Safetensors a = read_safetensors(d / "a/checkpoint.safetensors"),
                    b = read_safetensors(d / "b/checkpoint.safetensors");
  for (const char* frozen : {"0.weight", "0.bias", "1.weight", "1.bias"})
    EXPECT_EQ(
        std::memcmp(a.tensors.at(frozen).raw_data(), b.tensors.at(frozen).raw_data(), a.tensors.at(frozen).nbytes()), 0)
        << frozen;
  EXPECT_NE(std::memcmp(a.tensors.at("6.weight").raw_data(), b.tensors.at("6.weight").raw_data(),
                        a.tensors.at("6.weight").nbytes()),
            0);
}

TEST(Train, EarlyStoppingOnTheValidationSplit) {
  TempDir d;
  // A learning rate far below float resolution: the validation loss never improves after epoch 1.
  const Result r = fovea(
      "train --device cpu --subset 256 --batch 32 --model conv:4:3,relu,linear --schedule constant "
      "--lr 1e-30 --epochs 6 --val-split 0.25 --early-stop 1 --out " +
      (d / "a"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("early stop"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("val loss"), std::string::npos) << r.out;
  const std::string jl = read_file(d / "a/metrics.jsonl");
  EXPECT_EQ(std::count(jl.begin(), jl.end(), '\n'), 2) << jl;
  EXPECT_TRUE(fs::exists(d / "a/best.safetensors"));
}

TEST(Train, DivergenceNamesTheStepAndTheLastGoodCheckpoint) {
  TempDir d;
  // A schedule that multiplies the learning rate by 1e32 after the first epoch (a resumed run may not change
  // --lr: it keeps its configuration).
  const std::string ckpt = d / "a/checkpoint.safetensors";
  const Result r = fovea("train " + kSmall + "--epochs 3 --schedule step:1:1e32 --out " + (d / "a"));
  EXPECT_EQ(r.rc, 3) << r.out;
  EXPECT_NE(r.out.find("diverged"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("at step"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("the last good checkpoint is " + ckpt), std::string::npos) << r.out;
}

TEST(Train, AutoDeviceSaysWhenThereIsNoGpu) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is visible: --device auto picks cuda without a notice";
  TempDir d;
  const Result r = fovea("train --subset 64 --batch 32 --epochs 1 --model conv:4:3,relu,linear --out " + (d / "a"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("no GPU is visible"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("on cpu"), std::string::npos) << r.out;
}

TEST(Train, BadFlagsExitWithUsageErrorNamingTheFlag) {
  TempDir d;
  struct Case {
    std::string args, expect;
  };
  const std::string out = " --out " + (d / "x");
  for (const Case& c : {
           Case{"--epochs 0", "--epochs"},
           Case{"--epochs abc", "--epochs"},
           Case{"--batch -3", "--batch"},
           Case{"--lr -1", "--lr"},
           Case{"--device tpu", "--device"},
           Case{"--optimizer adam", "--optimizer"},
           Case{"--backend cudnnn", "--backend"},
           Case{"--precision fp64", "--precision: 'fp64' is not a precision (expected fp32, tf32, bf16 or fp16)"},
           Case{"--precision fp16 --loss-scale 0", "--loss-scale: '0' is not a loss scale"},
           Case{"--precision fp16 --loss-scale-growth-interval 0", "--loss-scale-growth-interval"},
           Case{"--precision bf16 --loss-scale 1024",
                "--loss-scale and --loss-scale-growth-interval need --precision "
                "fp16"},
           Case{"--schedule cosin", "--schedule"},
           Case{"--dataset imagenet", "--dataset"},
           Case{"--augment crop", "--augment"},
           Case{"--augment rotate:999", "--augment"},
           Case{"--model rleu", "rleu"},
           Case{"--model conv:8:3,linear:5", "10 classes"},
           Case{"--freeze 99", "--freeze"},
           Case{"--model resnet18 --freeze layer5",
                "--freeze: model resnet18 has no module 'layer5'; its top-level "
                "modules are conv1, bn1, relu, maxpool, layer1, layer2, layer3, "
                "layer4, avgpool, fc"},
           Case{"--replace-head", "--replace-head needs --init-from"},
           Case{"--classes 3-12", "--classes: '3-12' is outside the dataset's classes 0-9"},
           Case{"--subset 999999", "--subset"},
           Case{"--early-stop 2", "--val-split"},
           Case{"--val-split 2000000", "--val-split"},
           Case{"--dataset mnist", "--data"},
           Case{"--dataset mnist --data /nonexistent/dir", "/nonexistent/dir"},
           Case{"--resume /nonexistent/ckpt.safetensors", "/nonexistent/ckpt.safetensors"},
           Case{"--init-from /nonexistent/ckpt.safetensors", "/nonexistent/ckpt.safetensors"},
           Case{"--foo", "--foo"},
           Case{"--seed -1", "--seed: must be an integer in [0, 2^64) without a sign, got '-1'"},
           Case{"--batch 8 --batch 16", "--batch: given 2 times; give it once"},
           Case{"--eval-subset 99999999", "--eval-subset: must be <="},
       }) {
    const Result r = fovea("train --device cpu --subset 64 --epochs 1 " + c.args + out);
    EXPECT_EQ(r.rc, 2) << c.args << "\n" << r.out;
    EXPECT_NE(r.out.find(c.expect), std::string::npos) << c.args << ": output lacks '" << c.expect << "':\n" << r.out;
  }
  const Result e = fovea("eval --checkpoint /nonexistent/x.safetensors");
  EXPECT_EQ(e.rc, 2) << e.out;
  EXPECT_NE(e.out.find("/nonexistent/x.safetensors"), std::string::npos) << e.out;
  const Result m = fovea("eval");
  EXPECT_EQ(m.rc, 2) << m.out;
  EXPECT_NE(m.out.find("--checkpoint"), std::string::npos) << m.out;
}

// ---- bad data files

std::string be32(uint32_t v) {
  return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
}
std::string idx_images(uint32_t n, int fill = 7) {
  return std::string("\0\0\x08\x03", 4) + be32(n) + be32(28) + be32(28) + std::string(size_t(n) * 784, char(fill));
}
std::string idx_labels(uint32_t n, uint8_t label = 3) {
  return std::string("\0\0\x08\x01", 4) + be32(n) + std::string(size_t(n), char(label));
}
void write(const std::string& path, const std::string& bytes) {
  write_file_atomic(path, bytes);
}

TEST(Train, BadDataFilesExitWithUsageErrorNamingTheFile) {
  struct Case {
    std::string what, file, bytes, expect;
  };
  const std::string labels_bad =
      std::string("\0\0\x08\x01", 4) + be32(32) + std::string(31, char(3)) + std::string(1, char(12));
  for (const Case& c : {
           Case{"wrong magic", "train-images-idx3-ubyte", std::string("\0\0\x09\x03", 4) + idx_images(32).substr(4),
                ""},
           Case{"truncated images", "train-images-idx3-ubyte", idx_images(32).substr(0, 16 + 784 * 10), "offset"},
           Case{"oversized images", "train-images-idx3-ubyte", idx_images(32) + "xyz", ""},
           Case{"label out of range", "train-labels-idx1-ubyte", labels_bad, "12"},
           // The IDX reader accepts any image size; the trainer then refuses train and test images of
           // different sizes, naming the two datasets and their shapes.
           Case{"wrong image size", "mnist/train",
                std::string("\0\0\x08\x03", 4) + be32(32) + be32(20) + be32(20) + std::string(32 * 400, char(1)),
                "[1, 20, 20]"},
           Case{"missing file", "train-labels-idx1-ubyte", "", ""},
       }) {
    TempDir d;
    write(d / "train-images-idx3-ubyte", idx_images(32));
    write(d / "train-labels-idx1-ubyte", idx_labels(32));
    write(d / "t10k-images-idx3-ubyte", idx_images(16));
    write(d / "t10k-labels-idx1-ubyte", idx_labels(16));
    const std::string file = c.file == "mnist/train" ? "train-images-idx3-ubyte" : c.file;
    if (c.bytes.empty())
      fs::remove(d / file);
    else
      write(d / file, c.bytes);
    const Result r = fovea("train --device cpu --dataset mnist --epochs 1 --model mnist_cnn --data " + d.str() +
                           " --out " + (d / "run"));
    EXPECT_EQ(r.rc, 2) << c.what << "\n" << r.out;
    EXPECT_NE(r.out.find(c.file), std::string::npos) << c.what << ": the message does not name " << c.file << ":\n"
                                                     << r.out;
    if (!c.expect.empty()) {
      EXPECT_NE(r.out.find(c.expect), std::string::npos) << c.what << ":\n" << r.out;
    }
  }
  // A truncated CIFAR batch.
  TempDir d;
  write(d / "data_batch_1.bin", std::string(3073 * 2 + 100, char(1)));
  const Result r = fovea("train --device cpu --dataset cifar10 --epochs 1 --data " + d.str() + " --out " + (d / "run"));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("data_batch_1.bin"), std::string::npos) << r.out;
}

TEST(Train, FolderDatasetTrainsAndEvaluatesEndToEnd) {
  TempDir d;
  // A folder dataset written by `fovea dataset --format folder`: 3 classes of the synthetic shapes (both parts from
  // the test split, which is generated faster than the training split).
  Result r = fovea("dataset --dataset synthetic --split test --format folder --classes 0-2 --per-class 8 --out " +
                   (d / "f/train"));
  ASSERT_EQ(r.rc, 0) << r.out;
  ASSERT_EQ(fovea("dataset --dataset synthetic --split test --format folder --classes 0-2 --per-class 4 --out " +
                  (d / "f/val"))
                .rc,
            0);
  EXPECT_TRUE(fs::is_regular_file(d / "f/train/circle/00000.png"));
  r = fovea("dataset --dataset synthetic --split test --format folder --classes 0 --out " + (d / "f/val"));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("not empty"), std::string::npos) << r.out;
  const std::string run = "train --device cpu --dataset folder --data " + (d / "f") +
                          " --image-size 16 --epochs 1 --batch 8 --decode-threads 2 --model "
                          "conv:8:3:pad=1,bn,relu,maxpool:4,linear --out ";
  r = fovea(run + (d / "run"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("folder on cpu (24 training, 12 test examples)"), std::string::npos) << r.out;
  r = fovea("eval --device cpu --checkpoint " + (d / "run/checkpoint.safetensors") + " --json " + (d / "e.json"));
  ASSERT_EQ(r.rc, 0) << r.out;
  for (const char* name : {"circle", "square", "triangle"}) EXPECT_NE(r.out.find(name), std::string::npos) << r.out;
  const nlohmann::json ej = nlohmann::json::parse(read_file(d / "e.json"));
  EXPECT_EQ(ej["examples"].get<int64_t>(), 12);
  // fovea predict with the checkpoint names the checkpoint's classes, through the same eval transform: its top-1
  // guesses agree with eval's confusion matrix, row by row (the true class of each file is its folder).
  std::string images;
  std::vector<std::string> truth;
  for (const auto& e : fs::directory_iterator(d / "f/val"))
    for (const auto& f : fs::directory_iterator(e.path())) {
      images += " " + f.path().string();
      truth.push_back(e.path().filename().string());
    }
  r = fovea("predict --device cpu --topk 1 --checkpoint " + (d / "run/checkpoint.safetensors") + images);
  ASSERT_EQ(r.rc, 0) << r.out;
  const std::vector<std::string> names = {"circle", "square", "triangle"};
  std::vector<std::vector<int64_t>> confusion(3, std::vector<int64_t>(3, 0));
  std::istringstream lines(r.out);
  std::string line;
  size_t image = 0;
  while (std::getline(lines, line))
    if (line.rfind("   1. ", 0) == 0) {  // "   1.  41.232%     2  triangle"
      ASSERT_LT(image, truth.size()) << r.out;
      const std::string guess = line.substr(line.find_last_of(' ') + 1);
      const auto t = std::find(names.begin(), names.end(), truth[image++]);
      const auto g = std::find(names.begin(), names.end(), guess);
      ASSERT_TRUE(t != names.end() && g != names.end()) << line;
      ++confusion[size_t(t - names.begin())][size_t(g - names.begin())];
    }
  EXPECT_EQ(image, truth.size()) << r.out;
  EXPECT_EQ(nlohmann::json(confusion), ej["confusion"]) << r.out;
  // A corrupt image stops the run naming it (exit 2), or is skipped and counted.
  const std::string bad = d / "f/train/square/00001.png";
  write(bad, read_file(bad).substr(0, 60));
  r = fovea(run + (d / "run2"));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find(bad), std::string::npos) << r.out;
  r = fovea(run + (d / "run3") + " --skip-bad-images");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("skipped 1 unreadable training images"), std::string::npos) << r.out;
  r = fovea("train --device cpu --dataset folder --data " + (d / "missing"));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find(d / "missing"), std::string::npos) << r.out;
}

TEST(Train, ListModels) {
  const Result r = fovea("train --list-models");
  ASSERT_EQ(r.rc, 0) << r.out;
  for (const char* m : {"mnist_cnn", "lenet5", "cifar_quick", "cifar_full", "resnet20", "resnet18_cifar", "resnet9",
                        "resnet18", "resnet34", "resnet50"})
    EXPECT_NE(r.out.find(m), std::string::npos) << m;
}

}  // namespace
}  // namespace fovea
