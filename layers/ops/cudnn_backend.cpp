// The side of backend cudnn every program links: its settings, and the calls that load the module
// (libfovea_cudnn.so, core/library_module.h) and go through the table it fills (cudnn_backend.h, ModuleApi).
#include "layers/cudnn/cudnn_backend.h"

#include "core/library_module.h"

namespace fovea::cudnn {

const char* conv_search_name(ConvSearch s) {
  return s == ConvSearch::heuristic ? "heuristic" : "benchmark";
}

ConvSearch parse_conv_search(const std::string& text) {
  if (text == "heuristic") return ConvSearch::heuristic;
  if (text == "benchmark") return ConvSearch::benchmark;
  FOVEA_FAIL("cudnn: convolution algorithm search '", text, "' is not one (expected heuristic or benchmark)");
}

Settings& settings() {
  thread_local Settings s;
  return s;
}

ModuleApi& module_api() {
  static ModuleApi api;
  return api;
}

namespace {

const ModuleApi& api(const char* who) {
  require_module(Backend::cudnn, who);
  return module_api();
}

}  // namespace

std::string runtime_version() {
  if (!load_module(Backend::cudnn)) return module_status(Backend::cudnn);
  return module_api().runtime_version();
}

std::vector<ConvAlgoInfo> conv_algorithms(const Exec& ex, ConvOp op, const Conv2dParams& p) {
  return api("cudnn::conv_algorithms").conv_algorithms(ex, op, p);
}

std::optional<ConvAlgoInfo> cached_conv_algo(const Exec& ex, ConvOp op, const Conv2dParams& p) {
  return api("cudnn::cached_conv_algo").cached_conv_algo(ex, op, p);
}

void clear_conv_algo_cache() {
  api("cudnn::clear_conv_algo_cache").clear_conv_algo_cache();
}

bool lt_gemm_raw(const Exec& ex, Precision prec, int64_t M, int64_t N, int64_t K, const void* A, const void* B, void* C,
                 int rank) {
  return api("cudnn::lt_gemm_raw").lt_gemm_raw(ex, prec, M, N, K, A, B, C, rank);
}

std::vector<ConvAlgoInfo> conv_precision_algorithms(const Exec& ex, Precision prec, ConvOp op, const Conv2dParams& p) {
  return api("cudnn::conv_precision_algorithms").conv_precision_algorithms(ex, prec, op, p);
}

void conv_precision_raw(const Exec& ex, Precision prec, ConvOp op, const Conv2dParams& p, int algo, const void* in0,
                        const void* in1, void* out) {
  api("cudnn::conv_precision_raw").conv_precision_raw(ex, prec, op, p, algo, in0, in1, out);
}

CacheStats cache_stats() {
  return api("cudnn::cache_stats").cache_stats();
}

}  // namespace fovea::cudnn
