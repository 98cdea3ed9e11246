// Checked cuBLAS / cuBLASLt calls: FOVEA_CUBLAS_CHECK(cublasSgemm(...)) throws fovea::Error with the
// file, line, the call's text, the status name (CUBLAS_STATUS_INVALID_VALUE) and its description.
// Only for files compiled with CUDA (cuBLAS ships with the toolkit).
#pragma once
#include <cublas_api.h>

#include "core/error.h"

namespace fovea {

[[noreturn]] inline void fail_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
  throw DeviceError(
      cat("cuBLAS error: ", call, " failed: ", cublasGetStatusName(status), ": ", cublasGetStatusString(status)), file,
      line);
}

}  // namespace fovea

#define FOVEA_CUBLAS_CHECK(call)                                             \
  do {                                                                       \
    const cublasStatus_t fovea_cublas_status_ = (call);                      \
    if (fovea_cublas_status_ != CUBLAS_STATUS_SUCCESS)                       \
      ::fovea::fail_cublas(fovea_cublas_status_, #call, __FILE__, __LINE__); \
  } while (0)
