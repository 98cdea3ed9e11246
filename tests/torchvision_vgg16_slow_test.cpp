// torchvision's vgg16 (layers/nn/models.cpp): eval-mode logits equal to PyTorch's for the same random weights
// saved by torch.save(model.state_dict()) (tests/torchvision_vgg16_fixture.py), on cpu. Labelled slow: its
// state_dict is 528 MB, written by PyTorch and read by fovea (tests/torchvision_models_test.cpp has its names
// and parameter count without PyTorch, in every CI run). Skips with the reason without python3-torchvision.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/npy.h"
#include "core/pth.h"
#include "layers/nn/checkpoint.h"
#include "layers/nn/models.h"
#include "tests/python_util.h"
#include "tests/test_util.h"

namespace fovea {
namespace {

TEST(TorchvisionVgg16, LogitsMatchPyTorchOnCpu) {
  std::string skip, error;
  const std::string dir =
      test::python_fixtures("tests/torchvision_vgg16_fixture.py", {}, "torch, torchvision, numpy", &skip, &error);
  if (!skip.empty()) GTEST_SKIP() << skip;
  ASSERT_FALSE(dir.empty()) << error;
  std::ifstream in(dir + "/manifest.json");
  const nlohmann::json manifest = nlohmann::json::parse(in);

  const std::string weights = dir + "/vgg16.pth";
  EXPECT_EQ(read_pth(weights).tensors.size(), manifest["tensors"].get<size_t>());
  std::unique_ptr<nn::Model> m = nn::build_model("vgg16", {3, 32, 32}, 1000);
  nn::load_weights(*m, weights);
  m->train(false);
  ops::Context ctx(kCPU);
  const std::vector<float> got = m->forward(ctx, read_npy(dir + "/input.npy")).y.to_vector<float>();
  const std::vector<float> want = read_npy(dir + "/vgg16.logits.npy").to_vector<float>();
  ASSERT_EQ(got.size(), want.size());
  // The bound of tests/torchvision_models_test.cpp: sums of up to 25088 products in 16 layers in another order
  // than PyTorch's, ~sqrt(K) 2^-24 per layer; 1e-4 leaves room, a wrong name or layer gives errors of order 1.
  const double err = test::rel_l2(got, want);
  RecordProperty("rel_l2", std::to_string(err));
  EXPECT_LE(err, 1e-4);
  std::printf("vgg16 on cpu: rel L2 %.3g\n", err);
}

}  // namespace
}  // namespace fovea
