// Conv2d and the zero-pad (option A) ResNet shortcut.
#include <fmt/core.h>

#include "core/error.h"
#include "layers/nn/layers.h"

namespace fovea::nn {
namespace {

struct ConvSaved : Saved {
  Tensor x;
};

std::string attrs_str(const ops::Conv2dAttrs& a) {
  std::string s;
  if (a.stride_h != 1 || a.stride_w != 1)
    s += a.stride_h == a.stride_w ? fmt::format(" stride {}", a.stride_h)
                                  : fmt::format(" stride {}x{}", a.stride_h, a.stride_w);
  if (a.pad_h != 0 || a.pad_w != 0)
    s += a.pad_h == a.pad_w ? fmt::format(" pad {}", a.pad_h) : fmt::format(" pad {}x{}", a.pad_h, a.pad_w);
  if (a.dil_h != 1 || a.dil_w != 1) s += fmt::format(" dilation {}x{}", a.dil_h, a.dil_w);
  if (a.groups != 1) s += fmt::format(" groups {}", a.groups);
  return s;
}

}  // namespace

Conv2d::Conv2d(const Conv2dOptions& o) : o_(o) {
  FOVEA_CHECK(o.in_channels > 0 && o.out_channels > 0, "conv2d: channels must be > 0, got ", o.in_channels, " -> ",
              o.out_channels);
  FOVEA_CHECK(o.kernel_h > 0 && o.kernel_w > 0, "conv2d: kernel must be > 0, got ", o.kernel_h, "x", o.kernel_w);
  FOVEA_CHECK(o.attrs.groups > 0 && o.in_channels % o.attrs.groups == 0 && o.out_channels % o.attrs.groups == 0,
              "conv2d: groups ", o.attrs.groups, " must divide the channels ", o.in_channels, " and ", o.out_channels);
  add_param("weight", Tensor::zeros({o.out_channels, o.in_channels / o.attrs.groups, o.kernel_h, o.kernel_w}));
  if (o.bias) add_param("bias", Tensor::zeros({o.out_channels}));
}

std::string Conv2d::describe() const {
  return fmt::format("conv2d {}->{} {}x{}{}{}", o_.in_channels, o_.out_channels, o_.kernel_h, o_.kernel_w,
                     attrs_str(o_.attrs), o_.bias ? "" : " no-bias");
}

Shape Conv2d::output_shape(const Shape& in) const {
  FOVEA_CHECK(in.ndim() == 4, "conv2d: input must be [N, C, H, W], got ", in.str());
  FOVEA_CHECK(in[1] == o_.in_channels, "conv2d: expects ", o_.in_channels, " input channels, got ", in.str());
  const Conv2dParams p = ops::conv2d_params(in, params_[0].value.shape(), o_.attrs);
  return Shape{p.N, p.K, p.P(), p.Q()};
}

void Conv2d::reset_parameters(ops::Context& ctx, uint64_t seed, uint64_t& counter) {
  init_weight(ctx, params_[0].value, o_.init, seed, counter++);
  if (o_.bias) init_bias(ctx, params_[1].value, o_.init, weight_fans(params_[0].value.shape()).in, seed, counter++);
}

Output Conv2d::forward_impl(ops::Context& ctx, const Tensor& x) {
  ops::Context c = local_context(ctx);
  Tensor y = ops::conv2d_forward(c, x, params_[0].value, o_.bias ? params_[1].value : Tensor(), o_.attrs);
  if (!training_) return {y, nullptr};
  auto s = std::make_unique<ConvSaved>();
  s->x = x;
  return {y, std::move(s)};
}

Tensor Conv2d::backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) {
  ops::Context c = local_context(ctx);
  auto& s = dynamic_cast<ConvSaved&>(saved);
  Param& w = params_[0];
  if (w.trainable) accumulate_grad(c, w, ops::conv2d_backward_filter(c, s.x, dy, w.value.shape(), o_.attrs));
  if (o_.bias && params_[1].trainable) accumulate_grad(c, params_[1], ops::conv2d_backward_bias(c, dy));
  if (!propagate_down) return Tensor();
  return ops::conv2d_backward_data(c, dy, w.value, s.x.shape(), o_.attrs);
}

// ---------------------------------------------------------------- ZeroPadShortcut

ZeroPadShortcut::ZeroPadShortcut(int64_t in_channels, int64_t out_channels, int64_t stride)
    : in_(in_channels), out_(out_channels), stride_(stride) {
  FOVEA_CHECK(in_channels > 0 && out_channels >= in_channels,
              "zero_pad_shortcut: needs 0 < in_channels <= out_channels, got ", in_channels, " -> ", out_channels);
  FOVEA_CHECK(stride > 0, "zero_pad_shortcut: stride must be > 0, got ", stride);
  std::vector<float> w(size_t(out_channels * in_channels), 0.0f);
  const int64_t lo = (out_channels - in_channels) / 2;
  for (int64_t c = 0; c < in_channels; ++c) w[size_t((lo + c) * in_channels + c)] = 1.0f;
  w_ = Tensor::from_vector(w, {out_channels, in_channels, 1, 1});
  constants_.push_back(&w_);
}

std::string ZeroPadShortcut::describe() const {
  return fmt::format("zero_pad_shortcut {}->{} stride {}", in_, out_, stride_);
}

Shape ZeroPadShortcut::output_shape(const Shape& in) const {
  FOVEA_CHECK(in.ndim() == 4 && in[1] == in_, "zero_pad_shortcut: expects [N, ", in_, ", H, W], got ", in.str());
  ops::Conv2dAttrs a;
  a.stride_h = a.stride_w = stride_;
  const Conv2dParams p = ops::conv2d_params(in, w_.shape(), a);
  return Shape{p.N, p.K, p.P(), p.Q()};
}

Output ZeroPadShortcut::forward_impl(ops::Context& ctx, const Tensor& x) {
  FOVEA_CHECK(w_.device() == ctx.device, "zero_pad_shortcut: constant weight is on ", w_.device().str(),
              ", context on ", ctx.device.str());
  ops::Context c = local_context(ctx);
  ops::Conv2dAttrs a;
  a.stride_h = a.stride_w = stride_;
  Tensor y = ops::conv2d_forward(c, x, w_, Tensor(), a);
  return {y, training_ ? std::make_unique<Saved>() : nullptr};
}

Tensor ZeroPadShortcut::backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) {
  if (!propagate_down) return Tensor();
  ops::Context c = local_context(ctx);
  ops::Conv2dAttrs a;
  a.stride_h = a.stride_w = stride_;
  return ops::conv2d_backward_data(c, dy, w_, saved.x_shape, a);
}

}  // namespace fovea::nn
