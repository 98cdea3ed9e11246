// The model zoo and the spec parser.
#include "layers/nn/models.h"

#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "core/error.h"
#include "core/parse.h"
#include "layers/nn/layers.h"

namespace fovea::nn {

// ---------------------------------------------------------------- Model

Model::Model(std::string name, std::string spec, Shape sample, int64_t classes, std::unique_ptr<Sequential> net)
    : name_(std::move(name)), spec_(std::move(spec)), sample_(sample), classes_(classes), net_(std::move(net)) {
  FOVEA_CHECK(net_ != nullptr, "model: net is null");
}

void Model::to(Device d) {
  net_->to(d);
  device_ = d;
}

void Model::initialize(ops::Context& ctx, uint64_t seed) {
  FOVEA_CHECK(ctx.device == device_, "model: initialize on ", ctx.device.str(), " but the model is on ", device_.str());
  uint64_t counter = 0;
  net_->reset_parameters(ctx, seed, counter);
  zero_grad();
}

std::vector<ParamRef> Model::parameters() {
  std::vector<ParamRef> out;
  net_->collect_params("", out);
  return out;
}

std::vector<StateRef> Model::states() {
  std::vector<StateRef> out;
  net_->collect_states("", out);
  return out;
}

int64_t Model::num_trainable() const {
  std::vector<ParamRef> refs;
  const_cast<Sequential&>(*net_).collect_params("", refs);
  int64_t n = 0;
  for (const ParamRef& r : refs)
    if (r.param->trainable) n += r.param->value.numel();
  return n;
}

std::string Model::summary() const {
  std::string s = fmt::format("{:>4}  {:<58} {:<18} {:>10}\n", "#", "layer", "output", "params");
  Shape shape = sample_;
  {
    std::vector<int64_t> dims{1};
    for (int64_t d : sample_.vec()) dims.push_back(d);
    shape = Shape(dims);
  }
  for (size_t i = 0; i < net_->size(); ++i) {
    const Layer& l = net_->at(i);
    shape = l.output_shape(shape);
    std::string d = l.describe();
    if (d.size() > 58) d = d.substr(0, 55) + "...";
    int64_t frozen = 0;
    std::vector<ParamRef> refs;
    const_cast<Layer&>(l).collect_params("", refs);
    for (const ParamRef& r : refs) frozen += r.param->trainable ? 0 : r.param->value.numel();
    s += fmt::format("{:>4}  {:<58} {:<18} {:>10}{}\n", i, d, sample_shape_str(shape), l.num_params(),
                     frozen ? " (frozen)" : "");
  }
  s += fmt::format("total parameters: {}", num_parameters());
  const int64_t trainable = num_trainable();
  if (trainable != num_parameters()) s += fmt::format(" ({} trainable)", trainable);
  return s;
}

std::map<std::string, Tensor> Model::state_dict() const {
  std::map<std::string, Tensor> out;
  std::vector<ParamRef> params;
  std::vector<StateRef> states;
  const_cast<Sequential&>(*net_).collect_params("", params);
  const_cast<Sequential&>(*net_).collect_states("", states);
  for (const ParamRef& p : params) out[p.path] = p.param->value.to(kCPU);
  for (const StateRef& s : states) out[s.path] = s.state->value.to(kCPU);
  return out;
}

void Model::load_state_dict(const std::map<std::string, Tensor>& tensors, bool strict,
                            std::vector<std::string>* skipped) {
  std::set<std::string> used;
  auto load = [&](const std::string& path, Tensor& dst) {
    auto it = tensors.find(path);
    if (it == tensors.end()) {
      FOVEA_CHECK(!strict, "model: the checkpoint has no tensor '", path, "'");
      if (skipped) skipped->push_back(path + " (not in the checkpoint)");
      return;
    }
    used.insert(path);
    const Tensor& src = it->second;
    if (!(src.shape() == dst.shape()) || src.dtype() != dst.dtype()) {
      FOVEA_CHECK(!strict, "model: tensor '", path, "' is ", src.str(), " in the checkpoint but ", dst.str(),
                  " in the model");
      if (skipped) skipped->push_back(path + " (shape " + src.shape().str() + " vs " + dst.shape().str() + ")");
      return;
    }
    dst.copy_from(src);
  };
  for (ParamRef& p : parameters()) load(p.path, p.param->value);
  for (StateRef& s : states()) {
    load(s.path, s.state->value);
    // PyTorch's batch norm also saves num_batches_tracked (int64, one element), which it reads only
    // when momentum is None (a cumulative average). fovea's batch norm always uses its momentum, so
    // the count is checked and accepted beside each batch norm's running_mean, nowhere else.
    const std::string suffix = "running_mean";
    if (s.path.size() >= suffix.size() && s.path.compare(s.path.size() - suffix.size(), suffix.size(), suffix) == 0) {
      const std::string count = s.path.substr(0, s.path.size() - suffix.size()) + "num_batches_tracked";
      auto it = tensors.find(count);
      if (it == tensors.end()) continue;
      FOVEA_CHECK(it->second.dtype() == DType::int64 && it->second.numel() == 1, "model: tensor '", count, "' is ",
                  it->second.str(), " in the checkpoint but batch norm's count must be one int64");
      used.insert(count);
    }
  }
  if (strict)
    for (const auto& [name, t] : tensors)
      FOVEA_CHECK(used.count(name), "model: the checkpoint has tensor '", name, "' that the model (", spec_,
                  ") does not have");
}

std::vector<std::string> Model::freeze(std::string_view which, std::string_view what) {
  std::set<size_t> layers;
  if (which == "all-but-last") {
    size_t last = net_->size();
    for (size_t i = net_->size(); i-- > 0;)
      if (net_->at(i).num_params() > 0) {
        last = i;
        break;
      }
    FOVEA_CHECK(last < net_->size(), what, ": the model has no parameters");
    for (size_t i = 0; i < last; ++i) layers.insert(i);
  } else {
    for (std::string_view part : split(which, ',')) {
      FOVEA_CHECK(!part.empty(), what, ": empty entry in '", which, "' (expected indices and ranges like 0-5,7)");
      const size_t dash = part.find('-');
      const std::string index_what = cat(what, ": layer index");
      const int64_t lo = parse_int(part.substr(0, dash), index_what);
      const int64_t hi = dash == std::string_view::npos ? lo : parse_int(part.substr(dash + 1), index_what);
      FOVEA_CHECK(lo >= 0 && lo <= hi && hi < int64_t(net_->size()), what, ": layer range '", part,
                  "' is outside the model's layers 0-", net_->size() - 1);
      for (int64_t i = lo; i <= hi; ++i) layers.insert(size_t(i));
    }
  }
  std::vector<std::string> frozen;
  for (size_t i : layers) {
    std::vector<ParamRef> refs;
    net_->at(i).collect_params(net_->children()[i].first + ".", refs);
    for (ParamRef& r : refs) {
      r.param->trainable = false;
      r.param->grad = Tensor();
      frozen.push_back(r.path);
    }
  }
  return frozen;
}

// ---------------------------------------------------------------- spec parser

namespace {

struct Builder {
  Shape shape;  // current activation shape, batch 1
  int64_t classes;
  InitSpec init;  // default for conv/linear
  uint64_t dropout_salt = 0;

  // Splits at commas outside parentheses.
  static std::vector<std::string_view> items(std::string_view spec) {
    std::vector<std::string_view> out;
    int depth = 0;
    size_t start = 0;
    for (size_t i = 0; i < spec.size(); ++i) {
      if (spec[i] == '(') ++depth;
      if (spec[i] == ')') {
        FOVEA_CHECK(--depth >= 0, "unbalanced ')' at character ", i + 1);
      }
      if (spec[i] == ',' && depth == 0) {
        out.push_back(spec.substr(start, i - start));
        start = i + 1;
      }
    }
    FOVEA_CHECK(depth == 0, "unbalanced '(' (missing ')')");
    out.push_back(spec.substr(start));
    return out;
  }

  struct Args {
    std::string_view name;
    std::vector<std::string_view> pos;
    std::map<std::string, std::string_view> keys;
    std::set<std::string> used;

    std::string_view key(const std::string& k) {
      used.insert(k);
      auto it = keys.find(k);
      return it == keys.end() ? std::string_view() : it->second;
    }
    int64_t key_int(const std::string& k, int64_t dflt) {
      std::string_view v = key(k);
      return v.empty() ? dflt : parse_int(v, "argument '" + k + "'");
    }
    double key_double(const std::string& k, double dflt) {
      std::string_view v = key(k);
      return v.empty() ? dflt : parse_float(v, "argument '" + k + "'");
    }
    bool key_bool(const std::string& k, bool dflt) {
      std::string_view v = key(k);
      return v.empty() ? dflt : parse_bool(v, "argument '" + k + "'");
    }
    void positional(size_t lo, size_t hi, const char* usage) {
      FOVEA_CHECK(pos.size() >= lo && pos.size() <= hi, "'", name, "' takes ",
                  lo == hi ? std::to_string(lo) : std::to_string(lo) + " to " + std::to_string(hi),
                  " positional argument(s), got ", pos.size(), " (usage: ", usage, ")");
    }
    void finish() {
      for (const auto& [k, v] : keys) FOVEA_CHECK(used.count(k), "'", name, "' has no argument '", k, "'");
    }
  };

  static Args parse_args(std::string_view item) {
    Args a;
    const std::vector<std::string_view> f = split(item, ':');
    a.name = f[0];
    for (size_t i = 1; i < f.size(); ++i) {
      FOVEA_CHECK(!f[i].empty(), "empty argument after ':'");
      const size_t eq = f[i].find('=');
      if (eq == std::string_view::npos) {
        FOVEA_CHECK(a.keys.empty(), "positional argument '", f[i], "' after key=value arguments");
        a.pos.push_back(f[i]);
      } else {
        const std::string k(f[i].substr(0, eq));
        FOVEA_CHECK(!k.empty() && eq + 1 < f[i].size(), "malformed key=value argument '", f[i], "'");
        FOVEA_CHECK(!a.keys.count(k), "argument '", k, "' given twice");
        a.keys[k] = f[i].substr(eq + 1);
      }
    }
    return a;
  }

  InitSpec init_from(Args& a) {
    InitSpec s = init;
    std::string_view name = a.key("init");
    if (!name.empty()) s = parse_init(name);
    std::string_view stdv = a.key("std");
    if (!stdv.empty()) {
      s.scheme = InitScheme::normal;
      s.std = parse_float(stdv, "argument 'std'");
      FOVEA_CHECK(s.std > 0, "argument 'std' must be > 0, got ", s.std);
    }
    return s;
  }

  void add(Sequential& seq, LayerPtr layer, const std::string& name = "") {
    shape = layer->output_shape(shape);
    seq.add(std::move(layer), name);
  }

  // "NAME=ITEM" names the item; "init=SCHEME" is the global setting, not a name.
  static std::string_view item_name(std::string_view item) {
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) return {};
    const std::string_view name = item.substr(0, eq);
    if (name == "init") return {};
    for (char c : name)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return {};
    return name;
  }

  void build(std::string_view spec, Sequential& seq, const std::string& where) {
    const std::vector<std::string_view> list = items(spec);
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string_view item = list[i];
      const std::string here = fmt::format("{}item {} '{}'", where, i + 1, item);
      try {
        const std::string_view name = item_name(item);
        FOVEA_CHECK(name.empty() || !std::isdigit(static_cast<unsigned char>(name[0])), "layer name '", name,
                    "' must not start with a digit (unnamed layers are numbered)");
        build_item(name.empty() ? item : item.substr(name.size() + 1), seq, here, std::string(name));
      } catch (const SpecError&) {
        throw;                         // a nested item's error already says where it is
      } catch (const UsageError& e) {  // device and internal errors are not the spec's fault: they pass unchanged
        throw SpecError(cat("model spec: ", here, ": ", e.what()), e.file(), e.line());
      }
    }
  }

  void build_item(std::string_view item, Sequential& seq, const std::string& here, const std::string& name) {
    FOVEA_CHECK(!item.empty(), "empty item (two commas in a row, or a comma at the start or end)");
    if (item.rfind("seq(", 0) == 0) {
      FOVEA_CHECK(item.back() == ')', "a nested sequence is written seq(SPEC)");
      const Shape in = shape;
      auto inner = std::make_unique<Sequential>();
      build(item.substr(4, item.size() - 5), *inner, here + " > ");
      shape = in;
      add(seq, std::move(inner), name);
      return;
    }
    if (item.rfind("ires(", 0) == 0) {
      FOVEA_CHECK(item.back() == ')', "an inverted residual is written ires(SPEC)");
      const Shape in = shape;
      auto body = std::make_unique<Sequential>();
      build(item.substr(5, item.size() - 6), *body, here + " > ");
      FOVEA_CHECK(shape == in, "ires(...) adds its input, so its body must keep the shape ", sample_shape_str(in),
                  ", but it gives ", sample_shape_str(shape));
      add(seq, std::make_unique<Residual>(std::move(body), nullptr, Residual::Style::inverted), name);
      return;
    }
    if (item.rfind("res(", 0) == 0 || item.rfind("resa(", 0) == 0 || item.rfind("block(", 0) == 0) {
      const bool option_a = item.rfind("resa(", 0) == 0, block = item.rfind("block(", 0) == 0;
      FOVEA_CHECK(item.back() == ')', "a residual block is written res(SPEC), resa(SPEC) or block(SPEC)");
      const size_t open = item.find('(');
      const std::string_view inner = item.substr(open + 1, item.size() - open - 2);
      const Shape in = shape;
      auto body = std::make_unique<Sequential>();
      build(inner, *body, here + " > ");
      const Shape out = shape;
      LayerPtr shortcut;
      if (!(out == in)) {
        FOVEA_CHECK(in.ndim() == 4 && out.ndim() == 4,
                    "a residual body that changes the shape needs 4-D input and "
                    "output, got ",
                    sample_shape_str(in), " -> ", sample_shape_str(out));
        const int64_t stride = (in[2] + out[2] - 1) / out[2];
        FOVEA_CHECK(stride >= 1 && (in[2] - 1) / stride + 1 == out[2] && (in[3] - 1) / stride + 1 == out[3],
                    "the residual body maps ", sample_shape_str(in), " to ", sample_shape_str(out),
                    ", which no strided shortcut matches");
        if (option_a) {
          FOVEA_CHECK(out[1] >= in[1], "the zero-pad shortcut cannot reduce channels (", in[1], " -> ", out[1], ")");
          shortcut = std::make_unique<ZeroPadShortcut>(in[1], out[1], stride);
        } else {
          auto proj = std::make_unique<Sequential>();
          Conv2dOptions o;
          o.in_channels = in[1];
          o.out_channels = out[1];
          o.kernel_h = o.kernel_w = 1;
          o.attrs.stride_h = o.attrs.stride_w = stride;
          o.bias = false;
          o.init = init;
          proj->add(std::make_unique<Conv2d>(o));
          proj->add(std::make_unique<BatchNorm2d>(out[1]));
          shortcut = std::move(proj);
        }
      }
      auto res = std::make_unique<Residual>(std::move(body), std::move(shortcut),
                                            block ? Residual::Style::block : Residual::Style::plain);
      shape = in;
      add(seq, std::move(res), name);
      return;
    }
    Args a = parse_args(item);
    const std::string_view n = a.name;
    if (n.find('=') != std::string_view::npos) {
      FOVEA_CHECK(n.rfind("init=", 0) == 0 && a.pos.empty() && a.keys.empty() && name.empty(),
                  "the only global setting is init=SCHEME");
      init = parse_init(n.substr(5));
      return;
    }
    if (n == "conv") {
      a.positional(2, 2, "conv:OUT:K[:stride=S][:pad=P|same][:dilation=D][:groups=G][:bias=0][:init=I][:std=X]");
      FOVEA_CHECK(shape.ndim() == 4, "conv needs a 4-D input [C, H, W], got ", sample_shape_str(shape));
      Conv2dOptions o;
      o.in_channels = shape[1];
      o.out_channels = parse_int(a.pos[0], "argument 'OUT' (output channels)");
      FOVEA_CHECK(o.out_channels > 0, "argument 'OUT' (output channels) must be > 0, got ", o.out_channels);
      const size_t x = a.pos[1].find('x');
      o.kernel_h = parse_int(a.pos[1].substr(0, x), "argument 'K' (kernel size)");
      o.kernel_w =
          x == std::string_view::npos ? o.kernel_h : parse_int(a.pos[1].substr(x + 1), "argument 'K' (kernel size)");
      FOVEA_CHECK(o.kernel_h > 0 && o.kernel_w > 0, "argument 'K' (kernel size) must be > 0, got '", a.pos[1], "'");
      o.attrs.stride_h = o.attrs.stride_w = a.key_int("stride", 1);
      o.attrs.dil_h = o.attrs.dil_w = a.key_int("dilation", 1);
      const std::string_view pad = a.key("pad");
      if (pad == "same") {
        FOVEA_CHECK(o.kernel_h % 2 == 1 && o.kernel_w % 2 == 1, "pad=same needs an odd kernel, got ", a.pos[1]);
        o.attrs.pad_h = o.attrs.dil_h * (o.kernel_h - 1) / 2;
        o.attrs.pad_w = o.attrs.dil_w * (o.kernel_w - 1) / 2;
      } else {
        o.attrs.pad_h = o.attrs.pad_w = pad.empty() ? 0 : parse_int(pad, "argument 'pad'");
      }
      o.attrs.groups = a.key_int("groups", 1);
      o.bias = a.key_bool("bias", true);
      o.init = init_from(a);
      a.finish();
      add(seq, std::make_unique<Conv2d>(o), name);
    } else if (n == "linear") {
      a.positional(0, 1, "linear[:OUT][:bias=0][:init=I][:std=X]");
      const int64_t out = a.pos.empty() ? classes : parse_int(a.pos[0], "argument 'OUT' (output features)");
      FOVEA_CHECK(out > 0, "argument 'OUT' (output features) must be > 0, got ", out);
      const bool bias = a.key_bool("bias", true);
      const InitSpec s = init_from(a);
      a.finish();
      if (shape.ndim() != 2) add(seq, std::make_unique<Flatten>());  // unnamed: torch.flatten in forward()
      add(seq, std::make_unique<Linear>(shape[1], out, bias, s), name);
    } else if (n == "maxpool" || n == "avgpool") {
      a.positional(1, 1,
                   n == "maxpool" ? "maxpool:K[:stride=S][:pad=P]" : "avgpool:K[:stride=S][:pad=P][:include_pad=0]");
      ops::Pool2dAttrs p;
      p.kernel_h = p.kernel_w = parse_int(a.pos[0], "argument 'K' (window size)");
      FOVEA_CHECK(p.kernel_h > 0, "argument 'K' (window size) must be > 0, got ", p.kernel_h);
      p.stride_h = p.stride_w = a.key_int("stride", p.kernel_h);
      p.pad_h = p.pad_w = a.key_int("pad", 0);
      if (n == "avgpool") p.count_include_pad = a.key_bool("include_pad", true);
      a.finish();
      if (n == "maxpool")
        add(seq, std::make_unique<MaxPool2d>(p), name);
      else
        add(seq, std::make_unique<AvgPool2d>(p), name);
    } else if (n == "adaptiveavgpool") {
      a.positional(1, 1, "adaptiveavgpool:S or adaptiveavgpool:HxW");
      const size_t x = a.pos[0].find('x');
      const int64_t oh = parse_int(a.pos[0].substr(0, x), "argument 'S' (output size)");
      const int64_t ow =
          x == std::string_view::npos ? oh : parse_int(a.pos[0].substr(x + 1), "argument 'S' (output size)");
      FOVEA_CHECK(oh > 0 && ow > 0, "argument 'S' (output size) must be > 0, got '", a.pos[0], "'");
      a.finish();
      add(seq, std::make_unique<AdaptiveAvgPool2d>(oh, ow), name);
    } else if (n == "gap") {
      a.positional(0, 0, "gap");
      a.finish();
      add(seq, std::make_unique<GlobalAvgPool>(), name);
    } else if (n == "relu6") {
      a.positional(0, 0, "relu6");
      a.finish();
      add(seq, std::make_unique<ReLU6>(), name);
    } else if (n == "relu" || n == "sigmoid" || n == "tanh" || n == "flatten" || n == "bn" || n == "batchnorm") {
      a.positional(0, 0, std::string(n).c_str());
      if (n == "bn" || n == "batchnorm") {
        const double eps = a.key_double("eps", 1e-5), momentum = a.key_double("momentum", 0.1);
        a.finish();
        FOVEA_CHECK(shape.ndim() == 4 || shape.ndim() == 2, "bn needs [C, H, W] or [F] input, got ",
                    sample_shape_str(shape));
        add(seq, std::make_unique<BatchNorm2d>(shape[1], float(eps), float(momentum)), name);
        return;
      }
      a.finish();
      if (n == "relu") add(seq, std::make_unique<ReLU>(), name);
      if (n == "sigmoid") add(seq, std::make_unique<Sigmoid>(), name);
      if (n == "tanh") add(seq, std::make_unique<Tanh>(), name);
      if (n == "flatten") add(seq, std::make_unique<Flatten>(), name);
    } else if (n == "leakyrelu") {
      a.positional(0, 1, "leakyrelu[:SLOPE]");
      const double slope = a.pos.empty() ? 0.01 : parse_float(a.pos[0], "argument 'SLOPE'");
      a.finish();
      add(seq, std::make_unique<LeakyReLU>(float(slope)), name);
    } else if (n == "dropout") {
      a.positional(0, 1, "dropout[:P]");
      const double p = a.pos.empty() ? 0.5 : parse_float(a.pos[0], "argument 'P' (drop probability)");
      a.finish();
      auto d = std::make_unique<Dropout>(float(p));
      d->set_salt(++dropout_salt);
      add(seq, std::move(d), name);
    } else if (n == "lrn") {
      a.positional(0, 1, "lrn[:SIZE][:alpha=A][:beta=B][:k=K]");
      const int64_t size = a.pos.empty() ? 5 : parse_int(a.pos[0], "argument 'SIZE'");
      const double alpha = a.key_double("alpha", 1e-4), beta = a.key_double("beta", 0.75), k = a.key_double("k", 1.0);
      a.finish();
      add(seq, std::make_unique<LocalResponseNorm>(size, alpha, beta, k), name);
    } else {
      FOVEA_FAIL("unknown layer '", n,
                 "' (expected conv, linear, maxpool, avgpool, gap, relu, leakyrelu, sigmoid, "
                 "tanh, relu6, dropout, bn, flatten, lrn, adaptiveavgpool, res(...), resa(...), block(...), ires(...), "
                 "seq(...) or "
                 "init=SCHEME)");
    }
  }
};

std::string resnet_cifar(int blocks_per_stage, bool option_a) {
  // He et al. 2016, section 4.2: 3x3 conv 16, then 3 stages of `blocks_per_stage` basic blocks with
  // 16, 32, 64 channels (the first block of stages 2 and 3 halves the size), global average, linear.
  std::string s = "init=kaiming,conv:16:3:pad=1:bias=0,bn,relu";
  const int widths[3] = {16, 32, 64};
  for (int stage = 0; stage < 3; ++stage)
    for (int b = 0; b < blocks_per_stage; ++b) {
      const int w = widths[stage], stride = (stage > 0 && b == 0) ? 2 : 1;
      s += fmt::format(",{}(conv:{}:3:stride={}:pad=1:bias=0,bn,relu,conv:{}:3:pad=1:bias=0,bn),relu",
                       option_a ? "resa" : "res", w, stride, w);
    }
  return s + ",gap,linear";
}

std::string resnet18_cifar() {
  // The CIFAR variant of ResNet-18: a 3x3 stem without max-pooling, 4 stages of 2 basic blocks
  // (64, 128, 256, 512 channels), 1x1-conv projection shortcuts where the shape changes.
  std::string s = "init=kaiming,conv:64:3:pad=1:bias=0,bn,relu";
  const int widths[4] = {64, 128, 256, 512};
  for (int stage = 0; stage < 4; ++stage)
    for (int b = 0; b < 2; ++b) {
      const int w = widths[stage], stride = (stage > 0 && b == 0) ? 2 : 1;
      s += fmt::format(",res(conv:{}:3:stride={}:pad=1:bias=0,bn,relu,conv:{}:3:pad=1:bias=0,bn),relu", w, stride, w);
    }
  return s + ",gap,linear";
}

std::string resnet9() {
  // The DAWNBench-style ResNet-9 (Myrtle.ai): conv-bn-relu blocks, max-pooling, two residual blocks.
  auto cbr = [](int w) { return fmt::format("conv:{}:3:pad=1:bias=0,bn,relu", w); };
  return "init=kaiming," + cbr(64) + "," + cbr(128) + ",maxpool:2,res(" + cbr(128) + "," + cbr(128) + ")," + cbr(256) +
         ",maxpool:2," + cbr(512) + ",maxpool:2,res(" + cbr(512) + "," + cbr(512) + "),gap,linear";
}

// torchvision.models.resnet18/34/50 (torchvision/models/resnet.py), module for module and with its
// attribute names, so that its state_dict loads as it is: the ImageNet stem (7x7/2 conv, bn, relu,
// 3x3/2 max pool with padding 1), four stages layer1..layer4 of blocks, adaptive average pooling to
// 1x1 and fc. `blocks` per stage; BasicBlock (two 3x3 convs) or Bottleneck v1.5 (1x1, 3x3 with the
// stride, 1x1 to 4x the width). A block whose shape changes gets the projection shortcut
// "downsample" (1x1 conv with the stride, bn).
std::string resnet_imagenet(const int (&blocks)[4], bool bottleneck) {
  std::string s =
      "init=kaiming,conv1=conv:64:7:stride=2:pad=3:bias=0,bn1=bn,relu=relu,maxpool=maxpool:3:stride=2:pad=1";
  const int widths[4] = {64, 128, 256, 512};
  for (int stage = 0; stage < 4; ++stage) {
    s += fmt::format(",layer{}=seq(", stage + 1);
    for (int b = 0; b < blocks[stage]; ++b) {
      const int w = widths[stage], stride = (stage > 0 && b == 0) ? 2 : 1;
      if (bottleneck)
        s += fmt::format(
            "{}block(conv1=conv:{}:1:bias=0,bn1=bn,relu,conv2=conv:{}:3:stride={}:pad=1:bias=0,bn2=bn,relu,"
            "conv3=conv:{}:1:bias=0,bn3=bn)",
            b ? "," : "", w, w, stride, 4 * w);
      else
        s += fmt::format(
            "{}block(conv1=conv:{}:3:stride={}:pad=1:bias=0,bn1=bn,relu,conv2=conv:{}:3:pad=1:bias=0,bn2=bn)",
            b ? "," : "", w, stride, w);
    }
    s += ")";
  }
  return s + ",avgpool=gap,fc=linear";
}

// torchvision.models.mobilenet_v2 (Sandler et al. 2018; torchvision/models/mobilenetv2.py) with its
// names: features.0 (3x3/2 conv 32, bn, relu6), 17 inverted residual blocks features.1..17, each
// features.N.conv = [1x1 expansion conv-bn-relu6 when t > 1,] 3x3 depthwise conv-bn-relu6 (groups =
// channels), 1x1 projection conv, bn; the input is added where the stride is 1 and the channels stay;
// features.18 (1x1 conv 1280, bn, relu6), adaptive average pooling, classifier (dropout 0.2, fc).
std::string mobilenet_v2() {
  std::string s = "init=kaiming,features=seq(seq(conv:32:3:stride=2:pad=1:bias=0,bn,relu6)";
  const int settings[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                              {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};  // t, c, n, s
  int in = 32;
  for (const auto& [t, c, n, first_stride] : settings)
    for (int i = 0; i < n; ++i) {
      const int stride = i == 0 ? first_stride : 1, hidden = in * t;
      std::string body;
      if (t != 1) body += fmt::format("seq(conv:{}:1:bias=0,bn,relu6),", hidden);
      body += fmt::format("seq(conv:{}:3:stride={}:pad=1:groups={}:bias=0,bn,relu6),conv:{}:1:bias=0,bn", hidden,
                          stride, hidden, c);
      s += stride == 1 && in == c ? fmt::format(",ires({})", body) : fmt::format(",seq(conv=seq({}))", body);
      in = c;
    }
  return s + ",seq(conv:1280:1:bias=0,bn,relu6)),gap,classifier=seq(dropout:0.2,linear)";
}

// torchvision.models.vgg16 (Simonyan & Zisserman 2015, configuration D; torchvision/models/vgg.py):
// features.0..30 (13 3x3 convs with bias and relu, 5 max pools), avgpool (adaptive to 7x7), flatten,
// classifier.0..6 (4096, relu, dropout, 4096, relu, dropout, fc).
std::string vgg16() {
  std::string s = "init=kaiming,features=seq(";
  const int cfg[] = {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0};  // 0: max pool
  bool first = true;
  for (int c : cfg) {
    s += first ? "" : ",";
    s += c ? fmt::format("conv:{}:3:pad=1,relu", c) : std::string("maxpool:2");
    first = false;
  }
  return s + "),avgpool=adaptiveavgpool:7,flatten,classifier=seq(linear:4096,relu,dropout:0.5,linear:4096,relu," +
         "dropout:0.5,linear)";
}

}  // namespace

const std::vector<ZooEntry>& model_zoo() {
  static const std::vector<ZooEntry> zoo = {
      {"small_cnn", "the default: 3 conv-bn-relu-maxpool blocks (16, 32, 64 channels), linear",
       "conv:16:3:pad=1,bn,relu,maxpool:2,conv:32:3:pad=1,bn,relu,maxpool:2,conv:64:3:pad=1,bn,relu,maxpool:2,linear"},
      {"mnist_cnn", "Keras/PyTorch MNIST example: conv 32, conv 64, maxpool, dropout, fc 128, dropout, fc",
       "conv:32:3,relu,conv:64:3,relu,maxpool:2,dropout:0.25,flatten,linear:128,relu,dropout:0.5,linear"},
      {"lenet5", "LeNet-5 (LeCun et al. 1998) with tanh and average pooling",
       "conv:6:5:pad=2,tanh,avgpool:2,conv:16:5,tanh,avgpool:2,flatten,linear:120,tanh,linear:84,tanh,linear"},
      // Caffe's Gaussian fillers (std 0.0001 for conv1) suit its raw 0-255 inputs; on per-channel
      // normalised inputs they make the signal vanish, so these use PyTorch's default initialisation.
      // Caffe pools in ceil mode: 3x3/2 pooling with pad 1 gives the same sizes (32 -> 16 -> 8 -> 4).
      {"cifar_quick", "Caffe's cifar10_quick: 3 conv 5x5 (32, 32, 64) with max/avg pooling, fc 64, fc",
       "conv:32:5:pad=2,maxpool:3:stride=2:pad=1,relu,conv:32:5:pad=2,relu,avgpool:3:stride=2:pad=1,"
       "conv:64:5:pad=2,relu,avgpool:3:stride=2:pad=1,flatten,linear:64,linear"},
      {"cifar_full", "Caffe's cifar10_full: cifar_quick's convolutions with local response normalisation, fc",
       "conv:32:5:pad=2,maxpool:3:stride=2:pad=1,relu,lrn:3:alpha=5e-05:beta=0.75,"
       "conv:32:5:pad=2,relu,avgpool:3:stride=2:pad=1,lrn:3:alpha=5e-05:beta=0.75,"
       "conv:64:5:pad=2,relu,avgpool:3:stride=2:pad=1,flatten,linear"},
      {"resnet20", "He et al. 2016 CIFAR ResNet-20 (option A shortcuts, 0.27 M parameters)", resnet_cifar(3, true)},
      {"resnet18_cifar", "ResNet-18, CIFAR variant (3x3 stem, no max-pool, projection shortcuts)", resnet18_cifar()},
      {"resnet18", "torchvision's ResNet-18 for ImageNet (11.7 M parameters at 1000 classes; its state_dict loads)",
       resnet_imagenet({2, 2, 2, 2}, false)},
      {"resnet34", "torchvision's ResNet-34 for ImageNet (21.8 M parameters at 1000 classes)",
       resnet_imagenet({3, 4, 6, 3}, false)},
      {"resnet50", "torchvision's ResNet-50 for ImageNet (bottleneck v1.5, 25.6 M parameters at 1000 classes)",
       resnet_imagenet({3, 4, 6, 3}, true)},
      {"vgg16", "torchvision's VGG-16 for ImageNet (138 M parameters at 1000 classes)", vgg16()},
      {"mobilenet_v2", "torchvision's MobileNetV2 for ImageNet (depthwise convolutions, relu6, 3.5 M parameters)",
       mobilenet_v2()},
      {"resnet9", "DAWNBench-style ResNet-9 for speed runs", resnet9()},
      {"mlp", "two hidden layers of 64 (for the 2-D rings and other flat data)",
       "linear:64,relu,linear:64,relu,linear"},
  };
  return zoo;
}

std::string expand_model_name(std::string_view name_or_spec) {
  for (const ZooEntry& e : model_zoo())
    if (e.name == name_or_spec) return e.spec;
  return std::string(name_or_spec);
}

std::unique_ptr<Model> build_model(std::string_view name_or_spec, const Shape& sample, int64_t classes) {
  FOVEA_CHECK(!name_or_spec.empty(),
              "model spec: empty (give a zoo name such as mnist_cnn or a spec such as "
              "conv:32:3:pad=1,relu,maxpool:2,linear)");
  FOVEA_CHECK(sample.ndim() >= 1 && sample.ndim() <= 3 && sample.numel() > 0,
              "model: sample shape must be [C, H, W] or [F], got ", sample.str());
  FOVEA_CHECK(classes > 0, "model: classes must be > 0, got ", classes);
  std::string name = "custom";
  for (const ZooEntry& e : model_zoo())
    if (e.name == name_or_spec) name = e.name;
  const std::string spec = expand_model_name(name_or_spec);
  // Limits, stated in the error, before anything is built: a spec is a line of text, nested a few levels.
  constexpr size_t kMaxSpecChars = 65536;
  constexpr int kMaxSpecDepth = 32;
  FOVEA_CHECK(spec.size() <= kMaxSpecChars, "model spec: ", spec.size(), " characters, more than the limit of ",
              kMaxSpecChars);
  int depth = 0, deepest = 0;
  for (char ch : spec) {
    if (ch == '(') deepest = std::max(deepest, ++depth);
    if (ch == ')') --depth;
  }
  FOVEA_CHECK(deepest <= kMaxSpecDepth, "model spec: blocks nested ", deepest, " deep, more than the limit of ",
              kMaxSpecDepth);
  // A single word that is neither a zoo model nor a layer is most likely a mistyped model name.
  if (name == "custom" && spec.find_first_of(",:(") == std::string::npos) {
    static const std::set<std::string> single{"relu", "relu6",     "sigmoid", "tanh",    "flatten",   "gap",
                                              "bn",   "batchnorm", "linear",  "dropout", "leakyrelu", "lrn"};
    if (!single.count(spec)) {
      std::string names;
      for (const ZooEntry& e : model_zoo()) names += (names.empty() ? "" : ", ") + e.name;
      FOVEA_FAIL("model: unknown model '", spec, "' (the zoo has ", names,
                 "; or give a spec such as conv:32:3:pad=1,relu,maxpool:2,linear)");
    }
  }
  Builder b;
  std::vector<int64_t> dims{1};
  for (int64_t d : sample.vec()) dims.push_back(d);
  if (sample.ndim() == 2) dims.insert(dims.begin() + 1, 1);  // [H, W] -> [1, H, W]
  b.shape = Shape(dims);
  b.classes = classes;
  auto net = std::make_unique<Sequential>();
  try {
    b.build(spec, *net, "");
  } catch (const SpecError&) {
    throw;
  } catch (const UsageError& e) {
    throw SpecError(cat("model spec: ", e.what()), e.file(), e.line());
  }
  FOVEA_CHECK(net->size() > 0, "model spec: no layers");
  Shape out = b.shape;
  FOVEA_CHECK(out.ndim() == 2 && out[1] == classes, "model spec: the net ends in ", sample_shape_str(out),
              " but the data has ", classes, " classes (end with 'linear' to get [", classes, "])");
  std::vector<int64_t> sdims(dims.begin() + 1, dims.end());
  return std::make_unique<Model>(name, spec, Shape(sdims), classes, std::move(net));
}

}  // namespace fovea::nn
