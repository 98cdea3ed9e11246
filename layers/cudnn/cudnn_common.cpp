// Settings, checks, handles and descriptor caches of backend cudnn.
#include "layers/cudnn/cudnn_common.h"

#include <memory>
#include <tuple>

namespace fovea::cudnn {

namespace detail {

std::atomic<int64_t> g_handles{0}, g_descriptors{0}, g_conv_algo_searches{0};
int64_t conv_algo_entries();  // cudnn_conv.cpp

void require_cuda(const Exec& ctx, const char* op) {
  FOVEA_CHECK(ctx.device.type == DeviceType::cuda, op, ": backend cudnn runs on device cuda only, not ",
              ctx.device.str(), " (use --backend custom)");
}

int to_int(int64_t v, const char* op, const char* what) {
  FOVEA_CHECK(v >= 0 && v <= INT_MAX, op, ": ", what, " = ", v,
              " does not fit cuDNN/cuBLAS's 32-bit sizes (backend cudnn); use --backend custom");
  return int(v);
}

size_t workspace_limit(const Exec& ctx) {
  const size_t arena = ctx.workspace ? ctx.workspace->limit() : 0;
  const size_t mine = settings().workspace_limit;
  return arena < mine ? arena : mine;
}

void* workspace(const Exec& ctx, size_t bytes) {
  if (bytes == 0) return nullptr;
  FOVEA_CHECK(ctx.workspace, "backend cudnn: the context has no workspace");
  FOVEA_CHECK(bytes <= workspace_limit(ctx), "backend cudnn: ", bytes, " bytes of workspace requested, limit ",
              workspace_limit(ctx));
  return ctx.workspace->get(bytes);
}

DeviceGuard::DeviceGuard(int device) {
  int current = 0;
  FOVEA_CUDA_CHECK(cudaGetDevice(&current));
  if (current != device) {
    FOVEA_CUDA_CHECK(cudaSetDevice(device));
    previous_ = current;
  }
}

DeviceGuard::~DeviceGuard() {
  if (previous_ >= 0) cudaSetDevice(previous_);
}

// ---------------------------------------------------------------- handles

namespace {

struct DeviceHandles {
  cudnnHandle_t cudnn = nullptr;
  cublasHandle_t cublas = nullptr;
  cublasLtHandle_t lt = nullptr;
  cudaStream_t cudnn_stream = nullptr, cublas_stream = nullptr;  // what each handle is bound to
};

// One set per thread and device, destroyed when the thread ends (the main thread's before static
// destructors and the CUDA runtime's own teardown run).
struct ThreadHandles {
  std::map<int, DeviceHandles> devices;
  ~ThreadHandles() {
    for (auto& [device, h] : devices) {
      if (h.cudnn) cudnnDestroy(h.cudnn);
      if (h.cublas) cublasDestroy(h.cublas);
      if (h.lt) cublasLtDestroy(h.lt);
    }
  }
};

DeviceHandles& handles(int device) {
  thread_local ThreadHandles t;
  return t.devices[device];
}

}  // namespace

cudnnHandle_t cudnn_handle(int device, cudaStream_t stream) {
  DeviceHandles& h = handles(device);
  if (!h.cudnn) {
    DeviceGuard guard(device);
    FOVEA_CUDNN_CHECK(cudnnCreate(&h.cudnn));
    ++g_handles;
    FOVEA_CUDNN_CHECK(cudnnSetStream(h.cudnn, stream));
    h.cudnn_stream = stream;
  } else if (h.cudnn_stream != stream) {
    FOVEA_CUDNN_CHECK(cudnnSetStream(h.cudnn, stream));
    h.cudnn_stream = stream;
  }
  return h.cudnn;
}

cublasHandle_t cublas_handle(int device, cudaStream_t stream) {
  DeviceHandles& h = handles(device);
  if (!h.cublas) {
    DeviceGuard guard(device);
    FOVEA_CUBLAS_CHECK(cublasCreate(&h.cublas));
    ++g_handles;
    FOVEA_CUBLAS_CHECK(cublasSetStream(h.cublas, stream));
    h.cublas_stream = stream;
  } else if (h.cublas_stream != stream) {
    FOVEA_CUBLAS_CHECK(cublasSetStream(h.cublas, stream));
    h.cublas_stream = stream;
  }
  return h.cublas;
}

cublasLtHandle_t cublaslt_handle(int device) {
  DeviceHandles& h = handles(device);
  if (!h.lt) {
    DeviceGuard guard(device);
    FOVEA_CUBLAS_CHECK(cublasLtCreate(&h.lt));
    ++g_handles;
  }
  return h.lt;
}

// ---------------------------------------------------------------- descriptor caches

namespace {

template <class Key, class Desc>
using Cache = std::map<Key, std::unique_ptr<Desc>>;

template <class Key, class Desc, class Init>
auto cached(Cache<Key, Desc>& cache, const Key& key, Init&& init) {
  auto it = cache.find(key);
  if (it == cache.end()) {
    auto d = std::make_unique<Desc>();
    init(d->get());
    it = cache.emplace(key, std::move(d)).first;
  }
  return it->second->get();
}

}  // namespace

cudnnTensorDescriptor_t tensor_desc(int n, int c, int h, int w) {
  thread_local Cache<std::array<int, 4>, TensorDesc> cache;
  return cached(cache, {n, c, h, w}, [&](cudnnTensorDescriptor_t d) {
    FOVEA_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w));
  });
}

cudnnFilterDescriptor_t filter_desc(int k, int c, int r, int s) {
  thread_local Cache<std::array<int, 4>, FilterDesc> cache;
  return cached(cache, {k, c, r, s}, [&](cudnnFilterDescriptor_t d) {
    FOVEA_CUDNN_CHECK(cudnnSetFilter4dDescriptor(d, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, k, c, r, s));
  });
}

cudnnConvolutionDescriptor_t conv_desc(const Conv2dParams& p) {
  const char* op = "conv2d";
  const std::array<int, 7> key{to_int(p.pad_h, op, "pad_h"),       to_int(p.pad_w, op, "pad_w"),
                               to_int(p.stride_h, op, "stride_h"), to_int(p.stride_w, op, "stride_w"),
                               to_int(p.dil_h, op, "dil_h"),       to_int(p.dil_w, op, "dil_w"),
                               to_int(p.groups, op, "groups")};
  thread_local Cache<std::array<int, 7>, ConvDesc> cache;
  return cached(cache, key, [&](cudnnConvolutionDescriptor_t d) {
    // Cross-correlation, as PyTorch's conv2d; float32 accumulation.
    FOVEA_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(d, key[0], key[1], key[2], key[3], key[4], key[5],
                                                      CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    FOVEA_CUDNN_CHECK(cudnnSetConvolutionGroupCount(d, key[6]));
  });
}

cudnnPoolingDescriptor_t pool_desc(cudnnPoolingMode_t mode, const Pool2dParams& p) {
  const char* op = "pool2d";
  const std::array<int, 7> key{int(mode),
                               to_int(p.kernel_h, op, "kernel_h"),
                               to_int(p.kernel_w, op, "kernel_w"),
                               to_int(p.pad_h, op, "pad_h"),
                               to_int(p.pad_w, op, "pad_w"),
                               to_int(p.stride_h, op, "stride_h"),
                               to_int(p.stride_w, op, "stride_w")};
  thread_local Cache<std::array<int, 7>, PoolDesc> cache;
  return cached(cache, key, [&](cudnnPoolingDescriptor_t d) {
    // NaN propagates, as in PyTorch's max_pool2d.
    FOVEA_CUDNN_CHECK(
        cudnnSetPooling2dDescriptor(d, mode, CUDNN_PROPAGATE_NAN, key[1], key[2], key[3], key[4], key[5], key[6]));
  });
}

cudnnPoolingDescriptor_t global_pool_desc(int h, int w) {
  Pool2dParams p;
  p.kernel_h = h, p.kernel_w = w, p.stride_h = 1, p.stride_w = 1, p.pad_h = 0, p.pad_w = 0;
  return pool_desc(CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING, p);
}

cudnnActivationDescriptor_t activation_desc(cudnnActivationMode_t mode) {
  thread_local Cache<int, ActivationDesc> cache;
  return cached(cache, int(mode), [&](cudnnActivationDescriptor_t d) {
    FOVEA_CUDNN_CHECK(cudnnSetActivationDescriptor(d, mode, CUDNN_PROPAGATE_NAN, 0.0));
  });
}

cudnnOpTensorDescriptor_t add_desc() {
  thread_local Cache<int, OpTensorDesc> cache;
  return cached(cache, 0, [&](cudnnOpTensorDescriptor_t d) {
    FOVEA_CUDNN_CHECK(cudnnSetOpTensorDescriptor(d, CUDNN_OP_TENSOR_ADD, CUDNN_DATA_FLOAT, CUDNN_PROPAGATE_NAN));
  });
}

}  // namespace detail

namespace {

std::string runtime_version_impl() {
  const size_t v = cudnnGetVersion();  // works without a GPU
  return cat(v / 10000, ".", (v % 10000) / 100, ".", v % 100);
}

CacheStats cache_stats_impl() {
  CacheStats s;
  s.handles = detail::g_handles.load();
  s.descriptors = detail::g_descriptors.load();
  s.conv_algo_entries = detail::conv_algo_entries();
  s.conv_algo_searches = detail::g_conv_algo_searches.load();
  return s;
}

// The module's entry points, handed to the program while the module loads (cudnn_backend.h, ModuleApi).
const bool api_set = [] {
  ModuleApi& api = module_api();
  api.runtime_version = runtime_version_impl;
  api.conv_algorithms = detail::conv_algorithms_impl;
  api.cached_conv_algo = detail::cached_conv_algo_impl;
  api.clear_conv_algo_cache = detail::clear_conv_algo_cache_impl;
  api.cache_stats = cache_stats_impl;
  return true;
}();

}  // namespace

}  // namespace fovea::cudnn
