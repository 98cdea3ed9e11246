// Checkpoints: safetensors files (loadable by Python's `safetensors` into PyTorch tensors) holding
//   <param or state path>              the model ("0.weight", "3.body.1.running_mean", ...), the names
//                                      torch.nn.Sequential would give the same structure
//   optimizer.<param path>.<buffer>    optimizer state (momentum_buffer, exp_avg, exp_avg_sq)
//   optimizer.step                     int64 [1]: updates done
// and in the "__metadata__" string map: "format" = "fovea-checkpoint-1" and "fovea" = a JSON object
// with the model (spec, sample shape, classes), the progress (epoch, step), the dataset, its class
// names and normalisation, and the training config. Written to a temporary file and renamed.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "layers/data/data.h"
#include "layers/nn/models.h"
#include "layers/nn/optimizer.h"

namespace fovea::nn {

struct CheckpointMeta {
  std::string model_name, model_spec;
  Shape sample;
  int64_t classes = 0;
  int64_t epoch = 0;  // epochs completed
  int64_t step = 0;   // optimizer updates done
  std::string dataset;
  std::vector<std::string> class_names;
  data::Normalization normalization;
  nlohmann::json config = nlohmann::json::object();  // the training configuration
};

struct Checkpoint {
  CheckpointMeta meta;
  std::map<std::string, Tensor> model;      // host tensors by path
  std::map<std::string, Tensor> optimizer;  // without the "optimizer." prefix; empty if none was saved
};

// Writes the model (and the optimizer's state when given) atomically to `path`.
void save_checkpoint(const std::string& path, const Model& model, const Optimizer* optimizer, CheckpointMeta meta);
// Reads and validates; errors name the file.
Checkpoint load_checkpoint(const std::string& path);
// The model the checkpoint describes, on the CPU, with its weights (strict).
std::unique_ptr<Model> model_from_checkpoint(const Checkpoint& ckpt, const std::string& path);

// Another framework's weights for `model`, loaded strictly (every parameter and state present with
// its shape, nothing else; batch norm's num_batches_tracked accepted): a PyTorch file written by
// torch.save(model.state_dict()) (.pth / .pt, or a checkpoint dict holding it; core/pth.h), or a
// safetensors file (F32, F16, BF16; scripts/torch_export.py writes one). A torchvision state_dict
// loads into the zoo's torchvision models (resnet18, ...) as it is. Errors name the file and the tensor.
void load_weights(Model& model, const std::string& path);

}  // namespace fovea::nn
