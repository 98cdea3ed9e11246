// The one generic op test, driven by the op registry (layers/ops/registry.h), as PyTorch's OpInfo drives its
// tests: every registered op, every sample, on every device that implements it (emu; onednn on cpu when its
// module is built; cuda and cudnn when a GPU is present, else skipped saying so) against the CPU reference, with every
// output element written (new allocations are poisoned with NaN); and every backward against central finite differences
// of the reference. Adding an op to the registry adds it here.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/library_module.h"
#include "core/memory.h"
#include "core/philox.h"
#include "cpu_reference/blas.h"
#include "cpu_reference/threading.h"
#include "layers/onednn/onednn_backend.h"
#include "layers/ops/batchnorm.h"
#include "layers/ops/context.h"
#include "layers/ops/conv2d.h"
#include "layers/ops/linear.h"
#include "layers/ops/registry.h"
#include "tests/test_util.h"

namespace fovea::ops {
namespace {

enum class Target { emu, cuda, cudnn, onednn };

struct Case {
  const OpInfo* op;
  Sample sample;
  Target target;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.op->name << "/" << c.sample.name;
}

const char* target_name(Target t) {
  switch (t) {
    case Target::emu: return "emu";
    case Target::cuda: return "cuda";
    case Target::cudnn: return "cudnn";
    case Target::onednn: return "onednn";
  }
  return "?";
}

Slot slot_of(Target t) {
  switch (t) {
    case Target::emu: return Slot::emu;
    case Target::cuda: return Slot::cuda;
    case Target::cudnn: return Slot::cudnn;
    case Target::onednn: return Slot::onednn;
  }
  return Slot::cpu;
}

// The samples that are not benchmark rows (those are large: `fovea bench` runs them).
std::vector<Case> cases(std::vector<Target> targets) {
  std::vector<Case> out;
  for (const OpInfo* op : registered_ops())
    for (const Sample& s : op->samples)
      if (!s.bench)
        for (Target t : targets) out.push_back({op, s, t});
  return out;
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  std::string n = info.param.op->name + "_" + info.param.sample.name + "_" + target_name(info.param.target);
  for (char& c : n)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
}

uint64_t seed_of(const Case& c) {
  return std::hash<std::string>{}(c.op->name + "/" + c.sample.name) % 1000003;
}

// Forward, then backward with the given output gradients (when the op has one): every output and gradient.
NamedTensors run(Context& ctx, const OpInfo& op, const std::map<std::string, Tensor>& inputs,
                 const std::map<std::string, std::string>& attrs, const NamedTensors& douts) {
  std::map<std::string, Tensor> all = inputs;
  for (const auto& [name, t] : douts) all[name] = t;
  const OpArgs args(op, all, attrs);
  NamedTensors out = op.forward(ctx, args);
  if (op.backward && !douts.empty())
    for (auto& g : op.backward(ctx, args, out)) out.push_back(std::move(g));
  return out;
}

std::map<std::string, Tensor> to_device(const std::map<std::string, Tensor>& host, Device d) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : host) out[name] = t.to(d);
  return out;
}

NamedTensors to_device(const NamedTensors& host, Device d) {
  NamedTensors out;
  for (const auto& [name, t] : host) out.push_back({name, t.to(d)});
  return out;
}

// ---------------------------------------------------------------- every device against the reference

// The case's device and backend against the reference on the sample: every output and gradient within the
// tolerance, every element written.
void check_against_reference(const Case& c) {
  const OpInfo& op = *c.op;
  const uint64_t seed = seed_of(c);
  const std::map<std::string, Tensor> inputs = sample_inputs(op, c.sample, seed, kCPU);
  Context cpu(kCPU);
  const NamedTensors ref_out = op.forward(cpu, OpArgs(op, inputs, c.sample.attrs));
  const NamedTensors douts = op.backward ? sample_output_grads(op, ref_out, seed + 1, kCPU) : NamedTensors{};
  const NamedTensors want = run(cpu, op, inputs, c.sample.attrs, douts);

  const Device dev = c.target == Target::emu ? kEmu : c.target == Target::onednn ? kCPU : kCUDA;
  const Backend backend = c.target == Target::cudnn    ? Backend::cudnn
                          : c.target == Target::onednn ? Backend::onednn
                                                       : Backend::custom;
  Context ctx(dev, backend);
  NamedTensors got;
  {
    ScopedAllocationPoison poison;  // an element an op leaves unwritten reads as NaN
    got = run(ctx, op, to_device(inputs, dev), c.sample.attrs, to_device(douts, dev));
  }
  ASSERT_EQ(got.size(), want.size()) << op.name;
  // cuDNN picks its own algorithms (other summation orders, Winograd/FFT): a looser bound, as in cudnn_test.
  // oneDNN runs direct convolutions only: float32 rounding, the bound of our kernels.
  const double tol = c.target == Target::cudnn ? 1e-4 : 1e-5;
  for (size_t i = 0; i < want.size(); ++i) {
    const auto& [name, w] = want[i];
    ASSERT_EQ(got[i].first, name);
    const Tensor g = got[i].second.to(kCPU);
    ASSERT_EQ(g.shape(), w.shape()) << name;
    if (w.dtype() != DType::float32) {
      EXPECT_EQ(g.to_vector<int32_t>(), w.to_vector<int32_t>()) << name;
      continue;
    }
    const std::vector<float> gv = g.to_vector<float>(), wv = w.to_vector<float>();
    EXPECT_TRUE(test::all_written(gv, name.c_str()));
    EXPECT_TRUE(test::close_l2(gv, wv, tol, op.name + "/" + c.sample.name + " " + name));
  }
}

class OpOnDevice : public ::testing::TestWithParam<Case> {};

TEST_P(OpOnDevice, MatchesTheReference) {
  const Case& c = GetParam();
  const Slot slot = slot_of(c.target);
  if (c.target != Target::emu && !cuda_available()) GTEST_SKIP() << "device cuda: " << cuda_unavailable_reason();
  if (!c.op->implemented(slot)) GTEST_SKIP() << c.op->name << " has no " << slot_name(slot) << " implementation";
  check_against_reference(c);
}

INSTANTIATE_TEST_SUITE_P(Registry, OpOnDevice, ::testing::ValuesIn(cases({Target::emu, Target::cuda, Target::cudnn})),
                         case_name);

// Backend onednn (device cpu, its module): one test per op over all its samples, as each test is a process of
// its own under ctest and each process loads the module (CI time).
class OpOnOnednn : public ::testing::TestWithParam<const OpInfo*> {};

TEST_P(OpOnOnednn, EverySampleMatchesTheReference) {
  const OpInfo& op = *GetParam();
  if (!load_module(Backend::onednn)) GTEST_SKIP() << "backend onednn: " << module_status(Backend::onednn);
  if (!op.implemented(Slot::onednn)) GTEST_SKIP() << op.name << " has no onednn implementation";
  for (const Sample& s : op.samples) {
    if (s.bench) continue;
    SCOPED_TRACE(op.name + "/" + s.name);
    check_against_reference({&op, s, Target::onednn});
  }
}

INSTANTIATE_TEST_SUITE_P(Registry, OpOnOnednn, ::testing::ValuesIn(registered_ops()),
                         [](const ::testing::TestParamInfo<const OpInfo*>& info) { return info.param->name; });

// ---------------------------------------------------------------- backward against finite differences

class OpGradient : public ::testing::TestWithParam<Case> {};

// L = sum over the differentiated outputs of <dout, out>, in double: its gradient is what backward returns.
double loss(Context& cpu, const OpInfo& op, const std::map<std::string, Tensor>& inputs,
            const std::map<std::string, std::string>& attrs, const NamedTensors& douts) {
  const NamedTensors out = op.forward(cpu, OpArgs(op, inputs, attrs));
  double l = 0;
  for (const auto& [dname, d] : douts)
    for (const auto& [name, y] : out)
      if ("d" + name == dname) {
        const std::vector<float> yv = y.to_vector<float>(), dv = d.to_vector<float>();
        for (size_t i = 0; i < yv.size(); ++i) l += double(yv[i]) * double(dv[i]);
      }
  return l;
}

TEST_P(OpGradient, BackwardMatchesFiniteDifferences) {
  const Case& c = GetParam();
  const OpInfo& op = *c.op;
  const uint64_t seed = seed_of(c);
  std::map<std::string, Tensor> inputs = sample_inputs(op, c.sample, seed, kCPU);
  Context cpu(kCPU);
  const NamedTensors out = op.forward(cpu, OpArgs(op, inputs, c.sample.attrs));
  const NamedTensors douts = sample_output_grads(op, out, seed + 1, kCPU);
  const NamedTensors all = run(cpu, op, inputs, c.sample.attrs, douts);
  int checked = 0, kinks = 0;
  for (const std::string& gname : op.grads()) {
    const std::string in = gname.substr(1);
    if (!inputs.count(in)) continue;  // an optional input not in this sample
    Tensor analytic;
    for (const auto& [name, t] : all)
      if (name == gname) analytic = t;
    ASSERT_TRUE(analytic.defined()) << op.name << ": backward gave no " << gname;
    const std::vector<float> a = analytic.to_vector<float>();
    Tensor& x = inputs[in];
    const int64_t n = x.numel();
    for (int k = 0; k < 8 && k < n; ++k) {
      const int64_t i = k == 0 ? 0 : int64_t(philox_u32(seed, 77, uint64_t(k)) % uint64_t(n));
      float* xi = x.data<float>() + i;
      const float x0 = *xi, h = 1e-3f * std::max(1.0f, std::fabs(x0));
      *xi = x0 + h;
      const double up = loss(cpu, op, inputs, c.sample.attrs, douts);
      *xi = x0 - h;
      const double down = loss(cpu, op, inputs, c.sample.attrs, douts);
      *xi = x0;
      const double mid = loss(cpu, op, inputs, c.sample.attrs, douts);
      const double fd = (up - down) / (2.0 * double(h));
      // A kink (relu at 0, a max-pooling tie) between x - h and x + h: the one-sided slopes disagree.
      const double right = (up - mid) / double(h), left = (mid - down) / double(h);
      const double scale = std::max({1.0, std::fabs(fd), std::fabs(double(a[size_t(i)]))});
      if (std::fabs(right - left) > 1e-2 * scale) {
        ++kinks;
        continue;
      }
      EXPECT_LE(std::fabs(fd - double(a[size_t(i)])), 1e-2 * scale)
          << op.name << "/" << c.sample.name << " " << gname << "[" << i << "]: backward " << a[size_t(i)]
          << ", finite differences " << fd;
      ++checked;
    }
  }
  EXPECT_GT(checked, 0) << op.name << "/" << c.sample.name << ": every probed element sat on a kink (" << kinks << ")";
  RecordProperty("checked", checked);
  RecordProperty("kinks", kinks);
}

std::vector<Case> gradient_cases() {
  std::vector<Case> out;
  for (const Case& c : cases({Target::emu}))
    if (c.op->backward) out.push_back(c);
  return out;
}

INSTANTIATE_TEST_SUITE_P(Registry, OpGradient, ::testing::ValuesIn(gradient_cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           std::string n = info.param.op->name + "_" + info.param.sample.name;
                           for (char& ch : n)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

// ---------------------------------------------------------------- backend onednn's module

// Backend onednn lives in a module the program loads when first asked (core/library_module.h): its slots
// register, its entry points answer, and an op it lacks falls back to the reference.
TEST(OnednnModule, LoadsRegistersItsSlotsAndFallsBackToTheReference) {
#if !FOVEA_HAVE_ONEDNN
  GTEST_SKIP() << "backend onednn: " << module_status(Backend::onednn);
#else
  ASSERT_TRUE(load_module(Backend::onednn)) << module_status(Backend::onednn);
  EXPECT_EQ(module_status(Backend::onednn).rfind("loaded from ", 0), 0u) << module_status(Backend::onednn);
  EXPECT_TRUE(conv2d_backward_filter_stub.has(Slot::onednn) && find_op("conv2d").implemented(Slot::onednn) &&
              find_op("linear").implemented(Slot::onednn));
  EXPECT_FALSE(find_op("dropout").implemented(Slot::onednn));  // oneDNN has none: the reference runs it
  const std::string v = onednn::runtime_version();
  EXPECT_EQ(v.rfind("2.", 0), 0u) << v;
  static DispatchStub<int(const Exec&, int)> stub{"only_ours_on_cpu"};
  EXPECT_TRUE(stub.define(Slot::cpu, [](const Exec&, int v) { return 2 * v; }));
  EXPECT_EQ(stub(Exec{kCPU, Backend::onednn}, 3), 6);
  EXPECT_TRUE(test::throws_error([] { Context c(kEmu, Backend::onednn); }, {"onednn", "cpu only", "emu"}));
#endif
}

// oneDNN's CPU convolutions have no atomics: for a fixed thread count (here OpenMP's default, the cores) the
// same inputs give the same bits, run to run, and the second run reuses the cached primitives.
TEST(OnednnModule, ConvolutionIsBitwiseReproducibleAndCached) {
  if (!load_module(Backend::onednn)) GTEST_SKIP() << "backend onednn: " << module_status(Backend::onednn);
  const Conv2dAttrs a{2, 1, 1, 2, 1, 2, 2};  // stride 2x1, padding 1x2, dilation 1x2, 2 groups
  const Shape xs{3, 4, 9, 11}, ws{6, 2, 3, 3};
  const Tensor x = Tensor::from_vector(test::random_vector(size_t(xs.numel()), 11), xs);
  const Tensor w = Tensor::from_vector(test::random_vector(size_t(ws.numel()), 12), ws);
  const Tensor b = Tensor::from_vector(test::random_vector(6, 13), {6});
  auto step = [&] {
    Context ctx(kCPU, Backend::onednn);
    const Tensor y = conv2d_forward(ctx, x, w, b, a);
    const Tensor dy = Tensor::from_vector(test::random_vector(size_t(y.numel()), 14), y.shape());
    return std::vector<std::vector<float>>{
        y.to_vector<float>(), conv2d_backward_data(ctx, dy, w, xs, a).to_vector<float>(),
        conv2d_backward_filter(ctx, x, dy, ws, a).to_vector<float>(), conv2d_backward_bias(ctx, dy).to_vector<float>()};
  };
  const auto first = step();
  const int64_t plans = onednn::cache_stats().plans;
  EXPECT_EQ(step(), first);
  EXPECT_EQ(onednn::cache_stats().plans, plans);
  EXPECT_NE(onednn::last_implementation(conv2d_forward_stub.name()), "");
  // Plain formats (no reorders; oneDNN's GEMM-based convolutions): the same results to float32 rounding.
  onednn::settings().blocked_conv_formats = false;
  const auto plain = step();
  onednn::settings().blocked_conv_formats = true;
  for (size_t i = 0; i < first.size(); ++i) EXPECT_TRUE(test::close_l2(plain[i], first[i], 1e-5, "plain formats"));
}

// Batch norm and the conv bias gradient under backend onednn (fovea's vectorised loops, layers/onednn/
// onednn_batchnorm.cpp) on planes longer than one block sum (33x37 = 1221 > 1024 floats, a partial block): within
// rel L2 1e-5 of the reference, and bitwise the same on 1 and 2 threads (each channel's sums run in one order).
TEST(OnednnModule, BatchNormAndBiasGradientMatchTheReferenceOnAnyThreadCount) {
  if (!load_module(Backend::onednn)) GTEST_SKIP() << "backend onednn: " << module_status(Backend::onednn);
  const Shape xs{3, 5, 33, 37};
  const Tensor x = Tensor::from_vector(test::random_vector(size_t(xs.numel()), 21), xs);
  const Tensor dy = Tensor::from_vector(test::random_vector(size_t(xs.numel()), 22), xs);
  const Tensor gamma = Tensor::from_vector(test::random_vector(5, 23), {5});
  const Tensor beta = Tensor::from_vector(test::random_vector(5, 24), {5});
  auto run = [&](Backend b, int threads) {
    const int before = ref::num_threads();
    ref::set_num_threads(threads);
    Context ctx(kCPU, b);
    Tensor rm = Tensor::from_vector(std::vector<float>(5, 0.5f), {5});
    Tensor rv = Tensor::from_vector(std::vector<float>(5, 2.0f), {5});
    const BatchNormOut f = batchnorm_forward_train(ctx, x, gamma, beta, rm, rv, 0.1f, 1e-5f);
    const BatchNormGrads g = batchnorm_backward(ctx, dy, x, gamma, f.save_mean, f.save_invstd);
    const Tensor ye = batchnorm_forward_eval(ctx, x, gamma, beta, rm, rv, 1e-5f);
    std::vector<std::vector<float>> out{f.y.to_vector<float>(),
                                        f.save_mean.to_vector<float>(),
                                        f.save_invstd.to_vector<float>(),
                                        rm.to_vector<float>(),
                                        rv.to_vector<float>(),
                                        g.dx.to_vector<float>(),
                                        g.dgamma.to_vector<float>(),
                                        g.dbeta.to_vector<float>(),
                                        ye.to_vector<float>(),
                                        conv2d_backward_bias(ctx, dy).to_vector<float>()};
    ref::set_num_threads(before);
    return out;
  };
  const auto want = run(Backend::custom, 2), one = run(Backend::onednn, 1), two = run(Backend::onednn, 2);
  EXPECT_EQ(one, two);
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_TRUE(test::close_l2(two[i], want[i], 1e-5, "output " + std::to_string(i)));
}

// ---------------------------------------------------------------- backend onednn at a reduced precision

// conv2d and linear at Context::precision bf16 on oneDNN (layers/onednn/onednn_precision.cpp) against the
// reference of the same precision (cpu_reference/gemm.h's semantics). tf32 and fp16 run the reference under backend
// onednn (oneDNN 2.6 has neither on CPUs without AVX512_FP16/AMX): nothing to compare there.

// The forward and both gradients of each case, on cpu with `backend` at bf16, every output poisoned first.
struct PrecisionCase {
  std::string what;
  std::function<std::vector<Tensor>(Context&)> run;
  int64_t k_max = 1;  // the longest sum of the outputs (bias included)
};

std::vector<std::vector<float>> run_bf16(const PrecisionCase& c, Backend backend) {
  Context ctx(kCPU, backend);
  ctx.precision = Precision::bf16;
  std::vector<std::vector<float>> out;
  ScopedAllocationPoison poison;
  for (const Tensor& t : c.run(ctx)) out.push_back(t.to_vector<float>());
  return out;
}

// Skips unless the module loads; fails if a CPU with AVX512_BF16 ran a bf16 op anywhere but on oneDNN.
bool onednn_ran_bf16(const char* stub) {
  const std::string impl = onednn::last_implementation(stub);
  EXPECT_TRUE(!impl.empty() || !ref::cpu_features().avx512_bf16)
      << stub << ": this CPU has AVX512_BF16 but the call ran the reference, not oneDNN";
  return !impl.empty();
}

#define FOVEA_SKIP_WITHOUT_ONEDNN() \
  if (!load_module(Backend::onednn)) GTEST_SKIP() << "backend onednn: " << module_status(Backend::onednn)

Tensor from(const std::vector<float>& v, const Shape& s) {
  return Tensor::from_vector(v, s);
}

// Operands +-(k/8 + 2^-9), k in 8..15 (tests/tc_gemm_kernel_test.cpp's PrecisionOps): BF16 rounding leaves
// multiples of 1/8 in [1, 2), whose products and sums are exact in FP32 in any order, so oneDNN's results must be
// the reference's bit for bit; an implementation that kept the 2^-9 (FP32 operands) would differ.
std::vector<float> bf16_exact_operands(int64_t n, uint64_t seed) {
  std::vector<float> v = test::random_integers(size_t(n), seed, 8, 15);
  const std::vector<float> sign = test::random_vector(size_t(n), seed + 1000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = (sign[i] < 0 ? -1.0f : 1.0f) * (v[i] / 8 + 0x1p-9f);
  return v;
}

std::vector<PrecisionCase> bf16_cases(std::vector<float> (*operands)(int64_t, uint64_t)) {
  std::vector<PrecisionCase> cases;
  struct Lin {
    int64_t N, I, O;
  };
  for (const Lin s : {Lin{1, 1, 1}, Lin{3, 7, 5}, Lin{33, 65, 17}}) {
    const Tensor x = from(operands(s.N * s.I, 1), {s.N, s.I}), w = from(operands(s.O * s.I, 2), {s.O, s.I}),
                 b = from(operands(s.O, 3), {s.O}), dy = from(operands(s.N * s.O, 4), {s.N, s.O});
    cases.push_back({"linear " + LinearParams{s.N, s.I, s.O}.str(),
                     [=](Context& ctx) {
                       return std::vector<Tensor>{linear_forward(ctx, x, w, b), linear_forward(ctx, x, w, Tensor()),
                                                  linear_backward_data(ctx, dy, w), linear_backward_weight(ctx, x, dy)};
                     },
                     std::max({s.I + 1, s.O, s.N})});
  }
  struct Conv {
    Shape x, w;
    Conv2dAttrs a;
  };
  Conv2dAttrs strided{.stride_h = 2, .stride_w = 1, .pad_h = 1, .pad_w = 2};
  Conv2dAttrs dilated_groups{.pad_h = 1, .pad_w = 1, .dil_h = 2, .dil_w = 2, .groups = 2};
  Conv2dAttrs same{.pad_h = 1, .pad_w = 1};
  for (const Conv& c : {Conv{{1, 1, 3, 3}, {1, 1, 1, 1}, {}}, Conv{{2, 3, 7, 5}, {5, 3, 3, 3}, strided},
                        Conv{{2, 4, 6, 7}, {6, 2, 3, 2}, dilated_groups},
                        Conv{{2, 16, 8, 8}, {16, 16, 3, 3}, same}}) {  // resnet20's first stage, smaller image
    const Conv2dParams p = conv2d_params(c.x, c.w, c.a);
    const Tensor x = from(operands(c.x.numel(), 5), c.x), w = from(operands(c.w.numel(), 6), c.w),
                 b = from(operands(p.K, 7), {p.K}), dy = from(operands(p.y_size(), 8), {p.N, p.K, p.P(), p.Q()});
    cases.push_back({"conv2d " + p.str(),
                     [=](Context& ctx) {
                       return std::vector<Tensor>{conv2d_forward(ctx, x, w, b, c.a), conv2d_forward(ctx, x, w, {}, c.a),
                                                  conv2d_backward_data(ctx, dy, w, c.x, c.a),
                                                  conv2d_backward_filter(ctx, x, dy, c.w, c.a)};
                     },
                     std::max({p.C_per_group() * p.R * p.S + 1, p.K_per_group() * p.R * p.S, p.N * p.P() * p.Q()})});
  }
  return cases;
}

TEST(OnednnPrecision, Bf16IsTheReferenceBitwiseOnExactOperands) {
  FOVEA_SKIP_WITHOUT_ONEDNN();
  for (const PrecisionCase& c : bf16_cases(bf16_exact_operands)) {
    const auto want = run_bf16(c, Backend::custom), got = run_bf16(c, Backend::onednn);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      const std::string name = c.what + " output " + std::to_string(i);
      EXPECT_TRUE(test::all_written(got[i], name.c_str()));
      EXPECT_EQ(0, std::memcmp(got[i].data(), want[i].data(), want[i].size() * sizeof(float))) << name;
    }
  }
  for (const char* stub : {conv2d_forward_precision_stub.name(), conv2d_backward_data_precision_stub.name(),
                           conv2d_backward_filter_precision_stub.name(), linear_forward_precision_stub.name(),
                           linear_backward_data_precision_stub.name(), linear_backward_weight_precision_stub.name()})
    if (!onednn_ran_bf16(stub))
      GTEST_SKIP() << stub << ": oneDNN has no optimised BF16 kernel on this CPU (" << ref::cpu_features().str()
                   << "): the reference ran";
}

// tf32 and fp16 under backend onednn: oneDNN 2.6 has neither on CPUs, so the onednn slot hands the call to the
// reference (the same bits) without creating a oneDNN primitive.
TEST(OnednnPrecision, Tf32AndFp16RunTheReference) {
  FOVEA_SKIP_WITHOUT_ONEDNN();
  const std::vector<PrecisionCase> cases = bf16_cases(bf16_exact_operands);
  for (Precision prec : {Precision::tf32, Precision::fp16}) {
    const int64_t plans = onednn::cache_stats().plans;
    for (const PrecisionCase& c : {cases[1], cases[4]}) {  // a linear and a strided conv
      auto on = [&](Backend b) {
        Context ctx(kCPU, b);
        ctx.precision = prec;
        std::vector<std::vector<float>> out;
        for (const Tensor& t : c.run(ctx)) out.push_back(t.to_vector<float>());
        return out;
      };
      EXPECT_EQ(on(Backend::onednn), on(Backend::custom)) << c.what << " " << precision_name(prec);
    }
    EXPECT_EQ(onednn::cache_stats().plans, plans) << precision_name(prec) << ": a oneDNN primitive was created";
  }
}

// The conversions: y = x w with w = 1 is x rounded to BF16 twice (operand, then output): ties to even, above and
// below the half, negative, large, small normal, against core/float_formats.h's rounding (the reference's).
TEST(OnednnPrecision, Bf16RoundsToNearestEvenAsTheReference) {
  FOVEA_SKIP_WITHOUT_ONEDNN();
  std::vector<float> x;
  for (float base : {1.0f, -1.0f, 3.0f, 1e-30f, -7e30f, 0.1f})
    for (int k = 0; k < 16; ++k) x.push_back(base * (1.0f + float(k) * 0x1p-10f));  // k = 2, 6, 10, 14: ties
  const int64_t n = int64_t(x.size());
  const PrecisionCase c{"identity", [&](Context& ctx) {
                          const Tensor one = from({1.0f}, {1, 1});
                          return std::vector<Tensor>{
                              linear_forward(ctx, from(x, {n, 1}), one, Tensor()),
                              conv2d_forward(ctx, from(x, {1, 1, 1, n}), from({1.0f}, {1, 1, 1, 1}), {}, {})};
                        }};
  const auto got = run_bf16(c, Backend::onednn);
  for (const auto& g : got)
    for (int64_t i = 0; i < n; ++i)
      EXPECT_EQ(g[size_t(i)], round_operand(Precision::bf16, x[size_t(i)])) << x[size_t(i)];
  if (!onednn_ran_bf16(linear_forward_precision_stub.name()) || !onednn_ran_bf16(conv2d_forward_precision_stub.name()))
    GTEST_SKIP() << "oneDNN has no optimised BF16 kernel on this CPU: the reference ran";
}

// Random inputs: oneDNN's FP32 sums run in another order than OpenBLAS's, so an output may round to the other BF16
// neighbour. Both sums s1, s2 lie within gamma_K * S of the exact one (S = sum |a_k b_k| of the rounded operands,
// any order), so elementwise |got - want| <= |s1 - s2| + |rn(s1) - s1| + |rn(s2) - s2|
// <= 2 gamma_K S + 2^-8 (|got| + |want|) (a BF16 rounding moves a value by at most 2^-8 of it, relative to
// the rounded value up to a factor 1 + 2^-8, covered by the 1.01 below). S comes from the same op at FP32 on |a|, |b|.
std::vector<float> bf16_random(int64_t n, uint64_t seed) {
  std::vector<float> v = test::random_vector(size_t(n), seed);
  for (float& f : v) f = round_operand(Precision::bf16, f);  // so that |a| below is the rounded operand's
  return v;
}

TEST(OnednnPrecision, Bf16RandomInputsWithinTheDerivedBound) {
  FOVEA_SKIP_WITHOUT_ONEDNN();
  const auto cases = bf16_cases(bf16_random);
  const auto abs_cases = bf16_cases([](int64_t n, uint64_t seed) {
    std::vector<float> v = bf16_random(n, seed);
    for (float& f : v) f = std::fabs(f);
    return v;
  });
  for (size_t k = 0; k < cases.size(); ++k) {
    const auto want = run_bf16(cases[k], Backend::custom), got = run_bf16(cases[k], Backend::onednn);
    Context fp32(kCPU);
    std::vector<std::vector<float>> S;  // sum |a b| per output element (exact operands: BF16 values, FP32 sums)
    for (const Tensor& t : abs_cases[k].run(fp32)) S.push_back(t.to_vector<float>());
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      const std::string name = cases[k].what + " output " + std::to_string(i);
      ASSERT_TRUE(test::all_written(got[i], name.c_str()));
      const double K = double(cases[k].k_max), u = 0x1p-24, gamma = K * u / (1 - K * u);
      double err2 = 0, bound2 = 0, ref2 = 0;
      int64_t over = 0, differ = 0;
      for (size_t e = 0; e < want[i].size(); ++e) {
        const double g = got[i][e], w = want[i][e];
        const double bound = 1.01 * (2 * gamma * S[i][e] + 0x1p-8 * (std::fabs(g) + std::fabs(w)));
        over += std::fabs(g - w) > bound;
        differ += g != w;
        err2 += (g - w) * (g - w), bound2 += bound * bound, ref2 += w * w;
      }
      EXPECT_EQ(over, 0) << name << ": elements beyond the bound";
      // The same bound in L2: rel L2 <= ||bound|| / ||want||.
      EXPECT_LE(std::sqrt(err2 / ref2), std::sqrt(bound2 / ref2)) << name;
      // The bound above would pass an FP32 (unrounded) output; the exact-operand test catches that. Here: an FP32
      // sum lands within 2 gamma_K S of a BF16 rounding boundary rarely (gamma_K S is ~2^-16 of a BF16 unit
      // at these sizes), so outputs on the other neighbour must be few, not a tenth.
      EXPECT_LE(differ, int64_t(want[i].size()) / 10 + 1) << name << ": outputs on the other BF16 neighbour";
    }
  }
}

}  // namespace
}  // namespace fovea::ops
