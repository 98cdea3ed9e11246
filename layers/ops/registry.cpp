#include "layers/ops/registry.h"
#include "core/library_module.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/parse.h"
#include "core/philox.h"
#include "layers/ops/context.h"

namespace fovea::ops {

const char* attr_type_name(AttrType t) {
  switch (t) {
    case AttrType::integer: return "int";
    case AttrType::pair: return "pair";
    case AttrType::number: return "float";
    case AttrType::boolean: return "bool";
    case AttrType::numbers: return "floats";
  }
  return "?";
}

const char* fill_name(Fill f) {
  switch (f) {
    case Fill::uniform: return "uniform";
    case Fill::positive: return "positive";
    case Fill::distinct: return "distinct";
    case Fill::labels: return "labels";
    case Fill::pixels: return "pixels";
    case Fill::warps: return "warps";
  }
  return "?";
}

// ---------------------------------------------------------------- the registry

namespace {

std::map<std::string, OpInfo>& registry() {
  static std::map<std::string, OpInfo> ops;
  return ops;
}

std::string names_of_ops() {
  std::string names;
  for (const auto& [name, op] : registry()) names += (names.empty() ? "" : ", ") + name;
  return names;
}

}  // namespace

RegisterOp::RegisterOp(OpInfo info) {
  FOVEA_ASSERT(!info.name.empty() && info.forward, "an op needs a name and a forward");
  FOVEA_ASSERT(registry().count(info.name) == 0, "op '", info.name, "' registered twice");
  std::string name = info.name;
  registry().emplace(std::move(name), std::move(info));
}

std::vector<const OpInfo*> registered_ops() {
  std::vector<const OpInfo*> out;
  for (const auto& [name, op] : registry()) out.push_back(&op);
  return out;
}

const OpInfo& find_op(std::string_view name) {
  auto it = registry().find(std::string(name));
  FOVEA_CHECK(it != registry().end(), "op: unknown op '", name, "' (known: ", names_of_ops(), ")");
  return it->second;
}

std::vector<std::string> OpInfo::grads() const {
  std::vector<std::string> out;
  if (!backward) return out;
  for (const InputInfo& in : inputs)
    if (in.dtype == DType::float32 && !in.no_grad) out.push_back("d" + in.name);
  return out;
}

bool OpInfo::implemented(Slot s) const {
  auto has = [s](const StubInfo* st) { return st->has(s); };
  // A library backend's slots are registered once its module is loaded.
  if (s == Slot::cudnn || s == Slot::onednn) load_module(s == Slot::cudnn ? Backend::cudnn : Backend::onednn);
  if (s == Slot::cudnn || s == Slot::onednn) return std::any_of(stubs.begin(), stubs.end(), has);
  return std::all_of(stubs.begin(), stubs.end(), has);
}

const InputInfo* OpInfo::input(std::string_view n) const {
  for (const InputInfo& in : inputs)
    if (in.name == n) return &in;
  return nullptr;
}

const AttrInfo* OpInfo::attr(std::string_view n) const {
  for (const AttrInfo& a : attrs)
    if (a.name == n) return &a;
  return nullptr;
}

// ---------------------------------------------------------------- arguments

OpArgs::OpArgs(const OpInfo& op, std::map<std::string, Tensor> tensors, std::map<std::string, std::string> attrs)
    : op_(op), tensors_(std::move(tensors)), attrs_(std::move(attrs)) {
  auto list = [](const auto& items) {
    std::string s;
    for (const auto& i : items) s += (s.empty() ? "" : ", ") + i.name;
    return s.empty() ? std::string("none") : s;
  };
  for (const auto& [key, value] : attrs_) {
    const AttrInfo* a = op.attr(key);
    FOVEA_CHECK(a, "op ", op.name, ": unknown attribute '", key, "' (attributes: ", list(op.attrs), ")");
    text(key, a->type);  // parses it now: a bad value is reported before anything runs
  }
  for (const AttrInfo& a : op.attrs) text(a.name, a.type);  // the defaults, too
  const std::vector<std::string> grads = op.grads();
  for (const auto& [key, t] : tensors_) {
    const InputInfo* in = op.input(key);
    const std::vector<std::string>& outs = op.differentiated_outputs();
    const bool is_grad =
        key.size() > 1 && key[0] == 'd' && std::find(outs.begin(), outs.end(), key.substr(1)) != outs.end();
    FOVEA_CHECK(in || (is_grad && op.backward), "op ", op.name, ": unknown input '", key,
                "' (inputs: ", list(op.inputs), op.backward ? "; output gradients: d + an output's name" : "", ")");
    FOVEA_CHECK(t.defined(), "op ", op.name, ": input '", key, "' is undefined");
    if (in) {
      const bool dtype_ok =
          t.dtype() == in->dtype || std::find(in->also.begin(), in->also.end(), t.dtype()) != in->also.end();
      FOVEA_CHECK(dtype_ok, "op ", op.name, ": input '", key, "' must be ", dtype_name(in->dtype), ", got ",
                  dtype_name(t.dtype()));
    } else {
      FOVEA_CHECK(t.dtype() == DType::float32, "op ", op.name, ": gradient '", key, "' must be float32, got ",
                  dtype_name(t.dtype()));
    }
  }
  for (const InputInfo& in : op.inputs)
    FOVEA_CHECK(in.optional || tensors_.count(in.name), "op ", op.name, ": missing input '", in.name, "' (give --in ",
                in.name, "=FILE.npy)");
}

const Tensor& OpArgs::tensor(const std::string& name) const {
  auto it = tensors_.find(name);
  FOVEA_CHECK(it != tensors_.end(), "op ", op_.name, ": missing input '", name, "'");
  return it->second;
}

Tensor OpArgs::optional(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? Tensor() : it->second;
}

const std::string& OpArgs::text(const std::string& name, AttrType type) const {
  const AttrInfo* a = op_.attr(name);
  FOVEA_ASSERT(a && a->type == type, "op ", op_.name, " reads attribute '", name, "' as ", attr_type_name(type));
  auto it = attrs_.find(name);
  const std::string& v = it == attrs_.end() ? a->default_value : it->second;
  const std::string what = cat("op ", op_.name, ": attribute '", name, "'");
  switch (type) {
    case AttrType::integer: parse_int(v, what); break;
    case AttrType::pair: parse_int_pair(v, what); break;
    case AttrType::number: parse_float(v, what); break;
    case AttrType::boolean: parse_bool(v, what); break;
    case AttrType::numbers:
      if (!v.empty()) parse_float_list(v, what);
      break;
  }
  return v;
}

int64_t OpArgs::integer(const std::string& name) const {
  return parse_int(text(name, AttrType::integer), name);
}
std::pair<int64_t, int64_t> OpArgs::pair(const std::string& name) const {
  return parse_int_pair(text(name, AttrType::pair), name);
}
double OpArgs::number(const std::string& name) const {
  return parse_float(text(name, AttrType::number), name);
}
bool OpArgs::boolean(const std::string& name) const {
  return parse_bool(text(name, AttrType::boolean), name);
}
std::vector<float> OpArgs::numbers(const std::string& name) const {
  const std::string& v = text(name, AttrType::numbers);
  std::vector<float> out;
  if (!v.empty())
    for (double d : parse_float_list(v, name)) out.push_back(float(d));
  return out;
}

// ---------------------------------------------------------------- JSON

std::string registry_json() {
  using nlohmann::json;
  json ops = json::array();
  for (const OpInfo* op : registered_ops()) {
    json j;
    j["name"] = op->name;
    j["doc"] = op->doc;
    json inputs = json::array();
    for (const InputInfo& in : op->inputs) {
      json i = {{"name", in.name},       {"dtype", dtype_name(in.dtype)}, {"optional", in.optional},
                {"no_grad", in.no_grad}, {"fill", fill_name(in.fill)},    {"doc", in.doc}};
      json also = json::array();
      for (DType d : in.also) also.push_back(dtype_name(d));
      i["also"] = also;
      inputs.push_back(i);
    }
    j["inputs"] = inputs;
    json attrs = json::array();
    for (const AttrInfo& a : op->attrs)
      attrs.push_back(
          {{"name", a.name}, {"type", attr_type_name(a.type)}, {"default", a.default_value}, {"doc", a.doc}});
    j["attrs"] = attrs;
    j["outputs"] = op->outputs;
    j["grad_outputs"] = op->differentiated_outputs();
    j["grads"] = op->grads();
    j["torch"] = op->torch;
    json samples = json::array();
    for (const Sample& s : op->samples) {
      json shapes = json::object();
      for (const auto& [name, shape] : s.shapes) shapes[name] = shape.vec();
      samples.push_back({{"name", s.name}, {"shapes", shapes}, {"attrs", s.attrs}, {"bench", s.bench}});
    }
    j["samples"] = samples;
    json slots = json::array();
    for (Slot s : {Slot::cpu, Slot::emu, Slot::cuda, Slot::cudnn, Slot::onednn})
      if (op->implemented(s)) slots.push_back(slot_name(s));
    j["implementations"] = slots;
    json stubs = json::array();
    for (const StubInfo* st : op->stubs) stubs.push_back(st->name());
    j["stubs"] = stubs;
    ops.push_back(j);
  }
  return ops.dump(2);
}

// ---------------------------------------------------------------- sample values

std::map<std::string, Tensor> sample_inputs(const OpInfo& op, const Sample& s, uint64_t seed, Device device) {
  std::map<std::string, Tensor> out;
  int64_t classes = 0, width = 0;  // dimensions 1 and 3 of the first input: for labels, and for flips
  if (!op.inputs.empty()) {
    auto it = s.shapes.find(op.inputs[0].name);
    if (it != s.shapes.end() && it->second.ndim() >= 2) classes = it->second[1];
    if (it != s.shapes.end() && it->second.ndim() == 4) width = it->second[3];
  }
  for (size_t k = 0; k < op.inputs.size(); ++k) {
    const InputInfo& in = op.inputs[k];
    auto it = s.shapes.find(in.name);
    if (it == s.shapes.end()) {
      FOVEA_ASSERT(in.optional, "op ", op.name, " sample ", s.name, " has no shape for required input ", in.name);
      continue;
    }
    const Shape& shape = it->second;
    const int64_t n = shape.numel();
    const uint64_t offset = k;
    auto u = [&](int64_t i) { return philox_uniform(seed, offset, uint64_t(i)); };
    Tensor t;
    switch (in.fill) {
      case Fill::uniform:
      case Fill::positive: {
        std::vector<float> v(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) v[i] = in.fill == Fill::uniform ? 2.0f * u(i) - 1.0f : 0.5f + u(i);
        t = Tensor::from_vector(v, shape);
        break;
      }
      case Fill::distinct: {
        // A Philox-keyed shuffle of 0, 0.01, 0.02, ...: ties and near-ties never occur.
        std::vector<std::pair<uint32_t, int64_t>> keys(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) keys[i] = {philox_u32(seed, offset, uint64_t(i)), i};
        std::sort(keys.begin(), keys.end());
        std::vector<float> v(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) v[keys[i].second] = 0.01f * float(i) - 0.005f * float(n);
        t = Tensor::from_vector(v, shape);
        break;
      }
      case Fill::labels: {
        FOVEA_ASSERT(classes > 0, "op ", op.name, ": labels need a first input [N, C]");
        std::vector<int64_t> v(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) v[i] = int64_t(philox_u32(seed, offset, uint64_t(i)) % uint32_t(classes));
        t = Tensor::from_vector(v, shape);
        break;
      }
      case Fill::pixels: {
        std::vector<float> v(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) v[i] = u(i);
        t = Tensor::from_vector(v, shape);
        break;
      }
      case Fill::warps: {
        // Even images: whole-pixel shifts and flips (the kernels' integral path); odd: a general affine.
        std::vector<float> v(static_cast<size_t>(n));
        for (int64_t r = 0; r < shape[0]; ++r) {
          float* a = v.data() + r * 6;
          auto w = [&](int j) { return 2.0f * u(r * 6 + j) - 1.0f; };
          if (r % 2 == 0) {  // x -> x + t or W - 1 - x + t, y -> y + t
            const bool flip = w(0) < 0;
            a[0] = flip ? -1.0f : 1.0f, a[1] = 0, a[3] = 0, a[4] = 1;
            a[2] = std::round(2 * w(2)) + (flip ? float(width - 1) : 0.0f), a[5] = std::round(2 * w(5));
          } else {
            a[0] = 1 + 0.1f * w(0), a[1] = 0.1f * w(1), a[2] = 1.5f * w(2);
            a[3] = 0.1f * w(3), a[4] = 1 + 0.1f * w(4), a[5] = 1.5f * w(5);
          }
        }
        t = Tensor::from_vector(v, shape);
        break;
      }
    }
    out[in.name] = device == kCPU ? t : t.to(device);  // the explicit host -> device copy
  }
  return out;
}

NamedTensors sample_output_grads(const OpInfo& op, const NamedTensors& outputs, uint64_t seed, Device device) {
  NamedTensors out;
  uint64_t offset = 1000;
  const std::vector<std::string>& wanted = op.differentiated_outputs();
  for (const auto& [name, y] : outputs) {
    if (y.dtype() != DType::float32 || std::find(wanted.begin(), wanted.end(), name) == wanted.end()) continue;
    const int64_t n = y.numel();
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[i] = 2.0f * philox_uniform(seed, offset, uint64_t(i)) - 1.0f;
    ++offset;
    const Tensor t = Tensor::from_vector(v, y.shape());
    out.push_back({"d" + name, device == kCPU ? t : t.to(device)});
  }
  return out;
}

}  // namespace fovea::ops
