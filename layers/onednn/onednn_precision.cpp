// conv2d and linear at a reduced precision on oneDNN (the onednn slots of the *_precision stubs of
// layers/ops/conv2d.h and linear.h), with cpu_reference/gemm.h's semantics: operands rounded to the type, exact
// products, FP32 sums, each output rounded once to the type; the op's tensors stay FP32.
//
// bf16: the user's FP32 tensors are reordered into BF16 memories (oneDNN's f32 -> bf16 conversion rounds to
// nearest even, as vcvtneps2bf16 does: checked bitwise by tests/op_registry_test.cpp, OnednnPrecision), the
// primitive multiplies BF16 pairs exactly and sums them in FP32 (vdpbf16ps; oneDNN's bf16 kernels accumulate in
// f32), and writes a BF16 destination: one rounding of the FP32 sum (bias included), to nearest even. The BF16
// result is reordered back into the user's FP32 tensor, which is exact. A bias is a BF16 memory too: the
// reference reads it as a value of the output type. Destinations of every direction (y, dx, dw) are BF16 for the
// same single rounding. Sums run in oneDNN's order (not OpenBLAS's): only the output rounding can differ from the
// reference's, when the two FP32 sums differ (tests bound it).
//
// vdpbf16ps treats BF16 subnormals as zero and flushes subnormal results (DAZ/FTZ): operands below 2^-126 in
// magnitude read as 0 here and not in the reference. A trained network's tensors never come near.
//
// Where oneDNN has no optimised BF16 kernel for the shape on this CPU (it would pick its slow reference
// implementation "ref:any", e.g. on a CPU without AVX-512), the call runs our reference of the precision instead.
// tf32 and fp16 always run the reference: oneDNN 2.6 has no TF32 on CPUs (its fpmath mode tf32 is for GPUs and
// AMX) and runs FP16 convolutions only on AVX512_FP16 (Sapphire Rapids), which this module's CPU lacks.
#include <string>

#include "layers/onednn/onednn_common.h"
#include "layers/ops/conv2d.h"
#include "layers/ops/linear.h"

namespace fovea::onednn::detail {
namespace {

using Dir = Plan::Dir;
using dt = memory::data_type;

// The same call on backend custom: the cpu slot (our reference of the precision).
Exec reference_exec(const Exec& ex) {
  Exec r = ex;
  r.backend = Backend::custom;
  return r;
}

// oneDNN's reference implementations ("ref:any", "gemm:ref"...) are far slower than ours on OpenBLAS.
bool optimised(const char* impl) {
  return std::string(impl).find("ref") == std::string::npos;
}

memory::desc bf16(const Dims& dims, Tag tag) {
  return FOVEA_DNNL(memory::desc(dims, dt::bf16, tag));
}

// ---------------------------------------------------------------- conv2d

struct ConvDescs {
  memory::desc x_user, w_user, y_user, b_user;  // FP32: NCHW, KCRS (GKCRS with groups), NKPQ, K
  memory::desc x, w, y, b;                      // BF16: any format (oneDNN's blocked ones), the bias plain
  Dims strides, dilation, pad_l, pad_r;
};

ConvDescs conv_descs(const Conv2dParams& p) {
  ConvDescs d;
  const Dims x{p.N, p.C, p.H, p.W}, y{p.N, p.K, p.P(), p.Q()};
  const Dims w = p.groups == 1 ? Dims{p.K, p.C, p.R, p.S} : Dims{p.groups, p.K_per_group(), p.C_per_group(), p.R, p.S};
  const Tag wtag = p.groups == 1 ? Tag::oihw : Tag::goihw;
  d.x_user = plain(x, Tag::nchw), d.y_user = plain(y, Tag::nchw), d.w_user = plain(w, wtag);
  d.b_user = plain({p.K}, Tag::x);
  d.x = bf16(x, Tag::any), d.y = bf16(y, Tag::any), d.w = bf16(w, Tag::any), d.b = bf16({p.K}, Tag::x);
  d.strides = {p.stride_h, p.stride_w};
  d.dilation = {p.dil_h - 1, p.dil_w - 1};  // oneDNN counts the gaps
  d.pad_l = {p.pad_h, p.pad_w};             // PyTorch's floor mode, as onednn_conv.cpp
  d.pad_r = d.pad_l;
  return d;
}

Key conv_key(Precision prec, const Conv2dParams& p, bool bias) {
  return {int64_t(prec), p.N,        p.C,     p.H,     p.W,     p.K,     p.R,      p.S,
          p.stride_h,    p.stride_w, p.pad_h, p.pad_w, p.dil_h, p.dil_w, p.groups, bias ? 1 : 0};
}

dnnl::convolution_forward::primitive_desc conv_forward_pd(const ConvDescs& d, bool bias) {
  const auto desc = bias ? FOVEA_DNNL(dnnl::convolution_forward::desc(
                               dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, d.x, d.w, d.b,
                               d.y, d.strides, d.dilation, d.pad_l, d.pad_r))
                         : FOVEA_DNNL(dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                                                      dnnl::algorithm::convolution_direct, d.x, d.w,
                                                                      d.y, d.strides, d.dilation, d.pad_l, d.pad_r));
  return FOVEA_DNNL(dnnl::convolution_forward::primitive_desc(desc, user_scratchpad(), engine()));
}

// A plan without a primitive (impl() empty) stands for "run the reference": oneDNN has only a slow kernel.
template <class PD>
Plan finish(Plan plan, const PD& pd, dnnl::primitive prim) {
  if (optimised(pd.impl_info_str())) plan.set(std::move(prim), pd.scratchpad_desc(), pd.impl_info_str());
  return plan;
}

void conv2d_forward(const Exec& ex, Precision prec, const Conv2dParams& p, const float* x, const float* w,
                    const float* b, float* y) {
  const char* stub = ops::conv2d_forward_precision_stub.name();
  const bool bias = b != nullptr;
  Plan* plan = prec != Precision::bf16 ? nullptr : &cached_plan(stub, conv_key(prec, p, bias), [&] {
    const ConvDescs d = conv_descs(p);
    const auto pd = conv_forward_pd(d, bias);
    Plan pl(stub);
    pl.add(DNNL_ARG_SRC, pd.src_desc(), d.x_user, Dir::in);
    pl.add(DNNL_ARG_WEIGHTS, pd.weights_desc(), d.w_user, Dir::in);
    if (bias) pl.add(DNNL_ARG_BIAS, pd.bias_desc(), d.b_user, Dir::in);
    pl.add(DNNL_ARG_DST, pd.dst_desc(), d.y_user, Dir::out);
    return finish(std::move(pl), pd, FOVEA_DNNL(dnnl::convolution_forward(pd)));
  });
  if (!plan || plan->impl().empty())
    ops::conv2d_forward_precision_stub(reference_exec(ex), prec, p, x, w, b, y);
  else if (bias)
    plan->run(ex, {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_BIAS, b}, {DNNL_ARG_DST, y}});
  else
    plan->run(ex, {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, y}});
}

void conv2d_backward_data(const Exec& ex, Precision prec, const Conv2dParams& p, const float* dy, const float* w,
                          float* dx) {
  const char* stub = ops::conv2d_backward_data_precision_stub.name();
  Plan* plan = prec != Precision::bf16 ? nullptr : &cached_plan(stub, conv_key(prec, p, false), [&] {
    const ConvDescs d = conv_descs(p);
    const auto hint = conv_forward_pd(d, false);
    const auto desc = FOVEA_DNNL(dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, d.x, d.w,
                                                                       d.y, d.strides, d.dilation, d.pad_l, d.pad_r));
    const auto pd =
        FOVEA_DNNL(dnnl::convolution_backward_data::primitive_desc(desc, user_scratchpad(), engine(), hint));
    Plan pl(stub);
    pl.add(DNNL_ARG_DIFF_DST, pd.diff_dst_desc(), d.y_user, Dir::in);
    pl.add(DNNL_ARG_WEIGHTS, pd.weights_desc(), d.w_user, Dir::in);
    pl.add(DNNL_ARG_DIFF_SRC, pd.diff_src_desc(), d.x_user, Dir::out);
    return finish(std::move(pl), pd, FOVEA_DNNL(dnnl::convolution_backward_data(pd)));
  });
  if (!plan || plan->impl().empty())
    ops::conv2d_backward_data_precision_stub(reference_exec(ex), prec, p, dy, w, dx);
  else
    plan->run(ex, {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_SRC, dx}});
}

void conv2d_backward_filter(const Exec& ex, Precision prec, const Conv2dParams& p, const float* x, const float* dy,
                            float* dw) {
  const char* stub = ops::conv2d_backward_filter_precision_stub.name();
  Plan* plan = prec != Precision::bf16 ? nullptr : &cached_plan(stub, conv_key(prec, p, false), [&] {
    const ConvDescs d = conv_descs(p);
    const auto hint = conv_forward_pd(d, false);
    const auto desc = FOVEA_DNNL(dnnl::convolution_backward_weights::desc(
        dnnl::algorithm::convolution_direct, d.x, d.w, d.y, d.strides, d.dilation, d.pad_l, d.pad_r));
    const auto pd =
        FOVEA_DNNL(dnnl::convolution_backward_weights::primitive_desc(desc, user_scratchpad(), engine(), hint));
    Plan pl(stub);
    pl.add(DNNL_ARG_SRC, pd.src_desc(), d.x_user, Dir::in);
    pl.add(DNNL_ARG_DIFF_DST, pd.diff_dst_desc(), d.y_user, Dir::in);
    pl.add(DNNL_ARG_DIFF_WEIGHTS, pd.diff_weights_desc(), d.w_user, Dir::out);
    return finish(std::move(pl), pd, FOVEA_DNNL(dnnl::convolution_backward_weights(pd)));
  });
  if (!plan || plan->impl().empty())
    ops::conv2d_backward_filter_precision_stub(reference_exec(ex), prec, p, x, dy, dw);
  else
    plan->run(ex, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_WEIGHTS, dw}});
}

// ---------------------------------------------------------------- linear (inner product, plain formats)

struct LinearDescs {
  memory::desc x_user, w_user, b_user, y_user;  // FP32: x [N, in] nc, W [out, in] oi, b [out], y [N, out] nc
  memory::desc x, w, b, y;                      // BF16, the same formats
};

LinearDescs linear_descs(const LinearParams& p) {
  const Dims x{p.N, p.in_features}, w{p.out_features, p.in_features}, b{p.out_features}, y{p.N, p.out_features};
  return {plain(x, Tag::nc), plain(w, Tag::oi), plain(b, Tag::x), plain(y, Tag::nc),
          bf16(x, Tag::nc),  bf16(w, Tag::oi),  bf16(b, Tag::x),  bf16(y, Tag::nc)};
}

Key linear_key(Precision prec, const LinearParams& p, bool bias) {
  return {int64_t(prec), p.N, p.in_features, p.out_features, bias ? 1 : 0};
}

dnnl::inner_product_forward::primitive_desc linear_forward_pd(const LinearDescs& d, bool bias) {
  using dnnl::prop_kind;
  const auto desc = bias
                        ? FOVEA_DNNL(dnnl::inner_product_forward::desc(prop_kind::forward_training, d.x, d.w, d.b, d.y))
                        : FOVEA_DNNL(dnnl::inner_product_forward::desc(prop_kind::forward_training, d.x, d.w, d.y));
  return FOVEA_DNNL(dnnl::inner_product_forward::primitive_desc(desc, user_scratchpad(), engine()));
}

void linear_forward(const Exec& ex, Precision prec, const LinearParams& p, const float* x, const float* w,
                    const float* b, float* y) {
  const char* stub = ops::linear_forward_precision_stub.name();
  const bool bias = b != nullptr;
  Plan* plan = prec != Precision::bf16 ? nullptr : &cached_plan(stub, linear_key(prec, p, bias), [&] {
    const LinearDescs d = linear_descs(p);
    const auto pd = linear_forward_pd(d, bias);
    Plan pl(stub);
    pl.add(DNNL_ARG_SRC, pd.src_desc(), d.x_user, Dir::in);
    pl.add(DNNL_ARG_WEIGHTS, pd.weights_desc(), d.w_user, Dir::in);
    if (bias) pl.add(DNNL_ARG_BIAS, pd.bias_desc(), d.b_user, Dir::in);
    pl.add(DNNL_ARG_DST, pd.dst_desc(), d.y_user, Dir::out);
    return finish(std::move(pl), pd, FOVEA_DNNL(dnnl::inner_product_forward(pd)));
  });
  if (!plan || plan->impl().empty())
    ops::linear_forward_precision_stub(reference_exec(ex), prec, p, x, w, b, y);
  else if (bias)
    plan->run(ex, {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_BIAS, b}, {DNNL_ARG_DST, y}});
  else
    plan->run(ex, {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, y}});
}

void linear_backward_data(const Exec& ex, Precision prec, const LinearParams& p, const float* dy, const float* w,
                          float* dx) {
  const char* stub = ops::linear_backward_data_precision_stub.name();
  Plan* plan = prec != Precision::bf16 ? nullptr : &cached_plan(stub, linear_key(prec, p, false), [&] {
    const LinearDescs d = linear_descs(p);
    const auto hint = linear_forward_pd(d, false);
    const auto desc = FOVEA_DNNL(dnnl::inner_product_backward_data::desc(d.x, d.w, d.y));
    const auto pd =
        FOVEA_DNNL(dnnl::inner_product_backward_data::primitive_desc(desc, user_scratchpad(), engine(), hint));
    Plan pl(stub);
    pl.add(DNNL_ARG_DIFF_DST, pd.diff_dst_desc(), d.y_user, Dir::in);
    pl.add(DNNL_ARG_WEIGHTS, pd.weights_desc(), d.w_user, Dir::in);
    pl.add(DNNL_ARG_DIFF_SRC, pd.diff_src_desc(), d.x_user, Dir::out);
    return finish(std::move(pl), pd, FOVEA_DNNL(dnnl::inner_product_backward_data(pd)));
  });
  if (!plan || plan->impl().empty())
    ops::linear_backward_data_precision_stub(reference_exec(ex), prec, p, dy, w, dx);
  else
    plan->run(ex, {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_SRC, dx}});
}

void linear_backward_weight(const Exec& ex, Precision prec, const LinearParams& p, const float* x, const float* dy,
                            float* dw) {
  const char* stub = ops::linear_backward_weight_precision_stub.name();
  Plan* plan = prec != Precision::bf16 ? nullptr : &cached_plan(stub, linear_key(prec, p, false), [&] {
    const LinearDescs d = linear_descs(p);
    const auto hint = linear_forward_pd(d, false);
    const auto desc = FOVEA_DNNL(dnnl::inner_product_backward_weights::desc(d.x, d.w, d.y));
    const auto pd =
        FOVEA_DNNL(dnnl::inner_product_backward_weights::primitive_desc(desc, user_scratchpad(), engine(), hint));
    Plan pl(stub);
    pl.add(DNNL_ARG_SRC, pd.src_desc(), d.x_user, Dir::in);
    pl.add(DNNL_ARG_DIFF_DST, pd.diff_dst_desc(), d.y_user, Dir::in);
    pl.add(DNNL_ARG_DIFF_WEIGHTS, pd.diff_weights_desc(), d.w_user, Dir::out);
    return finish(std::move(pl), pd, FOVEA_DNNL(dnnl::inner_product_backward_weights(pd)));
  });
  if (!plan || plan->impl().empty())
    ops::linear_backward_weight_precision_stub(reference_exec(ex), prec, p, x, dy, dw);
  else
    plan->run(ex, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_WEIGHTS, dw}});
}

const bool registered = ops::conv2d_forward_precision_stub.define(Slot::onednn, conv2d_forward) &&
                        ops::conv2d_backward_data_precision_stub.define(Slot::onednn, conv2d_backward_data) &&
                        ops::conv2d_backward_filter_precision_stub.define(Slot::onednn, conv2d_backward_filter) &&
                        ops::linear_forward_precision_stub.define(Slot::onednn, linear_forward) &&
                        ops::linear_backward_data_precision_stub.define(Slot::onednn, linear_backward_data) &&
                        ops::linear_backward_weight_precision_stub.define(Slot::onednn, linear_backward_weight);

}  // namespace
}  // namespace fovea::onednn::detail
