// layers/: the layer contract, gradient checks of every layer through the layer API on the cpu
// device, Sequential / Residual composition, the model zoo and the spec parser, initialisation,
// optimizers and schedules against PyTorch's numbers, checkpoints, freezing, a short training run.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <set>

#include "core/philox.h"
#include "core/safetensors.h"
#include "layers/nn/checkpoint.h"
#include "layers/nn/layers.h"
#include "layers/nn/loss.h"
#include "layers/nn/models.h"
#include "layers/nn/optimizer.h"
#include "layers/train/session.h"
#include "test_util.h"

namespace fovea::nn {
namespace {

Tensor host(const std::vector<float>& v, const Shape& s) {
  return Tensor::from_vector(v, s);
}

Tensor randn(const Shape& s, uint64_t seed, float scale = 1.0f) {
  std::vector<float> v(size_t(s.numel()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = scale * philox_normal(seed, 7, i);
  return host(v, s);
}

// Caffe's gradient checker: L = sum(r * layer(x)) with a fixed random r; every element of x and of
// every parameter is perturbed by +-h and the central difference compared with the analytic
// gradient within threshold * max(1, |numeric|, |analytic|).
void check_gradients(Layer& layer, Tensor x, uint64_t seed, double h = 1e-2, double threshold = 1e-2) {
  ops::Context ctx(kCPU);
  layer.set_training(true);
  layer.set_rng(seed, 3);
  Output out = layer.forward(ctx, x);
  ASSERT_TRUE(out.saved != nullptr);
  const Tensor r = randn(out.y.shape(), seed + 1);
  const std::vector<float> rv = r.to_vector<float>();
  layer.zero_grad();
  const Tensor dx = layer.backward(ctx, r, *out.saved, true);
  ASSERT_TRUE(dx.defined());
  ASSERT_EQ(dx.shape(), x.shape());

  auto loss = [&] {
    const std::vector<float> y = layer.forward(ctx, x).y.to_vector<float>();
    double s = 0;
    for (size_t i = 0; i < y.size(); ++i) s += double(y[i]) * double(rv[i]);
    return s;
  };
  auto check = [&](Tensor& t, const std::vector<float>& analytic, const std::string& what) {
    float* p = t.data<float>();
    int failures = 0;
    for (int64_t i = 0; i < t.numel(); ++i) {
      const float v = p[i];
      p[i] = float(v + h);
      const double lp = loss();
      p[i] = float(v - h);
      const double lm = loss();
      p[i] = v;
      const double numeric = (lp - lm) / (2 * h), a = analytic[size_t(i)];
      const double scale = std::max({1.0, std::abs(numeric), std::abs(a)});
      if (!(std::abs(numeric - a) <= threshold * scale) && ++failures <= 5)
        ADD_FAILURE() << layer.describe() << ": d/d" << what << "[" << i << "] numeric " << numeric << " analytic "
                      << a;
    }
  };
  check(x, dx.to_vector<float>(), "x");
  for (Param& p : layer.params()) {
    ASSERT_TRUE(p.grad.defined()) << layer.describe() << ": no gradient for " << p.name;
    const std::vector<float> g = p.grad.to_vector<float>();
    check(p.value, g, p.name);
  }
  for (auto& [name, child] : layer.children()) {
    std::vector<ParamRef> refs;
    child->collect_params(name + ".", refs);
    for (ParamRef& ref : refs) {
      ASSERT_TRUE(ref.param->grad.defined()) << "no gradient for " << ref.path;
      const std::vector<float> g = ref.param->grad.to_vector<float>();
      check(ref.param->value, g, ref.path);
    }
  }
}

void init(Layer& l, uint64_t seed) {
  ops::Context ctx(kCPU);
  uint64_t counter = 0;
  l.reset_parameters(ctx, seed, counter);
}

// Sets every parameter to random normal values (BatchNorm's gamma/beta too, so that their gradients matter).
void randomize(Layer& l, uint64_t seed, float scale = 0.5f) {
  std::vector<ParamRef> refs;
  l.collect_params("", refs);
  for (size_t i = 0; i < refs.size(); ++i) refs[i].param->value = randn(refs[i].param->value.shape(), seed + i, scale);
}

Conv2dOptions conv_opts(int64_t c, int64_t k, int64_t r, int64_t stride = 1, int64_t pad = 0, int64_t groups = 1,
                        bool bias = true) {
  Conv2dOptions o;
  o.in_channels = c;
  o.out_channels = k;
  o.kernel_h = o.kernel_w = r;
  o.attrs.stride_h = o.attrs.stride_w = stride;
  o.attrs.pad_h = o.attrs.pad_w = pad;
  o.attrs.groups = groups;
  o.bias = bias;
  return o;
}

ops::Pool2dAttrs pool(int64_t k, int64_t s, int64_t p = 0, bool include_pad = true) {
  ops::Pool2dAttrs a;
  a.kernel_h = a.kernel_w = k;
  a.stride_h = a.stride_w = s;
  a.pad_h = a.pad_w = p;
  a.count_include_pad = include_pad;
  return a;
}

// ---------------------------------------------------------------- gradient checks, layer by layer

TEST(LayerGradients, Conv2d) {
  for (auto o : {conv_opts(3, 4, 3, 1, 1), conv_opts(2, 3, 3, 2, 0, 1, false), conv_opts(4, 6, 1, 1, 0, 2)}) {
    Conv2d conv(o);
    randomize(conv, 11);
    check_gradients(conv, randn({2, o.in_channels, 5, 5}, 1), 21);
  }
}

TEST(LayerGradients, Linear) {
  Linear fc(7, 5);
  randomize(fc, 3);
  check_gradients(fc, randn({3, 7}, 4), 5);
  Linear nobias(4, 2, false);
  randomize(nobias, 6);
  check_gradients(nobias, randn({2, 4}, 7), 8);
}

TEST(LayerGradients, Pooling) {
  MaxPool2d mp(pool(2, 2));
  check_gradients(mp, host(test::random_distinct(2 * 3 * 6 * 6, 1, 0.05f), {2, 3, 6, 6}), 2);
  MaxPool2d mp_pad(pool(3, 2, 1));
  check_gradients(mp_pad, host(test::random_distinct(2 * 2 * 7 * 7, 3, 0.05f), {2, 2, 7, 7}), 4);
  AvgPool2d ap(pool(3, 2, 1, true));
  check_gradients(ap, randn({2, 2, 7, 7}, 5), 6);
  AvgPool2d ap_ex(pool(3, 2, 1, false));
  check_gradients(ap_ex, randn({2, 2, 7, 7}, 7), 8);
  GlobalAvgPool gap;
  check_gradients(gap, randn({2, 3, 4, 5}, 9), 10);
}

TEST(LayerGradients, Activations) {
  const Tensor off_kink = host(test::random_away_from_zero(2 * 3 * 4 * 4, 1, 0.05f, 2.0f), {2, 3, 4, 4});
  ReLU relu;
  check_gradients(relu, off_kink.to(kCPU), 2);
  LeakyReLU leaky(0.1f);
  check_gradients(leaky, off_kink.to(kCPU), 3);
  Sigmoid sig;
  check_gradients(sig, randn({2, 3, 4, 4}, 4, 2.0f), 5);
  Tanh th;
  check_gradients(th, randn({2, 3, 4, 4}, 6, 2.0f), 7);
  Flatten fl;
  check_gradients(fl, randn({2, 3, 2, 2}, 8), 9);
}

TEST(LayerGradients, Dropout) {
  Dropout d(0.3f);
  d.set_salt(1);
  check_gradients(d, randn({4, 50}, 1), 2);
}

TEST(LayerGradients, BatchNorm) {
  BatchNorm2d bn(3);
  init(bn, 1);
  randomize(bn, 2);
  check_gradients(bn, randn({4, 3, 3, 3}, 3, 2.0f), 4, 1e-2, 2e-2);
  BatchNorm2d bn1d(5);
  init(bn1d, 1);
  randomize(bn1d, 5);
  check_gradients(bn1d, randn({6, 5}, 6, 2.0f), 7, 1e-2, 2e-2);
}

TEST(LayerGradients, LocalResponseNorm) {
  LocalResponseNorm lrn(3, 0.5, 0.75, 1.0);  // a large alpha so that the normalisation matters
  check_gradients(lrn, randn({2, 5, 3, 3}, 1, 1.5f), 2);
}

TEST(LayerGradients, ResidualWithIdentityProjectionAndZeroPad) {
  {
    std::vector<LayerPtr> body;
    body.push_back(std::make_unique<Conv2d>(conv_opts(3, 3, 3, 1, 1)));
    body.push_back(std::make_unique<Tanh>());
    body.push_back(std::make_unique<Conv2d>(conv_opts(3, 3, 3, 1, 1)));
    Residual res(std::make_unique<Sequential>(std::move(body)));
    randomize(res, 1);
    check_gradients(res, randn({2, 3, 4, 4}, 2), 3);
  }
  {
    std::vector<LayerPtr> body, proj;
    body.push_back(std::make_unique<Conv2d>(conv_opts(2, 4, 3, 2, 1)));
    body.push_back(std::make_unique<Tanh>());
    proj.push_back(std::make_unique<Conv2d>(conv_opts(2, 4, 1, 2, 0, 1, false)));
    Residual res(std::make_unique<Sequential>(std::move(body)), std::make_unique<Sequential>(std::move(proj)));
    randomize(res, 4);
    check_gradients(res, randn({2, 2, 6, 6}, 5), 6);
  }
  {
    ZeroPadShortcut zp(2, 4, 2);
    check_gradients(zp, randn({2, 2, 6, 6}, 7), 8);
    std::vector<LayerPtr> body;
    body.push_back(std::make_unique<Conv2d>(conv_opts(2, 4, 3, 2, 1)));
    Residual res(std::make_unique<Sequential>(std::move(body)), std::make_unique<ZeroPadShortcut>(2, 4, 2));
    randomize(res, 9);
    check_gradients(res, randn({2, 2, 6, 6}, 10), 11);
  }
  {
    // torchvision's block: relu(body(x) + downsample(x)); a small h keeps the sums off the relu's kink.
    std::vector<LayerPtr> body, proj;
    body.push_back(std::make_unique<Conv2d>(conv_opts(2, 4, 3, 2, 1)));
    body.push_back(std::make_unique<Tanh>());
    proj.push_back(std::make_unique<Conv2d>(conv_opts(2, 4, 1, 2, 0)));
    Residual res(std::make_unique<Sequential>(std::move(body)), std::make_unique<Sequential>(std::move(proj)),
                 Residual::Style::block);
    randomize(res, 12);
    std::vector<ParamRef> refs;
    res.collect_params("", refs);
    ASSERT_EQ(refs.size(), 4u);
    EXPECT_EQ(refs[0].path, "0.weight");  // the body's children directly under the block
    EXPECT_EQ(refs[2].path, "downsample.0.weight");
    // The shortcut's bias puts channels 0 and 2 well above zero and 1 and 3 well below, so the relu
    // both passes and blocks, and no finite difference crosses its kink.
    refs[3].param->value = host({4, -4, 4, -4}, {4});
    check_gradients(res, randn({2, 2, 6, 6}, 13), 14);
  }
}

TEST(LayerGradients, SequentialComposition) {
  std::vector<LayerPtr> layers;
  layers.push_back(std::make_unique<Conv2d>(conv_opts(2, 3, 3, 1, 1)));
  layers.push_back(std::make_unique<Tanh>());
  layers.push_back(std::make_unique<AvgPool2d>(pool(2, 2)));
  layers.push_back(std::make_unique<Flatten>());
  layers.push_back(std::make_unique<Linear>(12, 4));
  Sequential seq(std::move(layers));
  randomize(seq, 1);
  check_gradients(seq, randn({2, 2, 4, 4}, 2), 3);
}

// ---------------------------------------------------------------- the contract

TEST(LayerContract, ZeroPadShortcutIsStridedIdentityWithZeroChannels) {
  ZeroPadShortcut zp(2, 4, 2);
  ops::Context ctx(kCPU);
  const Tensor x = randn({1, 2, 4, 4}, 1);
  const std::vector<float> y = zp.forward(ctx, x).y.to_vector<float>(), xv = x.to_vector<float>();
  // Output [1, 4, 2, 2]: channels 1 and 2 hold x[:, c, ::2, ::2]; channels 0 and 3 are zero.
  for (int c = 0; c < 4; ++c)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j) {
        const float want = (c == 1 || c == 2) ? xv[size_t(((c - 1) * 4 + 2 * i) * 4 + 2 * j)] : 0.0f;
        EXPECT_EQ(y[size_t((c * 2 + i) * 2 + j)], want) << c << " " << i << " " << j;
      }
}

TEST(LayerContract, SequentialEqualsItsLayersAndChecksShapes) {
  std::unique_ptr<Model> m = build_model("conv:4:3:pad=1,relu,maxpool:2,linear", Shape{2, 6, 6}, 3);
  ops::Context ctx(kCPU);
  m->initialize(ctx, 5);
  const Tensor x = randn({2, 2, 6, 6}, 1);
  const Tensor y = m->forward(ctx, x).y;
  Tensor h = x;
  for (size_t i = 0; i < m->net().size(); ++i) h = m->net().at(i).forward(ctx, h).y;
  EXPECT_EQ(y.to_vector<float>(), h.to_vector<float>());
  // A wrong input shape names the layer.
  try {
    m->forward(ctx, randn({2, 3, 6, 6}, 2));
    FAIL() << "no error for 3 channels";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("conv2d"), std::string::npos) << e.what();
  }
  // Eval mode saves nothing; a wrong dy shape is refused.
  m->train(false);
  EXPECT_EQ(m->forward(ctx, x).saved, nullptr);
  m->train(true);
  Output o = m->forward(ctx, x);
  EXPECT_THROW(m->backward(ctx, randn({2, 4}, 3), *o.saved), Error);
  // An input on another device is refused.
  EXPECT_THROW(m->forward(ctx, x.to(kEmu)), Error);
}

TEST(LayerContract, GradientsAccumulateAndPropagateDownIsOptional) {
  Linear fc(3, 2);
  randomize(fc, 1);
  ops::Context ctx(kCPU);
  const Tensor x = randn({4, 3}, 2), dy = randn({4, 2}, 3);
  Output o = fc.forward(ctx, x);
  EXPECT_FALSE(fc.backward(ctx, dy, *o.saved, false).defined());
  const std::vector<float> g1 = fc.params()[0].grad.to_vector<float>();
  fc.backward(ctx, dy, *o.saved, true);
  const std::vector<float> g2 = fc.params()[0].grad.to_vector<float>();
  for (size_t i = 0; i < g1.size(); ++i) EXPECT_FLOAT_EQ(g2[i], 2 * g1[i]);
  fc.zero_grad();
  EXPECT_FALSE(fc.params()[0].grad.defined());
  fc.params()[0].trainable = false;
  fc.backward(ctx, dy, *o.saved, true);
  EXPECT_FALSE(fc.params()[0].grad.defined());
  EXPECT_TRUE(fc.params()[1].grad.defined());
}

TEST(LayerContract, DropoutIsAFunctionOfSeedAndStep) {
  Dropout d(0.5f);
  d.set_salt(1);
  ops::Context ctx(kCPU);
  const Tensor x = host(std::vector<float>(10000, 1.0f), {100, 100});
  d.set_rng(42, 7);
  const std::vector<float> a = d.forward(ctx, x).y.to_vector<float>();
  const std::vector<float> b = d.forward(ctx, x).y.to_vector<float>();
  d.set_rng(42, 8);
  const std::vector<float> c = d.forward(ctx, x).y.to_vector<float>();
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  int64_t kept = 0;
  for (float v : a) {
    EXPECT_TRUE(v == 0.0f || v == 2.0f) << v;
    kept += v != 0.0f;
  }
  EXPECT_NEAR(double(kept) / 10000, 0.5, 0.03);
  d.set_training(false);
  EXPECT_EQ(d.forward(ctx, x).y.to_vector<float>(), x.to_vector<float>());
}

TEST(LayerContract, BatchNormTracksRunningStatisticsAndUsesThemInEval) {
  BatchNorm2d bn(2);
  init(bn, 1);
  ops::Context ctx(kCPU);
  const Tensor x = randn({8, 2, 3, 3}, 1, 3.0f);
  bn.forward(ctx, x);
  const std::vector<float> xv = x.to_vector<float>();
  const std::vector<float> rm = bn.states()[0].value.to_vector<float>(), rv = bn.states()[1].value.to_vector<float>();
  for (int c = 0; c < 2; ++c) {
    double s = 0, s2 = 0;
    for (int n = 0; n < 8; ++n)
      for (int i = 0; i < 9; ++i) s += xv[size_t((n * 2 + c) * 9 + i)];
    const double mean = s / 72;
    for (int n = 0; n < 8; ++n)
      for (int i = 0; i < 9; ++i) s2 += std::pow(xv[size_t((n * 2 + c) * 9 + i)] - mean, 2);
    EXPECT_NEAR(rm[size_t(c)], 0.1 * mean, 1e-5);
    EXPECT_NEAR(rv[size_t(c)], 0.9 + 0.1 * s2 / 71, 1e-4);  // unbiased variance, momentum 0.1
  }
  bn.set_training(false);
  const std::vector<float> y = bn.forward(ctx, x).y.to_vector<float>();
  for (int c = 0; c < 2; ++c)
    EXPECT_NEAR(y[size_t(c * 9)], (xv[size_t(c * 9)] - rm[size_t(c)]) / std::sqrt(rv[size_t(c)] + 1e-5), 1e-4);
}

// ---------------------------------------------------------------- zoo and spec

TEST(ModelZoo, ParameterCountsMatchPyTorch) {
  // Counted independently with torch.nn modules of the same structure.
  struct Case {
    const char* name;
    Shape sample;
    int64_t classes, params;
  };
  for (const Case& c : {Case{"mnist_cnn", {1, 28, 28}, 10, 1199882}, Case{"lenet5", {1, 28, 28}, 10, 61706},
                        Case{"cifar_quick", {3, 32, 32}, 10, 145578}, Case{"cifar_full", {3, 32, 32}, 10, 89578},
                        Case{"resnet20", {3, 32, 32}, 10, 269722}, Case{"resnet18_cifar", {3, 32, 32}, 10, 11173962},
                        Case{"resnet9", {3, 32, 32}, 10, 6573130}}) {
    std::unique_ptr<Model> m = build_model(c.name, c.sample, c.classes);
    EXPECT_EQ(m->num_parameters(), c.params) << c.name;
    EXPECT_EQ(m->name(), c.name);
  }
  EXPECT_EQ(build_model("resnet20", {3, 32, 32}, 100)->num_parameters(), 269722 + 90 * 64 + 90);
}

TEST(ModelZoo, EveryModelRunsForwardAndBackward) {
  ops::Context ctx(kCPU);
  for (const ZooEntry& e : model_zoo()) {
    // counted above, or ImageNet models (tests/torchvision_models_test.cpp): too slow for this suite
    if (e.name == "resnet18_cifar" || e.name == "resnet9" || e.name == "vgg16" ||
        (e.name.rfind("resnet", 0) == 0 && e.name != "resnet20"))
      continue;
    const bool flat = e.name == "mlp", mnist = e.name == "mnist_cnn" || e.name == "lenet5";
    const Shape sample = flat ? Shape{2} : mnist ? Shape{1, 28, 28} : Shape{3, 32, 32};
    std::unique_ptr<Model> m = build_model(e.name, sample, 10);
    m->initialize(ctx, 1);
    std::vector<int64_t> dims{2};
    for (int64_t d : sample.vec()) dims.push_back(d);
    Output o = m->forward(ctx, randn(Shape(dims), 2));
    ASSERT_EQ(o.y.shape(), Shape({2, 10})) << e.name;
    const LossOut l = CrossEntropyLoss().compute(ctx, o.y, Tensor::from_vector(std::vector<int64_t>{1, 7}, {2}));
    EXPECT_TRUE(std::isfinite(loss_value(l.loss))) << e.name;
    m->backward(ctx, l.dpred, *o.saved);
    for (const ParamRef& p : m->parameters()) EXPECT_TRUE(p.param->grad.defined()) << e.name << " " << p.path;
  }
}

TEST(ModelZoo, ParameterNamesFollowTorchSequential) {
  std::unique_ptr<Model> m = build_model("mnist_cnn", {1, 28, 28}, 10);
  std::vector<std::string> names;
  for (const ParamRef& p : m->parameters()) names.push_back(p.path);
  EXPECT_EQ(names, (std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias", "7.weight", "7.bias",
                                             "10.weight", "10.bias"}));
  std::unique_ptr<Model> r = build_model("resnet20", {3, 32, 32}, 10);
  std::set<std::string> paths;
  for (const ParamRef& p : r->parameters()) paths.insert(p.path);
  for (const StateRef& s : r->states()) paths.insert(s.path);
  EXPECT_TRUE(paths.count("3.body.0.weight"));
  EXPECT_TRUE(paths.count("3.body.1.running_var"));
  EXPECT_FALSE(paths.count("9.shortcut.0.weight"));  // option A: no parameters in the shortcut
}

TEST(ModelSpec, GoodSpecs) {
  std::unique_ptr<Model> m = build_model(
      "conv:32:3:pad=1,relu,maxpool:2,conv:16:3x5:stride=2:pad=same:bias=0,bn,leakyrelu:0.2,"
      "avgpool:2:stride=1,dropout:0.1,linear:20,sigmoid,linear:5:init=xavier,tanh,linear",
      {3, 32, 32}, 7);
  EXPECT_EQ(m->name(), "custom");
  EXPECT_EQ(m->net().at(0).kind(), std::string("conv2d"));
  EXPECT_EQ(m->net().at(3).describe(), "conv2d 32->16 3x5 stride 2 pad 1x2 no-bias");
  // linear on a 4-D input inserts a flatten.
  EXPECT_EQ(m->net().at(8).kind(), std::string("flatten"));
  EXPECT_EQ(m->net().at(m->net().size() - 1).describe(), "linear 5->7");
  std::unique_ptr<Model> r = build_model(
      "conv:8:3:pad=1,res(conv:8:3:pad=1,bn,relu,conv:8:3:pad=1,bn),relu,"
      "res(conv:16:3:stride=2:pad=1),resa(conv:32:3:stride=2:pad=1),gap,linear",
      {3, 16, 16}, 10);
  EXPECT_EQ(r->net().at(1).kind(), std::string("residual"));
  EXPECT_EQ(r->net().at(3).children().size(), 2u);  // projection shortcut
  EXPECT_EQ(r->net().at(3).children()[1].second->num_params(), 8 * 16 + 2 * 16);
  EXPECT_EQ(r->net().at(4).children()[1].second->num_params(), 0);  // zero-pad shortcut
  EXPECT_EQ(build_model("mlp", {2}, 2)->num_parameters(), 2 * 64 + 64 + 64 * 64 + 64 + 64 * 2 + 2);
  EXPECT_EQ(build_model("linear", {4}, 3)->num_parameters(), 15);
}

TEST(ModelSpec, BadSpecsNameTheItemAndTheProblem) {
  struct Case {
    const char* spec;
    const char* message;
  };
  for (const Case& c : {
           Case{"conv:32", "item 1 'conv:32': 'conv' takes 2 positional argument(s), got 1"},
           Case{"conv:x:3", "item 1 'conv:x:3': argument 'OUT' (output channels): must be an integer, got 'x'"},
           Case{"conv:8:3,rleu", "item 2 'rleu': unknown layer 'rleu'"},
           Case{"linear:0", "must be > 0"},
           Case{"maxpool:2:strid=2", "'maxpool' has no argument 'strid'"},
           Case{"res(conv:16:3", "unbalanced '('"},
           Case{"conv:8:3,,relu", "item 2 '': empty item"},
           Case{"conv:8:3,linear:5", "ends in [5] but the data has 10 classes"},
           Case{"conv:8:7,conv:8:7", "item 2 'conv:8:7'"},
           Case{"resnet51", "unknown model 'resnet51'"},
           Case{"conv:8:3:pad=1:groups=3", "groups 3 must divide"},
           Case{"dropout:1.5", "dropout: probability must be in [0, 1)"},
           Case{"conv:8:3:pad=same:stride=2:bias=maybe",
                "argument 'bias': must be 1 or 0 (true or false), got 'maybe'"},
           Case{"conv:8:3:pad=1,resa(conv:4:3:pad=1),linear", "item 2 'resa(conv:4:3:pad=1)': the zero-pad shortcut"},
           Case{"conv:8:3:init=magic", "unknown scheme 'magic'"},
           Case{"", "empty"},
       }) {
    try {
      build_model(c.spec, {3, 8, 8}, 10);
      ADD_FAILURE() << "no error for '" << c.spec << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(c.message), std::string::npos)
          << "spec '" << c.spec << "': message '" << e.what() << "' lacks '" << c.message << "'";
    }
  }
}

// ---------------------------------------------------------------- initialisation

TEST(Init, BoundsStatisticsAndDeterminism) {
  ops::Context ctx(kCPU);
  Tensor w = Tensor::zeros({64, 32, 3, 3});
  const Fans f = weight_fans(w.shape());
  EXPECT_EQ(f.in, 288);
  EXPECT_EQ(f.out, 576);
  auto stats = [](const Tensor& t) {
    const std::vector<float> v = t.to_vector<float>();
    double s = 0, s2 = 0, mx = 0;
    for (float x : v) s += x, s2 += double(x) * x, mx = std::max(mx, double(std::abs(x)));
    return std::array<double, 3>{s / double(v.size()), std::sqrt(s2 / double(v.size())), mx};
  };
  init_weight(ctx, w, parse_init("pytorch"), 1, 0);
  auto s = stats(w);
  EXPECT_LE(s[2], 1 / std::sqrt(288.0));
  EXPECT_NEAR(s[1], 1 / std::sqrt(288.0) / std::sqrt(3.0), 0.02 / std::sqrt(288.0));  // uniform: b / sqrt(3)
  init_weight(ctx, w, parse_init("kaiming"), 1, 0);
  EXPECT_NEAR(stats(w)[1], std::sqrt(2.0 / 576), 0.03 * std::sqrt(2.0 / 576));
  init_weight(ctx, w, parse_init("kaiming_in"), 1, 0);
  EXPECT_NEAR(stats(w)[1], std::sqrt(2.0 / 288), 0.03 * std::sqrt(2.0 / 288));
  init_weight(ctx, w, parse_init("xavier"), 1, 0);
  EXPECT_LE(stats(w)[2], std::sqrt(6.0 / (288 + 576)));
  EXPECT_NEAR(stats(w)[1], std::sqrt(2.0 / (288 + 576)), 0.03 * std::sqrt(2.0 / (288 + 576)));
  const std::vector<float> a = w.to_vector<float>();
  init_weight(ctx, w, parse_init("xavier"), 1, 0);
  EXPECT_EQ(a, w.to_vector<float>());
  init_weight(ctx, w, parse_init("xavier"), 1, 1);
  EXPECT_NE(a, w.to_vector<float>());
  // Two models from one seed are identical, from two seeds not.
  std::unique_ptr<Model> m1 = build_model("small_cnn", {3, 32, 32}, 10), m2 = build_model("small_cnn", {3, 32, 32}, 10);
  m1->initialize(ctx, 9);
  m2->initialize(ctx, 9);
  EXPECT_EQ(m1->state_dict().at("0.weight").to_vector<float>(), m2->state_dict().at("0.weight").to_vector<float>());
  m2->initialize(ctx, 10);
  EXPECT_NE(m1->state_dict().at("0.weight").to_vector<float>(), m2->state_dict().at("0.weight").to_vector<float>());
}

// ---------------------------------------------------------------- optimizers and schedules

// w starts at (0.5, -1.5, 2, 0.25); at step t (0-based) the gradient is (0.1, -0.2, 0.3, -0.4) * (t + 1) + 0.05 w.
// Expected values: torch.optim in float64 (PyTorch 1.13), three steps.
std::vector<float> run_optimizer(const OptimizerConfig& c, double lr) {
  std::vector<Param> params(1);
  params[0].name = "w";
  params[0].value = host({0.5f, -1.5f, 2.0f, 0.25f}, {4});
  std::vector<ParamRef> refs{{"w", &params[0]}};
  Optimizer opt(c, refs);
  ops::Context ctx(kCPU);
  const float base[4] = {0.1f, -0.2f, 0.3f, -0.4f};
  for (int t = 0; t < 3; ++t) {
    const std::vector<float> w = params[0].value.to_vector<float>();
    std::vector<float> g(4);
    for (int i = 0; i < 4; ++i) g[size_t(i)] = base[i] * float(t + 1) + 0.05f * w[size_t(i)];
    params[0].grad = host(g, {4});
    opt.step(ctx, lr);
  }
  return params[0].value.to_vector<float>();
}

void expect_near(const std::vector<float>& got, const std::vector<double>& want, double tol = 2e-6) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol * std::max(1.0, std::abs(want[i]))) << i;
}

TEST(Optimizer, SgdMatchesPyTorch) {
  OptimizerConfig c;
  c.momentum = 0;
  expect_near(run_optimizer(c, 0.1), {0.4327371875, -1.3580118125, 1.790749, 0.48546971875});
  c.momentum = 0.9;
  c.weight_decay = 0.01;
  expect_near(run_optimizer(c, 0.1), {0.388503932, -1.260264156, 1.648768088, 0.620637586});
  c.nesterov = true;
  expect_near(run_optimizer(c, 0.1), {0.331561213988, -1.139225031204, 1.4707862451919997, 0.816216858574});
}

TEST(Optimizer, AdamWMatchesPyTorch) {
  OptimizerConfig c;
  c.kind = OptimizerKind::adamw;
  c.weight_decay = 0.1;
  expect_near(run_optimizer(c, 0.01),
              {0.46907751443594625, -1.4660017441781117, 1.964529295803013, 0.2784203624346688});
}

TEST(Optimizer, PenaltiesAndMaxNorm) {
  // L2 penalty l2/2 sum w^2 adds l2 * w to the gradient: the same update as SGD's weight decay.
  std::vector<Param> a(1), b(1);
  a[0].value = host({3.0f, 4.0f, -1.0f, 2.0f}, {2, 2});
  b[0].value = a[0].value.to(kCPU);
  a[0].grad = host({0.1f, 0.2f, 0.3f, 0.4f}, {2, 2});
  b[0].grad = a[0].grad.to(kCPU);
  OptimizerConfig ca, cb;
  ca.momentum = cb.momentum = 0;
  ca.l2 = 0.5;
  cb.weight_decay = 0.5;
  Optimizer oa(ca, {{"w", &a[0]}}), ob(cb, {{"w", &b[0]}});
  ops::Context ctx(kCPU);
  oa.step(ctx, 0.1);
  EXPECT_NEAR(oa.last_penalty(), 0.25 * (9 + 16 + 1 + 4), 1e-5);
  ob.step(ctx, 0.1);
  expect_near(a[0].value.to_vector<float>(), {2.84, 3.78, -0.98, 1.86});
  expect_near(b[0].value.to_vector<float>(), {2.84, 3.78, -0.98, 1.86});
  // L1: + l1 * sign(w).
  std::vector<Param> c(1);
  c[0].value = host({3.0f, -4.0f}, {1, 2});
  c[0].grad = host({0.0f, 0.0f}, {1, 2});
  OptimizerConfig cc;
  cc.momentum = 0;
  cc.l1 = 0.5;
  Optimizer oc(cc, {{"w", &c[0]}});
  oc.step(ctx, 1.0);
  EXPECT_NEAR(oc.last_penalty(), 3.5, 1e-6);
  expect_near(c[0].value.to_vector<float>(), {2.5, -3.5});
  // Max-norm: rows with norm above 1 are scaled to norm 1; biases (rank 1) are left alone.
  std::vector<Param> d(2);
  d[0].value = host({3.0f, 4.0f, 0.3f, 0.4f}, {2, 2});
  d[0].grad = host({0, 0, 0, 0}, {2, 2});
  d[1].value = host({30.0f, 40.0f}, {2});
  d[1].grad = host({0, 0}, {2});
  OptimizerConfig cd;
  cd.momentum = 0;
  cd.max_norm = 1.0;
  Optimizer od(cd, {{"w", &d[0]}, {"b", &d[1]}});
  od.step(ctx, 0.1);
  expect_near(d[0].value.to_vector<float>(), {0.6, 0.8, 0.3, 0.4}, 1e-5);
  expect_near(d[1].value.to_vector<float>(), {30, 40});
}

TEST(Optimizer, FrozenParametersAreSkippedAndStateRoundTrips) {
  std::vector<Param> p(2);
  p[0].value = host({1, 2}, {2});
  p[1].value = host({3, 4}, {2});
  p[1].trainable = false;
  Optimizer opt(OptimizerConfig{}, {{"a", &p[0]}, {"b", &p[1]}});
  EXPECT_EQ(opt.size(), 1u);
  ops::Context ctx(kCPU);
  p[0].grad = host({1, 1}, {2});
  opt.step(ctx, 0.1);
  const auto state = opt.state_dict();
  EXPECT_TRUE(state.count("a.momentum_buffer"));
  EXPECT_FALSE(state.count("b.momentum_buffer"));
  Optimizer again(OptimizerConfig{}, {{"a", &p[0]}, {"b", &p[1]}});
  again.load_state_dict(state, kCPU);
  EXPECT_EQ(again.step_count(), 1);
  EXPECT_EQ(again.state_dict().at("a.momentum_buffer").to_vector<float>(),
            state.at("a.momentum_buffer").to_vector<float>());
}

// ---------------------------------------------------------------- loss scaling

// torch.cuda.amp.GradScaler's update, written here from PyTorch 1.13's _amp_update_scale_ (ATen's AmpKernels.cu:
// scale and factors as float * double, an int32 tracker). PyTorch 1.13 has no CPU kernel for it (nor for
// _amp_foreach_non_finite_check_and_unscale_: NotImplementedError on the CPU backend), so this independent copy of
// the rule stands in for calling it.
struct GradScalerRule {
  float scale;
  double growth_factor = 2.0, backoff_factor = 0.5;
  int32_t growth_interval;
  int32_t tracker = 0;
  int64_t skipped = 0;
  void update(bool found_inf) {
    if (found_inf) {
      scale = static_cast<float>(scale * backoff_factor);
      tracker = 0;
      ++skipped;  // GradScaler.step skipped optimizer.step()
      return;
    }
    const int32_t successful = tracker + 1;
    if (successful == growth_interval) {
      const float grown = static_cast<float>(scale * growth_factor);
      if (std::isfinite(grown)) scale = grown;
      tracker = 0;
    } else {
      tracker = successful;
    }
  }
};

bool same_bits(const Tensor& a, const Tensor& b) {
  const Tensor x = a.to(kCPU), y = b.to(kCPU);
  return x.shape() == y.shape() && std::memcmp(x.raw_data(), y.raw_data(), x.nbytes()) == 0;
}

// A scripted run of finite, Inf and NaN gradients through an optimizer with loss scaling and one without, on the
// reference and on emu, for SGD (momentum, dampening: the first update counts) and AdamW (bias corrections count
// the updates made). The scaled optimizer gets each gradient times the scale (a power of two: exact), planted
// with an Inf or NaN on the scripted steps; the other only the finite steps. After every step: the scale, growth
// tracker and skipped count are the rule's; weights and optimizer state are bitwise those of the optimizer that
// never saw the skipped steps (so a skipped step changes neither); the max-norm constraint skips too.
TEST(LossScaling, FollowsGradScalerAndSkipsNonFiniteSteps) {
  // F finite, I an Inf, N a NaN; the first step overflows as fp16 training's first steps often do.
  const std::string script = "IFFFFFFNFFFIIFFFF";
  for (const Device dev : {kCPU, kEmu}) {
    for (const OptimizerKind kind : {OptimizerKind::sgd, OptimizerKind::adamw}) {
      SCOPED_TRACE(cat(dev.str(), " ", optimizer_name(kind)));
      ops::Context ctx(dev);
      std::vector<Param> a(2), b(2);
      a[0].value = host(test::random_vector(12, 5), {4, 3}).to(dev);
      a[1].value = host(test::random_vector(3, 6), {3}).to(dev);
      for (int i = 0; i < 2; ++i) b[size_t(i)].value = a[size_t(i)].value.to(dev);
      OptimizerConfig oc;
      oc.kind = kind;
      oc.momentum = 0.9, oc.dampening = 0.1, oc.weight_decay = 0.01, oc.max_norm = 1.5;
      Optimizer scaled(oc, {{"w", &a[0]}, {"b", &a[1]}}), plain(oc, {{"w", &b[0]}, {"b", &b[1]}});
      LossScaleConfig lc = parse_loss_scale("dynamic:1024");
      lc.growth_interval = 3;
      scaled.enable_loss_scaling(ctx, lc);
      GradScalerRule rule{1024.0f};
      rule.growth_interval = 3;
      for (size_t t = 0; t < script.size(); ++t) {
        SCOPED_TRACE(cat("step ", t, " (", script[t], ")"));
        const bool bad = script[t] != 'F';
        const std::vector<Tensor> before{a[0].value.to(kCPU), a[1].value.to(kCPU)};
        const auto state_before = scaled.state_dict();
        for (int i = 0; i < 2; ++i) {
          const std::vector<float> g = test::random_vector(size_t(a[size_t(i)].value.numel()), 100 + 2 * t + i);
          std::vector<float> gs(g.size());
          for (size_t k = 0; k < g.size(); ++k) gs[k] = g[k] * rule.scale;
          if (bad && i == 1) gs[1] = script[t] == 'I' ? INFINITY : NAN;
          a[size_t(i)].grad = host(gs, a[size_t(i)].value.shape()).to(dev);
          b[size_t(i)].grad = host(g, b[size_t(i)].value.shape()).to(dev);
        }
        scaled.step(ctx, 0.05);
        if (!bad) plain.step(ctx, 0.05);
        rule.update(bad);
        const LossScalerState st = scaled.loss_scaler_state();
        EXPECT_EQ(st.scale, double(rule.scale));
        EXPECT_EQ(st.growth_tracker, rule.tracker);
        EXPECT_EQ(st.skipped, rule.skipped);
        for (int i = 0; i < 2; ++i) {
          EXPECT_TRUE(same_bits(a[size_t(i)].value, b[size_t(i)].value)) << "parameter " << i;
          if (bad) {
            EXPECT_TRUE(same_bits(a[size_t(i)].value, before[size_t(i)])) << "a skipped step changed parameter " << i;
          }
        }
        const auto sa = scaled.state_dict(), sb = plain.state_dict();
        for (const auto& [name, v] : sb) {
          if (name == "step") continue;
          ASSERT_TRUE(sa.count(name)) << name;
          EXPECT_TRUE(same_bits(sa.at(name), v)) << "optimizer state " << name;
          if (bad && state_before.count(name)) {
            EXPECT_TRUE(same_bits(sa.at(name), state_before.at(name))) << "a skipped step changed " << name;
          }
        }
      }
      EXPECT_EQ(rule.skipped, 4);
      EXPECT_EQ(scaled.step_count(), int64_t(script.size()));  // every call; the updates count only the finite ones
      // The scaler's state round-trips through the optimizer's state dict (the checkpoint).
      Optimizer again(oc, {{"w", &b[0]}, {"b", &b[1]}});
      again.enable_loss_scaling(ctx, lc);
      again.load_state_dict(scaled.state_dict(), dev);
      const LossScalerState back = again.loss_scaler_state();
      EXPECT_EQ(back.scale, double(rule.scale));
      EXPECT_EQ(back.growth_tracker, rule.tracker);
      EXPECT_EQ(back.skipped, rule.skipped);
      EXPECT_TRUE(test::throws_error([&] { again.load_state_dict(plain.state_dict(), dev); }, {"'grad_scaler'"}));
    }
  }
}

// A fixed scale (--loss-scale 128): never grows or backs off, still skips a non-finite step.
TEST(LossScaling, FixedScaleSkipsButNeverChanges) {
  ops::Context ctx(kCPU);
  std::vector<Param> p(1);
  p[0].value = host({1.0f, 2.0f}, {2});
  OptimizerConfig oc;
  oc.momentum = 0;
  Optimizer opt(oc, {{"w", &p[0]}});
  LossScaleConfig lc = parse_loss_scale("128");
  EXPECT_FALSE(lc.dynamic);
  EXPECT_EQ(loss_scale_name(lc), "128");
  lc.growth_interval = 1;
  opt.enable_loss_scaling(ctx, lc);
  p[0].grad = host({128.0f, INFINITY}, {2});
  opt.step(ctx, 1.0);
  EXPECT_EQ(p[0].value.to_vector<float>(), (std::vector<float>{1.0f, 2.0f}));
  p[0].grad = host({128.0f, -256.0f}, {2});
  opt.step(ctx, 1.0);
  EXPECT_EQ(p[0].value.to_vector<float>(), (std::vector<float>{0.0f, 4.0f}));
  const LossScalerState st = opt.loss_scaler_state();
  EXPECT_EQ(st.scale, 128.0);
  EXPECT_EQ(st.skipped, 1);
  EXPECT_EQ(loss_scale_name(parse_loss_scale("dynamic")), "dynamic");
  EXPECT_TRUE(test::throws_error([] { parse_loss_scale("dynamic:-1", "--loss-scale"); },
                                 {"--loss-scale", "dynamic:-1", "initial scale"}));
  EXPECT_TRUE(test::throws_error([] { parse_loss_scale("big", "--loss-scale"); },
                                 {"--loss-scale", "'big' is not a loss scale"}));
}

// The gradients of a conv net at FP16 (the reference's semantics: operands rounded to FP16, FP32 sums, outputs
// rounded once), the loss gradient seeded with `loss_scale` and the gradients unscaled after the backward pass.
// A power-of-two scale is exact and commutes with every rounding to FP16 or FP32 as long as no value leaves the
// normal range (FP16: [2^-14, 65504]), so a scaled run is the unscaled run's arithmetic shifted in exponent:
//   - at the loss's own magnitude, scaling by 2^12 changes only the elements whose computation passed through an
//     FP16 subnormal in the unscaled run (absolute rounding error 2^-25 there instead of a relative 2^-12): at
//     least 90% are bitwise equal and the relative L2 difference is <= 1e-4 (measured: 95% and 2e-5), far below
//     FP16's own error against FP32 (3e-4 here);
//   - a loss gradient 2^12 times smaller (a small loss, a large batch) underflows FP16 without scaling; scaled by
//     2^12 it gives exactly (bitwise) the gradients of the loss of normal size times 2^-12.
TEST(LossScaling, UnscaledGradientsMatchTheUnscaledRun) {
  ops::Context ctx(kCPU);
  std::unique_ptr<Model> m = build_model("conv:8:3:pad=1,relu,maxpool:2,conv:8:3:pad=1,relu,gap,linear", {3, 8, 8}, 5);
  m->initialize(ctx, 4);
  m->train(true);
  const Tensor x = host(test::random_vector(4 * 3 * 8 * 8, 9), {4, 3, 8, 8});
  const Tensor labels = Tensor::from_vector(std::vector<int64_t>{0, 3, 1, 4}, {4});
  CrossEntropyLoss loss_fn;
  auto gradients = [&](Precision precision, double loss_factor, double loss_scale) {
    ctx.precision = precision;
    m->zero_grad();
    Output out = m->forward(ctx, x);
    LossOut l = loss_fn.compute(ctx, out.y, labels);
    ops::amp_scale(ctx, l.dpred, ops::amp_state(ctx, loss_factor));  // the loss times loss_factor
    Tensor amp = ops::amp_state(ctx, loss_scale);
    ops::amp_scale(ctx, l.dpred, amp);
    m->backward(ctx, l.dpred, *out.saved, false);
    std::vector<Tensor> grads;
    for (const ParamRef& r : m->parameters()) grads.push_back(r.param->grad);
    ops::amp_unscale(ctx, grads, amp);
    EXPECT_EQ(amp.to_vector<float>()[kAmpFoundInf], 0.0f);
    std::vector<float> all;
    for (const Tensor& g : grads) {
      const std::vector<float> v = g.to_vector<float>();
      all.insert(all.end(), v.begin(), v.end());
    }
    return all;
  };
  auto rel_l2 = [](const std::vector<float>& a, const std::vector<float>& b, double b_factor) {
    double d2 = 0, n2 = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      d2 += std::pow(double(a[i]) - b_factor * b[i], 2);
      n2 += std::pow(b_factor * b[i], 2);
    }
    return std::sqrt(d2 / n2);
  };
  const double tiny = 1.0 / 4096;
  const std::vector<float> exact = gradients(Precision::fp32, 1, 1), plain = gradients(Precision::fp16, 1, 1),
                           scaled = gradients(Precision::fp16, 1, 4096),
                           tiny_plain = gradients(Precision::fp16, tiny, 1),
                           tiny_scaled = gradients(Precision::fp16, tiny, 4096);
  ASSERT_EQ(plain.size(), scaled.size());
  size_t same = 0;
  for (size_t i = 0; i < plain.size(); ++i) same += std::memcmp(&plain[i], &scaled[i], sizeof(float)) == 0;
  const double diff = rel_l2(scaled, plain, 1), fp16_error = rel_l2(plain, exact, 1);
  EXPECT_GE(same, plain.size() * 9 / 10) << same << " of " << plain.size();
  EXPECT_LE(diff, 1e-4);
  EXPECT_GT(diff, 0.0) << "no subnormal in the unscaled run: the test does not see what scaling changes";
  EXPECT_LE(fp16_error, 1e-3);
  std::vector<float> shifted(plain.size());
  for (size_t i = 0; i < plain.size(); ++i) shifted[i] = float(plain[i] * tiny);
  EXPECT_EQ(std::memcmp(tiny_scaled.data(), shifted.data(), shifted.size() * sizeof(float)), 0);
  const double tiny_plain_error = rel_l2(tiny_plain, exact, tiny), tiny_scaled_error = rel_l2(tiny_scaled, exact, tiny);
  EXPECT_GT(tiny_plain_error, 10 * tiny_scaled_error) << tiny_plain_error << " vs " << tiny_scaled_error;
  std::printf(
      "FP16 gradients against FP32: %.3g; scaled by 2^12 and unscaled: %zu of %zu bitwise the unscaled run, "
      "relative L2 %.3g; a 2^12 times smaller loss: %.3g unscaled, %.3g scaled\n",
      fp16_error, same, plain.size(), diff, tiny_plain_error, tiny_scaled_error);
}

std::vector<double> lrs(const std::string& spec, int64_t total, int64_t per_epoch, double warmup = 0) {
  ScheduleConfig c = parse_schedule(spec);
  c.warmup_epochs = warmup;
  LrSchedule s(c, 0.1, total, per_epoch);
  std::vector<double> out;
  for (int64_t t = 0; t < total; ++t) out.push_back(s.lr(t));
  return out;
}

void expect_lrs(const std::vector<double>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-12) << "step " << i;
}

TEST(Schedule, MatchesPyTorchSchedulers) {
  // torch.optim.lr_scheduler, lr 0.1, stepped once per update (PyTorch 1.13).
  expect_lrs(lrs("cosine", 10, 5), {0.1, 0.09755282581475769, 0.09045084971874738, 0.07938926261462367,
                                    0.06545084971874739, 0.05000000000000001, 0.03454915028125264, 0.020610737385376353,
                                    0.009549150281252635, 0.002447174185242324});
  expect_lrs(lrs("cosine:0.01", 10, 5), {0.1, 0.09779754323328192, 0.09140576474687263, 0.08145033635316129,
                                         0.06890576474687264, 0.05500000000000001, 0.04109423525312737,
                                         0.028549663646838717, 0.01859423525312737, 0.012202456766718092});
  expect_lrs(lrs("onecycle", 10, 5),
             {0.0040000000000000036, 0.052000000000000005, 0.1, 0.09504846320134738, 0.0811745653949763,
              0.06112620219362893, 0.03887419780637107, 0.0188258346050237, 0.004951936798652629, 4e-07});
  expect_lrs(lrs("onecycle-linear:0.25", 10, 5), {0.004, 0.068, 0.09333336, 0.08000008, 0.0666668, 0.05333352,
                                                  0.04000024, 0.02666696, 0.01333368, 3.999999999976245e-07});
  // LinearLR(1/4, total_iters 3) then CosineAnnealingLR(T_max 6) in a SequentialLR at milestone 4.
  expect_lrs(lrs("cosine", 10, 2, 2.0), {0.025, 0.05, 0.075, 0.1, 0.1, 0.09330127018922195, 0.075, 0.05,
                                         0.025000000000000012, 0.006698729810778065});
  // StepLR(step_size 2 epochs, gamma 0.5) stepped per epoch, 2 updates per epoch.
  expect_lrs(lrs("step:2:0.5", 12, 2), {0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.025});
  expect_lrs(lrs("multistep:1,3:0.1", 8, 2), {0.1, 0.1, 0.01, 0.01, 0.01, 0.01, 0.001, 0.001});
  expect_lrs(lrs("constant", 3, 1), {0.1, 0.1, 0.1});
}

TEST(Schedule, BadSpecs) {
  const std::pair<const char*, std::vector<std::string>> cases[] = {
      {"cosin", {"unknown schedule 'cosin'", "cosine[:MIN_LR]"}},
      {"step", {"schedule: 'step'", "takes 1 to 2 arguments, got 0"}},
      {"step:x", {"schedule: 'step:x'", "the step size in epochs", "got 'x'"}},
      {"step:0", {"schedule: 'step:0'", "step size must be > 0"}},
      {"onecycle:1.5", {"schedule: 'onecycle:1.5'", "pct_start must be in (0, 1)"}},
      {"multistep:3,2", {"schedule: 'multistep:3,2'", "milestones must increase"}},
      {"multistep:3,,5", {"schedule: 'multistep:3,,5'", "a milestone epoch", "got ''"}},
      {"cosine:-1", {"schedule: 'cosine:-1'", "minimum learning rate must be >= 0"}},
      {"cosine:inf", {"schedule: 'cosine:inf'", "the minimum learning rate", "got 'inf'"}},
      {"constant:1", {"schedule: 'constant:1'", "takes 0 to 0 arguments, got 1"}},
      {"step:2:0", {"schedule: 'step:2:0'", "gamma must be > 0"}},
  };
  for (const auto& [bad, parts] : cases) EXPECT_TRUE(test::throws_error([&] { parse_schedule(bad); }, parts)) << bad;
}

// ---------------------------------------------------------------- checkpoints, freezing, training

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("fovea_layers_test_" + std::to_string(getpid()) + "_" + name))
      .string();
}

TEST(Checkpoint, RoundTripIsBitExact) {
  ops::Context ctx(kCPU);
  std::unique_ptr<Model> m = build_model("conv:4:3:pad=1,bn,relu,maxpool:2,dropout:0.2,linear", {3, 8, 8}, 5);
  m->initialize(ctx, 3);
  const Tensor x = randn({4, 3, 8, 8}, 1);
  Output o = m->forward(ctx, x);  // updates the BatchNorm statistics
  m->backward(ctx, randn({4, 5}, 2), *o.saved);
  Optimizer opt(OptimizerConfig{}, m->parameters());
  opt.step(ctx, 0.1);
  CheckpointMeta meta;
  meta.step = 1;
  meta.dataset = "synthetic";
  meta.class_names = {"a", "b", "c", "d", "e"};
  meta.normalization.mean = {0.1f, 0.2f, 0.3f};
  meta.normalization.stddev = {0.4f, 0.5f, 0.6f};
  const std::string path = temp_path("ckpt.safetensors");
  save_checkpoint(path, *m, &opt, meta);
  const Checkpoint c = load_checkpoint(path);
  EXPECT_EQ(c.meta.step, 1);
  EXPECT_EQ(c.meta.class_names, meta.class_names);
  EXPECT_EQ(c.meta.normalization.stddev, meta.normalization.stddev);
  EXPECT_EQ(c.meta.model_spec, m->spec());
  EXPECT_TRUE(c.optimizer.count("0.weight.momentum_buffer"));
  EXPECT_TRUE(c.model.count("1.running_mean"));
  std::unique_ptr<Model> back = model_from_checkpoint(c, path);
  for (const auto& [name, t] : m->state_dict())
    EXPECT_EQ(t.to_vector<float>(), back->state_dict().at(name).to_vector<float>()) << name;
  m->train(false);
  back->train(false);
  EXPECT_EQ(m->forward(ctx, x).y.to_vector<float>(), back->forward(ctx, x).y.to_vector<float>());
  // A different model refuses the weights (strict), names the tensor.
  std::unique_ptr<Model> other = build_model("conv:8:3:pad=1,bn,relu,maxpool:2,linear", {3, 8, 8}, 5);
  try {
    other->load_state_dict(c.model, true);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("0.weight"), std::string::npos) << e.what();
  }
  // Non-strict (transfer learning) skips and lists what does not fit.
  std::vector<std::string> skipped;
  other->load_state_dict(c.model, false, &skipped);
  EXPECT_FALSE(skipped.empty());
  // Not a checkpoint: a clear error naming the file.
  write_safetensors(path, {{"x", Tensor::zeros({1})}});
  try {
    load_checkpoint(path);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
}

TEST(Freeze, FrozenLayersKeepTheirWeights) {
  ops::Context ctx(kCPU);
  std::unique_ptr<Model> m = build_model("conv:4:3:pad=1,relu,conv:4:3:pad=1,relu,linear", {2, 6, 6}, 3);
  m->initialize(ctx, 1);
  const std::vector<std::string> frozen = m->freeze("0-2");
  EXPECT_EQ(frozen, (std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"}));
  EXPECT_EQ(m->num_trainable(), 4 * 6 * 6 * 3 + 3);
  const auto before = m->state_dict();
  Optimizer opt(OptimizerConfig{}, m->parameters());
  Output o = m->forward(ctx, randn({2, 2, 6, 6}, 1));
  m->backward(ctx, randn({2, 3}, 2), *o.saved);
  EXPECT_FALSE(m->parameters()[0].param->grad.defined());
  opt.step(ctx, 0.5);
  const auto after = m->state_dict();
  EXPECT_EQ(before.at("0.weight").to_vector<float>(), after.at("0.weight").to_vector<float>());
  EXPECT_NE(before.at("5.weight").to_vector<float>(), after.at("5.weight").to_vector<float>());
  EXPECT_EQ(m->freeze("all-but-last").size(), 4u);
  EXPECT_TRUE(test::throws_error([&] { m->freeze("7"); }, {"freeze: layer range '7'", "outside the model's layers"}));
  EXPECT_TRUE(test::throws_error([&] { m->freeze("2-1"); }, {"freeze: layer range '2-1'"}));
  EXPECT_TRUE(test::throws_error([&] { m->freeze("x"); }, {"freeze: model custom has no module 'x'", "0, 1, 2"}));
}

// Parameter groups: each group's update is lr * scale times torch.optim.SGD's, computed here by hand.
TEST(Optimizer, PerGroupLearningRatesFollowSgdByHand) {
  ops::Context ctx(kCPU);
  Param a{"a", randn({3, 2}, 11), randn({3, 2}, 12), true}, b{"b", randn({4}, 13), randn({4}, 14), true};
  const std::vector<float> a0 = a.value.to_vector<float>(), b0 = b.value.to_vector<float>();
  const std::vector<float> ga = a.grad.to_vector<float>(), gb = b.grad.to_vector<float>();
  OptimizerConfig oc;
  oc.momentum = 0.9;
  oc.weight_decay = 0.01;
  Optimizer opt(oc, {{"head.a", &a}, {"body.b", &b}});
  opt.set_lr_scale({"body.b"}, 0.1);
  const double lr = 0.5;
  opt.step(ctx, lr);
  // First step: buf = d = g + wd * w; w -= lr_group * buf.
  const std::vector<float> a1 = a.value.to_vector<float>(), b1 = b.value.to_vector<float>();
  for (size_t i = 0; i < a0.size(); ++i)
    EXPECT_NEAR(a1[i], a0[i] - 0.5 * (ga[i] + 0.01 * a0[i]), 1e-6) << "a[" << i << "]";
  for (size_t i = 0; i < b0.size(); ++i)
    EXPECT_NEAR(b1[i], b0[i] - 0.05 * (gb[i] + 0.01 * b0[i]), 1e-6) << "b[" << i << "]";
  // Second step with the same gradients: buf = 0.9 buf + d(w1).
  opt.step(ctx, lr);
  const std::vector<float> b2 = b.value.to_vector<float>();
  for (size_t i = 0; i < b0.size(); ++i) {
    const double buf = 0.9 * (gb[i] + 0.01 * b0[i]) + (gb[i] + 0.01 * b1[i]);
    EXPECT_NEAR(b2[i], b1[i] - 0.05 * buf, 1e-6) << "b[" << i << "]";
  }
  EXPECT_TRUE(test::throws_error([&] { opt.set_lr_scale({"nope"}, 0.1); }, {"'nope'", "not a trainable parameter"}));
}

// torchvision-style names: --freeze NAME freezes up to and including that module, the head is the last module
// with parameters, and an unknown name lists the model's modules.
TEST(Freeze, ByModuleNameUpToAndIncluding) {
  auto build = [] {
    return build_model(
        "conv1=conv:4:3:pad=1,bn1=bn,relu,layer1=seq(conv:4:3:pad=1,bn,relu),layer2=seq(conv:4:3),gap,fc=linear",
        {2, 6, 6}, 3);
  };
  std::unique_ptr<Model> m = build();
  EXPECT_EQ(m->head_name(), "fc");
  EXPECT_EQ(m->head_paths(), (std::vector<std::string>{"fc.weight", "fc.bias"}));
  EXPECT_EQ(m->freeze("layer1"),
            (std::vector<std::string>{"conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias", "layer1.0.weight",
                                      "layer1.0.bias", "layer1.1.weight", "layer1.1.bias"}));
  for (const ParamRef& r : m->parameters())
    EXPECT_EQ(r.param->trainable, r.path.rfind("layer2", 0) == 0 || r.path.rfind("fc", 0) == 0) << r.path;
  m = build();
  EXPECT_EQ(m->freeze("layer1.0").size(), 6u);  // conv1, bn1, layer1.0
  EXPECT_TRUE(
      test::throws_error([&] { build()->freeze("layer3", "--freeze"); },
                         {"--freeze: model custom has no module 'layer3'", "conv1, bn1, 2, layer1, layer2, 5, fc"}));
}

// A frozen batch norm is in eval mode while the model trains: its running statistics stay, it normalises with
// them, and the gradient through it is dy * gamma / sqrt(running_var + eps) (checked by hand here).
// On cpu and on emu (our kernels).
TEST(Freeze, FrozenBatchNormUsesAndKeepsItsRunningStatistics) {
  for (Device d : {kCPU, kEmu}) {
    SCOPED_TRACE(d.str());
    ops::Context ctx(d);
    std::unique_ptr<Model> m = build_model("conv:3:3:pad=1,bn,linear", {2, 4, 4}, 2);
    m->to(d);
    m->initialize(ctx, 5);
    BatchNorm2d& bn = dynamic_cast<BatchNorm2d&>(m->net().at(1));
    bn.params()[0].value.copy_from(host({0.5f, 1.5f, -2.0f}, {3}));
    bn.params()[1].value.copy_from(host({0.1f, -0.2f, 0.3f}, {3}));
    bn.states()[0].value.copy_from(host({0.2f, -0.1f, 0.05f}, {3}));
    bn.states()[1].value.copy_from(host({0.7f, 1.3f, 2.0f}, {3}));
    EXPECT_EQ(m->freeze("1"), (std::vector<std::string>{"1.weight", "1.bias"}));
    const auto before = m->state_dict();
    m->train(true);
    const Tensor x = randn({2, 2, 4, 4}, 21).to(d);
    Output o = m->forward(ctx, x);
    // Through layer 1 alone: y = (x - mean) / sqrt(var + eps) * gamma + beta with the running statistics.
    Output c = m->net().at(0).forward(ctx, x);
    const Tensor dy = randn({2, 3, 4, 4}, 22).to(d);
    Output b = bn.forward(ctx, c.y);
    const std::vector<float> h = c.y.to_vector<float>(), y = b.y.to_vector<float>();
    const float gamma[3] = {0.5f, 1.5f, -2.0f}, beta[3] = {0.1f, -0.2f, 0.3f}, mean[3] = {0.2f, -0.1f, 0.05f},
                var[3] = {0.7f, 1.3f, 2.0f};
    for (size_t i = 0; i < h.size(); ++i) {
      const size_t ch = (i / 16) % 3;
      EXPECT_NEAR(y[i], (h[i] - mean[ch]) / std::sqrt(var[ch] + 1e-5f) * gamma[ch] + beta[ch], 1e-5) << i;
    }
    const std::vector<float> dx = bn.backward(ctx, dy, *b.saved, true).to_vector<float>(), g = dy.to_vector<float>();
    for (size_t i = 0; i < g.size(); ++i) {
      const size_t ch = (i / 16) % 3;
      EXPECT_NEAR(dx[i], g[i] * gamma[ch] / std::sqrt(var[ch] + 1e-5f), 1e-5) << i;
    }
    // A training step of the whole model: the conv before the frozen batch norm learns through it.
    m->backward(ctx, randn({2, 2}, 23).to(d), *o.saved);
    Optimizer opt(OptimizerConfig{}, m->parameters());
    opt.step(ctx, 0.1);
    const auto after = m->state_dict();
    for (const char* name : {"1.weight", "1.bias", "1.running_mean", "1.running_var"})
      EXPECT_EQ(std::memcmp(before.at(name).raw_data(), after.at(name).raw_data(), before.at(name).nbytes()), 0)
          << name;
    EXPECT_NE(before.at("0.weight").to_vector<float>(), after.at("0.weight").to_vector<float>());
  }
}

TEST(Training, ShortRunReducesTheLossAndLearnsTheRings) {
  TrainConfig c;
  c.dataset = "rings";
  c.model = "mlp";
  c.epochs = 6;
  c.batch = 32;
  c.lr = 0.1;
  c.schedule = parse_schedule("constant");
  c.device = kCPU;
  c.progress = false;
  c.out = temp_path("rings_run");
  const TrainResult r = train(c);
  ASSERT_EQ(r.history.size(), 6u);
  EXPECT_LT(r.history.back().train_loss, 0.5 * r.history.front().train_loss);
  EXPECT_GT(r.history.back().test_acc, 0.95);
  for (const char* f : {"metrics.jsonl", "metrics.csv", "curves.png", "config.json", "checkpoint.safetensors"})
    EXPECT_TRUE(std::filesystem::exists(c.out + "/" + f)) << f;
  std::filesystem::remove_all(c.out);
}

TEST(Training, ShiftImagesMovesPixelsAndFillsZeros) {
  data::Dataset ds;
  ds.images = Tensor::from_vector(std::vector<uint8_t>{1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  ds.labels = Tensor::from_vector(std::vector<int64_t>{0}, {1});
  ds.class_names = {"a"};
  EXPECT_EQ(shift_images(ds, 1, 0).images.to_vector<uint8_t>(), (std::vector<uint8_t>{0, 1, 2, 0, 4, 5, 0, 7, 8}));
  EXPECT_EQ(shift_images(ds, 0, -2).images.to_vector<uint8_t>(), (std::vector<uint8_t>{7, 8, 9, 0, 0, 0, 0, 0, 0}));
}

}  // namespace
}  // namespace fovea::nn
