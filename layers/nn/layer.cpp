// The layer contract's checks, and the two composite layers (Sequential, Residual).
#include "layers/nn/layer.h"

#include <algorithm>
#include <cctype>
#include <string>

#include "core/error.h"

namespace fovea::nn {

std::string sample_shape_str(const Shape& s) {
  std::string out = "[";
  for (int i = 1; i < s.ndim(); ++i) out += (i > 1 ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

Output Layer::forward(ops::Context& ctx, const Tensor& x) {
  FOVEA_CHECK(x.defined(), kind(), ": forward input is undefined");
  FOVEA_CHECK(x.device() == ctx.device, kind(), ": input is on ", x.device().str(), " but the context's device is ",
              ctx.device.str());
  for (const Param& p : params_)
    FOVEA_CHECK(p.value.device() == ctx.device, kind(), ": parameter '", p.name, "' is on ", p.value.device().str(),
                " but the context's device is ", ctx.device.str(), " (move the model with to())");
  const Shape expected = output_shape(x.shape());  // throws naming the layer when x does not fit
  Output out = forward_impl(ctx, x);
  FOVEA_CHECK(out.y.shape() == expected, kind(), ": produced ", out.y.shape().str(), ", expected ", expected.str());
  if (out.saved) {
    out.saved->x_shape = x.shape();
    out.saved->y_shape = expected;
  }
  return out;
}

Tensor Layer::backward(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) {
  FOVEA_CHECK(dy.defined(), kind(), ": backward gradient dy is undefined");
  FOVEA_CHECK(dy.device() == ctx.device, kind(), ": dy is on ", dy.device().str(), " but the context's device is ",
              ctx.device.str());
  FOVEA_CHECK(dy.shape() == saved.y_shape, kind(), ": dy has shape ", dy.shape().str(), " but the output was ",
              saved.y_shape.str());
  Tensor dx = backward_impl(ctx, dy, saved, propagate_down);
  if (propagate_down)
    FOVEA_CHECK(dx.defined() && dx.shape() == saved.x_shape, kind(), ": backward produced ",
                dx.defined() ? dx.shape().str() : std::string("nothing"), ", expected ", saved.x_shape.str());
  return propagate_down ? dx : Tensor();
}

void Layer::set_training(bool on) {
  training_ = on;
  for (auto& [name, child] : children()) child->set_training(on);
}

void Layer::set_backend(std::optional<ops::Backend> backend) {
  backend_ = backend;
  for (auto& [name, child] : children()) child->set_backend(backend);
}

void Layer::set_rng(uint64_t seed, uint64_t step) {
  for (auto& [name, child] : children()) child->set_rng(seed, step);
}

void Layer::to(Device d) {
  for (Param& p : params_) {
    if (p.value.defined() && p.value.device() != d) p.value = p.value.to(d);
    if (p.grad.defined() && p.grad.device() != d) p.grad = p.grad.to(d);
  }
  for (StateTensor& s : states_)
    if (s.value.defined() && s.value.device() != d) s.value = s.value.to(d);
  for (Tensor* c : constants_)
    if (c->defined() && c->device() != d) *c = c->to(d);
  for (auto& [name, child] : children()) child->to(d);
}

void Layer::zero_grad() {
  for (Param& p : params_) p.grad = Tensor();
  for (auto& [name, child] : children()) child->zero_grad();
}

void Layer::reset_parameters(ops::Context& ctx, uint64_t seed, uint64_t& counter) {
  for (auto& [name, child] : children()) child->reset_parameters(ctx, seed, counter);
}

void Layer::collect_params(const std::string& prefix, std::vector<ParamRef>& out) {
  for (Param& p : params_) out.push_back({prefix + p.name, &p});
  for (auto& [name, child] : children()) child->collect_params(name.empty() ? prefix : prefix + name + ".", out);
}

void Layer::collect_states(const std::string& prefix, std::vector<StateRef>& out) {
  for (StateTensor& s : states_) out.push_back({prefix + s.name, &s});
  for (auto& [name, child] : children()) child->collect_states(name.empty() ? prefix : prefix + name + ".", out);
}

int64_t Layer::num_params() const {
  int64_t n = 0;
  for (const Param& p : params_) n += p.value.numel();
  for (auto& [name, child] : children()) n += child->num_params();
  return n;
}

bool Layer::any_trainable() const {
  for (const Param& p : params_)
    if (p.trainable) return true;
  for (auto& [name, child] : children())
    if (child->any_trainable()) return true;
  return false;
}

void Layer::accumulate_grad(ops::Context& ctx, Param& p, const Tensor& g) {
  if (!p.trainable) return;
  FOVEA_CHECK(g.shape() == p.value.shape(), "gradient of '", p.name, "' has shape ", g.shape().str(), ", parameter ",
              p.value.shape().str());
  p.grad = p.grad.defined() ? ops::add(ctx, p.grad, g) : g;
}

ops::Context Layer::local_context(const ops::Context& ctx) const {
  ops::Context local = ctx;
  if (backend_) local.backend = *backend_;
  return local;
}

// ---------------------------------------------------------------- Sequential

namespace {
struct SequentialSaved : Saved {
  std::vector<SavedPtr> saved;
};
struct ResidualSaved : Saved {
  SavedPtr body, shortcut;
  Tensor y;  // Style::block: the output, for the ReLU's backward
};
}  // namespace

void Sequential::add(LayerPtr layer, std::string name) {
  FOVEA_CHECK(layer != nullptr, "sequential: argument 'layer' is null");
  if (!name.empty()) {
    const bool identifier = (std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_') &&
                            std::all_of(name.begin(), name.end(),
                                        [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
    FOVEA_CHECK(identifier, "sequential: layer name '", name,
                "' is not an identifier (letters, digits and '_', not starting with a digit)");
    for (const auto& [other, child] : children())
      FOVEA_CHECK(other != name, "sequential: two layers are named '", name, "'");
  }
  layers_.push_back(std::move(layer));
  names_.push_back(std::move(name));
}

LayerPtr Sequential::replace(size_t i, LayerPtr layer) {
  FOVEA_CHECK(i < layers_.size(), "sequential: replace index ", i, " out of range (", layers_.size(), " layers)");
  std::swap(layers_[i], layer);
  return layer;
}

std::string Sequential::describe() const {
  std::string s = "sequential(";
  for (size_t i = 0; i < layers_.size(); ++i) s += (i ? ", " : "") + layers_[i]->describe();
  return s + ")";
}

Shape Sequential::output_shape(const Shape& in) const {
  Shape s = in;
  for (size_t i = 0; i < layers_.size(); ++i) {
    try {
      s = layers_[i]->output_shape(s);
    } catch (const Error& e) {
      rethrow_with_prefix(e, cat("layer ", i, " (", layers_[i]->describe(), "): "));
    }
  }
  return s;
}

std::vector<std::pair<std::string, Layer*>> Sequential::children() const {
  std::vector<std::pair<std::string, Layer*>> out;
  for (size_t i = 0; i < layers_.size(); ++i)
    out.emplace_back(names_[i].empty() ? std::to_string(i) : names_[i], layers_[i].get());
  return out;
}

Output Sequential::forward_impl(ops::Context& ctx, const Tensor& x) {
  auto saved = std::make_unique<SequentialSaved>();
  if (trace_) {
    trace_->outputs.assign(layers_.size(), Tensor());
    trace_->input_grads.assign(layers_.size(), Tensor());
  }
  Tensor h = x;
  for (size_t i = 0; i < layers_.size(); ++i) {
    Output o = layers_[i]->forward(ctx, h);
    h = o.y;
    if (trace_) trace_->outputs[i] = h;
    if (training_) saved->saved.push_back(std::move(o.saved));
  }
  if (!training_) return {h, nullptr};
  return {h, std::move(saved)};
}

Tensor Sequential::backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved_base, bool propagate_down) {
  auto& saved = dynamic_cast<SequentialSaved&>(saved_base);
  FOVEA_CHECK(saved.saved.size() == layers_.size(), "sequential: backward without a training-mode forward");
  // Layer i needs to produce dx only if something before it learns or the caller wants dx: a frozen
  // feature extractor costs no backward work.
  std::vector<bool> need_dx(layers_.size());
  bool before = propagate_down;
  for (size_t i = 0; i < layers_.size(); ++i) {
    need_dx[i] = before;
    before = before || layers_[i]->any_trainable();
  }
  Tensor g = dy;
  for (size_t i = layers_.size(); i-- > 0;) {
    FOVEA_CHECK(saved.saved[i] != nullptr, "sequential: layer ", i, " has nothing saved for backward");
    if (!g.defined()) break;  // nothing below needs a gradient
    g = layers_[i]->backward(ctx, g, *saved.saved[i], need_dx[i]);
    if (trace_ && !trace_->input_grads.empty()) trace_->input_grads[i] = g;
  }
  return propagate_down ? g : Tensor();
}

// ---------------------------------------------------------------- Residual

Residual::Residual(LayerPtr body, LayerPtr shortcut, Style style)
    : body_(std::move(body)), shortcut_(std::move(shortcut)), style_(style) {
  FOVEA_CHECK(body_ != nullptr, "residual: argument 'body' is null");
  FOVEA_CHECK(style_ != Style::inverted || shortcut_ == nullptr,
              "residual: an inverted residual adds its input unchanged (no shortcut layer)");
}

std::string Residual::describe() const {
  return (style_ == Style::block      ? "block("
          : style_ == Style::inverted ? "inverted_residual("
                                      : "residual(") +
         body_->describe() + (shortcut_ ? " + " + shortcut_->describe() : std::string(" + identity")) + ")";
}

Shape Residual::output_shape(const Shape& in) const {
  const Shape a = body_->output_shape(in);
  const Shape b = shortcut_ ? shortcut_->output_shape(in) : in;
  FOVEA_CHECK(a == b, "residual: the body gives ", a.str(), " but the shortcut gives ", b.str(),
              " (use a projection or zero-pad shortcut when the shape changes)");
  return a;
}

std::vector<std::pair<std::string, Layer*>> Residual::children() const {
  const bool block = style_ == Style::block;
  std::vector<std::pair<std::string, Layer*>> out{{block                       ? ""
                                                   : style_ == Style::inverted ? "conv"
                                                                               : "body",
                                                   body_.get()}};
  if (shortcut_) out.emplace_back(block ? "downsample" : "shortcut", shortcut_.get());
  return out;
}

Output Residual::forward_impl(ops::Context& ctx, const Tensor& x) {
  Output b = body_->forward(ctx, x);
  Output s;
  if (shortcut_) s = shortcut_->forward(ctx, x);
  ops::Context c = local_context(ctx);
  Tensor y = ops::add(c, b.y, shortcut_ ? s.y : x);
  if (style_ == Style::block) y = ops::relu_forward(c, y);
  if (!training_) return {y, nullptr};
  auto saved = std::make_unique<ResidualSaved>();
  saved->body = std::move(b.saved);
  saved->shortcut = std::move(s.saved);
  if (style_ == Style::block) saved->y = y;
  return {y, std::move(saved)};
}

Tensor Residual::backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved_base, bool propagate_down) {
  auto& saved = dynamic_cast<ResidualSaved&>(saved_base);
  if (style_ == Style::block) {
    // relu's backward from its output: y > 0 exactly where its input was.
    ops::Context c = local_context(ctx);
    return backward_sum(ctx, ops::relu_backward(c, dy, saved.y), saved, propagate_down);
  }
  return backward_sum(ctx, dy, saved, propagate_down);
}

Tensor Residual::backward_sum(ops::Context& ctx, const Tensor& dy, Saved& saved_base, bool propagate_down) {
  auto& saved = dynamic_cast<ResidualSaved&>(saved_base);
  Tensor db = body_->backward(ctx, dy, *saved.body, propagate_down);
  if (!propagate_down) {
    if (shortcut_) shortcut_->backward(ctx, dy, *saved.shortcut, false);
    return Tensor();
  }
  Tensor ds = shortcut_ ? shortcut_->backward(ctx, dy, *saved.shortcut, true) : dy;
  ops::Context c = local_context(ctx);
  return ops::add(c, db, ds);
}

}  // namespace fovea::nn
