// Backend 'cudnn': the ops of layers/ops/ops.h on NVIDIA's libraries, side by side with our kernels.
//   cuDNN  : conv2d fprop / dgrad / wgrad / bias, max and average pooling (also global), softmax and
//            log-softmax, relu / sigmoid / tanh / leaky relu, batch norm (training, eval, backward), add.
//   cuBLAS : linear forward (cuBLASLt, bias fused as an epilogue) and backward; cublas_sgemm(), the
//            GEMM baseline of the benchmarks.
// The implementation lives in layers/cudnn/ (library fovea_cudnn), built only when CMake finds cuDNN
// (FOVEA_HAVE_CUDNN). This header has no cuDNN types, so any file may include it; in builds without
// cuDNN only not_built() and the dispatch macro below are usable, and asking for the backend is a
// clear error (ops::Context's constructor, and FOVEA_CUDNN_DISPATCH for contexts changed afterwards).
//
// Inputs are validated by layers/ops/ops.cpp before they get here (shapes, dtypes, devices); these
// functions check only what is particular to cuDNN: device cuda, sizes that fit its int descriptors.
//
// Numerics: TF32 is off by default (cuDNN FMA math, cuBLAS pedantic float32), so results compare
// with the reference at float32 tolerance; Settings::allow_tf32 turns it on. With ctx.deterministic
// only deterministic algorithms run (cuDNN's determinism flag per algorithm, deterministic max
// pooling, no cuBLASLt split-K reductions).
//
// Caching: cuDNN / cuBLAS / cuBLASLt handles, tensor / filter / convolution / pooling / activation
// descriptors and cuBLASLt layouts are created once per thread and device (and shape) and reused;
// convolution algorithm choices are cached per shape and settings for the whole process; workspaces
// come from ctx.workspace (the core Workspace arena), capped by Settings::workspace_limit.
//
// Only cuDNN 9 is compiled in this project's CI (the legacy API it still ships, with its deprecation
// warnings silenced locally); the calls used exist in cuDNN 8 too, and version differences are under
// `#if CUDNN_MAJOR >= 9`.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/op_params.h"
#include "core/tensor.h"
#include "kernels/conv2d.h"  // ConvOp
#include "kernels/sgemm.h"   // SgemmParams
#include "layers/ops/ops.h"

namespace fovea::cudnn {

// Thrown by the dispatch when a context asks for backend cudnn in a build without cuDNN.
[[noreturn]] inline void not_built(const char* op) {
  FOVEA_FAIL(op,
             ": backend cudnn requested but this build of fovea has no cuDNN (not found at build time or "
             "FOVEA_WITH_CUDNN=OFF); use --backend custom");
}

// In an op of layers/ops/ops.cpp, after validation: FOVEA_CUDNN_DISPATCH("conv2d", conv2d_forward(ctx, p, x, w, b));
// returns cudnn::<call> when ctx.backend is cudnn. Without cuDNN the call is not compiled at all and
// backend cudnn is a clear error.
#if FOVEA_HAVE_CUDNN
#define FOVEA_CUDNN_DISPATCH(op, call)                                            \
  do {                                                                            \
    if (ctx.backend == ::fovea::ops::Backend::cudnn) return ::fovea::cudnn::call; \
  } while (0)
#else
#define FOVEA_CUDNN_DISPATCH(op, call)                                              \
  do {                                                                              \
    if (ctx.backend == ::fovea::ops::Backend::cudnn) ::fovea::cudnn::not_built(op); \
  } while (0)
#endif

// ---------------------------------------------------------------- settings (per thread)

enum class ConvSearch : uint8_t {
  heuristic,  // cuDNN's heuristics (cudnnGetConvolution*Algorithm_v7): the first admissible algorithm
  benchmark,  // time every algorithm once per shape (cudnnFindConvolution*AlgorithmEx), like cudnn.benchmark
};
const char* conv_search_name(ConvSearch s);
ConvSearch parse_conv_search(const std::string& text);  // "heuristic" | "benchmark"

struct Settings {
  bool allow_tf32 = false;  // TF32 tensor cores for float32 conv and GEMM
  ConvSearch conv_search = ConvSearch::heuristic;
  size_t workspace_limit = size_t(1) << 30;  // bytes of scratch per call (also capped by ctx.workspace->limit())
  // Force a cuDNN algorithm by its enum value (cudnnConvolutionFwdAlgo_t etc.; -1: choose). For tests
  // and benchmarks; an algorithm that does not support the shape is an error naming it.
  int force_fwd_algo = -1, force_bwd_data_algo = -1, force_bwd_filter_algo = -1;
};
// This thread's settings (the ops read them at each call).
Settings& settings();
// Sets this thread's settings for a scope and restores the previous ones.
class ScopedSettings {
 public:
  explicit ScopedSettings(const Settings& s) : saved_(settings()) { settings() = s; }
  ~ScopedSettings() { settings() = saved_; }
  ScopedSettings(const ScopedSettings&) = delete;
  ScopedSettings& operator=(const ScopedSettings&) = delete;

 private:
  Settings saved_;
};

// ---------------------------------------------------------------- convolution algorithms

struct ConvAlgoInfo {
  ConvOp op = ConvOp::forward;
  int algo = -1;     // the cuDNN enum value
  std::string name;  // "IMPLICIT_PRECOMP_GEMM", "WINOGRAD_NONFUSED", ...
  size_t workspace_bytes = 0;
  bool deterministic = false;
  bool tensor_ops = false;  // runs with TF32 / tensor-core math
  float time_ms = -1;       // benchmark search only
};
// Every algorithm cuDNN lists for this shape that the context and settings admit (supported, within the
// workspace limit, deterministic when ctx.deterministic, no tensor-op math unless TF32 is allowed), in
// cuDNN's heuristic order: each can be forced with Settings::force_*_algo.
std::vector<ConvAlgoInfo> conv_algorithms(ops::Context& ctx, ConvOp op, const Conv2dParams& p);
// The algorithm the cache holds for this shape, context and settings (set by the first call of the op).
std::optional<ConvAlgoInfo> cached_conv_algo(const ops::Context& ctx, ConvOp op, const Conv2dParams& p);
// Forgets every cached algorithm choice (all threads).
void clear_conv_algo_cache();

// Objects created so far (all threads): they must not grow with the number of calls.
struct CacheStats {
  int64_t handles = 0;      // cuDNN + cuBLAS + cuBLASLt handles
  int64_t descriptors = 0;  // tensor, filter, convolution, pooling, activation, op-tensor, LRN, layouts
  int64_t conv_algo_entries = 0;
  int64_t conv_algo_searches = 0;  // heuristic queries + benchmarks run
};
CacheStats cache_stats();

// ---------------------------------------------------------------- ops (arguments validated by ops.cpp)

Tensor conv2d_forward(ops::Context& ctx, const Conv2dParams& p, const Tensor& x, const Tensor& w, const Tensor& b);
Tensor conv2d_backward_data(ops::Context& ctx, const Conv2dParams& p, const Tensor& dy, const Tensor& w);
Tensor conv2d_backward_filter(ops::Context& ctx, const Conv2dParams& p, const Tensor& x, const Tensor& dy);
Tensor conv2d_backward_bias(ops::Context& ctx, const Tensor& dy);

// cuDNN's max-pooling backward needs x and y, not argmax indices. The 'indices' this returns is an
// opaque int32 [N,C,P,Q] view whose allocation also holds a copy of y (in the index slots) and of x
// (after them): backward finds them there, and they live exactly as long as the indices do. Pass it
// only to backend cudnn's maxpool2d_backward.
ops::MaxPoolOut maxpool2d_forward(ops::Context& ctx, const Pool2dParams& p, const Tensor& x);
Tensor maxpool2d_backward(ops::Context& ctx, const Pool2dParams& p, const Tensor& dy, const Tensor& indices);
Tensor avgpool2d_forward(ops::Context& ctx, const Pool2dParams& p, const Tensor& x);
Tensor avgpool2d_backward(ops::Context& ctx, const Pool2dParams& p, const Tensor& dy);
Tensor global_avgpool_forward(ops::Context& ctx, const Tensor& x);
Tensor global_avgpool_backward(ops::Context& ctx, const Tensor& dy, const Shape& x_shape);

Tensor linear_forward(ops::Context& ctx, const Tensor& x, const Tensor& w, const Tensor& b);
Tensor linear_backward_data(ops::Context& ctx, const Tensor& dy, const Tensor& w);
Tensor linear_backward_weight(ops::Context& ctx, const Tensor& x, const Tensor& dy);
Tensor linear_backward_bias(ops::Context& ctx, const Tensor& dy);

// Activations: backward takes the forward input x (relu, leaky relu) or output y (sigmoid, tanh), as in ops.h.
Tensor relu_forward(ops::Context& ctx, const Tensor& x);
Tensor relu_backward(ops::Context& ctx, const Tensor& dy, const Tensor& x);
Tensor sigmoid_forward(ops::Context& ctx, const Tensor& x);
Tensor sigmoid_backward(ops::Context& ctx, const Tensor& dy, const Tensor& y);
Tensor tanh_forward(ops::Context& ctx, const Tensor& x);
Tensor tanh_backward(ops::Context& ctx, const Tensor& dy, const Tensor& y);
// cuDNN has no leaky relu activation mode: y = (1 - slope) relu(x) + slope x, two cuDNN calls.
Tensor leaky_relu_forward(ops::Context& ctx, const Tensor& x, float slope);
Tensor leaky_relu_backward(ops::Context& ctx, const Tensor& dy, const Tensor& x, float slope);
Tensor add(ops::Context& ctx, const Tensor& a, const Tensor& b);

// Softmax family over dim 1 of [N, C].
Tensor softmax_forward(ops::Context& ctx, const Tensor& x);
Tensor softmax_backward(ops::Context& ctx, const Tensor& dy, const Tensor& y);
Tensor log_softmax_forward(ops::Context& ctx, const Tensor& x);
Tensor log_softmax_backward(ops::Context& ctx, const Tensor& dy, const Tensor& y);

// Batch norm over [N,C,H,W] or [N,C]; save_invstd = 1/sqrt(biased var + eps), as our kernels save it,
// so the saved statistics are interchangeable between backends.
ops::BatchNormOut batchnorm_forward_train(ops::Context& ctx, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                          Tensor& running_mean, Tensor& running_var, float momentum, float eps);
Tensor batchnorm_forward_eval(ops::Context& ctx, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                              const Tensor& running_mean, const Tensor& running_var, float eps);
ops::BatchNormGrads batchnorm_backward(ops::Context& ctx, const Tensor& dy, const Tensor& x, const Tensor& gamma,
                                       const Tensor& save_mean, const Tensor& save_invstd);

// ---------------------------------------------------------------- GEMM baseline

// Our sgemm's contract (kernels/sgemm.h: row-major, op(A) M x K, op(B) K x N, strided batches,
// beta == 0 does not read C) on cuBLAS (cublasSgemmStridedBatched), on the current thread's handle
// for `device`, TF32 per settings().allow_tf32. Pointers are device pointers of `device`.
void cublas_sgemm(const SgemmParams& g, const float* A, const float* B, float* C, StreamHandle stream,
                  Device device = kCUDA);

}  // namespace fovea::cudnn
