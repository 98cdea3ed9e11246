// The layer contract (Caffe's Layer, tiny-cuda-nn's forward-context-backward):
//   Output out = layer.forward(ctx, x);            // out.y, plus out.saved in training mode
//   Tensor dx  = layer.backward(ctx, dy, *out.saved, propagate_down);
// forward returns what backward needs as an opaque Saved object, so a layer keeps no per-batch state
// and the same layer can run several batches before their backward passes. backward ACCUMULATES the
// gradients of its trainable parameters into Param::grad (zero_grad() clears them) and returns
// dL/dx only when propagate_down is true. Frozen parameters (trainable = false) get no gradient.
// Layers compute only through layers/ops/ops.h on the context's device; the backend is the context's
// unless the layer overrides it (set_backend).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "layers/ops/ops.h"

namespace fovea::nn {

// A learnable tensor and its gradient.
struct Param {
  std::string name;       // local name, PyTorch's: "weight", "bias"
  Tensor value;           // on the layer's device
  Tensor grad;            // undefined until a backward pass writes it
  bool trainable = true;  // false: frozen (no gradient, optimizers skip it)
};

// Model state that is not learned (BatchNorm's running statistics); saved in checkpoints.
struct StateTensor {
  std::string name;
  Tensor value;
};

// What forward keeps for backward. The base records the shapes so that backward can check dy and dx.
struct Saved {
  Shape x_shape, y_shape;
  virtual ~Saved() = default;
};
using SavedPtr = std::unique_ptr<Saved>;

struct Output {
  Tensor y;
  SavedPtr saved;  // null in eval mode
};

// A parameter or state tensor with its dotted path in the model ("3.body.0.weight"), as PyTorch's
// state_dict names it for the same nn.Sequential structure.
struct ParamRef {
  std::string path;
  Param* param;
};
struct StateRef {
  std::string path;
  StateTensor* state;
};

class Layer {
 public:
  Layer() = default;
  virtual ~Layer() = default;
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  virtual const char* kind() const = 0;      // "conv2d"
  virtual std::string describe() const = 0;  // "conv2d 3->32 3x3 pad 1"
  // Output shape (batch dimension included) for input shape `in`; throws naming the layer when `in`
  // does not fit.
  virtual Shape output_shape(const Shape& in) const = 0;

  // Checks devices and shapes, then runs the layer. Saves for backward iff training().
  Output forward(ops::Context& ctx, const Tensor& x);
  // Checks dy against the saved output shape; returns dx (undefined when !propagate_down).
  Tensor backward(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down = true);

  // Modes and settings; all recursive over children.
  void set_training(bool on);
  bool training() const { return training_; }
  void set_backend(std::optional<ops::Backend> backend);  // nullopt: the context's backend
  std::optional<ops::Backend> backend() const { return backend_; }
  // Random streams of stochastic layers (dropout): a function of (seed, step) only, so runs repeat
  // and resume exactly. Layers derive their own stream from `seed` and their position.
  virtual void set_rng(uint64_t seed, uint64_t step);
  // Moves parameters, gradients, states and constants to `d` (explicit copies).
  void to(Device d);
  void zero_grad();
  // (Re)initialises parameters from the Philox stream `seed`; `counter` numbers the parameter
  // tensors in traversal order so that each gets its own stream offset.
  virtual void reset_parameters(ops::Context& ctx, uint64_t seed, uint64_t& counter);

  std::vector<Param>& params() { return params_; }
  const std::vector<Param>& params() const { return params_; }
  std::vector<StateTensor>& states() { return states_; }
  // Child layers with their local names ("0", "body", "conv1", ...). An empty name adds nothing to
  // the paths below it: the child's own children appear directly under this layer (torchvision's
  // residual blocks name their convolutions conv1, bn1, ... with no "body" in between).
  virtual std::vector<std::pair<std::string, Layer*>> children() const { return {}; }

  // All parameters / states of this layer and its children, depth first, named by path.
  void collect_params(const std::string& prefix, std::vector<ParamRef>& out);
  void collect_states(const std::string& prefix, std::vector<StateRef>& out);
  int64_t num_params() const;  // elements, recursive
  bool any_trainable() const;  // recursive

 protected:
  virtual Output forward_impl(ops::Context& ctx, const Tensor& x) = 0;
  // `saved` is what forward_impl returned. Must return a defined dx when propagate_down.
  virtual Tensor backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) = 0;
  // Adds g to p.grad (or sets it) when p is trainable.
  static void accumulate_grad(ops::Context& ctx, Param& p, const Tensor& g);
  void add_param(std::string name, Tensor value) {
    params_.push_back({std::move(name), std::move(value), Tensor(), true});
  }
  // The context to compute with: ctx, or a copy with this layer's backend.
  ops::Context local_context(const ops::Context& ctx) const;

  std::vector<Param> params_;
  std::vector<StateTensor> states_;
  std::vector<Tensor*> constants_;  // fixed tensors the layer owns (moved by to(), never saved)
  bool training_ = true;
  std::optional<ops::Backend> backend_;
};

using LayerPtr = std::unique_ptr<Layer>;

// Layers in a row. The children are named "0", "1", ... like torch.nn.Sequential, or by the name
// given to add() (an identifier such as "conv1", as the attributes of a torch.nn.Module name them).
class Sequential : public Layer {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<LayerPtr> layers) : layers_(std::move(layers)), names_(layers_.size()) {}
  // `name` empty: the child's index. A name used by another child is an error.
  void add(LayerPtr layer, std::string name = "");
  size_t size() const { return layers_.size(); }
  Layer& at(size_t i) { return *layers_.at(i); }
  const Layer& at(size_t i) const { return *layers_.at(i); }
  // Replaces layer i (tests use this to wrap a layer).
  LayerPtr replace(size_t i, LayerPtr layer);

  const char* kind() const override { return "sequential"; }
  std::string describe() const override;
  Shape output_shape(const Shape& in) const override;
  std::vector<std::pair<std::string, Layer*>> children() const override;

  // Records each child's output (forward) and each child's dx (backward) when set: the parity tool
  // compares them between devices. outputs[i] is layer i's output, input_grads[i] its dx (undefined
  // when not propagated).
  struct Trace {
    std::vector<Tensor> outputs, input_grads;
  };
  void set_trace(Trace* trace) { trace_ = trace; }

 protected:
  Output forward_impl(ops::Context& ctx, const Tensor& x) override;
  Tensor backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) override;

 private:
  std::vector<LayerPtr> layers_;
  std::vector<std::string> names_;  // "" : the index
  Trace* trace_ = nullptr;
};

// y = body(x) + shortcut(x); the shortcut is the identity when null.
//   Style::plain  children "body", "shortcut"; a following activation (ResNet's post-addition ReLU)
//                 is a separate layer.
//   Style::block  torchvision's BasicBlock / Bottleneck: y = relu(body(x) + shortcut(x)); the body's
//                 children are named directly under the block (conv1, bn1, ...), the shortcut is
//                 "downsample".
//   Style::inverted  torchvision's InvertedResidual (MobileNetV2) where it adds: y = x + body(x), the
//                 body named "conv", no shortcut layer.
class Residual : public Layer {
 public:
  enum class Style { plain, block, inverted };
  explicit Residual(LayerPtr body, LayerPtr shortcut = nullptr, Style style = Style::plain);
  Layer& body() { return *body_; }
  Layer* shortcut() { return shortcut_.get(); }

  const char* kind() const override { return "residual"; }
  std::string describe() const override;
  Shape output_shape(const Shape& in) const override;
  std::vector<std::pair<std::string, Layer*>> children() const override;

 protected:
  Output forward_impl(ops::Context& ctx, const Tensor& x) override;
  Tensor backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) override;

 private:
  // The backward of body(x) + shortcut(x) for the gradient dy of the sum.
  Tensor backward_sum(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down);
  LayerPtr body_, shortcut_;
  Style style_;
};

// "[64, 3, 32, 32]" without the batch dimension: "[3, 32, 32]".
std::string sample_shape_str(const Shape& s);

}  // namespace fovea::nn
