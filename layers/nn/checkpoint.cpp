#include "layers/nn/checkpoint.h"

#include "core/error.h"
#include "core/io.h"
#include "core/pth.h"
#include "core/safetensors.h"

namespace fovea::nn {

namespace {
constexpr const char* kFormat = "fovea-checkpoint-1";
constexpr const char* kOptPrefix = "optimizer.";
}  // namespace

void save_checkpoint(const std::string& path, const Model& model, const Optimizer* optimizer, CheckpointMeta meta) {
  std::map<std::string, Tensor> tensors = model.state_dict();
  if (optimizer)
    for (auto& [name, t] : optimizer->state_dict()) tensors[kOptPrefix + name] = t;
  nlohmann::json j;
  j["model_name"] = model.name();
  j["model_spec"] = model.spec();
  j["sample_shape"] = model.sample_shape().vec();
  j["classes"] = model.classes();
  j["epoch"] = meta.epoch;
  j["step"] = meta.step;
  j["dataset"] = meta.dataset;
  j["class_names"] = meta.class_names;
  j["mean"] = meta.normalization.mean;
  j["std"] = meta.normalization.stddev;
  j["config"] = meta.config;
  write_safetensors(path, tensors, {{"format", kFormat}, {"fovea", j.dump()}});
}

Checkpoint load_checkpoint(const std::string& path) {
  Safetensors st = read_safetensors(path);
  auto fmt_it = st.metadata.find("format");
  FOVEA_CHECK(fmt_it != st.metadata.end() && fmt_it->second == kFormat, "checkpoint '", path,
              "': not a fovea checkpoint (its __metadata__ has no \"format\": \"", kFormat, "\")");
  auto it = st.metadata.find("fovea");
  FOVEA_CHECK(it != st.metadata.end(), "checkpoint '", path, "': __metadata__ has no \"fovea\" entry");
  Checkpoint c;
  try {
    const nlohmann::json j = nlohmann::json::parse(it->second);
    c.meta.model_name = j.at("model_name").get<std::string>();
    c.meta.model_spec = j.at("model_spec").get<std::string>();
    c.meta.sample = Shape(j.at("sample_shape").get<std::vector<int64_t>>());
    c.meta.classes = j.at("classes").get<int64_t>();
    c.meta.epoch = j.at("epoch").get<int64_t>();
    c.meta.step = j.at("step").get<int64_t>();
    c.meta.dataset = j.at("dataset").get<std::string>();
    c.meta.class_names = j.at("class_names").get<std::vector<std::string>>();
    c.meta.normalization.mean = j.at("mean").get<std::vector<float>>();
    c.meta.normalization.stddev = j.at("std").get<std::vector<float>>();
    c.meta.config = j.at("config");
  } catch (const nlohmann::json::exception& e) {
    FOVEA_FAIL("checkpoint '", path, "': bad \"fovea\" metadata: ", e.what());
  }
  FOVEA_CHECK(c.meta.classes > 0 && c.meta.epoch >= 0 && c.meta.step >= 0, "checkpoint '", path,
              "': bad metadata (classes ", c.meta.classes, ", epoch ", c.meta.epoch, ", step ", c.meta.step, ")");
  const std::string prefix = kOptPrefix;
  for (auto& [name, t] : st.tensors) {
    if (name.rfind(prefix, 0) == 0)
      c.optimizer[name.substr(prefix.size())] = t;
    else
      c.model[name] = t;
  }
  return c;
}

std::unique_ptr<Model> model_from_checkpoint(const Checkpoint& ckpt, const std::string& path) {
  std::unique_ptr<Model> m;
  try {
    m = build_model(ckpt.meta.model_spec, ckpt.meta.sample, ckpt.meta.classes);
    m->load_state_dict(ckpt.model, /*strict=*/true);
    m->set_name(ckpt.meta.model_name);
  } catch (const Error& e) {
    rethrow_with_prefix(e, cat("checkpoint '", path, "': "));
  }
  return m;
}

void load_weights(Model& model, const std::string& path) {
  // Told apart by content, not by name: a safetensors file starts with its header's length and '{'.
  const std::string bytes = read_file(path);
  const bool safetensors = bytes.size() >= 9 && bytes[8] == '{';
  std::map<std::string, Tensor> tensors =
      safetensors ? parse_safetensors_as_float32(bytes, path).tensors : parse_pth(bytes, path).tensors;
  try {
    model.load_state_dict(tensors, /*strict=*/true);
  } catch (const Error& e) {
    rethrow_with_prefix(e, cat("weights '", path, "' for model ", model.name(), ": "));
  }
}

}  // namespace fovea::nn
