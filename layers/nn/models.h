// Models: a Sequential with the facts a checkpoint needs to rebuild it (its spec text, the shape of
// one sample, the number of classes), the model zoo, and the text spec for custom nets.
//
// Spec: comma-separated items; arguments follow the item name after ':'; key=value arguments anywhere
// after the positional ones; res(...) nests a spec.
//   conv:OUT:K[:stride=S][:pad=P|same][:dilation=D][:groups=G][:bias=0][:init=I][:std=X]   K is 3 or 3x5
//   linear[:OUT][:bias=0][:init=I][:std=X]   OUT defaults to the number of classes; a 4-D input is
//                                            flattened first (a flatten layer is inserted)
//   maxpool:K[:stride=S][:pad=P]   avgpool:K[:stride=S][:pad=P][:include_pad=0]   gap (global average)
//   adaptiveavgpool:S or :HxW      torch.nn.AdaptiveAvgPool2d (VGG's 7x7)
//   relu  relu6  leakyrelu[:SLOPE]  sigmoid  tanh  dropout[:P]  bn (batchnorm)  flatten
//   lrn[:SIZE][:alpha=A][:beta=B][:k=K]
//   res(SPEC)    y = SPEC(x) + x; when the shape changes, the shortcut is a 1x1 conv (stride from the
//                shapes, no bias) + bn (ResNet "option B")
//   resa(SPEC)   the same with the parameter-free zero-pad shortcut (ResNet "option A")
//   block(SPEC)  torchvision's residual block: y = relu(SPEC(x) + x) with res's projection shortcut,
//                named "downsample"; SPEC's layers are named directly under the block (no "body")
//   ires(SPEC)   torchvision's inverted residual (MobileNetV2): y = x + SPEC(x), SPEC named "conv"
//   seq(SPEC)    a nested sequence (torch.nn.Sequential)
//   NAME=ITEM    names the item's module (an identifier, as a torch.nn.Module attribute): its
//                parameters are NAME.weight, ... instead of INDEX.weight. torchvision's names, e.g.
//                conv1=conv:64:7:stride=2:pad=3:bias=0,bn1=bn,...,layer1=seq(block(...),...),fc=linear
//   init=I       default initialisation of the conv/linear items that follow (see layers/nn/init.h)
// Example: conv:32:3:pad=1,relu,maxpool:2,conv:64:3:pad=1,relu,maxpool:2,linear:128,relu,linear
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "layers/nn/layer.h"

namespace fovea::nn {

// An error in a model spec, its message already saying where in the spec ("model spec: item 3 'conv:x': ...").
class SpecError : public UsageError {
 public:
  using UsageError::UsageError;
};

class Model {
 public:
  // `sample` is one example's shape ([C, H, W] or [F]).
  Model(std::string name, std::string spec, Shape sample, int64_t classes, std::unique_ptr<Sequential> net);

  const std::string& name() const { return name_; }  // zoo name, or "custom"
  void set_name(std::string name) { name_ = std::move(name); }
  const std::string& spec() const { return spec_; }  // the spec it was built from (zoo names expanded)
  const Shape& sample_shape() const { return sample_; }
  int64_t classes() const { return classes_; }
  Sequential& net() { return *net_; }
  const Sequential& net() const { return *net_; }
  Device device() const { return device_; }

  void to(Device d);
  // Initialises every parameter and state from the Philox stream `seed` on the model's device.
  void initialize(ops::Context& ctx, uint64_t seed);
  void train(bool on) { net_->set_training(on); }
  bool training() const { return net_->training(); }
  void set_rng(uint64_t seed, uint64_t step) { net_->set_rng(seed, step); }
  void zero_grad() { net_->zero_grad(); }

  Output forward(ops::Context& ctx, const Tensor& x) { return net_->forward(ctx, x); }
  Tensor backward(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down = false) {
    return net_->backward(ctx, dy, saved, propagate_down);
  }

  std::vector<ParamRef> parameters();
  std::vector<StateRef> states();
  int64_t num_parameters() const { return net_->num_params(); }
  int64_t num_trainable() const;
  // One line per top-level layer: index, description, output shape, parameters.
  std::string summary() const;

  // Parameters and states as host tensors by path (the checkpoint's model part).
  std::map<std::string, Tensor> state_dict() const;
  // Copies matching entries onto the model's device. strict: every parameter and state must be
  // present with its shape, and no unknown entries (but batch norm's num_batches_tracked, which
  // PyTorch saves and fovea does not use: accepted when it is one int64). Non-strict (transfer learning): entries whose
  // name or shape does not match are skipped and listed in `skipped`.
  void load_state_dict(const std::map<std::string, Tensor>& tensors, bool strict,
                       std::vector<std::string>* skipped = nullptr);
  // Freezes (trainable = false) the top-level layers named by `which`: indices and ranges "0-5,7",
  // or "all-but-last" (everything but the last layer with parameters). Returns the frozen parameter paths.
  // Errors are UsageErrors naming `what` (e.g. "--freeze").
  std::vector<std::string> freeze(std::string_view which, std::string_view what = "freeze");

 private:
  std::string name_, spec_;
  Shape sample_;
  int64_t classes_;
  std::unique_ptr<Sequential> net_;
  Device device_ = kCPU;
};

struct ZooEntry {
  std::string name, description, spec;
};
// mnist_cnn, lenet5, cifar_quick, cifar_full, resnet20, resnet18_cifar, resnet9, small_cnn (the default), mlp,
// and torchvision's ImageNet models with its parameter names: resnet18, resnet34, resnet50, vgg16, mobilenet_v2.
const std::vector<ZooEntry>& model_zoo();
// The zoo entry's spec, or the text itself when it is not a zoo name.
std::string expand_model_name(std::string_view name_or_spec);

// Builds the net for inputs of shape `sample` ([C, H, W] or [F]) and `classes` outputs on the CPU,
// parameters zero (call initialize). Errors name the item, its position and the problem.
std::unique_ptr<Model> build_model(std::string_view name_or_spec, const Shape& sample, int64_t classes);

}  // namespace fovea::nn
