// Pooling and softmax on oneDNN, on the plain formats of the stubs (these ops are memory-bound: a reorder to a
// blocked format would cost as much as the op). Batch norm and the eltwise activations are not here: on plain
// NCHW oneDNN 2.6 runs batch norm on its generic kernel (ncsp_bnorm: 2x the reference's time for 128x16x32x32 on
// one thread), and with both the train step of resnet20 was 2x slower than the reference's (README, fovea bench);
// batch norm is onednn_batchnorm.cpp's loops, the activations the reference's, until blocked layouts are kept
// between layers.

#include "layers/onednn/onednn_common.h"
#include "layers/ops/pooling.h"
#include "layers/ops/softmax.h"

namespace fovea::onednn::detail {
namespace {

using Dir = Plan::Dir;
using dnnl::algorithm;
using dnnl::prop_kind;

// ---------------------------------------------------------------- pooling

struct PoolDescs {
  memory::desc x, y;
  Dims strides, kernel, pad_l, pad_r;
};

PoolDescs pool_descs(const Pool2dParams& p) {
  // PyTorch's floor mode: oneDNN's output size with pad_r = pad_l is floor((H + 2 pad - k) / s) + 1, ours.
  return {plain({p.N, p.C, p.H, p.W}, Tag::nchw),
          plain({p.N, p.C, p.P(), p.Q()}, Tag::nchw),
          {p.stride_h, p.stride_w},
          {p.kernel_h, p.kernel_w},
          {p.pad_h, p.pad_w},
          {p.pad_h, p.pad_w}};
}

Key pool_key(const Pool2dParams& p, int64_t algo) {
  return {p.N, p.C, p.H, p.W, p.kernel_h, p.kernel_w, p.stride_h, p.stride_w, p.pad_h, p.pad_w, algo};
}

dnnl::pooling_forward::primitive_desc pool_forward_pd(const PoolDescs& d, algorithm alg) {
  const auto desc = FOVEA_DNNL(
      dnnl::pooling_forward::desc(prop_kind::forward_training, alg, d.x, d.y, d.strides, d.kernel, d.pad_l, d.pad_r));
  return FOVEA_DNNL(dnnl::pooling_forward::primitive_desc(desc, user_scratchpad(), engine()));
}

// oneDNN's max-pooling workspace holds, per output, the offset kh * kernel_w + kw of the maximum in its window
// (u8 for windows up to 256 elements, else s32), in the output's layout. Ours (idx) holds h * W + w of the
// input plane. These convert between the two, one output plane per iteration.
template <class T>
void workspace_to_indices(const Pool2dParams& p, const T* ws, int32_t* idx) {
  const int64_t P = p.P(), Q = p.Q(), planes = p.N * p.C;
#pragma omp parallel for schedule(static)
  for (int64_t plane = 0; plane < planes; ++plane)
    for (int64_t i = 0; i < P; ++i)
      for (int64_t j = 0; j < Q; ++j) {
        const int64_t o = (plane * P + i) * Q + j, off = int64_t(ws[o]);
        const int64_t h = i * p.stride_h - p.pad_h + off / p.kernel_w, w = j * p.stride_w - p.pad_w + off % p.kernel_w;
        idx[o] = int32_t(h * p.W + w);
      }
}

template <class T>
void indices_to_workspace(const Pool2dParams& p, const int32_t* idx, T* ws) {
  const int64_t P = p.P(), Q = p.Q(), planes = p.N * p.C;
#pragma omp parallel for schedule(static)
  for (int64_t plane = 0; plane < planes; ++plane)
    for (int64_t i = 0; i < P; ++i)
      for (int64_t j = 0; j < Q; ++j) {
        const int64_t o = (plane * P + i) * Q + j, h = idx[o] / p.W, w = idx[o] % p.W;
        ws[o] = T((h - (i * p.stride_h - p.pad_h)) * p.kernel_w + (w - (j * p.stride_w - p.pad_w)));
      }
}

// The workspace's element type, checked to be u8 or s32 in the output's plain layout.
bool workspace_is_u8(const Pool2dParams& p, const memory::desc& ws) {
  const Dims y{p.N, p.C, p.P(), p.Q()};
  const bool u8 = ws == FOVEA_DNNL(memory::desc(y, memory::data_type::u8, Tag::nchw));
  FOVEA_ASSERT(u8 || ws == FOVEA_DNNL(memory::desc(y, memory::data_type::s32, Tag::nchw)),
               "maxpool2d: oneDNN's workspace is neither u8 nor s32 in NCHW for ", p.str());
  return u8;
}

void maxpool2d_forward(const Exec& ex, const Pool2dParams& p, const float* x, float* y, int32_t* idx) {
  FOVEA_CHECK(idx != nullptr, "maxpool2d_forward (onednn): argument 'idx' is null");
  const char* stub = ops::maxpool2d_forward_stub.name();
  Plan& plan = cached_plan(stub, pool_key(p, 0), [&] {
    const PoolDescs d = pool_descs(p);
    const auto pd = pool_forward_pd(d, algorithm::pooling_max);
    workspace_is_u8(p, pd.workspace_desc());
    Plan pl(stub);
    pl.add(DNNL_ARG_SRC, pd.src_desc(), d.x, Dir::in);
    pl.add(DNNL_ARG_DST, pd.dst_desc(), d.y, Dir::out);
    pl.add_scratch(DNNL_ARG_WORKSPACE, pd.workspace_desc());
    pl.set(FOVEA_DNNL(dnnl::pooling_forward(pd)), pd.scratchpad_desc(), pd.impl_info_str());
    return pl;
  });
  const bool u8 = plan.scratch_desc(DNNL_ARG_WORKSPACE).data_type() == memory::data_type::u8;
  plan.run(
      ex, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}}, [](Plan&) {},
      [&](Plan& pl) {
        void* ws = pl.scratch_arg(DNNL_ARG_WORKSPACE);
        if (u8)
          workspace_to_indices(p, static_cast<const uint8_t*>(ws), idx);
        else
          workspace_to_indices(p, static_cast<const int32_t*>(ws), idx);
      });
}

void maxpool2d_backward(const Exec& ex, const Pool2dParams& p, const float*, const float*, const int32_t* idx,
                        const float* dy, float* dx) {
  FOVEA_CHECK(idx != nullptr, "maxpool2d_backward (onednn): argument 'idx' is null");
  const char* stub = ops::maxpool2d_backward_stub.name();
  Plan& plan = cached_plan(stub, pool_key(p, 0), [&] {
    const PoolDescs d = pool_descs(p);
    const auto hint = pool_forward_pd(d, algorithm::pooling_max);
    workspace_is_u8(p, hint.workspace_desc());
    const auto desc = FOVEA_DNNL(
        dnnl::pooling_backward::desc(algorithm::pooling_max, d.x, d.y, d.strides, d.kernel, d.pad_l, d.pad_r));
    const auto pd = FOVEA_DNNL(dnnl::pooling_backward::primitive_desc(desc, user_scratchpad(), engine(), hint));
    Plan pl(stub);
    pl.add(DNNL_ARG_DIFF_DST, pd.diff_dst_desc(), d.y, Dir::in);
    pl.add(DNNL_ARG_DIFF_SRC, pd.diff_src_desc(), d.x, Dir::out);
    pl.add_scratch(DNNL_ARG_WORKSPACE, hint.workspace_desc());
    pl.set(FOVEA_DNNL(dnnl::pooling_backward(pd)), pd.scratchpad_desc(), pd.impl_info_str());
    return pl;
  });
  const bool u8 = plan.scratch_desc(DNNL_ARG_WORKSPACE).data_type() == memory::data_type::u8;
  plan.run(
      ex, {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_SRC, dx}},
      [&](Plan& pl) {
        void* ws = pl.scratch_arg(DNNL_ARG_WORKSPACE);
        if (u8)
          indices_to_workspace(p, idx, static_cast<uint8_t*>(ws));
        else
          indices_to_workspace(p, idx, static_cast<int32_t*>(ws));
      },
      [](Plan&) {});
}

algorithm avg_algorithm(const Pool2dParams& p) {
  return p.count_include_pad ? algorithm::pooling_avg_include_padding : algorithm::pooling_avg_exclude_padding;
}

Plan make_avg_forward(const char* stub, const Pool2dParams& p) {
  const PoolDescs d = pool_descs(p);
  const auto pd = pool_forward_pd(d, avg_algorithm(p));
  Plan pl(stub);
  pl.add(DNNL_ARG_SRC, pd.src_desc(), d.x, Dir::in);
  pl.add(DNNL_ARG_DST, pd.dst_desc(), d.y, Dir::out);
  pl.set(FOVEA_DNNL(dnnl::pooling_forward(pd)), pd.scratchpad_desc(), pd.impl_info_str());
  return pl;
}

Plan make_avg_backward(const char* stub, const Pool2dParams& p) {
  const PoolDescs d = pool_descs(p);
  const auto hint = pool_forward_pd(d, avg_algorithm(p));
  const auto desc =
      FOVEA_DNNL(dnnl::pooling_backward::desc(avg_algorithm(p), d.x, d.y, d.strides, d.kernel, d.pad_l, d.pad_r));
  const auto pd = FOVEA_DNNL(dnnl::pooling_backward::primitive_desc(desc, user_scratchpad(), engine(), hint));
  Plan pl(stub);
  pl.add(DNNL_ARG_DIFF_DST, pd.diff_dst_desc(), d.y, Dir::in);
  pl.add(DNNL_ARG_DIFF_SRC, pd.diff_src_desc(), d.x, Dir::out);
  pl.set(FOVEA_DNNL(dnnl::pooling_backward(pd)), pd.scratchpad_desc(), pd.impl_info_str());
  return pl;
}

void avgpool2d_forward(const Exec& ex, const Pool2dParams& p, const float* x, float* y) {
  const char* stub = ops::avgpool2d_forward_stub.name();
  Plan& plan = cached_plan(stub, pool_key(p, 1 + p.count_include_pad), [&] { return make_avg_forward(stub, p); });
  plan.run(ex, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}});
}

void avgpool2d_backward(const Exec& ex, const Pool2dParams& p, const float* dy, float* dx) {
  const char* stub = ops::avgpool2d_backward_stub.name();
  Plan& plan = cached_plan(stub, pool_key(p, 1 + p.count_include_pad), [&] { return make_avg_backward(stub, p); });
  plan.run(ex, {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_SRC, dx}});
}

// Global average pooling: one window of the whole plane; y [N, C] is [N, C, 1, 1] in memory.
Pool2dParams global_params(int64_t N, int64_t C, int64_t H, int64_t W) {
  Pool2dParams p;
  p.N = N, p.C = C, p.H = H, p.W = W, p.kernel_h = H, p.kernel_w = W, p.stride_h = 1, p.stride_w = 1;
  return p;
}

void global_avgpool_forward(const Exec& ex, int64_t N, int64_t C, int64_t H, int64_t W, const float* x, float* y) {
  const char* stub = ops::global_avgpool_forward_stub.name();
  const Pool2dParams p = global_params(N, C, H, W);
  Plan& plan = cached_plan(stub, pool_key(p, 2), [&] { return make_avg_forward(stub, p); });
  plan.run(ex, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}});
}

void global_avgpool_backward(const Exec& ex, int64_t N, int64_t C, int64_t H, int64_t W, const float* dy, float* dx) {
  const char* stub = ops::global_avgpool_backward_stub.name();
  const Pool2dParams p = global_params(N, C, H, W);
  Plan& plan = cached_plan(stub, pool_key(p, 2), [&] { return make_avg_backward(stub, p); });
  plan.run(ex, {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_SRC, dx}});
}

// ---------------------------------------------------------------- softmax over the rows of [N, C]

Plan make_softmax_forward(const char* stub, algorithm alg, int64_t N, int64_t C) {
  const memory::desc d = plain({N, C}, Tag::nc);
  const auto desc = FOVEA_DNNL(dnnl::softmax_v2_forward::desc(prop_kind::forward_training, alg, d, d, 1));
  const auto pd = FOVEA_DNNL(dnnl::softmax_v2_forward::primitive_desc(desc, user_scratchpad(), engine()));
  Plan pl(stub);
  pl.add(DNNL_ARG_SRC, pd.src_desc(), d, Dir::in);
  pl.add(DNNL_ARG_DST, pd.dst_desc(), d, Dir::out);
  pl.set(FOVEA_DNNL(dnnl::softmax_v2_forward(pd)), pd.scratchpad_desc(), pd.impl_info_str());
  return pl;
}

Plan make_softmax_backward(const char* stub, algorithm alg, int64_t N, int64_t C) {
  const memory::desc d = plain({N, C}, Tag::nc);
  const auto fdesc = FOVEA_DNNL(dnnl::softmax_v2_forward::desc(prop_kind::forward_training, alg, d, d, 1));
  const auto hint = FOVEA_DNNL(dnnl::softmax_v2_forward::primitive_desc(fdesc, engine()));
  const auto desc = FOVEA_DNNL(dnnl::softmax_v2_backward::desc(alg, d, d, d, 1));
  const auto pd = FOVEA_DNNL(dnnl::softmax_v2_backward::primitive_desc(desc, user_scratchpad(), engine(), hint));
  Plan pl(stub);
  pl.add(DNNL_ARG_DST, pd.dst_desc(), d, Dir::in);
  pl.add(DNNL_ARG_DIFF_DST, pd.diff_dst_desc(), d, Dir::in);
  pl.add(DNNL_ARG_DIFF_SRC, pd.diff_src_desc(), d, Dir::out);
  pl.set(FOVEA_DNNL(dnnl::softmax_v2_backward(pd)), pd.scratchpad_desc(), pd.impl_info_str());
  return pl;
}

template <algorithm ALG>
void softmax_forward(const Exec& ex, RowAlgo, int64_t N, int64_t C, const float* x, float* y) {
  if (N * C == 0) return;
  const char* stub =
      ALG == algorithm::softmax_log ? ops::log_softmax_forward_stub.name() : ops::softmax_forward_stub.name();
  Plan& plan = cached_plan(stub, {N, C}, [&] { return make_softmax_forward(stub, ALG, N, C); });
  plan.run(ex, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}});
}

template <algorithm ALG>
void softmax_backward(const Exec& ex, RowAlgo, int64_t N, int64_t C, const float* y, const float* dy, float* dx) {
  if (N * C == 0) return;
  const char* stub =
      ALG == algorithm::softmax_log ? ops::log_softmax_backward_stub.name() : ops::softmax_backward_stub.name();
  Plan& plan = cached_plan(stub, {N, C}, [&] { return make_softmax_backward(stub, ALG, N, C); });
  plan.run(ex, {{DNNL_ARG_DST, y}, {DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_SRC, dx}});
}

// ---------------------------------------------------------------- registration

const bool registered =
    ops::maxpool2d_forward_stub.define(Slot::onednn, maxpool2d_forward) &&
    ops::maxpool2d_backward_stub.define(Slot::onednn, maxpool2d_backward) &&
    ops::avgpool2d_forward_stub.define(Slot::onednn, avgpool2d_forward) &&
    ops::avgpool2d_backward_stub.define(Slot::onednn, avgpool2d_backward) &&
    ops::global_avgpool_forward_stub.define(Slot::onednn, global_avgpool_forward) &&
    ops::global_avgpool_backward_stub.define(Slot::onednn, global_avgpool_backward) &&
    ops::softmax_forward_stub.define(Slot::onednn, softmax_forward<algorithm::softmax_accurate>) &&
    ops::softmax_backward_stub.define(Slot::onednn, softmax_backward<algorithm::softmax_accurate>) &&
    ops::log_softmax_forward_stub.define(Slot::onednn, softmax_forward<algorithm::softmax_log>) &&
    ops::log_softmax_backward_stub.define(Slot::onednn, softmax_backward<algorithm::softmax_log>);

}  // namespace
}  // namespace fovea::onednn::detail
