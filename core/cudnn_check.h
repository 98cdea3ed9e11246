// Checked cuDNN calls: FOVEA_CUDNN_CHECK(cudnnConvolutionForward(...)) throws fovea::Error with the
// file, line, the call's text, the status name and, on cuDNN 9, the library's own last-error text
// (which names the bad descriptor or parameter). Only for files compiled with cuDNN (FOVEA_HAVE_CUDNN).
#pragma once
#include <cudnn.h>

#include "core/error.h"

namespace fovea {

[[noreturn]] inline void fail_cudnn(cudnnStatus_t status, const char* call, const char* file, int line) {
  std::string detail;
#if CUDNN_MAJOR >= 9
  char message[1024] = {0};
  cudnnGetLastErrorString(message, sizeof(message));  // clears it; empty when the library logged nothing
  if (message[0]) detail = cat(" (", message, ")");
#endif
  throw DeviceError(cat("cuDNN error: ", call, " failed: ", cudnnGetErrorString(status), detail), file, line);
}

}  // namespace fovea

#define FOVEA_CUDNN_CHECK(call)                                            \
  do {                                                                     \
    const cudnnStatus_t fovea_cudnn_status_ = (call);                      \
    if (fovea_cudnn_status_ != CUDNN_STATUS_SUCCESS)                       \
      ::fovea::fail_cudnn(fovea_cudnn_status_, #call, __FILE__, __LINE__); \
  } while (0)
