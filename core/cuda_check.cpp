#include "core/cuda_check.h"

#include <cstdlib>
#include <cstring>

#include "core/counters.h"

namespace fovea {

[[noreturn]] void fail_cuda(cudaError_t err, const char* call, const char* file, int line) {
  throw DeviceError(cat("CUDA error: ", call, " failed: ", cudaGetErrorName(err), ": ", cudaGetErrorString(err)), file,
                    line);
}

static bool sync_launches() {
#ifdef FOVEA_SYNC_LAUNCHES
  return true;
#else
  static const bool on = [] {
    const char* v = std::getenv("FOVEA_SYNC_LAUNCHES");
    return v && std::strcmp(v, "0") != 0;
  }();
  return on;
#endif
}

void check_cuda_launch(const char* kernel, cudaStream_t stream, const char* file, int line) {
  cudaError_t err = cudaGetLastError();
  if (err == cudaSuccess && sync_launches()) {
    detail::count_host_sync();
    err = cudaStreamSynchronize(stream);
  }
  if (err != cudaSuccess)
    throw DeviceError(
        cat("CUDA error: launch of ", kernel, " failed: ", cudaGetErrorName(err), ": ", cudaGetErrorString(err)), file,
        line);
}

}  // namespace fovea
