// Pooling, batch norm, eltwise activations and softmax on oneDNN, on the plain formats of the stubs (these ops are
// memory-bound: a reorder to a blocked format would cost as much as the op).
#include <cmath>
#include <cstring>

#include "layers/onednn/onednn_common.h"
#include "layers/ops/activations.h"
#include "layers/ops/batchnorm.h"
#include "layers/ops/pooling.h"
#include "layers/ops/softmax.h"

namespace fovea::onednn::detail {
namespace {

using Dir = Plan::Dir;
using dnnl::algorithm;
using dnnl::prop_kind;

int64_t bits_of(double v) {
  int64_t b = 0;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

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

// ---------------------------------------------------------------- batch norm

using dnnl::normalization_flags;

// Forward: oneDNN normalises and returns the batch mean and biased variance (scratch); the stub's outputs
// (save_mean, save_invstd = 1 / sqrt(var + eps), the running statistics with the unbiased variance) are then
// made from them on C values, with the reference's formulas in double.
void batchnorm2d_forward(const Exec& ex, const BatchNormParams& p, const float* x, const float* gamma,
                         const float* beta, float* running_mean, float* running_var, float* y, float* save_mean,
                         float* save_invstd) {
  const char* stub = ops::batchnorm2d_forward_stub.name();
  FOVEA_CHECK((running_mean == nullptr) == (running_var == nullptr), stub,
              ": arguments 'running_mean' and 'running_var' must be both given or both null");
  FOVEA_CHECK(p.training || running_mean, stub, ": eval mode needs 'running_mean' and 'running_var', got null");
  const bool scale = gamma != nullptr, shift = beta != nullptr;
  Plan& plan = cached_plan(stub, {p.N, p.C, p.H, p.W, bits_of(p.eps), p.training, scale, shift}, [&] {
    const memory::desc xd = plain({p.N, p.C, p.H, p.W}, Tag::nchw), cd = plain({p.C}, Tag::x);
    normalization_flags flags = p.training ? normalization_flags::none : normalization_flags::use_global_stats;
    if (scale) flags |= normalization_flags::use_scale;
    if (shift) flags |= normalization_flags::use_shift;
    const auto desc = FOVEA_DNNL(dnnl::batch_normalization_forward::desc(
        p.training ? prop_kind::forward_training : prop_kind::forward_inference, xd, float(p.eps), flags));
    const auto pd = FOVEA_DNNL(dnnl::batch_normalization_forward::primitive_desc(desc, user_scratchpad(), engine()));
    Plan pl(stub);
    pl.add(DNNL_ARG_SRC, pd.src_desc(), xd, Dir::in);
    pl.add(DNNL_ARG_DST, pd.dst_desc(), xd, Dir::out);
    if (scale) pl.add(DNNL_ARG_SCALE, cd, cd, Dir::in);
    if (shift) pl.add(DNNL_ARG_SHIFT, cd, cd, Dir::in);
    if (p.training) {
      pl.add_scratch(DNNL_ARG_MEAN, cd);
      pl.add_scratch(DNNL_ARG_VARIANCE, cd);
    } else {
      pl.add(DNNL_ARG_MEAN, cd, cd, Dir::in);
      pl.add(DNNL_ARG_VARIANCE, cd, cd, Dir::in);
    }
    pl.set(FOVEA_DNNL(dnnl::batch_normalization_forward(pd)), pd.scratchpad_desc(), pd.impl_info_str());
    return pl;
  });
  const int64_t M = p.N * p.H * p.W;
  auto statistics = [&](Plan& pl) {
    const float* mean = p.training ? static_cast<const float*>(pl.scratch_arg(DNNL_ARG_MEAN)) : running_mean;
    const float* var = p.training ? static_cast<const float*>(pl.scratch_arg(DNNL_ARG_VARIANCE)) : running_var;
    for (int64_t c = 0; c < p.C; ++c) {
      const double m = mean[c], v = var[c];
      if (save_mean) save_mean[c] = float(m);
      if (save_invstd) save_invstd[c] = float(1.0 / std::sqrt(v + p.eps));
      if (p.training && running_mean) {
        running_mean[c] = float((1.0 - p.momentum) * double(running_mean[c]) + p.momentum * m);
        running_var[c] =
            float((1.0 - p.momentum) * double(running_var[c]) + p.momentum * v * double(M) / double(M - 1));
      }
    }
  };
  // The pointer list names exactly the arguments of the plan.
  std::vector<Plan::Ptr> ptrs{{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}};
  if (scale) ptrs.push_back({DNNL_ARG_SCALE, gamma});
  if (shift) ptrs.push_back({DNNL_ARG_SHIFT, beta});
  if (!p.training) ptrs.push_back({DNNL_ARG_MEAN, running_mean}), ptrs.push_back({DNNL_ARG_VARIANCE, running_var});
  plan.run(
      ex, ptrs, [](Plan&) {}, statistics);
}

// Backward: oneDNN takes the mean and the variance; ours keeps invstd, so var = 1 / invstd^2 - eps (exact to
// float rounding: oneDNN adds eps back). Missing gamma reads as ones and missing outputs go to scratch, so one
// primitive (with scale and shift gradients) serves every combination.
void batchnorm2d_backward(const Exec& ex, const BatchNormParams& p, const float* x, const float* dy, const float* gamma,
                          const float* save_mean, const float* save_invstd, float* dx, float* dgamma, float* dbeta) {
  const char* stub = ops::batchnorm2d_backward_stub.name();
  FOVEA_CHECK(x && dy && save_mean && save_invstd, stub,
              ": arguments 'x', 'dy', 'save_mean' and 'save_invstd' must not be null");
  FOVEA_CHECK(dx || dgamma || dbeta, stub, ": arguments 'dx', 'dgamma' and 'dbeta' are all null");
  const bool has_gamma = gamma != nullptr, has_dx = dx != nullptr, has_dgamma = dgamma != nullptr,
             has_dbeta = dbeta != nullptr;
  Plan& plan = cached_plan(
      stub, {p.N, p.C, p.H, p.W, bits_of(p.eps), p.training, has_gamma, has_dx, has_dgamma, has_dbeta}, [&] {
        const memory::desc xd = plain({p.N, p.C, p.H, p.W}, Tag::nchw), cd = plain({p.C}, Tag::x);
        normalization_flags flags = normalization_flags::use_scale | normalization_flags::use_shift;
        if (!p.training) flags |= normalization_flags::use_global_stats;
        const auto fdesc =
            FOVEA_DNNL(dnnl::batch_normalization_forward::desc(prop_kind::forward_training, xd, float(p.eps), flags));
        const auto hint = FOVEA_DNNL(dnnl::batch_normalization_forward::primitive_desc(fdesc, engine()));
        const auto desc =
            FOVEA_DNNL(dnnl::batch_normalization_backward::desc(prop_kind::backward, xd, xd, float(p.eps), flags));
        const auto pd =
            FOVEA_DNNL(dnnl::batch_normalization_backward::primitive_desc(desc, user_scratchpad(), engine(), hint));
        Plan pl(stub);
        pl.add(DNNL_ARG_SRC, pd.src_desc(), xd, Dir::in);
        pl.add(DNNL_ARG_DIFF_DST, pd.diff_dst_desc(), xd, Dir::in);
        pl.add(DNNL_ARG_MEAN, cd, cd, Dir::in);
        pl.add_scratch(DNNL_ARG_VARIANCE, cd);
        pl.add_scratch(DNNL_ARG_SHIFT, cd);  // an argument of the backward with use_shift too, though unread
        if (has_gamma)
          pl.add(DNNL_ARG_SCALE, cd, cd, Dir::in);
        else
          pl.add_scratch(DNNL_ARG_SCALE, cd);
        if (has_dx)
          pl.add(DNNL_ARG_DIFF_SRC, pd.diff_src_desc(), xd, Dir::out);
        else
          pl.add_scratch(DNNL_ARG_DIFF_SRC, xd);
        if (has_dgamma)
          pl.add(DNNL_ARG_DIFF_SCALE, cd, cd, Dir::out);
        else
          pl.add_scratch(DNNL_ARG_DIFF_SCALE, cd);
        if (has_dbeta)
          pl.add(DNNL_ARG_DIFF_SHIFT, cd, cd, Dir::out);
        else
          pl.add_scratch(DNNL_ARG_DIFF_SHIFT, cd);
        pl.set(FOVEA_DNNL(dnnl::batch_normalization_backward(pd)), pd.scratchpad_desc(), pd.impl_info_str());
        return pl;
      });
  std::vector<Plan::Ptr> ptrs{{DNNL_ARG_SRC, x}, {DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_MEAN, save_mean}};
  if (has_gamma) ptrs.push_back({DNNL_ARG_SCALE, gamma});
  if (has_dx) ptrs.push_back({DNNL_ARG_DIFF_SRC, dx});
  if (has_dgamma) ptrs.push_back({DNNL_ARG_DIFF_SCALE, dgamma});
  if (has_dbeta) ptrs.push_back({DNNL_ARG_DIFF_SHIFT, dbeta});
  plan.run(
      ex, ptrs,
      [&](Plan& pl) {
        float* var = static_cast<float*>(pl.scratch_arg(DNNL_ARG_VARIANCE));
        for (int64_t c = 0; c < p.C; ++c) {
          const double inv = save_invstd[c];
          var[c] = float(1.0 / (inv * inv) - p.eps);
        }
        if (!has_gamma) {
          float* ones = static_cast<float*>(pl.scratch_arg(DNNL_ARG_SCALE));
          for (int64_t c = 0; c < p.C; ++c) ones[c] = 1.0f;
        }
      },
      [](Plan&) {});
}

// ---------------------------------------------------------------- eltwise

Plan make_eltwise_forward(const char* stub, algorithm alg, float alpha, int64_t n) {
  const memory::desc d = plain({n}, Tag::x);
  const auto desc = FOVEA_DNNL(dnnl::eltwise_forward::desc(prop_kind::forward_training, alg, d, alpha, 0.0f));
  const auto pd = FOVEA_DNNL(dnnl::eltwise_forward::primitive_desc(desc, user_scratchpad(), engine()));
  Plan pl(stub);
  pl.add(DNNL_ARG_SRC, pd.src_desc(), d, Dir::in);
  pl.add(DNNL_ARG_DST, pd.dst_desc(), d, Dir::out);
  pl.set(FOVEA_DNNL(dnnl::eltwise_forward(pd)), pd.scratchpad_desc(), pd.impl_info_str());
  return pl;
}

// `saved` is the forward's input (DNNL_ARG_SRC) or, for the *_use_dst_for_bwd algorithms, its output.
Plan make_eltwise_backward(const char* stub, algorithm alg, float alpha, int64_t n, int saved_arg) {
  const memory::desc d = plain({n}, Tag::x);
  const auto fdesc = FOVEA_DNNL(dnnl::eltwise_forward::desc(prop_kind::forward_training, alg, d, alpha, 0.0f));
  const auto hint = FOVEA_DNNL(dnnl::eltwise_forward::primitive_desc(fdesc, engine()));
  const auto desc = FOVEA_DNNL(dnnl::eltwise_backward::desc(alg, d, d, alpha, 0.0f));
  const auto pd = FOVEA_DNNL(dnnl::eltwise_backward::primitive_desc(desc, user_scratchpad(), engine(), hint));
  Plan pl(stub);
  pl.add(saved_arg, d, d, Dir::in);
  pl.add(DNNL_ARG_DIFF_DST, pd.diff_dst_desc(), d, Dir::in);
  pl.add(DNNL_ARG_DIFF_SRC, pd.diff_src_desc(), d, Dir::out);
  pl.set(FOVEA_DNNL(dnnl::eltwise_backward(pd)), pd.scratchpad_desc(), pd.impl_info_str());
  return pl;
}

void eltwise_forward(const Exec& ex, const char* stub, algorithm alg, float alpha, int64_t n, const float* x,
                     float* y) {
  if (n == 0) return;
  Plan& plan = cached_plan(stub, {n, bits_of(alpha)}, [&] { return make_eltwise_forward(stub, alg, alpha, n); });
  plan.run(ex, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}});
}

void eltwise_backward(const Exec& ex, const char* stub, algorithm alg, float alpha, int64_t n, int saved_arg,
                      const float* saved, const float* dy, float* dx) {
  if (n == 0) return;
  Plan& plan =
      cached_plan(stub, {n, bits_of(alpha)}, [&] { return make_eltwise_backward(stub, alg, alpha, n, saved_arg); });
  plan.run(ex, {{saved_arg, saved}, {DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_SRC, dx}});
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
    ops::batchnorm2d_forward_stub.define(Slot::onednn, batchnorm2d_forward) &&
    ops::batchnorm2d_backward_stub.define(Slot::onednn, batchnorm2d_backward) &&
    ops::relu_forward_stub.define(Slot::onednn,
                                  [](const Exec& ex, int64_t n, const float* x, float* y) {
                                    eltwise_forward(ex, ops::relu_forward_stub.name(), algorithm::eltwise_relu, 0.0f, n,
                                                    x, y);
                                  }) &&
    ops::relu_backward_stub.define(Slot::onednn,
                                   [](const Exec& ex, int64_t n, const float* x, const float* dy, float* dx) {
                                     eltwise_backward(ex, ops::relu_backward_stub.name(), algorithm::eltwise_relu, 0.0f,
                                                      n, DNNL_ARG_SRC, x, dy, dx);
                                   }) &&
    ops::leaky_relu_forward_stub.define(Slot::onednn,
                                        [](const Exec& ex, int64_t n, float slope, const float* x, float* y) {
                                          eltwise_forward(ex, ops::leaky_relu_forward_stub.name(),
                                                          algorithm::eltwise_relu, slope, n, x, y);
                                        }) &&
    ops::leaky_relu_backward_stub.define(
        Slot::onednn,
        [](const Exec& ex, int64_t n, float slope, const float* x, const float* dy, float* dx) {
          eltwise_backward(ex, ops::leaky_relu_backward_stub.name(), algorithm::eltwise_relu, slope, n, DNNL_ARG_SRC, x,
                           dy, dx);
        }) &&
    ops::sigmoid_forward_stub.define(Slot::onednn,
                                     [](const Exec& ex, int64_t n, const float* x, float* y) {
                                       eltwise_forward(ex, ops::sigmoid_forward_stub.name(),
                                                       algorithm::eltwise_logistic_use_dst_for_bwd, 0.0f, n, x, y);
                                     }) &&
    ops::sigmoid_backward_stub.define(Slot::onednn,
                                      [](const Exec& ex, int64_t n, const float* y, const float* dy, float* dx) {
                                        eltwise_backward(ex, ops::sigmoid_backward_stub.name(),
                                                         algorithm::eltwise_logistic_use_dst_for_bwd, 0.0f, n,
                                                         DNNL_ARG_DST, y, dy, dx);
                                      }) &&
    ops::tanh_forward_stub.define(Slot::onednn,
                                  [](const Exec& ex, int64_t n, const float* x, float* y) {
                                    eltwise_forward(ex, ops::tanh_forward_stub.name(),
                                                    algorithm::eltwise_tanh_use_dst_for_bwd, 0.0f, n, x, y);
                                  }) &&
    ops::tanh_backward_stub.define(Slot::onednn,
                                   [](const Exec& ex, int64_t n, const float* y, const float* dy, float* dx) {
                                     eltwise_backward(ex, ops::tanh_backward_stub.name(),
                                                      algorithm::eltwise_tanh_use_dst_for_bwd, 0.0f, n, DNNL_ARG_DST, y,
                                                      dy, dx);
                                   }) &&
    ops::softmax_forward_stub.define(Slot::onednn, softmax_forward<algorithm::softmax_accurate>) &&
    ops::softmax_backward_stub.define(Slot::onednn, softmax_backward<algorithm::softmax_accurate>) &&
    ops::log_softmax_forward_stub.define(Slot::onednn, softmax_forward<algorithm::softmax_log>) &&
    ops::log_softmax_backward_stub.define(Slot::onednn, softmax_backward<algorithm::softmax_log>);

}  // namespace
}  // namespace fovea::onednn::detail
