// Metric reductions: metric_sum and count_correct with Thrust (declarations in kernels/metrics.h), and the
// emu/cuda slots of layers/ops/metrics.h (accumulate_metrics, a plain kernel that keeps its sums on the device).
//
// Thrust selection (documented choice): nvcc builds use the CUDA backend of the toolkit's Thrust. The emulator
// build compiles this file with g++ against the same CCCL headers (kernels/CMakeLists.txt adds their include
// directory, or Debian's libthrust-dev when the toolkit is absent) and picks Thrust's OpenMP backend when
// OpenMP is enabled, else the serial CPP backend. These are host-parallel reductions, not emulated kernels.
//
// metric_sum: 4 bytes read per element, one add (double); count_correct: 4*C bytes read per row, C compares.
// Both HBM-bound on an H100 (CUB's DeviceReduce underneath reaches ~90% of 3.35 TB/s on large inputs); in
// practice they run on a few KB per step and cost one launch plus the device-to-host copy of the result.
//
// accumulate_metrics: one block of 256 threads, a grid-stride loop over rows (4*C bytes read and C compares per
// row, the same argmax as count_correct), the correct count reduced in the block in a fixed order, confusion
// cells incremented with 64-bit integer atomics (order-free, so deterministic). Thread 0 then adds the batch
// into the double sums: one multiply and one add, both rounded explicitly (__dmul_rn/__dadd_rn, so nvcc cannot
// fuse them) - the same bits as the host loop it replaces. One launch and no copy back: for a training batch
// (N <= a few thousand rows) it is launch-bound, a few microseconds; one block is enough.
#include "kernels/metrics.h"

#if !defined(__CUDACC__)
#if defined(_OPENMP)
#define THRUST_DEVICE_SYSTEM THRUST_DEVICE_SYSTEM_OMP
#else
#define THRUST_DEVICE_SYSTEM THRUST_DEVICE_SYSTEM_CPP
#endif
#endif
#if !__has_include(<thrust/transform_reduce.h>)
#error "kernels/metrics.cu needs Thrust: the CUDA toolkit's CCCL headers or Debian's libthrust-dev"
#endif
// Thrust before common.cuh: the emulator's device API defines CUDA keywords as macros.
#include <thrust/functional.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/transform_reduce.h>
#if defined(__CUDACC__)
#include <thrust/system/cuda/execution_policy.h>
#elif defined(_OPENMP)
#include <thrust/system/omp/execution_policy.h>
#else
#include <thrust/system/cpp/execution_policy.h>
#endif

#include <cstddef>

#include "kernels/common.cuh"
#include "kernels/reduce.cuh"
#include "layers/ops/metrics.h"

namespace fovea::FOVEA_KERNEL_NS {
namespace {

// Bump allocation inside one block of the caller's workspace; Thrust frees everything before returning.
class ScratchAllocator {
 public:
  using value_type = char;
  ScratchAllocator(char* base, size_t bytes, const char* op) : base_(base), cap_(bytes), op_(op) {}
  char* allocate(std::ptrdiff_t n) {
    const size_t at = (used_ + 255) & ~size_t(255);
    FOVEA_CHECK(n >= 0 && at + size_t(n) <= cap_, op_, ": Thrust asked for ", n, " bytes of scratch; ", cap_ - used_,
                " of the ", cap_, " reserved are left");
    used_ = at + size_t(n);
    return base_ + at;
  }
  void deallocate(char*, size_t) {}

 private:
  char* base_;
  size_t cap_, used_ = 0;
  const char* op_;
};

template <class F>
auto with_policy(Workspace& ws, const char* op, StreamHandle stream, F&& f) {
  Exec ex;
  ex.workspace = &ws;
  ScratchAllocator alloc(workspace_array<char>(ex, int64_t(kMetricScratchBytes), op), kMetricScratchBytes, op);
#if defined(__CUDACC__)
  return f(thrust::cuda::par(alloc).on(static_cast<cudaStream_t>(stream)));
#elif defined(_OPENMP)
  (void)stream;
  return f(thrust::omp::par(alloc));
#else
  (void)stream;
  return f(thrust::cpp::par(alloc));
#endif
}

struct ToDouble {
  FOVEA_HD double operator()(float v) const { return double(v); }
};

// torch.argmax of a row: the first maximum; the first NaN if there is one.
FOVEA_HD_INLINE int64_t row_argmax(const float* row, int64_t C) {
  float best = row[0];
  int64_t arg = 0;
  for (int64_t c = 1; c < C && best == best; ++c) {
    const float v = row[c];
    if (v > best || v != v) best = v, arg = c;
  }
  return arg;
}

// 1 when row r's argmax equals its label.
struct RowCorrect {
  const float* logits;
  const int64_t* labels;
  int64_t C;
  FOVEA_HD int64_t operator()(int64_t r) const { return row_argmax(logits + r * C, C) == labels[r] ? 1 : 0; }
};

constexpr int kMetricsBlock = 256;

__global__ void accumulate_metrics_kernel(ops::MetricsBatch b, double* sums, unsigned long long* confusion) {
  __shared__ int partials[32];
  int correct = 0;
  for (int64_t r = threadIdx.x; r < b.N; r += blockDim.x) {
    const int64_t label = b.labels[r], pred = row_argmax(b.logits + r * b.C, b.C);
    if (label < 0 || label >= b.C) continue;
    correct += pred == label ? 1 : 0;
    if (confusion) atomicAdd(confusion + (label * b.C + pred), 1ull);
  }
  correct = block_sum(correct, partials);
  if (threadIdx.x == 0) {
    const float loss = b.loss[0];
    sums[ops::kLossSum] = __dadd_rn(sums[ops::kLossSum], __dmul_rn(double(loss), double(b.N)));
    sums[ops::kCorrect] = __dadd_rn(sums[ops::kCorrect], double(correct));
    const bool finite = fabsf(loss) < INFINITY;  // false for NaN and +-Inf
    if (!finite && sums[ops::kFirstNonFinite] == 0.0) {
      sums[ops::kFirstNonFinite] = double(b.tag + 1);
      sums[ops::kNonFiniteLoss] = double(loss);
    }
  }
}

void accumulate_metrics(const Exec& ex, const ops::MetricsBatch& b, double* sums, int64_t* confusion) {
  const char* op = "accumulate_metrics";
  FOVEA_CHECK(b.N >= 0 && b.N < (int64_t(1) << 31) && b.C > 0, op,
              ": logits must be [N, C] with 0 <= N < 2^31 and C > 0, got [", b.N, ", ", b.C, "]");
  check_ptr(op, "loss", b.loss), check_ptr(op, "sums", sums);
  if (b.N > 0) check_ptr(op, "logits", b.logits), check_ptr(op, "labels", b.labels);  // N = 0 reads neither
  launch<accumulate_metrics_kernel>(op, dim3(1), dim3(kMetricsBlock), 0, ex.stream, b, sums,
                                    reinterpret_cast<unsigned long long*>(confusion));
}

}  // namespace

double metric_sum(const float* values, int64_t n, Workspace& ws, StreamHandle stream) {
  const char* op = "metric_sum";
  FOVEA_CHECK(n >= 0, op, ": argument 'n' must be >= 0, got ", n);
  if (n == 0) return 0.0;
  FOVEA_CHECK(values != nullptr, op, ": argument 'values' is null");
  return with_policy(ws, op, stream, [&](auto&& policy) {
    return thrust::transform_reduce(policy, values, values + n, ToDouble{}, 0.0, thrust::plus<double>());
  });
}

int64_t count_correct(const float* logits, const int64_t* labels, int64_t N, int64_t C, Workspace& ws,
                      StreamHandle stream) {
  const char* op = "count_correct";
  FOVEA_CHECK(N >= 0, op, ": argument 'N' must be >= 0, got ", N);
  FOVEA_CHECK(C > 0, op, ": argument 'C' must be > 0, got ", C);
  if (N == 0) return 0;
  check_ptr(op, "logits", logits), check_ptr(op, "labels", labels);
  return with_policy(ws, op, stream, [&](auto&& policy) {
    return thrust::transform_reduce(policy, thrust::counting_iterator<int64_t>(0),
                                    thrust::counting_iterator<int64_t>(N), RowCorrect{logits, labels, C}, int64_t(0),
                                    thrust::plus<int64_t>());
  });
}

const bool registered = ops::accumulate_metrics_stub.define(kThisSlot, accumulate_metrics);

}  // namespace fovea::FOVEA_KERNEL_NS
