// Device parity: the same model, weights and batches trained in lock-step on two devices (cpu and emu
// by default). Every step's loss must agree within a relative tolerance; at the first step that does
// not (or after the last step, for the record) every top-level layer of model B is run on model A's
// exact inputs and output gradients, so the report names the first layer whose output, input
// gradient or parameter gradient differs, instead of where the difference has grown large.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "layers/nn/models.h"
#include "layers/nn/optimizer.h"
#include "layers/ops/ops.h"

namespace fovea::nn {

struct ParityOptions {
  int64_t steps = 20;
  double tolerance = 1e-4;        // |loss_b - loss_a| / |loss_a| at every step
  double layer_tolerance = 1e-4;  // relative L2 error of each layer's output and gradients
  double lr = 0.01;
  OptimizerConfig optimizer;  // SGD with momentum 0.9 by default
  uint64_t seed = 1;          // dropout streams
};

struct ParityStep {
  int64_t step = 0;
  double loss_a = 0, loss_b = 0, rel = 0;
};

struct LayerCheck {
  size_t index = 0;
  std::string layer;  // "3 relu"
  std::string
      what;  // "output", "input gradient", "gradient of 3.weight" (relative to max(its norm, the output gradient's))
  double rel = 0;
};

struct ParityReport {
  std::vector<ParityStep> steps;
  bool ok = true;
  int64_t first_bad_step = -1;     // -1: every step agreed
  int64_t checked_step = -1;       // the step whose layers were compared
  std::vector<LayerCheck> checks;  // every comparison of that step, forward order then backward order
  bool has_divergent = false;
  LayerCheck first_divergent;   // the first check above layer_tolerance (when has_divergent)
  std::string summary() const;  // a readable table
};

// Models a and b must have the same structure; b gets a's weights and states first. `batches` are
// host tensors (images float32, labels int64); step i uses batches[i % size]. Both models train.
ParityReport run_parity(Model& a, ops::Context& ctx_a, Model& b, ops::Context& ctx_b,
                        const std::vector<std::pair<Tensor, Tensor>>& batches, const ParityOptions& options);

// Relative L2 error ||b - a|| / max(||a||, floor) of two float tensors on any devices (0 when they
// are equal; infinite when shapes differ or either has NaN/Inf). A parameter gradient is compared with
// floor = the norm of the gradient arriving at the layer's output: a gradient that cancels to almost
// nothing (a conv bias in front of BatchNorm) is then judged against the size of what it was summed from.
double relative_error(const Tensor& a, const Tensor& b, double floor = 0);

}  // namespace fovea::nn
