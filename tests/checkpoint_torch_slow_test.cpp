// scripts/check_checkpoint_torch.py on checkpoints that `fovea train` writes (resnet20, cifar_full, small_cnn,
// two epochs on 2,000 synthetic images: batch-norm statistics and weights that have learnt something) over the
// whole synthetic test set, and on random checkpoints of the other CNNs of the zoo (resnet18_cifar and resnet9 with
// projection shortcuts, cifar_quick, lenet5, mnist_cnn). A few minutes on 2 cores: label slow.
// Skips when Debian's python3-torch is not installed.
#include "tests/checkpoint_torch_test_util.h"

namespace fovea::test {
namespace {

class TrainedCheckpoint : public ::testing::TestWithParam<const char*> {};
class RandomCheckpoint : public ::testing::TestWithParam<const char*> {};

TEST_P(TrainedCheckpoint, PyTorchClassifiesTheTestSetAsFoveaDoes) {
  FOVEA_SKIP_WITHOUT_TORCH();
  const TestSet& data = synthetic_test_set();
  ASSERT_EQ(data.written.code, 0) << data.written.output;
  const TempDir dir("fovea_checkpoint_torch_trained");
  const std::string run = dir / GetParam();
  const CliResult train = run_fovea(std::string("train --model ") + GetParam() +
                                    " --dataset synthetic --subset 2000 --epochs 2 --batch 32 --device cpu --quiet"
                                    " --out " +
                                    run);
  ASSERT_EQ(train.code, 0) << train.output;
  EXPECT_TRUE(torch_agrees(run + "/checkpoint.safetensors", data.dir, 0));
}

INSTANTIATE_TEST_SUITE_P(Models, TrainedCheckpoint, ::testing::Values("resnet20", "cifar_full", "small_cnn"),
                         [](const ::testing::TestParamInfo<const char*>& info) { return std::string(info.param); });

TEST_P(RandomCheckpoint, PyTorchClassifiesAsFoveaDoes) {
  FOVEA_SKIP_WITHOUT_TORCH();
  const TestSet& data = synthetic_test_set();
  ASSERT_EQ(data.written.code, 0) << data.written.output;
  const TempDir dir("fovea_checkpoint_torch_random");
  const std::string ckpt = dir / (std::string(GetParam()) + ".safetensors");
  write_random_checkpoint(GetParam(), ckpt, 11);
  EXPECT_TRUE(torch_agrees(ckpt, data.dir, 100));
}

INSTANTIATE_TEST_SUITE_P(Models, RandomCheckpoint,
                         ::testing::Values("resnet18_cifar", "resnet9", "cifar_quick", "lenet5", "mnist_cnn"),
                         [](const ::testing::TestParamInfo<const char*>& info) { return std::string(info.param); });

}  // namespace
}  // namespace fovea::test
