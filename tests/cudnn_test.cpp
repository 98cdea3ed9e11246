// Backend cudnn (layers/cudnn/cudnn_backend.h, layers/cudnn/): every cuDNN and cuBLAS path through ops:: against
// the CPU reference (device cpu) at our kernels' tolerance (rel L2 <= 1e-5, TF32 off) over the shared
// shape lists (layers/ops/conv_shapes.h); every cuDNN convolution algorithm that supports a shape; the
// deterministic mode, the workspace limit, the benchmark search, TF32; caching of handles and
// descriptors; and 20 training steps with the cudnn layers against our kernels (losses within 1e-4).
// Those need a GPU and skip with the reason without one. The error tests at the top (backend cudnn on
// cpu/emu, in builds without cuDNN, ops it does not implement) run everywhere.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/library_module.h"
#include "core/memory.h"
#include "core/tensor.h"
#include "layers/cudnn/cudnn_backend.h"
#include "layers/data/data.h"
#include "layers/data/loader.h"
#include "layers/nn/models.h"
#include "layers/ops/conv_shapes.h"
#include "layers/ops/ops.h"
#include "layers/ops/registry.h"
#include "layers/train/parity.h"
#include "tests/test_util.h"

namespace fovea {
namespace {

using ops::Backend;
using ops::Context;

// The model of the training comparison: every layer kind backend cudnn implements.
constexpr const char* kTrainSpec =
    "conv:8:3:pad=1,bn,relu,maxpool:3:stride=2:pad=1,conv:16:3:pad=1:groups=2,leakyrelu:0.1,"
    "res(conv:16:3:pad=1,bn,relu,conv:16:3:pad=1,bn),relu,avgpool:2,conv:16:1,tanh,conv:16:3:pad=1,sigmoid,gap,"
    "linear:32,relu,linear";

// ================================================================ errors (every machine, every build)

// The training comparison's model builds and runs (here on the CPU reference), so the GPU test can only
// fail on the backend.
TEST(CudnnErrors, TrainingModelBuildsAndRunsOnCpu) {
  auto model = nn::build_model(kTrainSpec, {3, 32, 32}, 10);
  Context c(kCPU);
  model->initialize(c, 5);
  const Tensor x = Tensor::from_vector(test::random_vector(2 * 3 * 32 * 32, 6), {2, 3, 32, 32});
  const nn::Output out = model->forward(c, x);
  EXPECT_EQ(out.y.shape(), Shape({2, 10}));
  EXPECT_TRUE(test::all_written(out.y.to_vector<float>(), "logits"));
}

TEST(CudnnErrors, ContextOnCpuOrEmuIsRejected) {
  for (Device d : {kCPU, kEmu}) {
    EXPECT_TRUE(test::throws_error([&] { Context c(d, Backend::cudnn); }, {"backend cudnn", "cuda only", d.str()}))
        << d.str();
  }
}

TEST(CudnnErrors, BuildWithoutCudnnRejectsTheBackend) {
#if FOVEA_HAVE_CUDNN
  GTEST_SKIP() << "this build has cuDNN " << FOVEA_CUDNN_VERSION_STRING
               << "; the error is for builds without it (-DFOVEA_WITH_CUDNN=OFF or -DFOVEA_WITH_CUDA=OFF)";
#else
  EXPECT_TRUE(test::throws_error([] { Context c(kCUDA, Backend::cudnn); }, {"backend cudnn", "no cuDNN"}));
#endif
}

// Backend cudnn lives in a module the program loads when first asked (core/library_module.h). Loading it needs
// no GPU: its slots register, its entry points answer, and an op it lacks falls back to our cuda kernels.
TEST(CudnnModule, LoadsRegistersItsSlotsAndFallsBackToOurKernels) {
#if !FOVEA_HAVE_CUDNN
  GTEST_SKIP() << "this build has no cuDNN, so no cudnn module (-DFOVEA_WITH_CUDNN=OFF or -DFOVEA_WITH_CUDA=OFF)";
#else
  ASSERT_TRUE(load_module(Backend::cudnn)) << module_status(Backend::cudnn);
  EXPECT_EQ(module_status(Backend::cudnn).rfind("loaded from ", 0), 0u) << module_status(Backend::cudnn);
  EXPECT_TRUE(ops::relu_forward_stub.has(Slot::cudnn) && ops::find_op("conv2d").implemented(Slot::cudnn));
  EXPECT_FALSE(ops::find_op("dropout").implemented(Slot::cudnn));  // cuDNN has none: our kernels run it
  // At the tensor cores' precisions (layers/cudnn/cudnn_precision.cpp): every precision stub of conv2d and linear,
  // and the raw-buffer calls of the precision benchmark.
  for (const char* op : {"conv2d", "linear"})
    for (const StubInfo* s : ops::find_op(op).precision_stubs) EXPECT_TRUE(s->has(Slot::cudnn)) << s->name();
  EXPECT_TRUE(cudnn::module_api().lt_gemm_raw && cudnn::module_api().conv_precision_algorithms &&
              cudnn::module_api().conv_precision_raw);
  EXPECT_TRUE(test::throws_error(
      [] {
        cudnn::lt_gemm_raw(Exec{kCPU, Backend::cudnn}, Precision::bf16, 1, 1, 1, nullptr, nullptr, nullptr);
      },
      {"lt_gemm_raw", "cuda only"}));
  const std::string v = cudnn::runtime_version();
  EXPECT_TRUE(!v.empty() && std::isdigit(static_cast<unsigned char>(v[0])) && v.find('.') != std::string::npos) << v;
  EXPECT_EQ(cudnn::cache_stats().handles, 0);  // nothing ran on a GPU yet
  static DispatchStub<int(const Exec&, int)> stub{"only_ours"};
  EXPECT_TRUE(stub.define(Slot::cuda, [](const Exec&, int v) { return 2 * v; }));
  EXPECT_EQ(stub(Exec{kCUDA, Backend::cudnn}, 3), 6);
#endif
}

// A layer's backend is set on a copy of the context after construction (Layer::set_backend), which
// bypasses the Context checks: every cudnn op must still refuse, naming itself and the reason.
TEST(CudnnErrors, OpsRefuseBackendCudnnOnCpu) {
  Context c(kCPU);
  c.backend = Backend::cudnn;
  const Tensor x = Tensor::from_vector(test::random_vector(2 * 3 * 6 * 6, 1), {2, 3, 6, 6});
  const Tensor w = Tensor::from_vector(test::random_vector(4 * 3 * 3 * 3, 2), {4, 3, 3, 3});
  const Tensor flat = Tensor::from_vector(test::random_vector(2 * 5, 3), {2, 5});
  const Tensor lw = Tensor::from_vector(test::random_vector(4 * 5, 4), {4, 5});
  Tensor ones = Tensor::from_vector(std::vector<float>(3, 1.0f), {3});
  Tensor zeros = Tensor::from_vector(std::vector<float>(3, 0.0f), {3});
  // The device is checked first, in builds with cuDNN or without.
  const std::string why = "device cuda only, not cpu";
  const std::vector<std::pair<std::string, std::function<void()>>> calls = {
      {"conv2d_forward", [&] { ops::conv2d_forward(c, x, w, Tensor(), {}); }},
      {"maxpool2d_forward", [&] { ops::maxpool2d_forward(c, x, {}); }},
      {"avgpool2d_forward", [&] { ops::avgpool2d_forward(c, x, {}); }},
      {"global_avgpool_forward", [&] { ops::global_avgpool_forward(c, x); }},
      {"linear_forward", [&] { ops::linear_forward(c, flat, lw, Tensor()); }},
      {"relu_forward", [&] { ops::relu_forward(c, x); }},
      {"leaky_relu_forward", [&] { ops::leaky_relu_forward(c, x, 0.1f); }},
      {"softmax_forward", [&] { ops::softmax_forward(c, flat); }},
      {"residual_add_forward", [&] { ops::add(c, x, x); }},
      {"batchnorm2d_forward", [&] { ops::batchnorm_forward_train(c, x, ones, zeros, zeros, ones, 0.1f, 1e-5f); }},
  };
  for (const auto& [op, call] : calls) EXPECT_TRUE(test::throws_error(call, {op + ":", "backend cudnn", why})) << op;
}

TEST(CudnnErrors, ALayerSwitchedToCudnnOnCpuSaysSo) {
  auto model = nn::build_model("conv:4:3:pad=1,relu,gap,linear", {3, 8, 8}, 5);
  Context c(kCPU);
  model->initialize(c, 1);
  model->net().set_backend(Backend::cudnn);
  const Tensor x = Tensor::from_vector(test::random_vector(2 * 3 * 8 * 8, 5), {2, 3, 8, 8});
  EXPECT_TRUE(test::throws_error([&] { model->forward(c, x); }, {"conv2d", "backend cudnn"}));
}

// Ops without a cuDNN/cuBLAS implementation (dropout, cross-entropy, MSE, LRN) still refuse backend cudnn on a
// device other than cuda: a library backend is never dropped silently, whatever the op.
TEST(CudnnErrors, OpsWithoutACudnnVersionRefuseItOffCuda) {
  Context c(kCPU);
  c.backend = Backend::cudnn;  // what Layer::set_backend does; the constructor would refuse cpu
  const Tensor x = Tensor::from_vector(test::random_vector(2 * 6, 7), {2, 6});
  const Tensor labels = Tensor::from_vector(std::vector<int64_t>{1, 4}, {2});
  const Tensor img = Tensor::from_vector(test::random_vector(1 * 6 * 2 * 2, 8), {1, 6, 2, 2});
  LrnParams lrn;
  EXPECT_TRUE(
      test::throws_error([&] { ops::dropout_forward(c, x, 0.5f, 1, 0); }, {"dropout_forward:", "backend cudnn"}));
  EXPECT_TRUE(
      test::throws_error([&] { ops::cross_entropy(c, x, labels); }, {"cross_entropy_forward:", "backend cudnn"}));
  EXPECT_TRUE(test::throws_error([&] { ops::mse_loss(c, x, x); }, {"mse_forward:", "backend cudnn"}));
  EXPECT_TRUE(test::throws_error([&] { ops::lrn_forward(c, img, lrn); }, {"lrn_forward:", "backend cudnn"}));
}

#if FOVEA_HAVE_CUDNN

TEST(CudnnErrors, SettingsParseAndNameTheSearch) {
  EXPECT_EQ(cudnn::parse_conv_search("heuristic"), cudnn::ConvSearch::heuristic);
  EXPECT_EQ(cudnn::parse_conv_search("benchmark"), cudnn::ConvSearch::benchmark);
  EXPECT_STREQ(cudnn::conv_search_name(cudnn::ConvSearch::benchmark), "benchmark");
  EXPECT_TRUE(test::throws_error([] { cudnn::parse_conv_search("fastest"); }, {"fastest", "heuristic", "benchmark"}));
  const cudnn::Settings defaults;
  EXPECT_FALSE(defaults.allow_tf32) << "TF32 must be off by default";
  {
    cudnn::Settings s;
    s.allow_tf32 = true;
    cudnn::ScopedSettings scope(s);
    EXPECT_TRUE(cudnn::settings().allow_tf32);
  }
  EXPECT_FALSE(cudnn::settings().allow_tf32) << "ScopedSettings must restore";
}

// ================================================================ GPU: against the reference

#define FOVEA_SKIP_WITHOUT_GPU()                                                                       \
  do {                                                                                                 \
    if (!cuda_available()) GTEST_SKIP() << "backend cudnn needs a GPU: " << cuda_unavailable_reason(); \
  } while (0)

constexpr double kTol = 1e-5;  // our kernels' float32 tolerance

Context gpu(bool deterministic = true) {
  Context c(kCUDA, Backend::cudnn);
  c.deterministic = deterministic;
  return c;
}

// On cuda those ops run our kernels under backend cudnn (the stubs' fallback), as PyTorch does: the same
// results as backend custom, bit for bit.
TEST(CudnnFallback, OpsWithoutACudnnVersionRunOurs) {
  FOVEA_SKIP_WITHOUT_GPU();
  Context custom(kCUDA), c = gpu();
  const Tensor x = Tensor::from_vector(test::random_vector(2 * 6, 7), {2, 6}, kCUDA);
  const Tensor labels = Tensor::from_vector(std::vector<int64_t>{1, 4}, {2}, kCUDA);
  const Tensor img = Tensor::from_vector(test::random_vector(1 * 6 * 2 * 2, 8), {1, 6, 2, 2}, kCUDA);
  LrnParams lrn;
  EXPECT_EQ(ops::dropout_forward(c, x, 0.5f, 1, 0).to_vector<float>(),
            ops::dropout_forward(custom, x, 0.5f, 1, 0).to_vector<float>());
  EXPECT_EQ(ops::cross_entropy(c, x, labels).dlogits.to_vector<float>(),
            ops::cross_entropy(custom, x, labels).dlogits.to_vector<float>());
  EXPECT_EQ(ops::mse_loss(c, x, x).loss.to_vector<float>(), ops::mse_loss(custom, x, x).loss.to_vector<float>());
  EXPECT_EQ(ops::lrn_forward(c, img, lrn).to_vector<float>(), ops::lrn_forward(custom, img, lrn).to_vector<float>());
}

std::vector<float> host(const Tensor& t) {
  return t.to_vector<float>();
}

// Every element written (no NaN left from the poisoned allocator) and rel L2 within tol.
::testing::AssertionResult close(const Tensor& got, const Tensor& want, const std::string& what, double tol = kTol) {
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure() << what << ": shape " << got.shape().str() << " != " << want.shape().str();
  const std::vector<float> g = host(got), w = host(want);
  ::testing::AssertionResult written = test::all_written(g, what.c_str());
  if (!written) return written;
  ::testing::Test::RecordProperty(what + ".rel_l2", std::to_string(test::rel_l2(g, w)));
  return test::close_l2(g, w, tol, what);
}

::testing::AssertionResult bitwise_same(const Tensor& a, const Tensor& b, const std::string& what) {
  const std::vector<float> x = host(a), y = host(b);
  if (x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << ": not bitwise identical between two runs";
}

// Freed device blocks hold NaN before the op runs, so an output element the op never writes is
// caught (the caching allocator hands freed blocks out again).
void poison_allocator(const std::vector<Shape>& outputs) {
  cuda_allocator().release_cached();
  std::vector<Buffer> blocks;
  for (const Shape& s : outputs) {
    blocks.emplace_back(size_t(s.numel()) * sizeof(float), kCUDA);
    fill_bytes(blocks.back().data(), kCUDA, 0xFF, blocks.back().bytes());
  }
  synchronize(kCUDA);
}

Tensor rand(const Shape& s, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  return Tensor::from_vector(test::random_vector(size_t(s.numel()), seed, lo, hi), s);
}

uint64_t seed_of(const std::string& name) {
  return std::hash<std::string>{}(name) % 100000;
}

ops::Conv2dAttrs attrs_of(const Conv2dParams& p) {
  ops::Conv2dAttrs a;
  a.stride_h = p.stride_h, a.stride_w = p.stride_w, a.pad_h = p.pad_h, a.pad_w = p.pad_w;
  a.dil_h = p.dil_h, a.dil_w = p.dil_w, a.groups = p.groups;
  return a;
}

// ---------------------------------------------------------------- convolution

struct ConvData {
  Conv2dParams p;
  ops::Conv2dAttrs a;
  Shape xs, ws, ys;
  Tensor x, w, b, dy;  // host
  Tensor y_ref, dx_ref, dw_ref, db_ref;
  explicit ConvData(const shapes::ConvShape& cs) : p(cs.p), a(attrs_of(cs.p)) {
    xs = {p.N, p.C, p.H, p.W}, ws = {p.K, p.C_per_group(), p.R, p.S}, ys = {p.N, p.K, p.P(), p.Q()};
    const uint64_t s = seed_of(cs.name);
    x = rand(xs, s), w = rand(ws, s + 1), b = rand({p.K}, s + 2), dy = rand(ys, s + 3);
    Context cpu(kCPU);
    y_ref = ops::conv2d_forward(cpu, x, w, b, a);
    dx_ref = ops::conv2d_backward_data(cpu, dy, w, xs, a);
    dw_ref = ops::conv2d_backward_filter(cpu, x, dy, ws, a);
    db_ref = ops::conv2d_backward_bias(cpu, dy);
  }
};

// The three convolutions and the bias gradient on ctx, each checked against the reference.
void check_conv(Context& ctx, const ConvData& d, const std::string& what, double tol = kTol) {
  const Tensor x = d.x.to(kCUDA), w = d.w.to(kCUDA), b = d.b.to(kCUDA), dy = d.dy.to(kCUDA);
  poison_allocator({d.ys});
  EXPECT_TRUE(close(ops::conv2d_forward(ctx, x, w, b, d.a), d.y_ref, what + " fprop", tol));
  poison_allocator({d.xs});
  EXPECT_TRUE(close(ops::conv2d_backward_data(ctx, dy, w, d.xs, d.a), d.dx_ref, what + " dgrad", tol));
  poison_allocator({d.ws});
  EXPECT_TRUE(close(ops::conv2d_backward_filter(ctx, x, dy, d.ws, d.a), d.dw_ref, what + " wgrad", tol));
  poison_allocator({{d.p.K}});
  EXPECT_TRUE(close(ops::conv2d_backward_bias(ctx, dy), d.db_ref, what + " bias grad", tol));
}

std::vector<shapes::ConvShape> all_conv_shapes() {
  std::vector<shapes::ConvShape> v = shapes::conv_edge_shapes();
  for (auto& s : shapes::conv_cifar_shapes()) v.push_back(s);
  return v;
}

class CudnnConv : public ::testing::TestWithParam<shapes::ConvShape> {};

// Default settings (heuristics, deterministic, TF32 off): matches the reference, repeats bit for bit,
// and only deterministic algorithms were chosen.
TEST_P(CudnnConv, MatchesReferenceDeterministically) {
  FOVEA_SKIP_WITHOUT_GPU();
  const ConvData d(GetParam());
  Context ctx = gpu(true);
  check_conv(ctx, d, GetParam().name);
  const Tensor x = d.x.to(kCUDA), w = d.w.to(kCUDA), b = d.b.to(kCUDA), dy = d.dy.to(kCUDA);
  EXPECT_TRUE(bitwise_same(ops::conv2d_forward(ctx, x, w, b, d.a), ops::conv2d_forward(ctx, x, w, b, d.a), "fprop"));
  EXPECT_TRUE(bitwise_same(ops::conv2d_backward_data(ctx, dy, w, d.xs, d.a),
                           ops::conv2d_backward_data(ctx, dy, w, d.xs, d.a), "dgrad"));
  EXPECT_TRUE(bitwise_same(ops::conv2d_backward_filter(ctx, x, dy, d.ws, d.a),
                           ops::conv2d_backward_filter(ctx, x, dy, d.ws, d.a), "wgrad"));
  for (ConvOp op : {ConvOp::forward, ConvOp::backward_data, ConvOp::backward_filter}) {
    const auto algo = cudnn::cached_conv_algo(ctx.exec(), op, d.p);
    ASSERT_TRUE(algo.has_value()) << conv_op_name(op) << ": no cached algorithm after the call";
    EXPECT_TRUE(algo->deterministic) << conv_op_name(op) << " chose non-deterministic " << algo->name;
    EXPECT_FALSE(algo->tensor_ops) << conv_op_name(op) << " chose tensor-op math " << algo->name << " with TF32 off";
    RecordProperty(std::string(conv_op_name(op)) + ".algo", algo->name);
  }
}

// Timing every algorithm (cudnn.benchmark) picks one that is as exact, and caches it.
TEST_P(CudnnConv, BenchmarkSearchMatchesReference) {
  FOVEA_SKIP_WITHOUT_GPU();
  const ConvData d(GetParam());
  cudnn::Settings s;
  s.conv_search = cudnn::ConvSearch::benchmark;
  cudnn::ScopedSettings scope(s);
  Context ctx = gpu(false);
  check_conv(ctx, d, GetParam().name + " benchmark");
  for (ConvOp op : {ConvOp::forward, ConvOp::backward_data, ConvOp::backward_filter}) {
    const auto algo = cudnn::cached_conv_algo(ctx.exec(), op, d.p);
    ASSERT_TRUE(algo.has_value()) << conv_op_name(op);
    EXPECT_GE(algo->time_ms, 0.0f) << conv_op_name(op) << " " << algo->name;
  }
}

// No workspace at all: cuDNN must still find algorithms, and they must be exact.
TEST_P(CudnnConv, ZeroWorkspaceLimit) {
  FOVEA_SKIP_WITHOUT_GPU();
  const ConvData d(GetParam());
  cudnn::Settings s;
  s.workspace_limit = 0;
  cudnn::ScopedSettings scope(s);
  Context ctx = gpu(false);  // the algorithms without workspace include non-deterministic ones
  check_conv(ctx, d, GetParam().name + " no workspace");
  for (ConvOp op : {ConvOp::forward, ConvOp::backward_data, ConvOp::backward_filter}) {
    const auto algo = cudnn::cached_conv_algo(ctx.exec(), op, d.p);
    ASSERT_TRUE(algo.has_value()) << conv_op_name(op);
    EXPECT_EQ(algo->workspace_bytes, 0u) << conv_op_name(op) << " " << algo->name;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudnnConv, ::testing::ValuesIn(all_conv_shapes()),
                         [](const auto& info) { return info.param.name; });

// Every algorithm cuDNN lists for a shape (forced one at a time) is within the same tolerance.
class CudnnConvAlgo : public ::testing::TestWithParam<shapes::ConvShape> {};

TEST_P(CudnnConvAlgo, EveryAlgorithmMatchesReference) {
  FOVEA_SKIP_WITHOUT_GPU();
  const ConvData d(GetParam());
  Context ctx = gpu(false);
  const Tensor x = d.x.to(kCUDA), w = d.w.to(kCUDA), b = d.b.to(kCUDA), dy = d.dy.to(kCUDA);
  int tried = 0;
  for (ConvOp op : {ConvOp::forward, ConvOp::backward_data, ConvOp::backward_filter}) {
    const std::vector<cudnn::ConvAlgoInfo> algos = cudnn::conv_algorithms(ctx.exec(), op, d.p);
    EXPECT_FALSE(algos.empty()) << conv_op_name(op) << ": cuDNN lists no algorithm";
    for (const cudnn::ConvAlgoInfo& info : algos) {
      cudnn::Settings s;
      (op == ConvOp::forward         ? s.force_fwd_algo
       : op == ConvOp::backward_data ? s.force_bwd_data_algo
                                     : s.force_bwd_filter_algo) = info.algo;
      cudnn::ScopedSettings scope(s);
      const std::string what = std::string(conv_op_name(op)) + " " + info.name;
      ++tried;
      if (op == ConvOp::forward) {
        poison_allocator({d.ys});
        EXPECT_TRUE(close(ops::conv2d_forward(ctx, x, w, b, d.a), d.y_ref, what));
      } else if (op == ConvOp::backward_data) {
        poison_allocator({d.xs});
        EXPECT_TRUE(close(ops::conv2d_backward_data(ctx, dy, w, d.xs, d.a), d.dx_ref, what));
      } else {
        poison_allocator({d.ws});
        EXPECT_TRUE(close(ops::conv2d_backward_filter(ctx, x, dy, d.ws, d.a), d.dw_ref, what));
      }
    }
  }
  RecordProperty("algorithms_tried", tried);
}

INSTANTIATE_TEST_SUITE_P(EdgeShapes, CudnnConvAlgo, ::testing::ValuesIn(shapes::conv_edge_shapes()),
                         [](const auto& info) { return info.param.name; });

TEST(CudnnConvSettings, ForcingAnUnsupportedAlgorithmNamesIt) {
  FOVEA_SKIP_WITHOUT_GPU();
  const ConvData d({"strided_5x5", shapes::conv_params(1, 2, 9, 9, 3, 5, 5, 2, 0)});
  cudnn::Settings s;
  s.force_fwd_algo = 6;  // WINOGRAD: 3x3 stride 1 only
  cudnn::ScopedSettings scope(s);
  Context ctx = gpu(false);
  EXPECT_TRUE(test::throws_error([&] { ops::conv2d_forward(ctx, d.x.to(kCUDA), d.w.to(kCUDA), Tensor(), d.a); },
                                 {"conv2d_forward", "WINOGRAD"}));
}

// TF32 on: still runs and is close at TF32's precision (10-bit mantissa); off again, exact again.
TEST(CudnnConvSettings, Tf32FlagTurnsTensorOpsOn) {
  FOVEA_SKIP_WITHOUT_GPU();
  const ConvData d(shapes::conv_cifar_shapes().at(4));
  {
    cudnn::Settings s;
    s.allow_tf32 = true;
    cudnn::ScopedSettings scope(s);
    Context ctx = gpu(true);
    check_conv(ctx, d, "tf32", 5e-3);
  }
  Context ctx = gpu(true);
  check_conv(ctx, d, "tf32 off again");
}

// Handles, descriptors and algorithm choices are made once, not per call.
TEST(CudnnConvSettings, HandlesDescriptorsAndAlgorithmsAreCached) {
  FOVEA_SKIP_WITHOUT_GPU();
  const ConvData d(shapes::conv_edge_shapes().at(4));
  Context ctx = gpu(true);
  check_conv(ctx, d, "first");
  const cudnn::CacheStats first = cudnn::cache_stats();
  for (int i = 0; i < 3; ++i) check_conv(ctx, d, "again");
  const cudnn::CacheStats later = cudnn::cache_stats();
  EXPECT_EQ(later.handles, first.handles);
  EXPECT_EQ(later.descriptors, first.descriptors);
  EXPECT_EQ(later.conv_algo_searches, first.conv_algo_searches);
  EXPECT_EQ(later.conv_algo_entries, first.conv_algo_entries);
}

// ---------------------------------------------------------------- pooling

class CudnnPool : public ::testing::TestWithParam<shapes::PoolShape> {};

ops::Pool2dAttrs pool_attrs(const Pool2dParams& p) {
  ops::Pool2dAttrs a;
  a.kernel_h = p.kernel_h, a.kernel_w = p.kernel_w, a.stride_h = p.stride_h, a.stride_w = p.stride_w;
  a.pad_h = p.pad_h, a.pad_w = p.pad_w, a.count_include_pad = p.count_include_pad;
  return a;
}

TEST_P(CudnnPool, MaxAndAverageMatchReference) {
  FOVEA_SKIP_WITHOUT_GPU();
  const Pool2dParams p = GetParam().p;
  const ops::Pool2dAttrs a = pool_attrs(p);
  const Shape xs{p.N, p.C, p.H, p.W}, ys{p.N, p.C, p.P(), p.Q()};
  const uint64_t s = seed_of(GetParam().name);
  // Distinct values: max pooling's gradient has a kink where two window values tie.
  const Tensor x = Tensor::from_vector(test::random_distinct(size_t(xs.numel()), s), xs);
  const Tensor dy = rand(ys, s + 1);
  Context cpu(kCPU);
  const ops::MaxPoolOut mref = ops::maxpool2d_forward(cpu, x, a);
  const Tensor mdx_ref = ops::maxpool2d_backward(cpu, dy, mref, xs, a);
  const Tensor ay_ref = ops::avgpool2d_forward(cpu, x, a);
  const Tensor adx_ref = ops::avgpool2d_backward(cpu, dy, xs, a);
  const Tensor xg = x.to(kCUDA), dyg = dy.to(kCUDA);
  for (bool deterministic : {true, false}) {
    Context ctx = gpu(deterministic);
    const std::string mode = deterministic ? " deterministic" : " default";
    poison_allocator({ys});
    const ops::MaxPoolOut m = ops::maxpool2d_forward(ctx, xg, a);
    EXPECT_TRUE(close(m.y, mref.y, "maxpool y" + mode));
    poison_allocator({xs});
    const Tensor mdx = ops::maxpool2d_backward(ctx, dyg, m, xs, a);
    EXPECT_TRUE(close(mdx, mdx_ref, "maxpool dx" + mode));
    if (deterministic) {
      EXPECT_TRUE(bitwise_same(mdx, ops::maxpool2d_backward(ctx, dyg, m, xs, a), "maxpool dx"));
    }
    poison_allocator({ys});
    EXPECT_TRUE(close(ops::avgpool2d_forward(ctx, xg, a), ay_ref, "avgpool y" + mode));
    poison_allocator({xs});
    EXPECT_TRUE(close(ops::avgpool2d_backward(ctx, dyg, xs, a), adx_ref, "avgpool dx" + mode));
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudnnPool, ::testing::ValuesIn(shapes::pool_shapes()),
                         [](const auto& info) { return info.param.name; });

// cuDNN's backward reads the forward's x and y: the forward's record holds them (references, no copies), so
// backward works after the caller dropped its own handles to x.
TEST(CudnnPoolSaved, MaxPoolBackwardOutlivesItsInputs) {
  FOVEA_SKIP_WITHOUT_GPU();
  const Pool2dParams p = shapes::pool_shapes().at(2).p;
  const ops::Pool2dAttrs a = pool_attrs(p);
  const Shape xs{p.N, p.C, p.H, p.W}, ys{p.N, p.C, p.P(), p.Q()};
  const Tensor x = Tensor::from_vector(test::random_distinct(size_t(xs.numel()), 3), xs), dy = rand(ys, 4);
  Context cpu(kCPU);
  const ops::MaxPoolOut mref = ops::maxpool2d_forward(cpu, x, a);
  Context ctx = gpu();
  ops::MaxPoolOut fwd;
  {
    Tensor xg = x.to(kCUDA);
    fwd = ops::maxpool2d_forward(ctx, xg, a);
  }
  poison_allocator({xs, ys, xs});  // any freed block of x's or y's size now holds NaN
  EXPECT_TRUE(close(ops::maxpool2d_backward(ctx, dy.to(kCUDA), fwd, xs, a),
                    ops::maxpool2d_backward(cpu, dy, mref, xs, a), "maxpool dx"));
}

TEST(CudnnPoolGlobal, GlobalAveragePoolingMatchesReference) {
  FOVEA_SKIP_WITHOUT_GPU();
  for (const Shape& xs : {Shape{1, 1, 1, 1}, Shape{2, 3, 5, 7}, Shape{64, 64, 8, 8}, Shape{8, 512, 7, 7}}) {
    const Tensor x = rand(xs, uint64_t(xs.numel())), dy = rand({xs[0], xs[1]}, 9);
    Context cpu(kCPU), ctx = gpu();
    poison_allocator({{xs[0], xs[1]}});
    EXPECT_TRUE(
        close(ops::global_avgpool_forward(ctx, x.to(kCUDA)), ops::global_avgpool_forward(cpu, x), "gap y " + xs.str()));
    poison_allocator({xs});
    EXPECT_TRUE(close(ops::global_avgpool_backward(ctx, dy.to(kCUDA), xs), ops::global_avgpool_backward(cpu, dy, xs),
                      "gap dx " + xs.str()));
  }
}

// ---------------------------------------------------------------- activations, add, softmax

const std::vector<Shape> kElementwiseShapes = {{1}, {7}, {3, 333}, {4, 3, 17, 19}, {65537}};

TEST(CudnnActivations, MatchReference) {
  FOVEA_SKIP_WITHOUT_GPU();
  Context cpu(kCPU), ctx = gpu();
  for (const Shape& s : kElementwiseShapes) {
    // Away from 0: relu's and leaky relu's derivative jumps there.
    const Tensor x = Tensor::from_vector(test::random_away_from_zero(size_t(s.numel()), 11, 0.05f, 3.0f), s);
    const Tensor dy = rand(s, 12), xg = x.to(kCUDA), dyg = dy.to(kCUDA);
    const std::string at = std::string(" ") + s.str();
    poison_allocator({s});
    EXPECT_TRUE(close(ops::relu_forward(ctx, xg), ops::relu_forward(cpu, x), "relu" + at));
    poison_allocator({s});
    EXPECT_TRUE(close(ops::relu_backward(ctx, dyg, xg), ops::relu_backward(cpu, dy, x), "relu dx" + at));
    const Tensor sy = ops::sigmoid_forward(cpu, x), ty = ops::tanh_forward(cpu, x);
    poison_allocator({s});
    EXPECT_TRUE(close(ops::sigmoid_forward(ctx, xg), sy, "sigmoid" + at));
    poison_allocator({s});
    EXPECT_TRUE(
        close(ops::sigmoid_backward(ctx, dyg, sy.to(kCUDA)), ops::sigmoid_backward(cpu, dy, sy), "sigmoid dx" + at));
    poison_allocator({s});
    EXPECT_TRUE(close(ops::tanh_forward(ctx, xg), ty, "tanh" + at));
    poison_allocator({s});
    EXPECT_TRUE(close(ops::tanh_backward(ctx, dyg, ty.to(kCUDA)), ops::tanh_backward(cpu, dy, ty), "tanh dx" + at));
    for (float slope : {0.01f, 0.2f, -0.5f}) {
      const std::string ls = " slope " + std::to_string(slope) + at;
      poison_allocator({s});
      EXPECT_TRUE(close(ops::leaky_relu_forward(ctx, xg, slope), ops::leaky_relu_forward(cpu, x, slope), "leaky" + ls));
      poison_allocator({s});
      EXPECT_TRUE(close(ops::leaky_relu_backward(ctx, dyg, xg, slope), ops::leaky_relu_backward(cpu, dy, x, slope),
                        "leaky dx" + ls));
    }
    poison_allocator({s});
    EXPECT_TRUE(close(ops::add(ctx, xg, dyg), ops::add(cpu, x, dy), "add" + at));
  }
}

TEST(CudnnSoftmax, SoftmaxAndLogSoftmaxMatchReference) {
  FOVEA_SKIP_WITHOUT_GPU();
  Context cpu(kCPU), ctx = gpu();
  for (const Shape& s : {Shape{1, 1}, Shape{2, 3}, Shape{7, 33}, Shape{64, 10}, Shape{128, 1000}, Shape{3, 4099}}) {
    // Logits up to +-8 (softmax saturates; the max subtraction matters).
    const Tensor x = rand(s, uint64_t(s.numel()), -8.0f, 8.0f), dy = rand(s, 5);
    const Tensor xg = x.to(kCUDA), dyg = dy.to(kCUDA);
    const Tensor y = ops::softmax_forward(cpu, x), ly = ops::log_softmax_forward(cpu, x);
    const std::string at = std::string(" ") + s.str();
    poison_allocator({s});
    EXPECT_TRUE(close(ops::softmax_forward(ctx, xg), y, "softmax" + at));
    poison_allocator({s});
    EXPECT_TRUE(
        close(ops::softmax_backward(ctx, dyg, y.to(kCUDA)), ops::softmax_backward(cpu, dy, y), "softmax dx" + at));
    poison_allocator({s});
    EXPECT_TRUE(close(ops::log_softmax_forward(ctx, xg), ly, "log_softmax" + at));
    poison_allocator({s});
    EXPECT_TRUE(close(ops::log_softmax_backward(ctx, dyg, ly.to(kCUDA)), ops::log_softmax_backward(cpu, dy, ly),
                      "log_softmax dx" + at));
  }
}

// ---------------------------------------------------------------- batch norm

TEST(CudnnBatchNorm, TrainEvalBackwardAndRunningStatsMatchReference) {
  FOVEA_SKIP_WITHOUT_GPU();
  struct Case {
    Shape x;
    float eps, momentum;
  };
  // eps 1e-3: backward gets the saved statistics and must not depend on the eps it is told.
  const std::vector<Case> cases = {{{8, 3, 5, 7}, 1e-5f, 0.1f},    {{2, 16, 8, 8}, 1e-3f, 0.3f},
                                   {{32, 4, 1, 1}, 1e-5f, 0.1f},   {{64, 10}, 1e-5f, 0.1f},
                                   {{128, 64, 8, 8}, 1e-5f, 0.1f}, {{3, 5, 2, 2}, 1e-3f, 1.0f}};
  for (const Case& c : cases) {
    const int64_t C = c.x[1];
    const std::string at = std::string(" ") + c.x.str();
    const Tensor x = rand(c.x, uint64_t(c.x.numel()), -2.0f, 3.0f), dy = rand(c.x, 21);
    const Tensor gamma = rand({C}, 22, 0.5f, 1.5f), beta = rand({C}, 23);
    const Tensor rm0 = rand({C}, 24), rv0 = rand({C}, 25, 0.5f, 2.0f);
    Context cpu(kCPU), ctx = gpu();
    Tensor rm = rm0.to(kCPU), rv = rv0.to(kCPU);
    const ops::BatchNormOut ref = ops::batchnorm_forward_train(cpu, x, gamma, beta, rm, rv, c.momentum, c.eps);
    const ops::BatchNormGrads gref = ops::batchnorm_backward(cpu, dy, x, gamma, ref.save_mean, ref.save_invstd);
    const Tensor eval_ref = ops::batchnorm_forward_eval(cpu, x, gamma, beta, rm, rv, c.eps);

    const Tensor xg = x.to(kCUDA), gg = gamma.to(kCUDA), bg = beta.to(kCUDA);
    Tensor rmg = rm0.to(kCUDA), rvg = rv0.to(kCUDA);
    poison_allocator({c.x, {C}, {C}});
    const ops::BatchNormOut out = ops::batchnorm_forward_train(ctx, xg, gg, bg, rmg, rvg, c.momentum, c.eps);
    EXPECT_TRUE(close(out.y, ref.y, "bn y" + at));
    EXPECT_TRUE(close(out.save_mean, ref.save_mean, "bn save_mean" + at));
    EXPECT_TRUE(close(out.save_invstd, ref.save_invstd, "bn save_invstd" + at));
    EXPECT_TRUE(close(rmg, rm, "bn running_mean" + at));
    EXPECT_TRUE(close(rvg, rv, "bn running_var (unbiased)" + at));
    poison_allocator({c.x, {C}, {C}});
    const ops::BatchNormGrads g = ops::batchnorm_backward(ctx, dy.to(kCUDA), xg, gg, out.save_mean, out.save_invstd);
    EXPECT_TRUE(close(g.dx, gref.dx, "bn dx" + at));
    EXPECT_TRUE(close(g.dgamma, gref.dgamma, "bn dgamma" + at));
    EXPECT_TRUE(close(g.dbeta, gref.dbeta, "bn dbeta" + at));
    const ops::BatchNormGrads g2 = ops::batchnorm_backward(ctx, dy.to(kCUDA), xg, gg, out.save_mean, out.save_invstd);
    EXPECT_TRUE(bitwise_same(g.dx, g2.dx, "bn dx" + at));
    EXPECT_TRUE(bitwise_same(g.dgamma, g2.dgamma, "bn dgamma" + at));
    poison_allocator({c.x});
    EXPECT_TRUE(close(ops::batchnorm_forward_eval(ctx, xg, gg, bg, rmg, rvg, c.eps), eval_ref, "bn eval y" + at));
  }
}

// ---------------------------------------------------------------- linear (cuBLAS / cuBLASLt)

TEST(CudnnLinear, ForwardAndBackwardMatchReference) {
  FOVEA_SKIP_WITHOUT_GPU();
  struct Case {
    int64_t N, I, O;
  };
  for (const Case& c : {Case{1, 1, 1}, Case{3, 5, 7}, Case{7, 33, 65}, Case{64, 784, 128}, Case{128, 512, 10},
                        Case{256, 1024, 1024}, Case{2, 4096, 3}}) {
    const std::string at = " N=" + std::to_string(c.N) + " I=" + std::to_string(c.I) + " O=" + std::to_string(c.O);
    const Tensor x = rand({c.N, c.I}, uint64_t(c.N * c.I)), w = rand({c.O, c.I}, 31), b = rand({c.O}, 32);
    const Tensor dy = rand({c.N, c.O}, 33);
    Context cpu(kCPU);
    for (bool deterministic : {true, false}) {
      Context ctx = gpu(deterministic);
      const std::string what = at + (deterministic ? " deterministic" : "");
      const Tensor xg = x.to(kCUDA), wg = w.to(kCUDA), bg = b.to(kCUDA), dyg = dy.to(kCUDA);
      poison_allocator({{c.N, c.O}});
      EXPECT_TRUE(close(ops::linear_forward(ctx, xg, wg, bg), ops::linear_forward(cpu, x, w, b), "linear y" + what));
      poison_allocator({{c.N, c.O}});
      EXPECT_TRUE(close(ops::linear_forward(ctx, xg, wg, Tensor()), ops::linear_forward(cpu, x, w, Tensor()),
                        "linear y no bias" + what));
      poison_allocator({{c.N, c.I}});
      EXPECT_TRUE(
          close(ops::linear_backward_data(ctx, dyg, wg), ops::linear_backward_data(cpu, dy, w), "linear dx" + what));
      poison_allocator({{c.O, c.I}});
      EXPECT_TRUE(close(ops::linear_backward_weight(ctx, xg, dyg), ops::linear_backward_weight(cpu, x, dy),
                        "linear dw" + what));
      poison_allocator({{c.O}});
      EXPECT_TRUE(close(ops::linear_backward_bias(ctx, dyg), ops::linear_backward_bias(cpu, dy), "linear db" + what));
      if (deterministic) {
        EXPECT_TRUE(
            bitwise_same(ops::linear_forward(ctx, xg, wg, bg), ops::linear_forward(ctx, xg, wg, bg), "linear y"));
        EXPECT_TRUE(bitwise_same(ops::linear_backward_weight(ctx, xg, dyg), ops::linear_backward_weight(ctx, xg, dyg),
                                 "linear dw"));
      }
    }
  }
}

// Operands at 4-byte offsets (views one row into a bigger tensor): cuBLASLt must be told their alignment.
TEST(CudnnLinear, MisalignedViewsMatchReference) {
  FOVEA_SKIP_WITHOUT_GPU();
  const int64_t N = 9, I = 37, O = 13;
  const Tensor xbig = rand({N + 1, I}, 41), wbig = rand({O + 1, I}, 42), bbig = rand({O + 1}, 43);
  const Tensor x = xbig.narrow(1, N), w = wbig.narrow(1, O), b = bbig.narrow(1, O);
  const Tensor xg = xbig.to(kCUDA).narrow(1, N), wg = wbig.to(kCUDA).narrow(1, O), bg = bbig.to(kCUDA).narrow(1, O);
  Context cpu(kCPU), ctx = gpu();
  EXPECT_TRUE(close(ops::linear_forward(ctx, xg, wg, bg), ops::linear_forward(cpu, x, w, b), "linear y misaligned"));
}

// ---------------------------------------------------------------- at the tensor cores' precisions
//
// conv2d and linear at tf32 / bf16 / fp16 on cuDNN and cuBLASLt (layers/cudnn/cudnn_precision.cpp) against the CPU
// reference of the same precision (cpu_reference/gemm.h's semantics), element by element within this bound:
//   - operands: bf16/fp16 are narrowed by our kernels (nearest even, as the reference rounds), so both sides
//     multiply the same values. TF32: the reference rounds with cvt.rna, the library's conversion is not documented
//     (nearest, or the tensor cores' truncation of the low 13 bits, or none): each operand may differ by
//     e = 2^-11 + 2^-10 relative, a product by (2e + e^2)(1 + 2^-10)^2 |a b|.
//   - sums: both add exact products (11 significant bits at most) in FP32, in different orders; the reference
//     within gamma_T(u) S of the exact sum, the library within gamma_T(2u) S (tensor-core accumulation is not
//     documented to round to nearest; 2u covers truncation), S = sum |a b| over the T terms of an element.
//   - outputs: both round to the output type (bf16/fp16): 2 u_o (|ref| + |got|) covers each side's rounding and
//     a second rounding of the library's when it adds the bias after rounding the convolution (+ u_o |b|); an FP32
//     output's last rounding (tf32, the bias add) 2^-24 per side; the bias as one more term of the FP32 sums.
//   - FP16 subnormal operands or outputs: an absolute 2^-22 (1 + S).
// S is the FP32 reference on |operands| (its own error is far below the margin). Not bitwise: the libraries' order
// of summation is theirs. Each op also repeats bit for bit (deterministic algorithms by default), and a 16-bit
// output holds only values of its type.

double unit_in(Precision p) {
  return p == Precision::bf16 ? 0x1p-8 : 0x1p-11;
}
double unit_out(Precision p) {
  return p == Precision::bf16 ? 0x1p-8 : p == Precision::fp16 ? 0x1p-11 : 0.0;
}
double gamma_of(int64_t terms, double u) {
  return double(terms) * u / (1.0 - double(terms) * u);
}

Tensor abs_of(const Tensor& t) {
  std::vector<float> v = t.to(kCPU).to_vector<float>();
  for (float& x : v) x = std::fabs(x);
  return Tensor::from_vector(v, t.shape());
}

// got (device) against want (reference of prec) with S = the FP32 op on |operands|; bias: |b| per output channel
// (forward only), channel_of(i) its index.
::testing::AssertionResult within_precision_bound(Precision prec, const Tensor& got_t, const Tensor& want_t,
                                                  const Tensor& S_t, int64_t terms, const std::string& what,
                                                  const std::vector<float>& abs_bias = {},
                                                  const std::function<int64_t(int64_t)>& channel_of = nullptr) {
  if (got_t.shape() != want_t.shape())
    return ::testing::AssertionFailure() << what << ": shape " << got_t.shape().str() << " != " << want_t.shape().str();
  const std::vector<float> got = host(got_t), want = host(want_t), S = host(S_t);
  const double e = prec == Precision::tf32 ? 0x1p-11 + 0x1p-10 : 0.0, up = unit_in(prec), uo = unit_out(prec);
  const double grow = (1 + 0x1p-10) * (1 + 0x1p-10);
  const double per_S = ((2 * e + e * e) + gamma_of(terms, 0x1p-24) + gamma_of(terms, 0x1p-23)) * grow * (1 + up);
  int bad = 0;
  std::string first;
  for (size_t i = 0; i < got.size(); ++i) {
    // + each side's final FP32 rounding (tf32 outputs, the bias add) at 2^-24 |y| per side.
    double bound = per_S * 1.001 * S[i] + (2 * uo + 0x1p-23) * (std::fabs(want[i]) + std::fabs(got[i]));
    if (!abs_bias.empty())  // the bias is one more term of the FP32 sum, and may be rounded once more
      bound +=
          (gamma_of(terms + 1, 0x1p-24) + gamma_of(terms + 1, 0x1p-23) + uo) * abs_bias[size_t(channel_of(int64_t(i)))];
    if (prec == Precision::fp16) bound += 0x1p-22 * (1 + S[i]);
    if (!(std::fabs(double(got[i]) - want[i]) <= bound) && bad++ == 0)
      first = " first at element " + std::to_string(i) + ": got " + std::to_string(got[i]) + ", want " +
              std::to_string(want[i]) + ", bound " + std::to_string(bound);
    if (round_output(prec, got[i]) != got[i] && bad++ == 0)
      first = " element " + std::to_string(i) + " = " + std::to_string(got[i]) + " is not a value of the output type";
  }
  ::testing::Test::RecordProperty(what + ".rel_l2", std::to_string(test::rel_l2(got, want)));
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << " (" << precision_name(prec) << "): " << bad
                                       << " element(s) outside the bound;" << first;
}

constexpr Precision kTcPrecisions[] = {Precision::tf32, Precision::bf16, Precision::fp16};

class CudnnConvPrecision : public ::testing::TestWithParam<shapes::ConvShape> {};

TEST_P(CudnnConvPrecision, WithinBoundOfTheReferenceOfItsPrecision) {
  FOVEA_SKIP_WITHOUT_GPU();
  const ConvData d(GetParam());
  const Conv2dParams& p = d.p;
  const Tensor x = d.x.to(kCUDA), w = d.w.to(kCUDA), b = d.b.to(kCUDA), dy = d.dy.to(kCUDA);
  Context cpu32(kCPU);
  const Tensor Sy = ops::conv2d_forward(cpu32, abs_of(d.x), abs_of(d.w), Tensor(), d.a);
  const Tensor Sdx = ops::conv2d_backward_data(cpu32, abs_of(d.dy), abs_of(d.w), d.xs, d.a);
  const Tensor Sdw = ops::conv2d_backward_filter(cpu32, abs_of(d.x), abs_of(d.dy), d.ws, d.a);
  const std::vector<float> abs_b = host(abs_of(d.b));
  const int64_t PQ = p.P() * p.Q();
  const auto channel = [&](int64_t i) { return (i / PQ) % p.K; };
  for (Precision prec : kTcPrecisions) {
    Context ref(kCPU), ctx = gpu();
    ref.precision = ctx.precision = prec;
    std::string at = " ";  // appended piece by piece: GCC 12's -Wrestrict misfires on a chain of + here
    at.append(p.str()).append(" ").append(precision_name(prec));
    poison_allocator({d.ys});
    const Tensor y = ops::conv2d_forward(ctx, x, w, b, d.a);
    EXPECT_TRUE(test::all_written(host(y), ("fprop" + at).c_str()));
    EXPECT_TRUE(within_precision_bound(prec, y, ops::conv2d_forward(ref, d.x, d.w, d.b, d.a), Sy,
                                       p.C_per_group() * p.R * p.S, "fprop" + at, abs_b, channel));
    EXPECT_TRUE(bitwise_same(y, ops::conv2d_forward(ctx, x, w, b, d.a), "fprop" + at));
    poison_allocator({d.ys});
    EXPECT_TRUE(within_precision_bound(prec, ops::conv2d_forward(ctx, x, w, Tensor(), d.a),
                                       ops::conv2d_forward(ref, d.x, d.w, Tensor(), d.a), Sy,
                                       p.C_per_group() * p.R * p.S, "fprop no bias" + at));
    poison_allocator({d.xs});
    const Tensor dx = ops::conv2d_backward_data(ctx, dy, w, d.xs, d.a);
    EXPECT_TRUE(within_precision_bound(prec, dx, ops::conv2d_backward_data(ref, d.dy, d.w, d.xs, d.a), Sdx,
                                       p.K_per_group() * p.R * p.S, "dgrad" + at));
    EXPECT_TRUE(bitwise_same(dx, ops::conv2d_backward_data(ctx, dy, w, d.xs, d.a), "dgrad" + at));
    poison_allocator({d.ws});
    const Tensor dw = ops::conv2d_backward_filter(ctx, x, dy, d.ws, d.a);
    EXPECT_TRUE(within_precision_bound(prec, dw, ops::conv2d_backward_filter(ref, d.x, d.dy, d.ws, d.a), Sdw, p.N * PQ,
                                       "wgrad" + at));
    EXPECT_TRUE(bitwise_same(dw, ops::conv2d_backward_filter(ctx, x, dy, d.ws, d.a), "wgrad" + at));
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudnnConvPrecision, ::testing::ValuesIn(all_conv_shapes()),
                         [](const auto& info) { return info.param.name; });

TEST(CudnnLinearPrecision, WithinBoundOfTheReferenceOfItsPrecision) {
  FOVEA_SKIP_WITHOUT_GPU();
  struct Case {
    int64_t N, I, O;
  };
  for (const Case& c : {Case{1, 1, 1}, Case{3, 5, 7}, Case{7, 33, 65}, Case{128, 512, 10}, Case{256, 1024, 1024}}) {
    const Tensor x = rand({c.N, c.I}, uint64_t(c.N * c.I) + 7), w = rand({c.O, c.I}, 51), b = rand({c.O}, 52);
    const Tensor dy = rand({c.N, c.O}, 53);
    const Tensor xg = x.to(kCUDA), wg = w.to(kCUDA), bg = b.to(kCUDA), dyg = dy.to(kCUDA);
    Context cpu32(kCPU);
    const Tensor Sy = ops::linear_forward(cpu32, abs_of(x), abs_of(w), Tensor());
    const Tensor Sdx = ops::linear_backward_data(cpu32, abs_of(dy), abs_of(w));
    const Tensor Sdw = ops::linear_backward_weight(cpu32, abs_of(x), abs_of(dy));
    const std::vector<float> abs_b = host(abs_of(b));
    const int64_t O = c.O;
    const auto channel = [O](int64_t i) { return i % O; };
    for (Precision prec : kTcPrecisions) {
      Context ref(kCPU), ctx = gpu();
      ref.precision = ctx.precision = prec;
      std::string at = " N=";
      at.append(std::to_string(c.N)).append(" I=").append(std::to_string(c.I)).append(" O=");
      at.append(std::to_string(c.O)).append(" ").append(precision_name(prec));
      poison_allocator({{c.N, c.O}});
      const Tensor y = ops::linear_forward(ctx, xg, wg, bg);
      EXPECT_TRUE(test::all_written(host(y), ("linear y" + at).c_str()));
      EXPECT_TRUE(
          within_precision_bound(prec, y, ops::linear_forward(ref, x, w, b), Sy, c.I, "linear y" + at, abs_b, channel));
      EXPECT_TRUE(bitwise_same(y, ops::linear_forward(ctx, xg, wg, bg), "linear y" + at));
      poison_allocator({{c.N, c.O}});
      EXPECT_TRUE(within_precision_bound(prec, ops::linear_forward(ctx, xg, wg, Tensor()),
                                         ops::linear_forward(ref, x, w, Tensor()), Sy, c.I, "linear y no bias" + at));
      poison_allocator({{c.N, c.I}});
      EXPECT_TRUE(within_precision_bound(prec, ops::linear_backward_data(ctx, dyg, wg),
                                         ops::linear_backward_data(ref, dy, w), Sdx, c.O, "linear dx" + at));
      poison_allocator({{c.O, c.I}});
      const Tensor dw = ops::linear_backward_weight(ctx, xg, dyg);
      EXPECT_TRUE(
          within_precision_bound(prec, dw, ops::linear_backward_weight(ref, x, dy), Sdw, c.N, "linear dw" + at));
      EXPECT_TRUE(bitwise_same(dw, ops::linear_backward_weight(ctx, xg, dyg), "linear dw" + at));
    }
  }
}

// The raw-buffer calls of the precision benchmark: cuDNN lists at least one algorithm per direction and precision,
// and every listed one runs without an error (the benchmark compares their outputs; the ops' numbers are checked
// above).
TEST(CudnnConvPrecision, RawCallsRunEveryListedAlgorithm) {
  FOVEA_SKIP_WITHOUT_GPU();
  const Conv2dParams p = shapes::conv_params(4, 16, 12, 12, 16, 3, 3, 1, 1);
  Context ctx = gpu(false);
  for (Precision prec : kTcPrecisions) {
    const size_t elem = prec == Precision::tf32 ? 4 : 2;
    Buffer in0(size_t(p.x_size() + p.y_size() + p.w_size()) * elem, kCUDA);
    fill_bytes(in0.data(), kCUDA, 0x3C, in0.bytes());  // 1.0 in fp16's high byte: finite values in every type
    Buffer out(size_t(p.x_size() + p.y_size() + p.w_size()) * elem, kCUDA);
    for (ConvOp op : {ConvOp::forward, ConvOp::backward_data, ConvOp::backward_filter}) {
      const auto algos = cudnn::conv_precision_algorithms(ctx.exec(), prec, op, p);
      EXPECT_FALSE(algos.empty()) << conv_op_name(op) << " " << precision_name(prec);
      for (const cudnn::ConvAlgoInfo& a : algos)
        cudnn::conv_precision_raw(ctx.exec(), prec, op, p, a.algo, in0.data(), in0.data(), out.data());
    }
    synchronize(kCUDA);
  }
}

// The GEMM stub on cuBLAS: our sgemm's contract (row-major, transposes, leading dimensions, strided batches, beta).
TEST(CudnnSgemm, CublasBaselineMatchesAPlainLoop) {
  FOVEA_SKIP_WITHOUT_GPU();
  for (Trans ta : {Trans::N, Trans::T})
    for (Trans tb : {Trans::N, Trans::T})
      for (float beta : {0.0f, 1.5f}) {
        SgemmParams g = sgemm_params(ta, tb, 19, 23, 37, 0.75f, beta);
        g.lda += 3, g.ldb += 1, g.ldc += 2;  // padded rows
        g.batch = 3;
        g.stride_a = g.a_rows() * g.lda + 5, g.stride_b = g.b_rows() * g.ldb, g.stride_c = g.M * g.ldc + 1;
        const std::vector<float> A = test::random_vector(size_t(g.a_extent()), 51),
                                 B = test::random_vector(size_t(g.b_extent()), 52),
                                 C0 = test::random_vector(size_t(g.c_extent()), 53);
        std::vector<float> want = C0;
        for (int64_t z = 0; z < g.batch; ++z)
          for (int64_t i = 0; i < g.M; ++i)
            for (int64_t j = 0; j < g.N; ++j) {
              double acc = 0;
              for (int64_t k = 0; k < g.K; ++k) {
                const float a = ta == Trans::N ? A[z * g.stride_a + i * g.lda + k] : A[z * g.stride_a + k * g.lda + i];
                const float b = tb == Trans::N ? B[z * g.stride_b + k * g.ldb + j] : B[z * g.stride_b + j * g.ldb + k];
                acc += double(a) * double(b);
              }
              float& c = want[size_t(z * g.stride_c + i * g.ldc + j)];
              c = float(g.alpha * acc + (beta != 0.0f ? double(beta) * double(c) : 0.0));
            }
        const Tensor a = Tensor::from_vector(A, {int64_t(A.size())}, kCUDA),
                     b = Tensor::from_vector(B, {int64_t(B.size())}, kCUDA);
        Tensor c = Tensor::from_vector(C0, {int64_t(C0.size())}, kCUDA);
        ops::sgemm_stub(Exec{kCUDA, Backend::cudnn}, GemmAlgo::tiled, g, a.data<float>(), b.data<float>(),
                        c.data<float>());
        EXPECT_TRUE(test::close_l2(host(c), want, kTol,
                                   std::string("sgemm ") + (ta == Trans::N ? "N" : "T") + (tb == Trans::N ? "N" : "T") +
                                       " beta " + std::to_string(beta)));
      }
}

// ---------------------------------------------------------------- training: cudnn layers vs our kernels

// The same model (conv, grouped conv, bn, relu, leaky relu, tanh, sigmoid, max/avg/global pooling, a
// residual add, linear) trained 20 steps of SGD with momentum: its layers on backend cudnn against the
// same layers on our kernels, in lock-step from the same weights. The loss, the optimizer and the
// metrics run on our kernels in both (cuDNN has no cross-entropy).
TEST(CudnnTraining, TwentyStepsMatchOurKernels) {
  FOVEA_SKIP_WITHOUT_GPU();
  const data::Dataset ds = data::make_shapes(64, data::Split::train, 3);
  data::LoaderOptions lo;
  lo.batch_size = 16;
  lo.prefetch = 0;
  lo.normalization = data::channel_stats(ds);
  data::BatchLoader loader(ds, lo);
  loader.start_epoch(0);
  std::vector<std::pair<Tensor, Tensor>> batches;
  data::Batch batch;
  while (loader.next(batch)) batches.emplace_back(batch.images.to(kCPU), batch.labels.to(kCPU));

  Context ca(kCUDA), cb(kCUDA);  // both contexts custom: the loss and optimizer run on our kernels
  auto a = nn::build_model(kTrainSpec, {3, 32, 32}, 10);
  auto b = nn::build_model(kTrainSpec, {3, 32, 32}, 10);
  a->to(kCUDA);
  a->initialize(ca, 5);
  b->to(kCUDA);
  b->net().set_backend(Backend::cudnn);
  nn::ParityOptions o;
  o.steps = 20;
  o.tolerance = 1e-4;
  const nn::ParityReport r = nn::run_parity(*a, ca, *b, cb, batches, o);
  ASSERT_EQ(r.steps.size(), 20u) << r.summary();
  for (const nn::ParityStep& s : r.steps) EXPECT_LE(s.rel, 1e-4) << "step " << s.step << "\n" << r.summary();
  EXPECT_TRUE(r.ok) << r.summary();
  EXPECT_NE(r.steps.front().loss_a, r.steps.back().loss_a) << "the loss must change for the comparison to mean much";
}

#else  // !FOVEA_HAVE_CUDNN

TEST(CudnnGpu, NotBuilt) {
  GTEST_SKIP() << "this build has no cuDNN (not found at build time, -DFOVEA_WITH_CUDNN=OFF or -DFOVEA_WITH_CUDA=OFF): "
                  "backend cudnn is not compiled, so there is nothing to run on a GPU";
}

#endif

}  // namespace
}  // namespace fovea
