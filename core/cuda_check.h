// Checked CUDA runtime calls: FOVEA_CUDA_CHECK(cudaMalloc(&p, n)) throws fovea::Error with the file,
// line, the call's text and the runtime's own message. Only for files that see cuda_runtime.h.
#pragma once
#include <cuda_runtime.h>

#include "core/error.h"

namespace fovea {

[[noreturn]] void fail_cuda(cudaError_t err, const char* call, const char* file, int line);

// After every launch: the launch error always; in builds with FOVEA_SYNC_LAUNCHES (debug and tests)
// or with the environment variable FOVEA_SYNC_LAUNCHES=1, also the kernel's execution error.
void check_cuda_launch(const char* kernel, cudaStream_t stream, const char* file, int line);

}  // namespace fovea

#define FOVEA_CUDA_CHECK(call)                                                                \
  do {                                                                                        \
    cudaError_t fovea_err_ = (call);                                                          \
    if (fovea_err_ != cudaSuccess) ::fovea::fail_cuda(fovea_err_, #call, __FILE__, __LINE__); \
  } while (0)
