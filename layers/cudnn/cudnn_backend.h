// Backend 'cudnn': the cudnn slots of the ops' dispatch stubs on NVIDIA's libraries, side by side with our
// kernels. This header holds what users of the backend set and ask (settings, the algorithm queries, cache
// statistics, the library version); the implementations register themselves from layers/cudnn/*.cpp.
//   cuDNN  : conv2d fprop / dgrad / wgrad / bias, max and average pooling (also global), softmax and
//            log-softmax, relu / sigmoid / tanh / leaky relu, batch norm (training, eval, backward), add.
//   cuBLAS : linear forward (cuBLASLt, bias fused as an epilogue) and backward; the GEMM stub (our sgemm's contract),
//            the GEMM baseline of the benchmarks.
//   At the tensor cores' precisions (ops::Context::precision tf32 / bf16 / fp16; layers/cudnn/cudnn_precision.cpp):
//            conv2d fprop / dgrad / wgrad on cuDNN (tensor-op math, 16-bit NHWC copies for bf16 / fp16), linear
//            forward and backward on cuBLASLt (32F_FAST_TF32, or 16-bit matrices with 32F compute), and the
//            raw-buffer calls of `fovea bench --suites precision` (below).
// The implementation lives in layers/cudnn/, built only when CMake finds cuDNN (FOVEA_HAVE_CUDNN), as the
// module libfovea_cudnn.so that a program loads the first time it asks for backend cudnn
// (core/library_module.h): a run that never does never pays for loading cuDNN and cuBLAS. This header
// has no cuDNN types, so any file may include it. Asking for the backend in a
// build without cuDNN is a clear error (ops::Context's constructor, and the stubs for Exec values made
// directly). Ops cuDNN does not offer (dropout, cross-entropy, MSE, LRN, optimizers, fills) run our cuda
// kernels under backend cudnn too, as PyTorch's cudnn backend does (DispatchStub's fallback).
//
// Inputs are validated by the ops (layers/ops/*.cpp) before they get here (shapes, dtypes, devices); these
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
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/dispatch.h"
#include "core/error.h"
#include "layers/ops/conv2d.h"  // ConvOp, Conv2dParams

namespace fovea::cudnn {

// The cuDNN library loaded at run time: "9.19.0", or why there is none (the module's status,
// core/library_module.h). Loads the module.
std::string runtime_version();

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
std::vector<ConvAlgoInfo> conv_algorithms(const Exec& ex, ConvOp op, const Conv2dParams& p);
// The algorithm the cache holds for this shape, context and settings (set by the first call of the op).
std::optional<ConvAlgoInfo> cached_conv_algo(const Exec& ex, ConvOp op, const Conv2dParams& p);
// Forgets every cached algorithm choice (all threads).
void clear_conv_algo_cache();

// ---------------------------------------------------------------- at the tensor cores' precisions, raw buffers

// For the precision benchmark (bench/precision_suite.cpp): NVIDIA's libraries on device buffers the caller owns, at
// precision tf32 (FP32 buffers) or bf16 / fp16 (16-bit buffers: BF16 / FP16 bits), FP32 accumulation
// (layers/cudnn/cudnn_precision.cpp). Scratch from ex.workspace.
// Row-major C[M,N] = A[M,K] B[N,K]^T on cuBLASLt with the rank-th algorithm of its heuristic's list (0: its first
// choice); false, nothing run, where the list is shorter (the benchmark times ranks 0, 1, ... and keeps the fastest).
bool lt_gemm_raw(const Exec& ex, Precision prec, int64_t M, int64_t N, int64_t K, const void* A, const void* B, void* C,
                 int rank = 0);
// Every algorithm cuDNN lists as supported for the convolution at prec (tensor-op math), within the workspace
// limit, deterministic or not (ConvAlgoInfo::deterministic says which), in cuDNN's heuristic order. Tensors are
// FP32 NCHW with KCRS weights for tf32, 16-bit NHWC with KRSC weights for bf16 / fp16.
std::vector<ConvAlgoInfo> conv_precision_algorithms(const Exec& ex, Precision prec, ConvOp op, const Conv2dParams& p);
// One run of algorithm `algo` (a ConvAlgoInfo::algo of the list above). Buffers as the stubs': forward (x, w) -> y,
// backward_data (dy, w) -> dx, backward_filter (x, dy) -> dw; outputs overwritten.
void conv_precision_raw(const Exec& ex, Precision prec, ConvOp op, const Conv2dParams& p, int algo, const void* in0,
                        const void* in1, void* out);
// The sizes of those buffers (in0, in1, out) as (n, c, hw): element counts, and the dimensions of the NCHW <-> NHWC
// conversions.
struct ConvBufferDims {
  int64_t n, c, hw;
  int64_t size() const { return n * c * hw; }
};
inline std::array<ConvBufferDims, 3> conv_buffer_dims(ConvOp op, const Conv2dParams& p) {
  const ConvBufferDims x{p.N, p.C, p.H * p.W}, y{p.N, p.K, p.P() * p.Q()}, w{p.K, p.C_per_group(), p.R * p.S};
  if (op == ConvOp::forward) return {x, w, y};
  if (op == ConvOp::backward_data) return {y, w, x};
  return {x, y, w};
}

// Objects created so far (all threads): they must not grow with the number of calls.
struct CacheStats {
  int64_t handles = 0;      // cuDNN + cuBLAS + cuBLASLt handles
  int64_t descriptors = 0;  // tensor, filter, convolution, pooling, activation, op-tensor, LRN, layouts
  int64_t conv_algo_entries = 0;
  int64_t conv_algo_searches = 0;  // heuristic queries + benchmarks run
};
CacheStats cache_stats();

// The functions above that need cuDNN live in the module (libfovea_cudnn.so, core/library_module.h); the
// module fills this table while it loads, and the functions above (layers/ops/cudnn_backend.cpp, always
// linked) load the module and call through it. Settings stay on the program's side: the module reads them.
struct ModuleApi {
  std::string (*runtime_version)() = nullptr;
  std::vector<ConvAlgoInfo> (*conv_algorithms)(const Exec&, ConvOp, const Conv2dParams&) = nullptr;
  std::optional<ConvAlgoInfo> (*cached_conv_algo)(const Exec&, ConvOp, const Conv2dParams&) = nullptr;
  void (*clear_conv_algo_cache)() = nullptr;
  CacheStats (*cache_stats)() = nullptr;
  bool (*lt_gemm_raw)(const Exec&, Precision, int64_t, int64_t, int64_t, const void*, const void*, void*,
                      int) = nullptr;
  std::vector<ConvAlgoInfo> (*conv_precision_algorithms)(const Exec&, Precision, ConvOp, const Conv2dParams&) = nullptr;
  void (*conv_precision_raw)(const Exec&, Precision, ConvOp, const Conv2dParams&, int, const void*, const void*,
                             void*) = nullptr;
};
ModuleApi& module_api();

}  // namespace fovea::cudnn
