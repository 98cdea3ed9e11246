// fovea op NAME: run one op with PyTorch semantics on .npy inputs, write one float32 .npy per output.
//   fovea op conv2d --device emu --attr stride=2 --attr pad=1 --in x=x.npy --in w=w.npy --in dy=dy.npy --out out/
#include <fmt/core.h>

#include <filesystem>
#include <functional>
#include <map>
#include <set>

#include "apps/command.h"
#include "core/npy.h"
#include "layers/ops/ops.h"

namespace fovea::app {
namespace {

struct OpOptions {
  std::string name, device = "cpu", backend = "custom", out;
  std::vector<std::string> attrs, inputs;
};

// The inputs and attributes of one invocation, with checks that name what is wrong.
class Args {
 public:
  Args(std::string op, std::map<std::string, Tensor> in, std::map<std::string, std::string> attrs)
      : op_(std::move(op)), in_(std::move(in)), attrs_(std::move(attrs)) {}

  const Tensor& input(const std::string& name) {
    used_inputs_.insert(name);
    auto it = in_.find(name);
    FOVEA_CHECK(it != in_.end(), "op ", op_, ": missing input '", name, "' (give --in ", name, "=FILE.npy)");
    return it->second;
  }
  Tensor optional(const std::string& name) {
    used_inputs_.insert(name);
    auto it = in_.find(name);
    return it == in_.end() ? Tensor() : it->second;
  }
  bool has(const std::string& name) const { return in_.count(name) != 0; }

  std::pair<int64_t, int64_t> pair_attr(const std::string& key, int64_t def) {
    used_attrs_.insert(key);
    auto it = attrs_.find(key);
    if (it == attrs_.end()) return {def, def};
    const std::string& v = it->second;
    auto to_int = [&](const std::string& s) -> int64_t {
      size_t pos = 0;
      int64_t x = 0;
      try {
        x = std::stoll(s, &pos);
      } catch (...) {
        pos = std::string::npos;
      }
      FOVEA_CHECK(pos == s.size(), "op ", op_, ": attribute '", key, "' must be an integer or a pair 'A,B', got '", v,
                  "'");
      return x;
    };
    const size_t comma = v.find(',');
    if (comma == std::string::npos) return {to_int(v), to_int(v)};
    return {to_int(v.substr(0, comma)), to_int(v.substr(comma + 1))};
  }
  int64_t int_attr(const std::string& key, int64_t def) {
    auto [a, b] = pair_attr(key, def);
    FOVEA_CHECK(a == b, "op ", op_, ": attribute '", key, "' takes one number, got '", attrs_[key], "'");
    return a;
  }
  double float_attr(const std::string& key, double def) {
    used_attrs_.insert(key);
    auto it = attrs_.find(key);
    if (it == attrs_.end()) return def;
    size_t pos = 0;
    double x = 0;
    try {
      x = std::stod(it->second, &pos);
    } catch (...) {
      pos = std::string::npos;
    }
    FOVEA_CHECK(pos == it->second.size(), "op ", op_, ": attribute '", key, "' must be a number, got '", it->second,
                "'");
    return x;
  }
  // Anything given but not read by the op is a mistake worth an error (a typo in a flag).
  void check_all_used() const {
    for (auto& [k, v] : attrs_) FOVEA_CHECK(used_attrs_.count(k), "op ", op_, ": unknown attribute '", k, "'");
    for (auto& [k, v] : in_) FOVEA_CHECK(used_inputs_.count(k), "op ", op_, ": unknown input '", k, "'");
  }

 private:
  std::string op_;
  std::map<std::string, Tensor> in_;
  std::map<std::string, std::string> attrs_;
  std::set<std::string> used_inputs_, used_attrs_;
};

using Outputs = std::vector<std::pair<std::string, Tensor>>;
using OpFn = std::function<Outputs(ops::Context&, Args&)>;

void require_ndim(const std::string& op, const char* name, const Tensor& t, int ndim) {
  FOVEA_CHECK(t.ndim() == ndim, "op ", op, ": input '", name, "' must have ", ndim, " dimensions, got shape ",
              t.shape().str());
}

Outputs run_conv2d(ops::Context& ctx, Args& a) {
  const Tensor& x = a.input("x");
  const Tensor& w = a.input("w");
  Tensor b = a.optional("b");
  require_ndim("conv2d", "x", x, 4);
  require_ndim("conv2d", "w", w, 4);
  ops::Conv2dAttrs at;
  std::tie(at.stride_h, at.stride_w) = a.pair_attr("stride", 1);
  std::tie(at.pad_h, at.pad_w) = a.pair_attr("pad", 0);
  std::tie(at.dil_h, at.dil_w) = a.pair_attr("dilation", 1);
  at.groups = a.int_attr("groups", 1);
  Tensor dy = a.optional("dy");
  a.check_all_used();
  Outputs out{{"y", ops::conv2d_forward(ctx, x, w, b, at)}};
  if (dy.defined()) {
    out.push_back({"dx", ops::conv2d_backward_data(ctx, dy, w, x.shape(), at)});
    out.push_back({"dw", ops::conv2d_backward_filter(ctx, x, dy, w.shape(), at)});
    if (b.defined()) out.push_back({"db", ops::conv2d_backward_bias(ctx, dy)});
  }
  return out;
}

ops::Pool2dAttrs pool_attrs(Args& a, bool avg) {
  ops::Pool2dAttrs at;
  std::tie(at.kernel_h, at.kernel_w) = a.pair_attr("kernel", 2);
  auto [sh, sw] = a.pair_attr("stride", -1);  // PyTorch: stride defaults to the kernel size
  at.stride_h = sh == -1 ? at.kernel_h : sh;
  at.stride_w = sw == -1 ? at.kernel_w : sw;
  std::tie(at.pad_h, at.pad_w) = a.pair_attr("pad", 0);
  if (avg) {
    const int64_t cip = a.int_attr("count_include_pad", 1);
    FOVEA_CHECK(cip == 0 || cip == 1, "op avgpool2d: attribute 'count_include_pad' must be 0 or 1, got ", cip);
    at.count_include_pad = cip == 1;
  }
  return at;
}

Outputs run_maxpool2d(ops::Context& ctx, Args& a) {
  const Tensor& x = a.input("x");
  require_ndim("maxpool2d", "x", x, 4);
  const ops::Pool2dAttrs at = pool_attrs(a, false);
  Tensor dy = a.optional("dy");
  a.check_all_used();
  ops::MaxPoolOut r = ops::maxpool2d_forward(ctx, x, at);
  Outputs out{{"y", r.y}};
  if (dy.defined()) out.push_back({"dx", ops::maxpool2d_backward(ctx, dy, r.indices, x.shape(), at)});
  return out;
}

Outputs run_avgpool2d(ops::Context& ctx, Args& a) {
  const Tensor& x = a.input("x");
  require_ndim("avgpool2d", "x", x, 4);
  const ops::Pool2dAttrs at = pool_attrs(a, true);
  Tensor dy = a.optional("dy");
  a.check_all_used();
  Outputs out{{"y", ops::avgpool2d_forward(ctx, x, at)}};
  if (dy.defined()) out.push_back({"dx", ops::avgpool2d_backward(ctx, dy, x.shape(), at)});
  return out;
}

Outputs run_relu(ops::Context& ctx, Args& a) {
  const Tensor& x = a.input("x");
  Tensor dy = a.optional("dy");
  a.check_all_used();
  Outputs out{{"y", ops::relu_forward(ctx, x)}};
  if (dy.defined()) out.push_back({"dx", ops::relu_backward(ctx, dy, x)});
  return out;
}

Outputs run_linear(ops::Context& ctx, Args& a) {
  const Tensor& x = a.input("x");
  const Tensor& w = a.input("w");
  Tensor b = a.optional("b");
  require_ndim("linear", "x", x, 2);
  require_ndim("linear", "w", w, 2);
  Tensor dy = a.optional("dy");
  a.check_all_used();
  Outputs out{{"y", ops::linear_forward(ctx, x, w, b)}};
  if (dy.defined()) {
    out.push_back({"dx", ops::linear_backward_data(ctx, dy, w)});
    out.push_back({"dw", ops::linear_backward_weight(ctx, x, dy)});
    if (b.defined()) out.push_back({"db", ops::linear_backward_bias(ctx, dy)});
  }
  return out;
}

Outputs run_softmax(ops::Context& ctx, Args& a, bool log) {
  const Tensor& x = a.input("x");
  require_ndim(log ? "log_softmax" : "softmax", "x", x, 2);
  Tensor dy = a.optional("dy");
  a.check_all_used();
  Tensor y = log ? ops::log_softmax_forward(ctx, x) : ops::softmax_forward(ctx, x);
  Outputs out{{"y", y}};
  if (dy.defined())
    out.push_back({"dx", log ? ops::log_softmax_backward(ctx, dy, y) : ops::softmax_backward(ctx, dy, y)});
  return out;
}

Outputs run_cross_entropy(ops::Context& ctx, Args& a) {
  const Tensor& logits = a.input("logits");
  Tensor labels = a.input("labels");
  require_ndim("cross_entropy", "logits", logits, 2);
  require_ndim("cross_entropy", "labels", labels, 1);
  FOVEA_CHECK(labels.dtype() == DType::int64, "op cross_entropy: input 'labels' must be int64, got ",
              dtype_name(labels.dtype()));
  const double smoothing = a.float_attr("label_smoothing", 0.0);
  a.check_all_used();
  ops::CrossEntropyOut r = ops::cross_entropy(ctx, logits, labels, float(smoothing));
  return {{"loss", r.loss.reshape(Shape(std::vector<int64_t>{}))}, {"dlogits", r.dlogits}};
}

Outputs run_batchnorm2d(ops::Context& ctx, Args& a) {
  const Tensor& x = a.input("x");
  const Tensor& gamma = a.input("gamma");
  const Tensor& beta = a.input("beta");
  require_ndim("batchnorm2d", "x", x, 4);
  const double eps = a.float_attr("eps", 1e-5);
  Tensor dy = a.optional("dy");
  a.check_all_used();
  const int64_t C = x.size(1);
  FOVEA_CHECK(gamma.numel() == C && beta.numel() == C, "op batchnorm2d: gamma and beta need ", C,
              " elements (the channels of x ", x.shape().str(), "), got ", gamma.shape().str(), " and ",
              beta.shape().str());
  Tensor running_mean = Tensor::zeros({C}, DType::float32, ctx.device);
  Tensor running_var = Tensor::empty({C}, DType::float32, ctx.device);
  ops::fill_value(ctx, running_var, 1.0f);
  ops::BatchNormOut r = ops::batchnorm_forward_train(ctx, x, gamma, beta, running_mean, running_var, 0.1f, float(eps));
  Outputs out{{"y", r.y}};
  if (dy.defined()) {
    ops::BatchNormGrads g = ops::batchnorm_backward(ctx, dy, x, gamma, r.save_mean, r.save_invstd);
    out.push_back({"dx", g.dx});
    out.push_back({"dgamma", g.dgamma});
    out.push_back({"dbeta", g.dbeta});
  }
  return out;
}

const std::map<std::string, OpFn>& op_table() {
  static const std::map<std::string, OpFn> table = {
      {"conv2d", run_conv2d},
      {"maxpool2d", run_maxpool2d},
      {"avgpool2d", run_avgpool2d},
      {"relu", run_relu},
      {"linear", run_linear},
      {"softmax", [](ops::Context& c, Args& a) { return run_softmax(c, a, false); }},
      {"log_softmax", [](ops::Context& c, Args& a) { return run_softmax(c, a, true); }},
      {"cross_entropy", run_cross_entropy},
      {"batchnorm2d", run_batchnorm2d},
  };
  return table;
}

int run_op(const OpOptions& o) {
  const auto& table = op_table();
  auto it = table.find(o.name);
  if (it == table.end()) {
    std::string names;
    for (auto& [k, v] : table) names += (names.empty() ? "" : ", ") + k;
    FOVEA_FAIL("fovea op: unknown op '", o.name, "' (known: ", names, ")");
  }
  const Device device = parse_device(o.device);
  require_device(device);
  ops::Context ctx(device, ops::parse_backend(o.backend));

  std::map<std::string, std::string> attrs;
  for (const std::string& kv : o.attrs) {
    const size_t eq = kv.find('=');
    FOVEA_CHECK(eq != std::string::npos && eq > 0, "fovea op: --attr '", kv, "' is not KEY=VALUE");
    attrs[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  std::map<std::string, Tensor> host_inputs, inputs;
  for (const std::string& kv : o.inputs) {
    const size_t eq = kv.find('=');
    FOVEA_CHECK(eq != std::string::npos && eq > 0, "fovea op: --in '", kv, "' is not NAME=FILE.npy");
    host_inputs[kv.substr(0, eq)] = read_npy(kv.substr(eq + 1));
  }
  // Labels are checked here, on the host: a kernel cannot throw, it can only produce a NaN loss.
  if (o.name == "cross_entropy" && host_inputs.count("labels") && host_inputs.count("logits") &&
      host_inputs["labels"].dtype() == DType::int64 && host_inputs["logits"].ndim() == 2) {
    const int64_t C = host_inputs["logits"].size(1);
    const std::vector<int64_t> labels = host_inputs["labels"].to_vector<int64_t>();
    for (size_t i = 0; i < labels.size(); ++i)
      FOVEA_CHECK(labels[i] >= 0 && labels[i] < C, "op cross_entropy: labels[", i, "] = ", labels[i],
                  " is out of range for ", C, " classes");
  }
  for (auto& [name, host] : host_inputs) inputs[name] = host.to(device);  // the explicit host -> device copies
  Args args(o.name, std::move(inputs), std::move(attrs));
  const Outputs outputs = it->second(ctx, args);
  std::filesystem::create_directories(o.out);
  for (const auto& [name, t] : outputs) {
    const std::string path = (std::filesystem::path(o.out) / (name + ".npy")).string();
    write_npy(path, t.to(kCPU));
    fmt::print("{} {} -> {}\n", name, t.shape().str(), path);
  }
  return 0;
}

Command op_command(
    "op", "Run one op (PyTorch semantics) on .npy inputs; write each output as float32 .npy", [](CLI::App& app) {
      auto o = std::make_shared<OpOptions>();
      app.add_option("name", o->name,
                     "conv2d, maxpool2d, avgpool2d, relu, linear, softmax, log_softmax, cross_entropy, batchnorm2d")
          ->required();
      app.add_option("--device", o->device, "cpu (reference), emu (our kernels on the emulator) or cuda")
          ->default_val("cpu");
      app.add_option("--backend", o->backend, "custom (our code) or cudnn")->default_val("custom");
      app.add_option("--attr", o->attrs, "KEY=VALUE; a number for both dimensions or a pair 2,1");
      app.add_option("--in", o->inputs, "NAME=FILE.npy; dy=FILE.npy also computes the input gradients");
      app.add_option("--out", o->out, "output folder")->required();
      return [o] { return run_op(*o); };
    });

}  // namespace
}  // namespace fovea::app
