// conv2d on oneDNN: forward (bias fused), backward data, backward weights. The bias gradient is a loop of ours
// (onednn_batchnorm.cpp): oneDNN 2.6 has only a reference kernel for its reduction primitive ("ref:any"), which
// took most of a mnist_cnn training step (ONEDNN_VERBOSE). Direct convolution only (never Winograd: its error is larger
// than float32 rounding), in oneDNN's blocked formats with reorders at the edges unless Settings::blocked_conv_formats
// is off (onednn_backend.h says why).
#include "layers/ops/conv2d.h"

#include "layers/onednn/onednn_common.h"

namespace fovea::onednn::detail {
namespace {

using Dir = Plan::Dir;

struct ConvDescs {
  memory::desc x_user, w_user, y_user, b_user;  // NCHW, KCRS (GKCRS with groups), NKPQ, K
  memory::desc x, w, y, b;                      // what the primitive is asked for: any, or the plain ones
  Dims strides, dilation, pad_l, pad_r;
};

ConvDescs conv_descs(const Conv2dParams& p, bool blocked) {
  ConvDescs d;
  const Dims x{p.N, p.C, p.H, p.W}, y{p.N, p.K, p.P(), p.Q()};
  const Dims w = p.groups == 1 ? Dims{p.K, p.C, p.R, p.S} : Dims{p.groups, p.K_per_group(), p.C_per_group(), p.R, p.S};
  const Tag wtag = p.groups == 1 ? Tag::oihw : Tag::goihw;
  d.x_user = plain(x, Tag::nchw), d.y_user = plain(y, Tag::nchw), d.w_user = plain(w, wtag);
  d.b_user = plain({p.K}, Tag::x);
  d.x = any_or(blocked, x, Tag::nchw), d.y = any_or(blocked, y, Tag::nchw), d.w = any_or(blocked, w, wtag);
  d.b = d.b_user;
  d.strides = {p.stride_h, p.stride_w};
  d.dilation = {p.dil_h - 1, p.dil_w - 1};  // oneDNN counts the gaps: 0 is a dense kernel
  // PyTorch's floor mode: oneDNN derives the output size as floor((in + pad_l + pad_r - extent) / stride) + 1,
  // ours with pad_r = pad_l; rows beyond the last window are never read.
  d.pad_l = {p.pad_h, p.pad_w};
  d.pad_r = d.pad_l;
  return d;
}

Key conv_key(const Conv2dParams& p, bool bias, bool blocked) {
  return {p.N,        p.C,     p.H,     p.W,     p.K,     p.R,      p.S,          p.stride_h,
          p.stride_w, p.pad_h, p.pad_w, p.dil_h, p.dil_w, p.groups, bias ? 1 : 0, blocked ? 1 : 0};
}

dnnl::convolution_forward::primitive_desc forward_pd(const ConvDescs& d, bool bias) {
  const auto desc = bias ? FOVEA_DNNL(dnnl::convolution_forward::desc(
                               dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, d.x, d.w, d.b,
                               d.y, d.strides, d.dilation, d.pad_l, d.pad_r))
                         : FOVEA_DNNL(dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                                                      dnnl::algorithm::convolution_direct, d.x, d.w,
                                                                      d.y, d.strides, d.dilation, d.pad_l, d.pad_r));
  return FOVEA_DNNL(dnnl::convolution_forward::primitive_desc(desc, user_scratchpad(), engine()));
}

Plan make_forward(const Conv2dParams& p, bool bias, bool blocked) {
  const ConvDescs d = conv_descs(p, blocked);
  const auto pd = forward_pd(d, bias);
  Plan plan(ops::conv2d_forward_stub.name());
  plan.add(DNNL_ARG_SRC, pd.src_desc(), d.x_user, Dir::in);
  plan.add(DNNL_ARG_WEIGHTS, pd.weights_desc(), d.w_user, Dir::in);
  if (bias) plan.add(DNNL_ARG_BIAS, pd.bias_desc(), d.b_user, Dir::in);
  plan.add(DNNL_ARG_DST, pd.dst_desc(), d.y_user, Dir::out);
  plan.set(FOVEA_DNNL(dnnl::convolution_forward(pd)), pd.scratchpad_desc(), pd.impl_info_str());
  return plan;
}

Plan make_backward_data(const Conv2dParams& p, bool blocked) {
  const ConvDescs d = conv_descs(p, blocked);
  const auto hint = forward_pd(d, false);
  const auto desc = FOVEA_DNNL(dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, d.x, d.w, d.y,
                                                                     d.strides, d.dilation, d.pad_l, d.pad_r));
  const auto pd = FOVEA_DNNL(dnnl::convolution_backward_data::primitive_desc(desc, user_scratchpad(), engine(), hint));
  Plan plan(ops::conv2d_backward_data_stub.name());
  plan.add(DNNL_ARG_DIFF_DST, pd.diff_dst_desc(), d.y_user, Dir::in);
  plan.add(DNNL_ARG_WEIGHTS, pd.weights_desc(), d.w_user, Dir::in);
  plan.add(DNNL_ARG_DIFF_SRC, pd.diff_src_desc(), d.x_user, Dir::out);
  plan.set(FOVEA_DNNL(dnnl::convolution_backward_data(pd)), pd.scratchpad_desc(), pd.impl_info_str());
  return plan;
}

Plan make_backward_weights(const Conv2dParams& p, bool blocked) {
  const ConvDescs d = conv_descs(p, blocked);
  const auto hint = forward_pd(d, false);
  const auto desc = FOVEA_DNNL(dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, d.x, d.w,
                                                                        d.y, d.strides, d.dilation, d.pad_l, d.pad_r));
  const auto pd =
      FOVEA_DNNL(dnnl::convolution_backward_weights::primitive_desc(desc, user_scratchpad(), engine(), hint));
  Plan plan(ops::conv2d_backward_filter_stub.name());
  plan.add(DNNL_ARG_SRC, pd.src_desc(), d.x_user, Dir::in);
  plan.add(DNNL_ARG_DIFF_DST, pd.diff_dst_desc(), d.y_user, Dir::in);
  plan.add(DNNL_ARG_DIFF_WEIGHTS, pd.diff_weights_desc(), d.w_user, Dir::out);
  plan.set(FOVEA_DNNL(dnnl::convolution_backward_weights(pd)), pd.scratchpad_desc(), pd.impl_info_str());
  return plan;
}

void conv2d_forward(const Exec& ex, const ConvConfig&, const Conv2dParams& p, const float* x, const float* w,
                    const float* b, float* y) {
  const bool blocked = settings().blocked_conv_formats;
  const bool bias = b != nullptr;
  Plan& plan = cached_plan(ops::conv2d_forward_stub.name(), conv_key(p, bias, blocked),
                           [&] { return make_forward(p, bias, blocked); });
  if (bias)
    plan.run(ex, {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_BIAS, b}, {DNNL_ARG_DST, y}});
  else
    plan.run(ex, {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, y}});
}

void conv2d_backward_data(const Exec& ex, const ConvConfig&, const Conv2dParams& p, const float* dy, const float* w,
                          float* dx) {
  const bool blocked = settings().blocked_conv_formats;
  Plan& plan = cached_plan(ops::conv2d_backward_data_stub.name(), conv_key(p, false, blocked),
                           [&] { return make_backward_data(p, blocked); });
  plan.run(ex, {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_SRC, dx}});
}

void conv2d_backward_filter(const Exec& ex, const ConvConfig&, const Conv2dParams& p, const float* x, const float* dy,
                            float* dw) {
  const bool blocked = settings().blocked_conv_formats;
  Plan& plan = cached_plan(ops::conv2d_backward_filter_stub.name(), conv_key(p, false, blocked),
                           [&] { return make_backward_weights(p, blocked); });
  plan.run(ex, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_WEIGHTS, dw}});
}

const bool registered = ops::conv2d_forward_stub.define(Slot::onednn, conv2d_forward) &&
                        ops::conv2d_backward_data_stub.define(Slot::onednn, conv2d_backward_data) &&
                        ops::conv2d_backward_filter_stub.define(Slot::onednn, conv2d_backward_filter);

}  // namespace
}  // namespace fovea::onednn::detail
