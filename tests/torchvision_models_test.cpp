// torchvision's ImageNet models in the zoo (resnet18, resnet34, resnet50, mobilenet_v2; layers/nn/models.cpp):
// torchvision's parameter names and counts, strict loading of its state_dict (a missing, extra or
// misshapen tensor is an error naming it), and, when /usr/bin/python3 has torch and torchvision,
// eval-mode logits equal to PyTorch's for random weights with non-trivial batch-norm statistics
// saved by torch.save(model.state_dict()) (tests/torchvision_fixtures.py), on cpu, and on emu for resnet18
// and mobilenet_v2 (one image).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/device.h"
#include "core/npy.h"
#include "core/pth.h"
#include "layers/nn/checkpoint.h"
#include "layers/nn/models.h"
#include "tests/python_util.h"
#include "tests/test_util.h"

namespace fovea {
namespace {

using nn::build_model;
using nn::Model;
using test::throws_error;

struct Fixtures {
  std::string dir, skip;
  nlohmann::json manifest;
};

const Fixtures& fixtures() {
  static const Fixtures f = [] {
    Fixtures f;
    std::string error;
    f.dir =
        test::python_fixtures("tests/torchvision_fixtures.py", {}, "torch, torchvision, numpy, PIL", &f.skip, &error);
    if (f.dir.empty()) {
      if (f.skip.empty()) ADD_FAILURE() << error;
      return f;
    }
    std::ifstream in(f.dir + "/manifest.json");
    f.manifest = nlohmann::json::parse(in);
    return f;
  }();
  return f;
}

std::set<std::string> tensor_names(Model& m) {
  std::set<std::string> names;
  for (const nn::ParamRef& p : m.parameters()) names.insert(p.path);
  for (const nn::StateRef& s : m.states()) names.insert(s.path);
  return names;
}

// ------------------------------------------------------------------ without PyTorch

TEST(TorchvisionModels, ParameterCountsAreTorchvisions) {
  // sum(p.numel() for p in torchvision.models.<arch>().parameters()), 1000 classes.
  for (const auto& [name, count] : std::vector<std::pair<const char*, int64_t>>{
           {"resnet18", 11689512}, {"resnet34", 21797672}, {"resnet50", 25557032}, {"mobilenet_v2", 3504872}}) {
    std::unique_ptr<Model> m = build_model(name, {3, 224, 224}, 1000);
    EXPECT_EQ(m->num_parameters(), count) << name;
    EXPECT_EQ(m->name(), name);
  }
}

TEST(TorchvisionModels, NamesAreTorchvisions) {
  std::unique_ptr<Model> m = build_model("resnet18", {3, 64, 64}, 1000);
  const std::set<std::string> names = tensor_names(*m);
  EXPECT_EQ(names.size(), 102u);  // torchvision's 122 less the 20 num_batches_tracked
  for (const char* n : {"conv1.weight", "bn1.weight", "bn1.running_mean", "bn1.running_var", "layer1.0.conv1.weight",
                        "layer1.1.bn2.bias", "layer2.0.downsample.0.weight", "layer2.0.downsample.1.running_var",
                        "layer4.1.conv2.weight", "fc.weight", "fc.bias"})
    EXPECT_TRUE(names.count(n)) << n;
  EXPECT_FALSE(names.count("layer1.0.downsample.0.weight"));  // the shape does not change there
  std::unique_ptr<Model> r50 = build_model("resnet50", {3, 64, 64}, 1000);
  const std::set<std::string> n50 = tensor_names(*r50);
  EXPECT_EQ(n50.size(), 267u);  // torchvision's 320 less 53 num_batches_tracked
  for (const char* n :
       {"layer1.0.downsample.0.weight", "layer1.0.conv3.weight", "layer3.5.bn3.running_mean", "layer4.2.conv2.weight"})
    EXPECT_TRUE(n50.count(n)) << n;
}

TEST(TorchvisionModels, MobilenetV2NamesAreTorchvisions) {
  std::unique_ptr<Model> m = build_model("mobilenet_v2", {3, 64, 64}, 1000);
  const std::set<std::string> names = tensor_names(*m);
  EXPECT_EQ(names.size(), 262u);  // torchvision's 314 less 52 num_batches_tracked
  for (const char* n : {"features.0.0.weight", "features.0.1.running_var", "features.1.conv.0.0.weight",
                        "features.1.conv.1.weight", "features.1.conv.2.bias", "features.2.conv.0.0.weight",
                        "features.2.conv.1.0.weight", "features.2.conv.3.running_mean", "features.17.conv.2.weight",
                        "features.18.0.weight", "features.18.1.bias", "classifier.1.weight", "classifier.1.bias"})
    EXPECT_TRUE(names.count(n)) << n;
  std::map<std::string, Shape> shapes;
  for (const auto& [name, t] : m->state_dict()) shapes[name] = t.shape();
  EXPECT_EQ(shapes["features.2.conv.1.0.weight"], Shape({96, 1, 3, 3}));  // depthwise: groups = channels
  EXPECT_EQ(shapes["classifier.1.weight"], Shape({1000, 1280}));
}

TEST(TorchvisionModels, Vgg16NamesAreTorchvisions) {
  // Built once (138 M parameters: half a gigabyte); its tensors are looked at, not copied.
  std::unique_ptr<Model> m = build_model("vgg16", {3, 32, 32}, 1000);
  EXPECT_EQ(m->num_parameters(), 138357544);
  std::map<std::string, Shape> shapes;
  for (const nn::ParamRef& p : m->parameters()) shapes[p.path] = p.param->value.shape();
  EXPECT_EQ(shapes.size(), 32u);  // 13 convs and 3 linears, weight and bias each
  EXPECT_EQ(shapes["features.0.weight"], Shape({64, 3, 3, 3}));
  EXPECT_EQ(shapes["features.28.bias"], Shape({512}));
  EXPECT_EQ(shapes["classifier.0.weight"], Shape({4096, 25088}));  // 512 x 7 x 7 after the adaptive pool
  EXPECT_EQ(shapes["classifier.6.weight"], Shape({1000, 4096}));
  // 32x32 leaves 1x1 after the features; the adaptive pool repeats it to 7x7.
  EXPECT_EQ(m->net().output_shape({2, 3, 32, 32}), Shape({2, 1000}));
}

// The stride of each bottleneck sits on conv2 (v1.5) and the stem halves twice: 64 -> 32 -> 16.
TEST(TorchvisionModels, ShapesFollowTheImageNetStemAndV15Bottleneck) {
  std::unique_ptr<Model> m = build_model("resnet50", {3, 64, 64}, 1000);
  std::map<std::string, std::string> describe;
  std::function<void(const nn::Layer&, const std::string&)> walk = [&](const nn::Layer& l, const std::string& path) {
    describe[path] = l.describe();
    for (const auto& [name, child] : l.children())
      walk(*child, name.empty() ? path : (path.empty() ? name : path + "." + name));
  };
  walk(m->net(), "");
  EXPECT_EQ(describe["conv1"], "conv2d 3->64 7x7 stride 2 pad 3 no-bias");
  EXPECT_EQ(describe["maxpool"], "maxpool2d 3x3 stride 2x2 pad 1x1");
  EXPECT_EQ(describe["layer2.0.conv1"], "conv2d 256->128 1x1 no-bias");
  EXPECT_EQ(describe["layer2.0.conv2"], "conv2d 128->128 3x3 stride 2 pad 1 no-bias");
  EXPECT_EQ(describe["layer2.0.downsample.0"], "conv2d 256->512 1x1 stride 2 no-bias");
  EXPECT_EQ(m->net().output_shape({2, 3, 64, 64}), Shape({2, 1000}));
}

// The spec items the torchvision models are written in: NAME=ITEM, seq(...), block(...).
TEST(TorchvisionModels, NamedItemsSeqAndBlock) {
  std::unique_ptr<Model> m = build_model(
      "stem=conv:8:3:pad=1:bias=0,bn,body=seq(block(c=conv:16:3:stride=2:pad=1,n=bn),relu),fc=linear", {3, 8, 8}, 5);
  const std::set<std::string> names = tensor_names(*m);
  EXPECT_EQ(names,
            (std::set<std::string>{
                "stem.weight", "1.weight", "1.bias", "1.running_mean", "1.running_var", "body.0.c.weight",
                "body.0.c.bias", "body.0.n.weight", "body.0.n.bias", "body.0.n.running_mean", "body.0.n.running_var",
                "body.0.downsample.0.weight", "body.0.downsample.1.weight", "body.0.downsample.1.bias",
                "body.0.downsample.1.running_mean", "body.0.downsample.1.running_var", "fc.weight", "fc.bias"}));
  // block = relu(body + shortcut): nothing negative comes out of it.
  ops::Context ctx(kCPU);
  m->initialize(ctx, 3);
  m->train(false);
  const nn::Layer& block = dynamic_cast<const nn::Sequential&>(m->net().at(2)).at(0);
  EXPECT_EQ(block.describe().rfind("block(", 0), 0u) << block.describe();
  EXPECT_TRUE(throws_error(
      [] {
        build_model("a=conv:4:3,a=relu,gap,linear", {3, 8, 8}, 2);
      },
      {"item 2 'a=relu'", "two layers are named 'a'"}));
  EXPECT_TRUE(throws_error(
      [] {
        build_model("1a=conv:4:3,gap,linear", {3, 8, 8}, 2);
      },
      {"must not start with a digit"}));
  EXPECT_TRUE(throws_error([] { build_model("x=init=kaiming,gap,linear", {3, 8, 8}, 2); }, {"x=init=kaiming"}));
  EXPECT_TRUE(throws_error([] { build_model("seq(conv:4:3,gap,linear", {3, 8, 8}, 2); }, {"unbalanced"}));
}

// Its own state_dict with one tensor missing, one extra, one misshapen: each an error naming the tensor.
TEST(TorchvisionModels, StrictLoadingNamesTheTensor) {
  std::unique_ptr<Model> m = build_model("resnet18", {3, 32, 32}, 1000);
  const std::map<std::string, Tensor> good = m->state_dict();
  EXPECT_NO_THROW(m->load_state_dict(good, true));
  auto with_count = good;
  with_count["layer3.1.bn1.num_batches_tracked"] = Tensor::from_vector(std::vector<int64_t>{5}, Shape{});
  EXPECT_NO_THROW(m->load_state_dict(with_count, true));
  auto missing = good;
  missing.erase("layer2.0.downsample.1.running_var");
  EXPECT_TRUE(
      throws_error([&] { m->load_state_dict(missing, true); }, {"no tensor 'layer2.0.downsample.1.running_var'"}));
  auto extra = good;
  extra["layer1.0.downsample.0.weight"] = Tensor::zeros({64, 64, 1, 1});
  EXPECT_TRUE(throws_error([&] { m->load_state_dict(extra, true); }, {"'layer1.0.downsample.0.weight'"}));
  auto shaped = good;
  shaped["fc.weight"] = Tensor::zeros({10, 512});
  EXPECT_TRUE(throws_error([&] { m->load_state_dict(shaped, true); }, {"'fc.weight'", "[10, 512]"}));
  // A count where no batch norm is, or of the wrong type, is not accepted.
  auto stray = good;
  stray["fc.num_batches_tracked"] = Tensor::from_vector(std::vector<int64_t>{1}, Shape{});
  EXPECT_TRUE(throws_error([&] { m->load_state_dict(stray, true); }, {"'fc.num_batches_tracked'"}));
  auto wrong = good;
  wrong["bn1.num_batches_tracked"] = Tensor::zeros({1});
  EXPECT_TRUE(throws_error([&] { m->load_state_dict(wrong, true); }, {"'bn1.num_batches_tracked'", "int64"}));
}

// ------------------------------------------------------------------ with PyTorch

double compare_logits(const Fixtures& f, const std::string& arch, Device device, int64_t images) {
  const Tensor input = read_npy(f.dir + "/input.npy");
  const Tensor want = read_npy(f.dir + "/" + f.manifest["models"][arch]["logits"].get<std::string>());
  std::unique_ptr<Model> m = build_model(arch, {3, 64, 64}, 1000);
  const std::string weights = f.dir + "/" + arch + ".pth";
  EXPECT_EQ(read_pth(weights).tensors.size(), f.manifest["models"][arch]["tensors"].get<size_t>());
  nn::load_weights(*m, weights);
  m->to(device);
  m->train(false);
  ops::Context ctx(device);
  const Tensor x = input.narrow(0, images).to(device);
  const std::vector<float> got = m->forward(ctx, x).y.to(kCPU).to_vector<float>();
  const std::vector<float> all = want.to_vector<float>();
  const std::vector<float> ref(all.begin(), all.begin() + images * 1000);
  EXPECT_EQ(got.size(), ref.size());
  return test::rel_l2(got, ref);
}

// The bound: float32 sums of up to 4608 products (3x3x512) in 53 layers in another order than
// PyTorch's give independent rounding errors of about sqrt(K) * 2^-24 ~ 4e-6 per layer, which grow
// like the square root of the depth through the normalised layers: ~3e-5 for resnet50. 1e-4 leaves
// room; a wrong name, stride or statistic gives errors of order 1.
class TorchvisionLogits : public ::testing::TestWithParam<const char*> {};

TEST_P(TorchvisionLogits, MatchPyTorchOnCpu) {
  const Fixtures& f = fixtures();
  if (!f.skip.empty()) GTEST_SKIP() << f.skip;
  ASSERT_TRUE(f.manifest.is_object()) << "the fixture generator failed";
  const double err = compare_logits(f, GetParam(), kCPU, 2);
  RecordProperty("rel_l2", std::to_string(err));
  EXPECT_LE(err, 1e-4) << GetParam();
  std::printf("%s on cpu: rel L2 %.3g\n", GetParam(), err);
}

INSTANTIATE_TEST_SUITE_P(Models, TorchvisionLogits,
                         ::testing::Values("resnet18", "resnet34", "resnet50", "mobilenet_v2"),
                         [](const ::testing::TestParamInfo<const char*>& info) { return std::string(info.param); });

class TorchvisionLogitsKernels : public ::testing::TestWithParam<const char*> {};

TEST_P(TorchvisionLogitsKernels, MatchPyTorchOnEmu) {
  const Fixtures& f = fixtures();
  if (!f.skip.empty()) GTEST_SKIP() << f.skip;
  ASSERT_TRUE(f.manifest.is_object()) << "the fixture generator failed";
  const double err = compare_logits(f, GetParam(), kEmu, 1);
  EXPECT_LE(err, 1e-4);
  std::printf("%s on emu: rel L2 %.3g\n", GetParam(), err);
}

INSTANTIATE_TEST_SUITE_P(Models, TorchvisionLogitsKernels, ::testing::Values("resnet18", "mobilenet_v2"),
                         [](const ::testing::TestParamInfo<const char*>& info) { return std::string(info.param); });

// On a GPU (scripts/gpu_check.sh runs the layers label): our kernels on the whole batch.
TEST_P(TorchvisionLogitsKernels, MatchPyTorchOnCuda) {
  if (!cuda_available()) GTEST_SKIP() << cuda_unavailable_reason();
  const Fixtures& f = fixtures();
  if (!f.skip.empty()) GTEST_SKIP() << f.skip;
  ASSERT_TRUE(f.manifest.is_object()) << "the fixture generator failed";
  const double err = compare_logits(f, GetParam(), kCUDA, 2);
  EXPECT_LE(err, 1e-4);
  std::printf("%s on cuda: rel L2 %.3g\n", GetParam(), err);
}

// A .pth of another architecture is refused naming the file and a tensor.
TEST(TorchvisionWeights, WrongModelWeightsPairNamesFileAndTensor) {
  const Fixtures& f = fixtures();
  if (!f.skip.empty()) GTEST_SKIP() << f.skip;
  ASSERT_TRUE(f.manifest.is_object()) << "the fixture generator failed";
  std::unique_ptr<Model> m = build_model("resnet34", {3, 64, 64}, 1000);
  const std::string w = f.dir + "/resnet18.pth";
  EXPECT_TRUE(throws_error([&] { nn::load_weights(*m, w); }, {w, "resnet34", "layer1.2."}));
  std::unique_ptr<Model> m50 = build_model("resnet50", {3, 64, 64}, 1000);
  EXPECT_TRUE(throws_error([&] { nn::load_weights(*m50, w); }, {w, "resnet50", "in the checkpoint but"}));
}

}  // namespace
}  // namespace fovea
