// MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, GlobalAvgPool.
#include <fmt/core.h>

#include "core/error.h"
#include "layers/nn/layers.h"

namespace fovea::nn {
namespace {

struct MaxPoolSaved : Saved {
  ops::MaxPoolOut forward;  // the indices (ours), or x and y (cuDNN)
};

std::string pool_str(const char* name, const ops::Pool2dAttrs& a) {
  std::string s = fmt::format("{} {}x{}", name, a.kernel_h, a.kernel_w);
  if (a.stride_h != a.kernel_h || a.stride_w != a.kernel_w) s += fmt::format(" stride {}x{}", a.stride_h, a.stride_w);
  if (a.pad_h || a.pad_w) s += fmt::format(" pad {}x{}", a.pad_h, a.pad_w);
  return s;
}

Shape pool_shape(const char* name, const Shape& in, const ops::Pool2dAttrs& a) {
  FOVEA_CHECK(in.ndim() == 4, name, ": input must be [N, C, H, W], got ", in.str());
  const Pool2dParams p = ops::pool2d_params(in, a);
  return Shape{p.N, p.C, p.P(), p.Q()};
}

}  // namespace

std::string MaxPool2d::describe() const {
  return pool_str("maxpool2d", a_);
}
Shape MaxPool2d::output_shape(const Shape& in) const {
  return pool_shape("maxpool2d", in, a_);
}

Output MaxPool2d::forward_impl(ops::Context& ctx, const Tensor& x) {
  ops::Context c = local_context(ctx);
  ops::MaxPoolOut o = ops::maxpool2d_forward(c, x, a_);
  if (!training_) return {o.y, nullptr};
  auto s = std::make_unique<MaxPoolSaved>();
  s->forward = o;
  if (o.indices.defined()) s->forward.y = Tensor();  // our backward needs only the indices
  return {o.y, std::move(s)};
}

Tensor MaxPool2d::backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) {
  if (!propagate_down) return Tensor();
  ops::Context c = local_context(ctx);
  auto& s = dynamic_cast<MaxPoolSaved&>(saved);
  return ops::maxpool2d_backward(c, dy, s.forward, s.x_shape, a_);
}

std::string AvgPool2d::describe() const {
  return pool_str("avgpool2d", a_) + ((a_.pad_h || a_.pad_w) && !a_.count_include_pad ? " exclude-pad" : "");
}
Shape AvgPool2d::output_shape(const Shape& in) const {
  return pool_shape("avgpool2d", in, a_);
}

Output AvgPool2d::forward_impl(ops::Context& ctx, const Tensor& x) {
  ops::Context c = local_context(ctx);
  Tensor y = ops::avgpool2d_forward(c, x, a_);
  return {y, training_ ? std::make_unique<Saved>() : nullptr};
}

Tensor AvgPool2d::backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) {
  if (!propagate_down) return Tensor();
  ops::Context c = local_context(ctx);
  return ops::avgpool2d_backward(c, dy, saved.x_shape, a_);
}

std::string AdaptiveAvgPool2d::describe() const {
  return fmt::format("adaptive_avgpool2d {}x{}", oh_, ow_);
}
Shape AdaptiveAvgPool2d::output_shape(const Shape& in) const {
  FOVEA_CHECK(in.ndim() == 4, "adaptive_avgpool2d: input must be [N, C, H, W], got ", in.str());
  FOVEA_CHECK(oh_ > 0 && ow_ > 0, "adaptive_avgpool2d: output size must be > 0, got ", oh_, "x", ow_);
  return Shape{in[0], in[1], oh_, ow_};
}
Output AdaptiveAvgPool2d::forward_impl(ops::Context& ctx, const Tensor& x) {
  ops::Context c = local_context(ctx);
  Tensor y = ops::adaptive_avgpool2d_forward(c, x, oh_, ow_);
  return {y, training_ ? std::make_unique<Saved>() : nullptr};
}
Tensor AdaptiveAvgPool2d::backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) {
  if (!propagate_down) return Tensor();
  ops::Context c = local_context(ctx);
  return ops::adaptive_avgpool2d_backward(c, dy, saved.x_shape);
}

Shape GlobalAvgPool::output_shape(const Shape& in) const {
  FOVEA_CHECK(in.ndim() == 4, "global_avgpool: input must be [N, C, H, W], got ", in.str());
  return Shape{in[0], in[1]};
}

Output GlobalAvgPool::forward_impl(ops::Context& ctx, const Tensor& x) {
  ops::Context c = local_context(ctx);
  Tensor y = ops::global_avgpool_forward(c, x);
  return {y, training_ ? std::make_unique<Saved>() : nullptr};
}

Tensor GlobalAvgPool::backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) {
  if (!propagate_down) return Tensor();
  ops::Context c = local_context(ctx);
  return ops::global_avgpool_backward(c, dy, saved.x_shape);
}

}  // namespace fovea::nn
