// scripts/check_checkpoint_torch.py on checkpoints of resnet20 (residual blocks, option A shortcuts, batch norm),
// cifar_full (local response normalisation) and small_cnn (batch norm, the flatten fovea inserts before linear):
// PyTorch must classify the first synthetic test images exactly as `fovea eval` does (the same confusion
// matrix), and the script must fail when it does not. Skips when Debian's python3-torch is not installed.
// `fovea dataset`, which writes that test set for the script, is checked without PyTorch. Trained checkpoints
// and the larger zoo models: checkpoint_torch_slow_test.cpp.
#include "tests/checkpoint_torch_test_util.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "layers/data/data.h"
#include "layers/train/session.h"

namespace fovea::test {
namespace {

// `fovea dataset` (needs no PyTorch): fovea's CIFAR-10 loader reads back exactly the synthetic test set.
TEST(DatasetCommand, WritesTheSyntheticTestSetAsCifar10) {
  const TestSet& data = synthetic_test_set();
  ASSERT_EQ(data.written.code, 0) << data.written.output;
  const data::Dataset written = data::load_cifar10(data.dir, data::Split::test);
  const data::Dataset shapes = nn::load_split("synthetic", "", data::Split::test);
  ASSERT_EQ(written.images.shape(), shapes.images.shape());
  EXPECT_EQ(written.labels.to_vector<int64_t>(), shapes.labels.to_vector<int64_t>());
  EXPECT_EQ(std::memcmp(written.images.raw_data(), shapes.images.raw_data(), shapes.images.nbytes()), 0);
  EXPECT_EQ(written.class_names, shapes.class_names);
  const CliResult bad = run_fovea("dataset --dataset synthetic --split validation --out " + data.dir);
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.output.find("--split"), std::string::npos) << bad.output;
}

class CheckpointTorch : public ::testing::TestWithParam<const char*> {};

TEST_P(CheckpointTorch, PyTorchClassifiesAsFoveaDoes) {
  FOVEA_SKIP_WITHOUT_TORCH();
  const TestSet& data = synthetic_test_set();
  ASSERT_EQ(data.written.code, 0) << data.written.output;
  const TempDir dir("fovea_checkpoint_torch_test");
  const std::string ckpt = dir / (std::string(GetParam()) + ".safetensors");
  write_random_checkpoint(GetParam(), ckpt, 7);
  EXPECT_TRUE(torch_agrees(ckpt, data.dir, 200));
}

INSTANTIATE_TEST_SUITE_P(Models, CheckpointTorch, ::testing::Values("resnet20", "cifar_full", "small_cnn"),
                         [](const ::testing::TestParamInfo<const char*>& info) { return std::string(info.param); });

// cifar_full's LRN (alpha 5e-5) barely moves its outputs, so a wrong LRN formula in the script could still give
// the same predictions. Here LRN dominates (alpha 2, k 1.5) and every rebuilt layer kind appears once: a mix-up
// of size, alpha, beta or k, of the shortcut or of the batch-norm statistics changes predictions.
TEST(CheckpointTorchSpec, PyTorchClassifiesAsFoveaDoesWithAStrongLrn) {
  FOVEA_SKIP_WITHOUT_TORCH();
  const TestSet& data = synthetic_test_set();
  ASSERT_EQ(data.written.code, 0) << data.written.output;
  const TempDir dir("fovea_checkpoint_torch_spec");
  const std::string ckpt = dir / "spec.safetensors";
  write_random_checkpoint(
      "conv:16:3:pad=1,relu,lrn:3:alpha=2:beta=0.75:k=1.5,maxpool:2,res(conv:16:3:pad=1,bn,relu,conv:16:3:pad=1,bn),"
      "resa(conv:32:3:stride=2:pad=1,bn),res(conv:48:3:stride=2:pad=1,bn),gap,linear",
      ckpt, 12);
  EXPECT_TRUE(torch_agrees(ckpt, data.dir, 200));
}

TEST(CheckpointTorchScript, FailsWhenTheCountsDiffer) {
  FOVEA_SKIP_WITHOUT_TORCH();
  const TestSet& data = synthetic_test_set();
  ASSERT_EQ(data.written.code, 0) << data.written.output;
  const TempDir dir("fovea_checkpoint_torch_counts");
  const std::string ckpt = dir / "off.safetensors";
  write_random_checkpoint("small_cnn", ckpt, 8);
  const CliResult eval =
      run_fovea("eval --device cpu --no-shifts --subset 100 --checkpoint " + ckpt + " --json " + ckpt + ".json");
  ASSERT_EQ(eval.code, 0) << eval.output;
  std::ifstream in(ckpt + ".json");
  const int correct = int(std::lround(nlohmann::json::parse(in).at("accuracy").get<double>() * 100));
  // One image more than fovea counted must fail.
  const std::string common = ckpt + " --data " + data.dir + " --subset 100 --threads 2 --expect-accuracy ";
  const CliResult off = run_checker(common + std::to_string((correct + 1) / 100.0));
  EXPECT_NE(off.code, 0) << off.output;
  EXPECT_NE(off.output.find("differs from fovea's"), std::string::npos) << off.output;
  // --tolerance (percentage points) lets one image pass.
  const CliResult tolerated = run_checker(common + std::to_string((correct + 1) / 100.0) + " --tolerance 1");
  EXPECT_EQ(tolerated.code, 0) << tolerated.output;
}

TEST(CheckpointTorchScript, RefusesWhatItCannotRead) {
  FOVEA_SKIP_WITHOUT_TORCH();
  const TempDir dir("fovea_checkpoint_torch_refuse");
  std::ofstream(dir / "junk.safetensors") << "1234";
  const CliResult junk = run_checker(dir / "junk.safetensors" + " --data " + dir / "");
  EXPECT_NE(junk.code, 0) << junk.output;
  EXPECT_NE(junk.output.find("shorter than the 8-byte header length"), std::string::npos) << junk.output;
  // A spec argument or layer the script does not know is an error, never ignored.
  std::ofstream(dir / "specs.py") << "import sys\n"
                                     "sys.path.insert(0, '" FOVEA_SOURCE_DIR
                                     "/scripts')\n"
                                     "import check_checkpoint_torch as c\n"
                                     "for spec in ('conv:8:3:pad=1:foo=2', 'conv:8:3,prelu'):\n"
                                     "    try:\n"
                                     "        c.build_sequential(spec, (3, 8, 8), 10)\n"
                                     "        print('accepted', spec)\n"
                                     "    except SystemExit as e:\n"
                                     "        print(e)\n";
  const CliResult specs = run_command(std::string(kPython) + " " + dir / "specs.py");
  EXPECT_EQ(specs.output.find("accepted"), std::string::npos) << specs.output;
  EXPECT_NE(specs.output.find("'conv:8:3:pad=1:foo=2': argument(s) ['foo'] are not known to this checker"),
            std::string::npos)
      << specs.output;
  EXPECT_NE(specs.output.find("item 2 'prelu': layer 'prelu' is not known to this checker"), std::string::npos)
      << specs.output;
  // Without the synthetic test set, the error says how to write it.
  const std::string ckpt = dir / "small.safetensors";
  write_random_checkpoint("small_cnn", ckpt, 9);
  const CliResult no_data = run_checker(ckpt + " --data " + dir / "nothing");
  EXPECT_NE(no_data.code, 0) << no_data.output;
  EXPECT_NE(no_data.output.find("fovea dataset --dataset synthetic --split test"), std::string::npos) << no_data.output;
}

}  // namespace
}  // namespace fovea::test
