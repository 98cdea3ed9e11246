// conv2d on cuDNN: forward, backward data, backward filter, bias; algorithm choice by heuristics or by
// timing every algorithm once per shape, cached per (device, op, shape, settings).
#include <array>
#include <iterator>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "layers/cudnn/cudnn_common.h"

namespace fovea::cudnn {
namespace detail {
namespace {

// ---------------------------------------------------------------- per-op traits of the legacy API

template <ConvOp OP>
struct Traits;

// Descriptors of one convolution shape (cached per thread).
struct Plan {
  cudnnTensorDescriptor_t x, y, bias;
  cudnnFilterDescriptor_t w;
  cudnnConvolutionDescriptor_t conv;
};

template <>
struct Traits<ConvOp::forward> {
  using Algo = cudnnConvolutionFwdAlgo_t;
  using Perf = cudnnConvolutionFwdAlgoPerf_t;
  static constexpr int kCount = CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
  static int max_count(cudnnHandle_t h) {
    int n = 0;
    FOVEA_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &n));
    return n;
  }
  static void get(cudnnHandle_t h, const Plan& pl, int n, int* got, Perf* perf) {
    FOVEA_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, pl.x, pl.w, pl.conv, pl.y, n, got, perf));
  }
  // Buffers: in0 = x, in1 = w, out = y.
  static void find(cudnnHandle_t h, const Plan& pl, const float* in0, const float* in1, float* out, int n, int* got,
                   Perf* perf, void* ws, size_t ws_bytes) {
    FOVEA_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(h, pl.x, in0, pl.w, in1, pl.conv, pl.y, out, n, got, perf,
                                                             ws, ws_bytes));
  }
  static cudnnStatus_t workspace(cudnnHandle_t h, const Plan& pl, int algo, size_t* bytes) {
    return cudnnGetConvolutionForwardWorkspaceSize(h, pl.x, pl.w, pl.conv, pl.y, Algo(algo), bytes);
  }
  static const char* name(int a) {
    static const char* names[] = {"IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT", "FFT", "FFT_TILING",
                                  "WINOGRAD",      "WINOGRAD_NONFUSED"};
    return a >= 0 && a < int(std::size(names)) ? names[a] : "UNKNOWN";
  }
};

template <>
struct Traits<ConvOp::backward_data> {
  using Algo = cudnnConvolutionBwdDataAlgo_t;
  using Perf = cudnnConvolutionBwdDataAlgoPerf_t;
  static constexpr int kCount = CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT;
  static int max_count(cudnnHandle_t h) {
    int n = 0;
    FOVEA_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &n));
    return n;
  }
  static void get(cudnnHandle_t h, const Plan& pl, int n, int* got, Perf* perf) {
    FOVEA_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, pl.w, pl.y, pl.conv, pl.x, n, got, perf));
  }
  // Buffers: in0 = dy, in1 = w, out = dx.
  static void find(cudnnHandle_t h, const Plan& pl, const float* in0, const float* in1, float* out, int n, int* got,
                   Perf* perf, void* ws, size_t ws_bytes) {
    FOVEA_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(h, pl.w, in1, pl.y, in0, pl.conv, pl.x, out, n, got,
                                                                  perf, ws, ws_bytes));
  }
  static cudnnStatus_t workspace(cudnnHandle_t h, const Plan& pl, int algo, size_t* bytes) {
    return cudnnGetConvolutionBackwardDataWorkspaceSize(h, pl.w, pl.y, pl.conv, pl.x, Algo(algo), bytes);
  }
  static const char* name(int a) {
    static const char* names[] = {"ALGO_0", "ALGO_1", "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
    return a >= 0 && a < int(std::size(names)) ? names[a] : "UNKNOWN";
  }
};

template <>
struct Traits<ConvOp::backward_filter> {
  using Algo = cudnnConvolutionBwdFilterAlgo_t;
  using Perf = cudnnConvolutionBwdFilterAlgoPerf_t;
  static constexpr int kCount = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
  static int max_count(cudnnHandle_t h) {
    int n = 0;
    FOVEA_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &n));
    return n;
  }
  static void get(cudnnHandle_t h, const Plan& pl, int n, int* got, Perf* perf) {
    FOVEA_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, pl.x, pl.y, pl.conv, pl.w, n, got, perf));
  }
  // Buffers: in0 = x, in1 = dy, out = dw.
  static void find(cudnnHandle_t h, const Plan& pl, const float* in0, const float* in1, float* out, int n, int* got,
                   Perf* perf, void* ws, size_t ws_bytes) {
    FOVEA_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(h, pl.x, in0, pl.y, in1, pl.conv, pl.w, out, n, got,
                                                                    perf, ws, ws_bytes));
  }
  static cudnnStatus_t workspace(cudnnHandle_t h, const Plan& pl, int algo, size_t* bytes) {
    return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, pl.x, pl.y, pl.conv, pl.w, Algo(algo), bytes);
  }
  static const char* name(int a) {
    static const char* names[] = {"ALGO_0", "ALGO_1", "FFT", "ALGO_3", "WINOGRAD", "WINOGRAD_NONFUSED", "FFT_TILING"};
    return a >= 0 && a < int(std::size(names)) ? names[a] : "UNKNOWN";
  }
};

// ---------------------------------------------------------------- descriptors per shape

Plan make_plan(const Conv2dParams& p) {
  const char* op = "conv2d";
  const int N = to_int(p.N, op, "N"), C = to_int(p.C, op, "C"), H = to_int(p.H, op, "H"), W = to_int(p.W, op, "W");
  const int K = to_int(p.K, op, "K"), P = to_int(p.P(), op, "P"), Q = to_int(p.Q(), op, "Q");
  to_int(p.x_size(), op, "x elements");
  to_int(p.y_size(), op, "y elements");
  to_int(p.w_size(), op, "w elements");
  Plan pl;
  pl.x = tensor_desc(N, C, H, W);
  pl.y = tensor_desc(N, K, P, Q);
  pl.bias = tensor_desc(1, K, 1, 1);
  pl.w = filter_desc(K, to_int(p.C_per_group(), op, "C/groups"), to_int(p.R, op, "R"), to_int(p.S, op, "S"));
  pl.conv = conv_desc(p);
  // cuDNN's output size must be ours (PyTorch's formula); it is, for valid params: checked once per shape.
  int n = 0, k = 0, h = 0, w = 0;
  FOVEA_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(pl.conv, pl.x, pl.w, &n, &k, &h, &w));
  FOVEA_CHECK(n == N && k == K && h == P && w == Q, "conv2d: cuDNN computes output [", n, ", ", k, ", ", h, ", ", w,
              "] for ", p.str(), ", expected [", N, ", ", K, ", ", P, ", ", Q, "]");
  return pl;
}

using Geometry = std::array<int64_t, 14>;
Geometry geometry(const Conv2dParams& p) {
  return {p.N, p.C, p.H, p.W, p.K, p.R, p.S, p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.dil_h, p.dil_w, p.groups};
}

const Plan& plan(const Conv2dParams& p) {
  thread_local std::map<Geometry, Plan> plans;
  const Geometry g = geometry(p);
  auto it = plans.find(g);
  if (it == plans.end()) it = plans.emplace(g, make_plan(p)).first;
  return it->second;
}

// ---------------------------------------------------------------- algorithm cache (process-wide)

struct Choice {
  ConvAlgoInfo info;
  cudnnMathType_t math = CUDNN_FMA_MATH;
};

struct Key {
  int device;
  ConvOp op;
  Geometry geom;
  bool tf32, deterministic;
  ConvSearch search;
  size_t limit;
  bool operator<(const Key& o) const {
    return std::tie(device, op, geom, tf32, deterministic, search, limit) <
           std::tie(o.device, o.op, o.geom, o.tf32, o.deterministic, o.search, o.limit);
  }
};

std::mutex g_mu;
std::map<Key, Choice>& algo_cache() {
  static auto* cache = new std::map<Key, Choice>();  // leaked: used until the process ends
  return *cache;
}

Key key_of(const Exec& ctx, ConvOp op, const Conv2dParams& p) {
  const Settings& s = settings();
  return {ctx.device.index, op, geometry(p), s.allow_tf32, ctx.deterministic, s.conv_search, workspace_limit(ctx)};
}

bool tensor_op_math(cudnnMathType_t m) {
  return m == CUDNN_TENSOR_OP_MATH || m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

template <ConvOp OP>
ConvAlgoInfo info_of(const typename Traits<OP>::Perf& r, size_t workspace_bytes) {
  ConvAlgoInfo i;
  i.op = OP;
  i.algo = int(r.algo);
  i.name = Traits<OP>::name(i.algo);
  i.workspace_bytes = workspace_bytes;
  i.deterministic = r.determinism == CUDNN_DETERMINISTIC;
  i.tensor_ops = tensor_op_math(r.mathType);
  return i;
}

// cuDNN's heuristic list for the shape under the current math setting, all entries (supported or
// not), best first.
template <ConvOp OP>
std::vector<typename Traits<OP>::Perf> heuristic_list(cudnnHandle_t h, const Plan& pl) {
  using T = Traits<OP>;
  FOVEA_CUDNN_CHECK(cudnnSetConvolutionMathType(pl.conv, conv_math()));
  const int n = T::max_count(h);
  std::vector<typename T::Perf> perf(size_t(n > 0 ? n : 1));
  int got = 0;
  T::get(h, pl, n, &got, perf.data());
  perf.resize(size_t(got));
  ++g_conv_algo_searches;
  return perf;
}

// Workspace of `algo` with math type `math`, or false when cuDNN does not support it for the shape.
template <ConvOp OP>
bool algo_workspace(cudnnHandle_t h, const Plan& pl, int algo, cudnnMathType_t math, size_t* bytes) {
  FOVEA_CUDNN_CHECK(cudnnSetConvolutionMathType(pl.conv, math));
  return Traits<OP>::workspace(h, pl, algo, bytes) == CUDNN_STATUS_SUCCESS;
}

// The first entry of `perf` (in the order given) that the context admits: supported, fits the
// workspace limit, deterministic when asked, no tensor-op math unless TF32 is allowed.
template <ConvOp OP, class Perf>
std::optional<Choice> first_admissible(cudnnHandle_t h, const Plan& pl, const std::vector<Perf>& perf,
                                       const Exec& ctx) {
  const bool tf32 = settings().allow_tf32;
  const size_t limit = workspace_limit(ctx);
  for (const Perf& r : perf) {
    if (r.status != CUDNN_STATUS_SUCCESS) continue;
    if (ctx.deterministic && r.determinism != CUDNN_DETERMINISTIC) continue;
    if (!tf32 && tensor_op_math(r.mathType)) continue;
    const cudnnMathType_t math = tf32 ? r.mathType : CUDNN_FMA_MATH;
    size_t bytes = 0;
    if (!algo_workspace<OP>(h, pl, int(r.algo), math, &bytes) || bytes > limit) continue;
    Choice c{info_of<OP>(r, bytes), math};
    c.info.time_ms = settings().conv_search == ConvSearch::benchmark ? r.time : -1.0f;
    return c;
  }
  return std::nullopt;
}

std::string describe_settings(const Exec& ctx) {
  const Settings& s = settings();
  return cat("deterministic=", ctx.deterministic ? "on" : "off", ", tf32=", s.allow_tf32 ? "on" : "off",
             ", workspace limit ", workspace_limit(ctx), " bytes, search ", conv_search_name(s.conv_search));
}

// The algorithm for this call: forced, cached, or chosen now (and cached).
template <ConvOp OP>
Choice choose(const Exec& ctx, cudnnHandle_t h, const Plan& pl, const Conv2dParams& p, const float* in0,
              const float* in1, float* out) {
  using T = Traits<OP>;
  const Settings& s = settings();
  const int forced = OP == ConvOp::forward         ? s.force_fwd_algo
                     : OP == ConvOp::backward_data ? s.force_bwd_data_algo
                                                   : s.force_bwd_filter_algo;
  if (forced >= 0) {
    for (const auto& r : heuristic_list<OP>(h, pl)) {
      if (int(r.algo) != forced || r.status != CUDNN_STATUS_SUCCESS) continue;
      if (!s.allow_tf32 && tensor_op_math(r.mathType)) continue;
      FOVEA_CHECK(!ctx.deterministic || r.determinism == CUDNN_DETERMINISTIC, conv_op_name(OP),
                  ": forced cuDNN algorithm ", T::name(forced),
                  " is not deterministic but the context asks for deterministic algorithms");
      const cudnnMathType_t math = s.allow_tf32 ? r.mathType : CUDNN_FMA_MATH;
      size_t bytes = 0;
      FOVEA_CHECK(algo_workspace<OP>(h, pl, forced, math, &bytes), conv_op_name(OP), ": forced cuDNN algorithm ",
                  T::name(forced), " reports no workspace size for ", p.str());
      FOVEA_CHECK(bytes <= workspace_limit(ctx), conv_op_name(OP), ": forced cuDNN algorithm ", T::name(forced),
                  " needs ", bytes, " bytes of workspace, limit ", workspace_limit(ctx));
      return {info_of<OP>(r, bytes), math};
    }
    FOVEA_FAIL(conv_op_name(OP), ": forced cuDNN algorithm ", T::name(forced), " (", forced, ") does not support ",
               p.str(), " with ", describe_settings(ctx));
  }

  const Key key = key_of(ctx, OP, p);
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = algo_cache().find(key);
    if (it != algo_cache().end()) return it->second;
  }
  std::optional<Choice> c;
  if (s.conv_search == ConvSearch::heuristic) {
    c = first_admissible<OP>(h, pl, heuristic_list<OP>(h, pl), ctx);
  } else {
    // Time every algorithm that fits: give Find the largest workspace any of them needs, up to the limit.
    const size_t limit = workspace_limit(ctx);
    size_t ws_bytes = 0;
    for (int a = 0; a < T::kCount; ++a) {
      size_t b = 0;
      if (algo_workspace<OP>(h, pl, a, conv_math(), &b) && b <= limit && b > ws_bytes) ws_bytes = b;
    }
    FOVEA_CUDNN_CHECK(cudnnSetConvolutionMathType(pl.conv, conv_math()));
    void* ws = workspace(ctx, ws_bytes);
    const int n = T::max_count(h);
    std::vector<typename T::Perf> perf(size_t(n > 0 ? n : 1));
    int got = 0;
    T::find(h, pl, in0, in1, out, n, &got, perf.data(), ws, ws_bytes);
    perf.resize(size_t(got));
    ++g_conv_algo_searches;
    c = first_admissible<OP>(h, pl, perf, ctx);
  }
  FOVEA_CHECK(c.has_value(), conv_op_name(OP), ": cuDNN has no admissible algorithm for ", p.str(), " with ",
              describe_settings(ctx),
              " (use --backend custom, or allow more workspace / non-deterministic algorithms)");
  std::lock_guard<std::mutex> lock(g_mu);
  return algo_cache().emplace(key, *c).first->second;
}

}  // namespace

int64_t conv_algo_entries() {
  std::lock_guard<std::mutex> lock(g_mu);
  return int64_t(algo_cache().size());
}

}  // namespace detail

using namespace detail;

// ---------------------------------------------------------------- public: algorithm queries

std::vector<ConvAlgoInfo> detail::conv_algorithms_impl(const Exec& ctx, ConvOp op, const Conv2dParams& p) {
  require_cuda(ctx, conv_op_name(op));
  DeviceGuard guard(ctx.device.index);
  cudnnHandle_t h = cudnn_handle(ctx);
  const Plan& pl = plan(p);
  const bool tf32 = settings().allow_tf32;
  const size_t limit = workspace_limit(ctx);
  std::vector<ConvAlgoInfo> out;
  auto collect = [&](auto tag, const auto& perf) {
    constexpr ConvOp OP = decltype(tag)::value;
    for (const auto& r : perf) {
      if (r.status != CUDNN_STATUS_SUCCESS || (!tf32 && tensor_op_math(r.mathType))) continue;
      if (ctx.deterministic && r.determinism != CUDNN_DETERMINISTIC) continue;
      bool seen = false;
      for (const ConvAlgoInfo& i : out) seen = seen || i.algo == int(r.algo);
      size_t bytes = 0;
      if (seen || !algo_workspace<OP>(h, pl, int(r.algo), tf32 ? r.mathType : CUDNN_FMA_MATH, &bytes)) continue;
      if (bytes <= limit) out.push_back(info_of<OP>(r, bytes));
    }
  };
  switch (op) {
    case ConvOp::forward:
      collect(std::integral_constant<ConvOp, ConvOp::forward>{}, heuristic_list<ConvOp::forward>(h, pl));
      break;
    case ConvOp::backward_data:
      collect(std::integral_constant<ConvOp, ConvOp::backward_data>{}, heuristic_list<ConvOp::backward_data>(h, pl));
      break;
    case ConvOp::backward_filter:
      collect(std::integral_constant<ConvOp, ConvOp::backward_filter>{},
              heuristic_list<ConvOp::backward_filter>(h, pl));
      break;
  }
  return out;
}

std::optional<ConvAlgoInfo> detail::cached_conv_algo_impl(const Exec& ctx, ConvOp op, const Conv2dParams& p) {
  const Key key = key_of(ctx, op, p);
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = algo_cache().find(key);
  if (it == algo_cache().end()) return std::nullopt;
  return it->second.info;
}

void detail::clear_conv_algo_cache_impl() {
  std::lock_guard<std::mutex> lock(g_mu);
  algo_cache().clear();
}

// ---------------------------------------------------------------- the cudnn slots of layers/ops/conv2d.h

namespace {

// ConvConfig is for our kernels: cuDNN picks its own algorithm (settings(), the cache above).
void conv2d_forward(const Exec& ctx, const ConvConfig&, const Conv2dParams& p, const float* x, const float* w,
                    const float* b, float* y) {
  require_cuda(ctx, "conv2d");
  DeviceGuard guard(ctx.device.index);
  cudnnHandle_t h = cudnn_handle(ctx);
  const Plan& pl = plan(p);
  const Choice c = choose<ConvOp::forward>(ctx, h, pl, p, x, w, y);
  FOVEA_CUDNN_CHECK(cudnnSetConvolutionMathType(pl.conv, c.math));
  void* ws = workspace(ctx, c.info.workspace_bytes);
  FOVEA_CUDNN_CHECK(cudnnConvolutionForward(h, &kOne, pl.x, x, pl.w, w, pl.conv, cudnnConvolutionFwdAlgo_t(c.info.algo),
                                            ws, c.info.workspace_bytes, &kZero, pl.y, y));
  // y += b, broadcast over N, P, Q.
  if (b) FOVEA_CUDNN_CHECK(cudnnAddTensor(h, &kOne, pl.bias, b, &kOne, pl.y, y));
}

void conv2d_backward_data(const Exec& ctx, const ConvConfig&, const Conv2dParams& p, const float* dy, const float* w,
                          float* dx) {
  require_cuda(ctx, "conv2d_backward_data");
  DeviceGuard guard(ctx.device.index);
  cudnnHandle_t h = cudnn_handle(ctx);
  const Plan& pl = plan(p);
  const Choice c = choose<ConvOp::backward_data>(ctx, h, pl, p, dy, w, dx);
  FOVEA_CUDNN_CHECK(cudnnSetConvolutionMathType(pl.conv, c.math));
  void* ws = workspace(ctx, c.info.workspace_bytes);
  FOVEA_CUDNN_CHECK(cudnnConvolutionBackwardData(h, &kOne, pl.w, w, pl.y, dy, pl.conv,
                                                 cudnnConvolutionBwdDataAlgo_t(c.info.algo), ws, c.info.workspace_bytes,
                                                 &kZero, pl.x, dx));
}

void conv2d_backward_filter(const Exec& ctx, const ConvConfig&, const Conv2dParams& p, const float* x, const float* dy,
                            float* dw) {
  require_cuda(ctx, "conv2d_backward_filter");
  DeviceGuard guard(ctx.device.index);
  cudnnHandle_t h = cudnn_handle(ctx);
  const Plan& pl = plan(p);
  const Choice c = choose<ConvOp::backward_filter>(ctx, h, pl, p, x, dy, dw);
  FOVEA_CUDNN_CHECK(cudnnSetConvolutionMathType(pl.conv, c.math));
  void* ws = workspace(ctx, c.info.workspace_bytes);
  FOVEA_CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &kOne, pl.x, x, pl.y, dy, pl.conv,
                                                   cudnnConvolutionBwdFilterAlgo_t(c.info.algo), ws,
                                                   c.info.workspace_bytes, &kZero, pl.w, dw));
}

void conv2d_backward_bias(const Exec& ctx, const Conv2dParams& p, const float* dy, float* db) {
  const char* op = "conv2d_backward_bias";
  require_cuda(ctx, op);
  DeviceGuard guard(ctx.device.index);
  to_int(p.y_size(), op, "dy elements");
  const int K = to_int(p.K, op, "K");
  const cudnnTensorDescriptor_t dyd =
      tensor_desc(to_int(p.N, op, "N"), K, to_int(p.P(), op, "P"), to_int(p.Q(), op, "Q"));
  FOVEA_CUDNN_CHECK(
      cudnnConvolutionBackwardBias(cudnn_handle(ctx), &kOne, dyd, dy, &kZero, tensor_desc(1, K, 1, 1), db));
}

const bool registered = ops::conv2d_forward_stub.define(Slot::cudnn, conv2d_forward) &&
                        ops::conv2d_backward_data_stub.define(Slot::cudnn, conv2d_backward_data) &&
                        ops::conv2d_backward_filter_stub.define(Slot::cudnn, conv2d_backward_filter) &&
                        ops::conv2d_backward_bias_stub.define(Slot::cudnn, conv2d_backward_bias);

}  // namespace
}  // namespace fovea::cudnn
