// linear on oneDNN's inner product: y = x W^T + b, dx = dy W, dW = dy^T x; db by a reduction. Plain formats
// (x [N, in] nc, W [out, in] oi): oneDNN runs these as GEMMs on its own JIT kernels either way.
#include "layers/onednn/onednn_common.h"
#include "layers/ops/linear.h"

namespace fovea::onednn::detail {
namespace {

using Dir = Plan::Dir;
using dnnl::prop_kind;

struct LinearDescs {
  memory::desc x, w, b, y;
};

LinearDescs linear_descs(const LinearParams& p) {
  return {plain({p.N, p.in_features}, Tag::nc), plain({p.out_features, p.in_features}, Tag::oi),
          plain({p.out_features}, Tag::x), plain({p.N, p.out_features}, Tag::nc)};
}

Key linear_key(const LinearParams& p, bool bias) {
  return {p.N, p.in_features, p.out_features, bias};
}

dnnl::inner_product_forward::primitive_desc forward_pd(const LinearDescs& d, bool bias) {
  const auto desc = bias
                        ? FOVEA_DNNL(dnnl::inner_product_forward::desc(prop_kind::forward_training, d.x, d.w, d.b, d.y))
                        : FOVEA_DNNL(dnnl::inner_product_forward::desc(prop_kind::forward_training, d.x, d.w, d.y));
  return FOVEA_DNNL(dnnl::inner_product_forward::primitive_desc(desc, user_scratchpad(), engine()));
}

void linear_forward(const Exec& ex, const LinearParams& p, const float* x, const float* w, const float* b, float* y) {
  const char* stub = ops::linear_forward_stub.name();
  const bool bias = b != nullptr;
  Plan& plan = cached_plan(stub, linear_key(p, bias), [&] {
    const LinearDescs d = linear_descs(p);
    const auto pd = forward_pd(d, bias);
    Plan pl(stub);
    pl.add(DNNL_ARG_SRC, pd.src_desc(), d.x, Dir::in);
    pl.add(DNNL_ARG_WEIGHTS, pd.weights_desc(), d.w, Dir::in);
    if (bias) pl.add(DNNL_ARG_BIAS, pd.bias_desc(), d.b, Dir::in);
    pl.add(DNNL_ARG_DST, pd.dst_desc(), d.y, Dir::out);
    pl.set(FOVEA_DNNL(dnnl::inner_product_forward(pd)), pd.scratchpad_desc(), pd.impl_info_str());
    return pl;
  });
  if (bias)
    plan.run(ex, {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_BIAS, b}, {DNNL_ARG_DST, y}});
  else
    plan.run(ex, {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, y}});
}

void linear_backward_data(const Exec& ex, const LinearParams& p, const float* dy, const float* w, float* dx) {
  const char* stub = ops::linear_backward_data_stub.name();
  Plan& plan = cached_plan(stub, linear_key(p, false), [&] {
    const LinearDescs d = linear_descs(p);
    const auto hint = forward_pd(d, false);
    const auto desc = FOVEA_DNNL(dnnl::inner_product_backward_data::desc(d.x, d.w, d.y));
    const auto pd =
        FOVEA_DNNL(dnnl::inner_product_backward_data::primitive_desc(desc, user_scratchpad(), engine(), hint));
    Plan pl(stub);
    pl.add(DNNL_ARG_DIFF_DST, pd.diff_dst_desc(), d.y, Dir::in);
    pl.add(DNNL_ARG_WEIGHTS, pd.weights_desc(), d.w, Dir::in);
    pl.add(DNNL_ARG_DIFF_SRC, pd.diff_src_desc(), d.x, Dir::out);
    pl.set(FOVEA_DNNL(dnnl::inner_product_backward_data(pd)), pd.scratchpad_desc(), pd.impl_info_str());
    return pl;
  });
  plan.run(ex, {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_SRC, dx}});
}

void linear_backward_weight(const Exec& ex, const LinearParams& p, const float* x, const float* dy, float* dw) {
  const char* stub = ops::linear_backward_weight_stub.name();
  Plan& plan = cached_plan(stub, linear_key(p, false), [&] {
    const LinearDescs d = linear_descs(p);
    const auto hint = forward_pd(d, false);
    const auto desc = FOVEA_DNNL(dnnl::inner_product_backward_weights::desc(d.x, d.w, d.y));
    const auto pd =
        FOVEA_DNNL(dnnl::inner_product_backward_weights::primitive_desc(desc, user_scratchpad(), engine(), hint));
    Plan pl(stub);
    pl.add(DNNL_ARG_SRC, pd.src_desc(), d.x, Dir::in);
    pl.add(DNNL_ARG_DIFF_DST, pd.diff_dst_desc(), d.y, Dir::in);
    pl.add(DNNL_ARG_DIFF_WEIGHTS, pd.diff_weights_desc(), d.w, Dir::out);
    pl.set(FOVEA_DNNL(dnnl::inner_product_backward_weights(pd)), pd.scratchpad_desc(), pd.impl_info_str());
    return pl;
  });
  plan.run(ex, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_WEIGHTS, dw}});
}

const bool registered = ops::linear_forward_stub.define(Slot::onednn, linear_forward) &&
                        ops::linear_backward_data_stub.define(Slot::onednn, linear_backward_data) &&
                        ops::linear_backward_weight_stub.define(Slot::onednn, linear_backward_weight);

}  // namespace
}  // namespace fovea::onednn::detail
