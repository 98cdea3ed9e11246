#include "bench/bench_suites.h"

#include "bench/cpu_peak.h"

#include <fmt/core.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string_view>

#include "core/error.h"
#include "core/library_module.h"
#include "core/memory.h"
#include "core/parse.h"
#include "core/philox.h"
#include "cpu_reference/threading.h"
#include "kernels/conv2d.h"
#include "layers/cudnn/cudnn_backend.h"
#include "layers/nn/layers.h"
#include "layers/nn/models.h"
#include "layers/nn/optimizer.h"
#include "layers/ops/conv_shapes.h"
#include "layers/ops/ops.h"
#include "layers/ops/registry.h"

namespace fovea::bench {

std::string conv_shape_name(const Conv2dParams& p) {
  std::string s = fmt::format("N{} C{} {}x{} K{} {}x{}", p.N, p.C, p.H, p.W, p.K, p.R, p.S);
  if (p.stride_h != 1 || p.stride_w != 1) s += fmt::format(" s{}", p.stride_h);
  if (p.pad_h || p.pad_w) s += fmt::format(" p{}", p.pad_h);
  if (p.dil_h != 1) s += fmt::format(" d{}", p.dil_h);
  if (p.groups != 1) s += fmt::format(" g{}", p.groups);
  return s;
}

namespace {

// ---------------------------------------------------------------- shape sets

std::vector<int64_t> parse_ints(const std::string& text, const char* what) {
  const std::vector<int64_t> v = parse_int_list(text, what);
  for (int64_t x : v) FOVEA_CHECK(x > 0, what, ": '", text, "' must be positive integers separated by commas");
  return v;
}

std::string key_of(const Conv2dParams& p) {
  return conv_shape_name(p);
}

// Walks a layer tree with the input shape, collecting conv, linear and batch-norm shapes.
void collect(const nn::Layer& layer, const Shape& in, ShapeSet& out) {
  const std::string kind = layer.kind();
  if (kind == "conv2d") {
    const auto& o = static_cast<const nn::Conv2d&>(layer).options();
    Conv2dParams p;
    p.N = in[0], p.C = in[1], p.H = in[2], p.W = in[3];
    p.K = o.out_channels, p.R = o.kernel_h, p.S = o.kernel_w;
    p.stride_h = o.attrs.stride_h, p.stride_w = o.attrs.stride_w, p.pad_h = o.attrs.pad_h, p.pad_w = o.attrs.pad_w;
    p.dil_h = o.attrs.dil_h, p.dil_w = o.attrs.dil_w, p.groups = o.attrs.groups;
    out.convs.push_back(p);
  } else if (kind == "linear") {
    const Shape y = layer.output_shape(in);
    out.gemms.push_back({in[0], y[1], in[1]});
  }
  const auto children = layer.children();
  if (kind == "sequential") {
    Shape s = in;
    for (const auto& [name, child] : children) {
      collect(*child, s, out);
      s = child->output_shape(s);
    }
  } else {
    for (const auto& [name, child] : children) collect(*child, in, out);  // residual: body and shortcut see x
  }
}

// The multiply-add FLOPs of a model's conv and linear layers for one forward pass at `in` (the other layers'
// arithmetic is small beside them and bandwidth-bound). A training step does about 3x: forward, data and
// weight gradients (counting the first layer's data gradient, which frameworks may skip).
double model_forward_flops(const nn::Model& model, const Shape& in) {
  ShapeSet s;
  collect(model.net(), in, s);
  double f = 0;
  for (const Conv2dParams& p : s.convs) f += p.flops();
  for (const GemmShape& g : s.gemms) f += 2.0 * double(g.M) * double(g.N) * double(g.K);
  return f;
}

template <typename T, typename Key>
void dedupe(std::vector<T>& v, Key key) {
  std::set<std::string> seen;
  std::vector<T> kept;
  for (const T& x : v)
    if (seen.insert(key(x)).second) kept.push_back(x);
  v = std::move(kept);
}

}  // namespace

void add_model_shapes(const std::string& model, int64_t batch, ShapeSet& out) {
  auto m = nn::build_model(model, Shape{3, 32, 32}, 10);
  collect(m->net(), Shape{batch, 3, 32, 32}, out);
}

ShapeSet make_shape_set(const std::string& name, const std::vector<int64_t>& batches,
                        const std::vector<std::string>& conv_specs, const std::vector<std::string>& gemm_specs) {
  using shapes::conv_params;
  ShapeSet s;
  if (name == "tiny") {
    s.convs = {conv_params(2, 3, 8, 8, 4, 3, 3, 1, 1), conv_params(2, 4, 9, 9, 6, 3, 3, 2, 1)};
    s.gemms = {{8, 10, 32}};
    s.registry_rows = ShapeSet::RegistryRows::test_samples;
    s.notes = "tiny: fixed small shapes; registry ops at their largest test sample";
  } else if (name == "cifar") {
    const std::vector<std::string> models = {"small_cnn", "cifar_quick",    "cifar_full",
                                             "resnet20",  "resnet18_cifar", "resnet9"};
    for (int64_t b : batches) {
      for (const std::string& m : models) {
        auto model = nn::build_model(m, Shape{3, 32, 32}, 10);
        collect(model->net(), Shape{b, 3, 32, 32}, s);
      }
    }
    s.notes = fmt::format(
        "cifar: conv/linear layers of small_cnn, cifar_quick, cifar_full, resnet20, resnet18_cifar, resnet9 at batch "
        "{}; "
        "the other ops at the op registry's bench samples",
        fmt::join(batches, ","));
  } else if (name == "deepbench") {
    // A subset of DeepBench's training problems (conv: W,H,C,N,K,R,S,pad,stride; GEMM: M,N,K).
    s.convs = {conv_params(16, 3, 224, 224, 64, 7, 7, 2, 3),  conv_params(16, 64, 56, 56, 64, 3, 3, 1, 1),
               conv_params(16, 128, 28, 28, 128, 3, 3, 1, 1), conv_params(16, 256, 14, 14, 256, 3, 3, 1, 1),
               conv_params(16, 512, 7, 7, 512, 3, 3, 1, 1),   conv_params(16, 256, 56, 56, 64, 1, 1),
               conv_params(8, 64, 112, 112, 128, 3, 3, 1, 1), conv_params(16, 832, 7, 7, 256, 1, 1),
               conv_params(16, 512, 14, 14, 48, 5, 5, 1, 2),  conv_params(16, 192, 28, 28, 32, 5, 5, 1, 2)};
    s.gemms = {{1760, 16, 1760}, {1760, 32, 1760}, {2048, 16, 2048},   {2560, 32, 2560},
               {4096, 16, 4096}, {7680, 16, 2560}, {5124, 9124, 2560}, {35, 8457, 2560}};
    s.notes = "deepbench: a subset of the DeepBench training conv and GEMM problems";
  } else if (name == "none") {
    s.registry_rows = ShapeSet::RegistryRows::none;
  } else {
    FOVEA_FAIL("fovea bench: unknown shape set '", name, "' (expected tiny, cifar, deepbench or none)");
  }
  for (const std::string& spec : conv_specs) {
    const std::vector<int64_t> v = parse_ints(spec, "--conv");
    FOVEA_CHECK(v.size() >= 7 && v.size() <= 9, "fovea bench: --conv takes N,C,H,W,K,R,S[,stride[,pad]], got '", spec,
                "'");
    s.convs.push_back(
        conv_params(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v.size() > 7 ? v[7] : 1, v.size() > 8 ? v[8] : 0));
    s.convs.back().validate("fovea bench --conv");
  }
  for (const std::string& spec : gemm_specs) {
    const std::vector<int64_t> v = parse_ints(spec, "--gemm");
    FOVEA_CHECK(v.size() == 3, "fovea bench: --gemm takes M,N,K, got '", spec, "'");
    s.gemms.push_back({v[0], v[1], v[2]});
  }
  dedupe(s.convs, key_of);
  dedupe(s.gemms, [](const GemmShape& g) { return fmt::format("{} {} {}", g.M, g.N, g.K); });
  return s;
}

// ---------------------------------------------------------------- cases

namespace {

struct Input {
  Shape shape;
  float lo = -1, hi = 1;
};

using Tensors = std::vector<Tensor>;
using RunFn = std::function<Tensors(ops::Context&, Tensors&)>;  // inputs may be updated in place (sgd)

struct Impl {
  std::string name;
  ops::Backend backend = ops::Backend::custom;
  RunFn run;
  std::function<void(ops::Context&, Tensors&)> prepare;  // once per buffer set, before timing (optional)
  Precision precision = Precision::fp32;  // ctx.precision of the runs; verified against the reference of it
};

struct Case {
  std::string op, shape;
  double flops = 0, bytes = 0;
  std::function<Tensors(uint64_t seed)> make_inputs;  // on the host
  RunFn reference;                                    // on the CPU
  std::function<void(ops::Context&, Tensors&)> prepare;
  std::vector<Impl> impls;  // device implementations (cpu: oneDNN's, if any; the reference row is added)
};

Tensors random_inputs(const std::vector<Input>& in, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Tensors out;
  for (const Input& i : in) {
    std::vector<float> v(size_t(i.shape.numel()));
    std::uniform_real_distribution<float> d(i.lo, i.hi);
    for (auto& x : v) {
      x = d(rng);
      if (x == 0.0f) x = i.hi * 0.5f;  // never zeros
    }
    out.push_back(Tensor::from_vector(v, i.shape));
  }
  return out;
}

std::function<Tensors(uint64_t)> inputs_of(std::vector<Input> specs) {
  return [specs](uint64_t seed) { return random_inputs(specs, seed); };
}

Tensors to_device(const Tensors& host, Device d) {
  Tensors out;
  for (const Tensor& t : host) out.push_back(t.to(d));
  return out;
}

// max over the float outputs of ||out - ref|| / ||ref||; NaN if any output is not finite or mis-shaped.
double max_rel_l2(const Tensors& out, const Tensors& ref) {
  if (out.size() != ref.size()) return NAN;
  double worst = 0;
  for (size_t k = 0; k < out.size(); ++k) {
    if (ref[k].dtype() != DType::float32) continue;  // indices may be backend-specific (cuDNN's are opaque)
    if (out[k].shape() != ref[k].shape()) return NAN;
    const std::vector<float> a = out[k].to(kCPU).to_vector<float>(), b = ref[k].to_vector<float>();
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      if (!std::isfinite(a[i])) return NAN;
      num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
      den += double(b[i]) * b[i];
    }
    worst = std::max(worst, den > 0 ? std::sqrt(num / den) : std::sqrt(num));
  }
  return worst;
}

bool all_finite(const Tensors& out) {
  for (const Tensor& t : out) {
    if (t.dtype() != DType::float32) continue;
    for (float v : t.to(kCPU).to_vector<float>())
      if (!std::isfinite(v)) return false;
  }
  return true;
}

bool on_cuda(const BenchConfig& c) {
  return c.device.type == DeviceType::cuda;
}
bool with_vendor(const BenchConfig& c) {
#if FOVEA_HAVE_CUDNN
  return on_cuda(c) && c.cudnn;
#else
  (void)c;
  return false;
#endif
}

ops::Conv2dAttrs conv_attrs(const Conv2dParams& p) {
  ops::Conv2dAttrs a;
  a.stride_h = p.stride_h, a.stride_w = p.stride_w, a.pad_h = p.pad_h, a.pad_w = p.pad_w;
  a.dil_h = p.dil_h, a.dil_w = p.dil_w, a.groups = p.groups;
  return a;
}

Shape x_shape(const Conv2dParams& p) {
  return Shape{p.N, p.C, p.H, p.W};
}
Shape w_shape(const Conv2dParams& p) {
  return Shape{p.K, p.C / p.groups, p.R, p.S};
}
Shape y_shape(const Conv2dParams& p) {
  return Shape{p.N, p.K, p.P(), p.Q()};
}

RunFn conv_fn(ConvOp op, const Conv2dParams& p) {
  const ops::Conv2dAttrs a = conv_attrs(p);
  switch (op) {
    case ConvOp::forward:
      return
          [a](ops::Context& ctx, Tensors& in) { return Tensors{ops::conv2d_forward(ctx, in[0], in[1], Tensor(), a)}; };
    case ConvOp::backward_data:
      return [a, p](ops::Context& ctx, Tensors& in) {
        return Tensors{ops::conv2d_backward_data(ctx, in[0], in[1], x_shape(p), a)};
      };
    case ConvOp::backward_filter:
      return [a, p](ops::Context& ctx, Tensors& in) {
        return Tensors{ops::conv2d_backward_filter(ctx, in[0], in[1], w_shape(p), a)};
      };
  }
  return {};
}

std::vector<Case> conv_cases(const BenchConfig& c, const Conv2dParams& p) {
  std::vector<Case> cases;
  const ConvGemmShape g = conv2d_gemm_shape(ConvOp::forward, p);
  const double flops = 2.0 * double(g.M) * double(g.N) * double(g.Kred) * double(g.batches);
  for (ConvOp op : {ConvOp::forward, ConvOp::backward_data, ConvOp::backward_filter}) {
    Case k;
    k.op = conv_op_name(op);
    k.shape = conv_shape_name(p);
    k.flops = flops;  // the same multiply-adds in all three passes
    k.bytes = 4.0 * double(p.x_size() + p.w_size() + p.y_size());
    if (op == ConvOp::forward) k.make_inputs = inputs_of({{x_shape(p)}, {w_shape(p)}});
    if (op == ConvOp::backward_data) k.make_inputs = inputs_of({{y_shape(p)}, {w_shape(p)}});
    if (op == ConvOp::backward_filter) k.make_inputs = inputs_of({{x_shape(p)}, {y_shape(p)}});
    k.reference = conv_fn(op, p);
    if (c.device.type != DeviceType::cpu) {
      for (ConvAlgo algo : {ConvAlgo::direct, ConvAlgo::implicit_gemm, ConvAlgo::im2col_gemm}) {
        RunFn f = conv_fn(op, p);
        k.impls.push_back({fmt::format("ours:{}", conv_algo_name(algo)),
                           ops::Backend::custom,
                           [f, algo](ops::Context& ctx, Tensors& in) {
                             ctx.conv_algo = algo;
                             return f(ctx, in);
                           },
                           {}});
      }
    }
    // oneDNN (its module) on cpu, in FP32 and BF16 (layers/onednn/onednn_precision.cpp), beside the reference row.
    if (c.device.type == DeviceType::cpu && c.cudnn && load_module(ops::Backend::onednn))
      for (Precision prec : {Precision::fp32, Precision::bf16})
        k.impls.push_back(
            {fmt::format("onednn:{}", precision_name(prec)), ops::Backend::onednn, conv_fn(op, p), {}, prec});
#if FOVEA_HAVE_CUDNN
    if (with_vendor(c)) {
      // Every algorithm cuDNN lists for this shape (deterministic ones, as ours are), each forced in turn.
      ops::Context probe(c.device, ops::Backend::cudnn);
      std::vector<cudnn::ConvAlgoInfo> algos;
      try {
        algos = cudnn::conv_algorithms(probe.exec(), op, p);
      } catch (const Error& e) {
        fmt::print(stderr, "fovea bench: cuDNN lists no algorithm for {} {}: {}\n", k.op, k.shape, e.what());
      }
      for (const cudnn::ConvAlgoInfo& info : algos) {
        RunFn f = conv_fn(op, p);
        const int algo = info.algo;
        k.impls.push_back({"cudnn:" + info.name,
                           ops::Backend::cudnn,
                           [f, algo, op](ops::Context& ctx, Tensors& in) {
                             cudnn::Settings s = cudnn::settings();
                             (op == ConvOp::forward         ? s.force_fwd_algo
                              : op == ConvOp::backward_data ? s.force_bwd_data_algo
                                                            : s.force_bwd_filter_algo) = algo;
                             cudnn::ScopedSettings scoped(s);
                             return f(ctx, in);
                           },
                           {}});
      }
    }
#endif
    cases.push_back(std::move(k));
  }
  return cases;
}

Case gemm_case(const BenchConfig& c, const GemmShape& gs) {
  Case k;
  k.op = "gemm";
  k.shape = fmt::format("M{} N{} K{}", gs.M, gs.N, gs.K);
  k.flops = 2.0 * double(gs.M) * double(gs.N) * double(gs.K);
  k.bytes = 4.0 * double(gs.M * gs.K + gs.N * gs.K + gs.M * gs.N);
  k.make_inputs = inputs_of({{Shape{gs.M, gs.K}}, {Shape{gs.N, gs.K}}});
  k.reference = [](ops::Context& ctx, Tensors& in) {
    return Tensors{ops::linear_forward(ctx, in[0], in[1], Tensor())};
  };
  if (c.device.type == DeviceType::cpu && c.cudnn && load_module(ops::Backend::onednn))
    for (Precision prec : {Precision::fp32, Precision::bf16})
      k.impls.push_back({fmt::format("onednn:{}", precision_name(prec)), ops::Backend::onednn, k.reference, {}, prec});
#if FOVEA_HAVE_CUDA
  if (on_cuda(c)) {
    const SgemmParams g = sgemm_params(Trans::N, Trans::T, gs.M, gs.N, gs.K);
    k.impls.push_back({"ours:sgemm_tiled",
                       ops::Backend::custom,
                       [g](ops::Context& ctx, Tensors& in) {
                         Tensor y = Tensor::empty({g.M, g.N}, DType::float32, ctx.device);
                         ops::sgemm_stub(ctx.exec(), GemmAlgo::tiled, g, in[0].data<float>(), in[1].data<float>(),
                                         y.data<float>());
                         return Tensors{y};
                       },
                       {}});
#if FOVEA_HAVE_CUDNN
    if (with_vendor(c))
      k.impls.push_back({"cublas",
                         ops::Backend::cudnn,
                         [g](ops::Context& ctx, Tensors& in) {
                           Tensor y = Tensor::empty({g.M, g.N}, DType::float32, ctx.device);
                           ops::sgemm_stub(ctx.exec(), GemmAlgo::tiled, g, in[0].data<float>(), in[1].data<float>(),
                                           y.data<float>());
                           return Tensors{y};
                         },
                         {}});
#endif
  }
#else
  (void)c;
#endif
  return k;
}

// ---- the registry's ops (everything but conv2d and linear, which the conv and GEMM rows cover in detail)

bool has_registry_rows(const ops::OpInfo& op) {
  return op.name != "conv2d" && op.name != "linear";
}

// The samples an op is timed on: its bench samples, or (tiny set) its largest test sample.
std::vector<ops::Sample> bench_samples(const ops::OpInfo& op, bool bench_rows) {
  std::vector<ops::Sample> out;
  const ops::Sample* largest = nullptr;
  auto size = [](const ops::Sample& s) {
    int64_t n = 0;
    for (const auto& [name, shape] : s.shapes) n += shape.numel();
    return n;
  };
  for (const ops::Sample& s : op.samples) {
    if (bench_rows && s.bench) out.push_back(s);
    if (!s.bench && (!largest || size(s) > size(*largest))) largest = &s;
  }
  if (!bench_rows && largest) out.push_back(*largest);
  return out;
}

std::string sample_text(const ops::OpInfo& op, const ops::Sample& s) {
  std::string t = s.name;
  for (const ops::InputInfo& in : op.inputs) {
    auto it = s.shapes.find(in.name);
    if (it != s.shapes.end()) t += " " + in.name + it->second.str();
  }
  for (const auto& [k, v] : s.attrs) t += " " + k + "=" + v;
  return t;
}

// The named arguments of a call from the Case's tensor list: the sample's inputs in the op's order, then
// (backward) the output gradients, then (backward, after prepare) the forward's outputs.
struct ArgLayout {
  std::vector<std::string> inputs, douts, outputs;
  std::map<std::string, Tensor> named(const Tensors& in, bool with_douts) const {
    std::map<std::string, Tensor> m;
    for (size_t i = 0; i < inputs.size(); ++i) m[inputs[i]] = in[i];
    if (with_douts)
      for (size_t i = 0; i < douts.size(); ++i) m[douts[i]] = in[inputs.size() + i];
    return m;
  }
};

std::vector<Case> registry_cases(const BenchConfig& c, const ops::OpInfo& op, const ops::Sample& s) {
  ArgLayout layout;
  for (const ops::InputInfo& in : op.inputs)
    if (s.shapes.count(in.name)) layout.inputs.push_back(in.name);
  auto host_inputs = [&op, s, layout](uint64_t seed) {
    const std::map<std::string, Tensor> m = ops::sample_inputs(op, s, seed, kCPU);
    Tensors t;
    for (const std::string& n : layout.inputs) t.push_back(m.at(n));
    return t;
  };
  ops::Context cpu(kCPU);
  const Tensors probe = host_inputs(0);
  const ops::OpArgs probe_args(op, layout.named(probe, false), s.attrs);
  const auto [flops, bytes] = op.cost ? op.cost(probe_args) : std::pair{0.0, 0.0};
  const ops::NamedTensors probe_out = op.forward(cpu, probe_args);
  for (const auto& [name, t] : probe_out) layout.outputs.push_back(name);
  const bool vendor = with_vendor(c) && op.implemented(Slot::cudnn);

  Case f;
  f.op = op.name;
  f.shape = sample_text(op, s);
  f.flops = flops, f.bytes = bytes;
  f.make_inputs = host_inputs;
  f.reference = [&op, s, layout](ops::Context& ctx, Tensors& in) {
    Tensors out;
    for (auto& [name, t] : op.forward(ctx, ops::OpArgs(op, layout.named(in, false), s.attrs))) out.push_back(t);
    return out;
  };
  if (c.device.type != DeviceType::cpu) {
    f.impls.push_back({"ours", ops::Backend::custom, f.reference, {}});
    if (vendor) f.impls.push_back({"cudnn", ops::Backend::cudnn, f.reference, {}});
  }
  if (!op.backward) return {f};

  // Backward: the output gradients are inputs; prepare runs the forward once per buffer set (outside the
  // timing) and appends its outputs, which backward reads.
  for (const auto& [name, t] : ops::sample_output_grads(op, probe_out, 0, kCPU)) layout.douts.push_back(name);
  Case b;
  b.op = op.name + "_backward";
  b.shape = f.shape;
  b.flops = 2 * flops, b.bytes = 2 * bytes;
  b.make_inputs = [&op, host_inputs, probe_out](uint64_t seed) {
    Tensors t = host_inputs(seed);
    for (auto& [name, d] : ops::sample_output_grads(op, probe_out, seed + 1, kCPU)) t.push_back(d);
    return t;
  };
  b.prepare = [&op, s, layout](ops::Context& ctx, Tensors& in) {
    for (auto& [name, t] : op.forward(ctx, ops::OpArgs(op, layout.named(in, true), s.attrs))) in.push_back(t);
  };
  b.reference = [&op, s, layout](ops::Context& ctx, Tensors& in) {
    const ops::OpArgs args(op, layout.named(in, true), s.attrs);
    ops::NamedTensors fwd;
    const size_t first = layout.inputs.size() + layout.douts.size();
    for (size_t i = 0; i < layout.outputs.size(); ++i) fwd.push_back({layout.outputs[i], in[first + i]});
    Tensors out;
    for (auto& [name, t] : op.backward(ctx, args, fwd)) out.push_back(t);
    return out;
  };
  if (c.device.type != DeviceType::cpu) {
    b.impls.push_back({"ours", ops::Backend::custom, b.reference, b.prepare});
    if (vendor) b.impls.push_back({"cudnn", ops::Backend::cudnn, b.reference, b.prepare});
  }
  return {f, b};
}

bool wanted(const BenchConfig& c, const std::string& family) {
  if (c.ops.empty()) return true;
  for (const std::string& o : c.ops)
    if (o == family) return true;
  return false;
}

void run_case(const BenchConfig& c, const Case& k, const Stream& stream, std::vector<Row>& rows) {
  // Host inputs: `rotate` independent random sets; the reference output of set 0.
  std::vector<Tensors> host;
  for (int i = 0; i < c.timing.rotate; ++i) host.push_back(k.make_inputs(1000 + uint64_t(i)));
  ops::Context cpu(kCPU);
  Tensors ref_in = host[0];
  for (Tensor& t : ref_in) t = t.to(kCPU);  // a copy: in-place ops (sgd) must not change host[0]
  if (k.prepare) k.prepare(cpu, ref_in);
  const Tensors ref = k.reference(cpu, ref_in);

  auto base_row = [&](const std::string& impl) {
    Row r;
    r.suite = "kernels";
    r.op = k.op;
    r.shape = k.shape;
    r.impl = impl;
    r.flops = k.flops;
    r.bytes = k.bytes;
    return r;
  };

  if (c.device.type == DeviceType::cpu) {
    Row r = base_row("reference");
    r.verify = all_finite(ref) ? "oracle" : "FAILED: non-finite output";
    if (r.verify == "oracle") {
      std::vector<Tensors> sets = host;
      for (Tensors& s : sets)
        if (k.prepare) k.prepare(cpu, s);
      r.stats = time_runs(stream, c.timing, [&](int i) { (void)k.reference(cpu, sets[size_t(i)]); });
      r.timed = true;
    }
    rows.push_back(r);
  }

  for (const Impl& impl : k.impls) {
    Row r = base_row(impl.name);
    try {
      ops::Context ctx(c.device, impl.backend);
      ctx.stream = stream.handle();
      ctx.precision = impl.precision;
      Tensors ref_p;  // the reference of a reduced precision (cpu_reference/gemm.h's semantics)
      if (impl.precision != Precision::fp32) {
        ops::Context cpu_p(kCPU);
        cpu_p.precision = impl.precision;
        Tensors in = host[0];
        for (Tensor& t : in) t = t.to(kCPU);
        if (k.prepare) k.prepare(cpu_p, in);
        ref_p = k.reference(cpu_p, in);
      }
      const Tensors& want = impl.precision == Precision::fp32 ? ref : ref_p;
      std::vector<Tensors> sets;
      for (const Tensors& h : host) {
        sets.push_back(to_device(h, c.device));
        if (impl.prepare) impl.prepare(ctx, sets.back());
      }
      Tensors check_in = to_device(host[0], c.device);
      if (impl.prepare) impl.prepare(ctx, check_in);
      const Tensors out = impl.run(ctx, check_in);
      stream.synchronize();
      const double err = max_rel_l2(out, want);
      if (!(err <= c.tolerance)) {
        r.verify = std::isnan(err) ? "FAILED: non-finite or mis-shaped output" : fmt::format("FAILED {:.2e}", err);
        r.note =
            fmt::format("relative L2 error vs the CPU reference above the tolerance {:.1e}; not timed", c.tolerance);
      } else {
        r.verify = fmt::format("ok {:.1e}", err);
        if (impl.precision != Precision::fp32)
          r.note = fmt::format("vs the {} reference; roofline against the FP32 peak (16-bit dot products do more)",
                               precision_name(impl.precision));
        r.stats = time_runs(stream, c.timing, [&](int i) { (void)impl.run(ctx, sets[size_t(i)]); });
        r.timed = true;
      }
    } catch (const Error& e) {
      r.verify = "skipped";
      r.note = e.what();
    }
    rows.push_back(r);
  }
}

}  // namespace

Roofline measure_roofline(const BenchConfig& c, const Stream& stream) {
  Roofline roof;
  TimingOptions t;
  t.warmup = 2;
  t.reps = 10;
  t.rotate = 1;
  const bool cuda = on_cuda(c);
  ops::Context ctx(c.device);
  ctx.stream = stream.handle();
  if (c.device.type == DeviceType::cpu) {
    // The host: the compute threads' copy and FMA ceilings (one thread's memcpy would understate the bandwidth).
    const CpuPeak copy = measure_cpu_copy(ref::num_threads(), size_t(128) << 20);
    roof.copy_gbs = copy.value;
    roof.copy_how = copy.how;
    const CpuPeak fma = measure_cpu_fma_peak(ref::num_threads());
    roof.fma_tflops = fma.value * 1e-3;
    roof.fma_how = fma.how;
  } else {
    // Copy: large enough to leave every cache behind (256 MiB on the GPU, 64 MiB on the emulator's host).
    const size_t bytes = cuda ? (size_t(256) << 20) : (size_t(64) << 20);
    Tensor a = Tensor::empty({int64_t(bytes / 4)}, DType::float32, c.device);
    Tensor b = Tensor::empty({int64_t(bytes / 4)}, DType::float32, c.device);
    ops::fill_value(ctx, a, 1.0f);
    const Stats cs = time_runs(
        stream, t, [&](int) { copy_bytes(b.raw_data(), c.device, a.raw_data(), c.device, bytes, stream.handle()); });
    roof.copy_gbs = 2.0 * double(bytes) / (cs.median_ms * 1e-3) * 1e-9;
    roof.copy_how = fmt::format("{} MiB device-to-device copy, read+write bytes / median time", bytes >> 20);
  }
  // GEMM: 4096^3 on the GPU, 1024^3 on the host.
  const int64_t n = cuda ? 4096 : 1024;
  const SgemmParams g = sgemm_params(Trans::N, Trans::T, n, n, n);
  Tensor A = Tensor::empty({n, n}, DType::float32, c.device), B = Tensor::empty({n, n}, DType::float32, c.device);
  ops::fill_uniform(ctx, A, -1, 1, 1, 0);
  ops::fill_uniform(ctx, B, -1, 1, 2, 0);
  std::function<void(int)> gemm;
  if (!cuda) {
    gemm = [&](int) { (void)ops::linear_forward(ctx, A, B, Tensor()); };
    roof.sgemm_how = fmt::format("reference GEMM {}^3", n);
  }
#if FOVEA_HAVE_CUDA
  Tensor C = Tensor::empty({n, n}, DType::float32, c.device);
  if (cuda) {
    // cuBLAS when built (the cudnn slot of the GEMM stub), else ours.
#if FOVEA_HAVE_CUDNN
    const Exec ex{c.device, Backend::cudnn, stream.handle(), nullptr, true};
    roof.sgemm_how = fmt::format("cuBLAS SGEMM {}^3, TF32 off", n);
#else
    const Exec ex{c.device, Backend::custom, stream.handle(), nullptr, true};
    roof.sgemm_how = fmt::format("our sgemm {}^3 (built without cuDNN/cuBLAS)", n);
#endif
    gemm = [&, ex](int) { ops::sgemm_stub(ex, GemmAlgo::tiled, g, A.data<float>(), B.data<float>(), C.data<float>()); };
  }
#endif
  (void)g;
  const Stats gs = time_runs(stream, t, gemm);
  roof.sgemm_tflops = 2.0 * double(n) * double(n) * double(n) / (gs.median_ms * 1e-3) * 1e-12;
  return roof;
}

void check_op_names(const std::vector<std::string>& ops) {
  for (const std::string& name : ops) {
    if (name == "conv2d" || name == "gemm") continue;
    std::string known = "conv2d, gemm";
    bool found = false;
    for (const ops::OpInfo* op : ops::registered_ops())
      if (has_registry_rows(*op)) {
        known += ", " + op->name;
        found = found || op->name == name;
      }
    FOVEA_CHECK(found, "--ops: '", name, "' is not an op with benchmark rows (expected one of ", known, ")");
  }
}

std::vector<Row> run_kernel_suite(const BenchConfig& c, const ShapeSet& s, const Stream& stream) {
  std::vector<Row> rows;
  auto run_all = [&](const std::vector<Case>& cases) {
    for (const Case& k : cases) run_case(c, k, stream, rows);
  };
  if (wanted(c, "conv2d"))
    for (const Conv2dParams& p : s.convs) run_all(conv_cases(c, p));
  if (wanted(c, "gemm"))
    for (const GemmShape& g : s.gemms) run_all({gemm_case(c, g)});
  if (s.registry_rows != ShapeSet::RegistryRows::none)
    for (const ops::OpInfo* op : ops::registered_ops())
      if (has_registry_rows(*op) && wanted(c, op->name))
        for (const ops::Sample& smp : bench_samples(*op, s.registry_rows == ShapeSet::RegistryRows::bench_samples))
          run_all(registry_cases(c, *op, smp));
  return rows;
}

// ---------------------------------------------------------------- train-step

namespace {

// PyTorch's CPU figure for the same net and batch (bench/train_step_torch.py); 0 when unavailable.
// `args` follow the script's name; the script prints 'torch images/s: <value>'.
double torch_images_per_s(const BenchConfig& c, const std::string& script, const std::string& args, std::string& why) {
  if (!c.torch) {
    why = "--no-torch";
    return 0;
  }
  if (script.empty() || !std::filesystem::exists(script)) {
    why = "torch script not found: " + script;
    return 0;
  }
  const std::string cmd = fmt::format("'{}' '{}' {} 2>&1", c.python, script, args);
  std::FILE* p = popen(cmd.c_str(), "r");
  if (!p) {
    why = "could not start " + c.python;
    return 0;
  }
  std::string text;
  std::array<char, 512> buf{};
  while (std::fgets(buf.data(), int(buf.size()), p)) text += buf.data();
  const int rc = pclose(p);
  const size_t at = text.find("torch images/s: ");
  if (rc != 0 || at == std::string::npos) {
    why = "PyTorch run failed or unavailable: " + text.substr(0, 200);
    while (!why.empty() && (why.back() == '\n')) why.pop_back();
    return 0;
  }
  const size_t begin = at + 16, end = text.find_first_of(" \t\r\n", begin);
  const std::string_view number = std::string_view(text).substr(begin, end == std::string::npos ? end : end - begin);
  const std::optional<double> ips = try_parse_float(number);
  if (!ips || *ips <= 0) {
    why = "PyTorch printed 'torch images/s: " + std::string(number) + "', not a positive number";
    return 0;
  }
  return *ips;
}

void finish_torch_row(Row& t, int64_t batch, int reps, const std::string& why, const std::string& note) {
  t.verify = t.images_per_s > 0 ? "n/a (PyTorch)" : "skipped";
  t.note = t.images_per_s > 0 ? note : why;
  if (t.images_per_s > 0) {
    t.timed = true;
    t.stats.median_ms = t.stats.p10_ms = t.stats.p90_ms = t.stats.min_ms = t.stats.max_ms =
        double(batch) / t.images_per_s * 1e3;  // the script reports a mean; no spread
    t.stats.reps = reps;
  }
}

}  // namespace

namespace {

// The backends the whole-model suites run: ours, and the vendor library of the device (cuDNN on cuda;
// oneDNN on cpu, its module, when this build has one and it loads) unless --no-cudnn.
std::vector<ops::Backend> model_backends(const BenchConfig& c) {
  std::vector<ops::Backend> out{ops::Backend::custom};
  if (with_vendor(c)) out.push_back(ops::Backend::cudnn);
  if (c.device.type == DeviceType::cpu && c.cudnn && load_module(ops::Backend::onednn))
    out.push_back(ops::Backend::onednn);
  return out;
}

}  // namespace

std::vector<Row> run_train_step_suite(const BenchConfig& c, const Stream& stream) {
  // Every copy and fill of the suite (inputs, initialisation, the loss read back) on the timed stream, in
  // order with its kernels: a copy on the legacy default stream would not wait for a non-blocking stream.
  StreamGuard on_stream(stream);
  std::vector<Row> rows;
  const std::vector<ops::Backend> backends = model_backends(c);
  for (const std::string& name : c.train_models) {
    double step_flops = 0;  // for the roofline column; 0 (unknown) for a name the zoo lacks (its rows say why)
    try {
      step_flops =
          3 * model_forward_flops(*nn::build_model(name, Shape{3, 32, 32}, 10), Shape{c.train_batch, 3, 32, 32});
    } catch (const Error&) {
    }
    for (ops::Backend backend : backends) {
      Row r;
      r.suite = "train-step";
      r.op = "train_step:" + name;
      r.shape = fmt::format("batch {} 3x32x32", c.train_batch);
      r.impl = c.device.type == DeviceType::cpu && backend == ops::Backend::custom
                   ? "reference"
                   : fmt::format("{}", ops::backend_name(backend));
      try {
        auto model = nn::build_model(name, Shape{3, 32, 32}, 10);
        ops::Context ctx(c.device, backend);
        ctx.stream = stream.handle();
        model->to(c.device);
        model->initialize(ctx, 1);
        model->train(true);
        nn::OptimizerConfig oc;
        nn::Optimizer opt(oc, model->parameters());
        std::vector<int64_t> labels(size_t(c.train_batch));
        for (size_t i = 0; i < labels.size(); ++i)
          labels[i] = int64_t(philox_u32(7, 1, i) % uint32_t(model->classes()));
        const Tensors in = to_device(
            {random_inputs({{Shape{c.train_batch, 3, 32, 32}}}, 7)[0], Tensor::from_vector(labels, {c.train_batch})},
            c.device);
        float last_loss = NAN;
        auto step = [&](int) {
          model->zero_grad();
          nn::Output out = model->forward(ctx, in[0]);
          ops::CrossEntropyOut ce = ops::cross_entropy(ctx, out.y, in[1]);
          model->backward(ctx, ce.dlogits, *out.saved);
          opt.step(ctx, 0.01);
          last_loss = ce.loss.to_vector<float>(ctx.stream)[0];
        };
        step(0);  // verify: one step gives a finite loss
        if (!std::isfinite(last_loss)) {
          r.verify = "FAILED: loss not finite";
        } else {
          r.verify = fmt::format("loss {:.3f}", last_loss);
          // The loss read-back each step is part of a real training step's cost too.
          r.stats = time_runs(stream, c.timing, step);
          r.timed = true;
          r.images_per_s = double(c.train_batch) / (r.stats.median_ms * 1e-3);
          r.flops = step_flops;
        }
      } catch (const Error& e) {
        r.verify = "skipped";
        r.note = e.what();
      }
      rows.push_back(r);
    }
    Row t;
    t.suite = "train-step";
    t.op = "train_step:" + name;
    t.shape = fmt::format("batch {} 3x32x32", c.train_batch);
    t.impl = "pytorch-cpu";
    std::string why;
    t.images_per_s = torch_images_per_s(c, c.torch_script,
                                        fmt::format("--model {} --batch {} --threads {} --warmup {} --steps {}{}", name,
                                                    c.train_batch, ref::num_threads(), std::max(1, c.timing.warmup),
                                                    c.timing.reps, c.timing.cpu_time ? " --cpu-time" : ""),
                                        why);
    finish_torch_row(t, c.train_batch, c.timing.reps, why,
                     "PyTorch on the host CPU, same net, batch and threads (bench/train_step_torch.py)");
    t.flops = step_flops;
    rows.push_back(t);
  }
  return rows;
}

// ---------------------------------------------------------------- inference

std::vector<Row> run_inference_suite(const BenchConfig& c, const Stream& stream) {
  StreamGuard on_stream(stream);
  std::vector<Row> rows;
  const std::vector<ops::Backend> backends = model_backends(c);
  const int64_t size = c.infer_image_size;
  const bool cpu = c.device.type == DeviceType::cpu;
  for (const std::string& name : c.infer_models) {
    for (int64_t batch : c.infer_batches) {
      const std::string shape = fmt::format("batch {} 3x{}x{}", batch, size, size);
      double forward_flops = 0;  // for the roofline column
      try {
        forward_flops =
            model_forward_flops(*nn::build_model(name, Shape{3, size, size}, 1000), Shape{batch, 3, size, size});
      } catch (const Error&) {
      }
      for (ops::Backend backend : backends) {
        Row r;
        r.suite = "inference";
        r.op = "inference:" + name;
        r.shape = shape;
        r.impl = cpu ? fmt::format("{}, {} threads", backend == ops::Backend::custom ? "reference" : "onednn",
                                   ref::num_threads())
                     : fmt::format("{}", ops::backend_name(backend));
        try {
          auto model = nn::build_model(name, Shape{3, size, size}, 1000);
          ops::Context ctx(c.device, backend);
          ctx.stream = stream.handle();
          model->to(c.device);
          model->initialize(ctx, 1);
          model->train(false);
          const Tensor x = to_device({random_inputs({{Shape{batch, 3, size, size}}}, 7)[0]}, c.device)[0];
          Tensor logits;
          auto forward = [&](int) { logits = model->forward(ctx, x).y; };
          forward(0);
          const std::vector<float> v = logits.to_vector<float>(ctx.stream);
          const bool finite = std::all_of(v.begin(), v.end(), [](float f) { return std::isfinite(f); });
          if (!finite || int64_t(v.size()) != batch * 1000) {
            r.verify = "FAILED: logits not finite or misshapen";
          } else {
            r.verify = "finite logits";
            r.stats = time_runs(stream, c.timing, forward);
            r.timed = true;
            r.images_per_s = double(batch) / (r.stats.median_ms * 1e-3);
            r.flops = forward_flops;
          }
        } catch (const Error& e) {
          r.verify = "skipped";
          r.note = e.what();
        }
        rows.push_back(r);
      }
      if (!cpu) continue;  // PyTorch's figure is a CPU figure: beside the CPU device only
      Row t;
      t.suite = "inference";
      t.op = "inference:" + name;
      t.shape = shape;
      t.impl = fmt::format("pytorch-cpu, {} threads", ref::num_threads());
      std::string why;
      t.images_per_s =
          torch_images_per_s(c, c.infer_torch_script,
                             fmt::format("--model {} --batch {} --size {} --threads {} --warmup {} --steps {}{}", name,
                                         batch, size, ref::num_threads(), std::max(1, c.timing.warmup), c.timing.reps,
                                         c.timing.cpu_time ? " --cpu-time" : ""),
                             why);
      finish_torch_row(t, batch, c.timing.reps, why,
                       "torchvision's model, eval mode, torch.inference_mode, same threads (bench/inference_torch.py)");
      t.flops = forward_flops;
      rows.push_back(t);
    }
  }
  return rows;
}

}  // namespace fovea::bench
