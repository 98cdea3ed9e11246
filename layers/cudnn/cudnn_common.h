// Internals of backend cudnn (layers/cudnn/*.cpp only): handles, RAII descriptors and their caches,
// size checks and the workspace. Everything here is per thread except the convolution algorithm cache
// (cudnn_conv.cpp), so nothing needs a lock on the hot path.
//
// cuDNN 9 marks its legacy API (descriptors, convolution, pooling, batch norm) deprecated in favour of
// the graph API; it is still shipped and is the API that also exists in cuDNN 8, so these files use it
// and silence -Wdeprecated-declarations: the pragma below applies to the layers/cudnn/*.cpp files that
// include this header, and to nothing else.
#pragma once
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <array>
#include <atomic>
#include <climits>
#include <cstdint>
#include <map>

#include "core/cublas_check.h"
#include "core/cuda_check.h"
#include "core/cudnn_check.h"
#include "core/error.h"
#include "core/tensor.h"
#include "layers/cudnn/cudnn_backend.h"
#include "layers/ops/ops.h"

namespace fovea::cudnn::detail {

// ---------------------------------------------------------------- counters behind cache_stats()
extern std::atomic<int64_t> g_handles, g_descriptors, g_conv_algo_searches;

// ---------------------------------------------------------------- the module's entry points (cudnn_conv.cpp)
std::vector<ConvAlgoInfo> conv_algorithms_impl(const Exec& ctx, ConvOp op, const Conv2dParams& p);
std::optional<ConvAlgoInfo> cached_conv_algo_impl(const Exec& ctx, ConvOp op, const Conv2dParams& p);
void clear_conv_algo_cache_impl();

// ---------------------------------------------------------------- checks

// Backend cudnn only runs on device cuda (a layer's backend can be set after the Context was made).
void require_cuda(const Exec& ctx, const char* op);
// cuDNN's legacy descriptors hold int dimensions and strides: every size and the element count must fit.
int to_int(int64_t v, const char* op, const char* what);
inline cudaStream_t stream_of(const Exec& ctx) {
  return static_cast<cudaStream_t>(ctx.stream);
}

// Scratch from the context's Workspace arena: nullptr for 0 bytes. Limit: workspace_limit(ctx).
void* workspace(const Exec& ctx, size_t bytes);
size_t workspace_limit(const Exec& ctx);

// Makes `device` current for the scope (the handles belong to it) and restores the previous one.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

// ---------------------------------------------------------------- handles (per thread and device)

// This thread's handle for the device, bound to `stream` (cheap: the handle is cached).
cudnnHandle_t cudnn_handle(int device, cudaStream_t stream);
cublasHandle_t cublas_handle(int device, cudaStream_t stream);
cublasLtHandle_t cublaslt_handle(int device);
inline cudnnHandle_t cudnn_handle(const Exec& ctx) {
  return cudnn_handle(ctx.device.index, stream_of(ctx));
}

// ---------------------------------------------------------------- cuBLASLt plans

// A cuBLASLt matmul's descriptors and the algorithm its heuristic chose, destroyed together (cached per shape by
// cublas_linear.cpp and cudnn_precision.cpp). c: the layout of C and D (the same matrix in every call here).
struct LtPlan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  cublasLtMatmulHeuristicResult_t result{};
  bool found = false;  // the heuristic returned an algorithm
  LtPlan() = default;
  LtPlan(const LtPlan&) = delete;
  LtPlan& operator=(const LtPlan&) = delete;
  ~LtPlan() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

// Largest power of two (<= 256) dividing the address: cuBLASLt picks kernels by the operands' alignment.
inline uint32_t alignment(const void* p) {
  const uintptr_t v = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 256;
  while (a > 4 && v % a) a /= 2;
  return a;
}

template <class T>
void set_desc(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr, const T& v) {
  FOVEA_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d, attr, &v, sizeof(v)));
}
template <class T>
void set_pref(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t attr, const T& v) {
  FOVEA_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(p, attr, &v, sizeof(v)));
}

// ---------------------------------------------------------------- RAII descriptors

template <typename T, cudnnStatus_t (*Create)(T*), cudnnStatus_t (*Destroy)(T)>
class Descriptor {
 public:
  Descriptor() {
    FOVEA_CUDNN_CHECK(Create(&d_));
    ++g_descriptors;
  }
  ~Descriptor() {
    if (d_) Destroy(d_);  // no check: may run at thread exit
  }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  T get() const { return d_; }
  operator T() const { return d_; }

 private:
  T d_ = nullptr;
};
using TensorDesc = Descriptor<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor, cudnnDestroyTensorDescriptor>;
using FilterDesc = Descriptor<cudnnFilterDescriptor_t, cudnnCreateFilterDescriptor, cudnnDestroyFilterDescriptor>;
using ConvDesc =
    Descriptor<cudnnConvolutionDescriptor_t, cudnnCreateConvolutionDescriptor, cudnnDestroyConvolutionDescriptor>;
using PoolDesc = Descriptor<cudnnPoolingDescriptor_t, cudnnCreatePoolingDescriptor, cudnnDestroyPoolingDescriptor>;
using ActivationDesc =
    Descriptor<cudnnActivationDescriptor_t, cudnnCreateActivationDescriptor, cudnnDestroyActivationDescriptor>;
using OpTensorDesc =
    Descriptor<cudnnOpTensorDescriptor_t, cudnnCreateOpTensorDescriptor, cudnnDestroyOpTensorDescriptor>;

// Cached descriptors of this thread (created on first use, never destroyed before the thread ends;
// references stay valid).
cudnnTensorDescriptor_t tensor_desc(int n, int c, int h, int w);  // float32 NCHW, packed
cudnnFilterDescriptor_t filter_desc(int k, int c, int r, int s);  // float32 KCRS
// Convolution geometry of p; the math type is set by the caller before each use.
cudnnConvolutionDescriptor_t conv_desc(const Conv2dParams& p);
cudnnPoolingDescriptor_t pool_desc(cudnnPoolingMode_t mode, const Pool2dParams& p);
cudnnPoolingDescriptor_t global_pool_desc(int h, int w);
cudnnActivationDescriptor_t activation_desc(cudnnActivationMode_t mode);
cudnnOpTensorDescriptor_t add_desc();

// Elementwise ops on any number of elements: calls fn(offset, count, desc of [1,1,1,count]) for pieces
// that fit cuDNN's int sizes.
template <class F>
void for_each_chunk(int64_t n, F&& fn) {
  constexpr int64_t kChunk = int64_t(1) << 30;
  for (int64_t off = 0; off < n; off += kChunk) {
    const int64_t count = n - off < kChunk ? n - off : kChunk;
    fn(off, count, tensor_desc(1, 1, 1, int(count)));
  }
}

// ---------------------------------------------------------------- math modes
inline cudnnMathType_t conv_math() {
  return settings().allow_tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
}
inline cublasMath_t blas_math() {
  return settings().allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH;
}
inline cublasComputeType_t blas_compute() {
  return settings().allow_tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F_PEDANTIC;
}

inline constexpr float kOne = 1.0f, kZero = 0.0f;

}  // namespace fovea::cudnn::detail
