// Host-side declarations of kernel launchers, for both builds of every kernel file.
//
//   // kernels/relu.h
//   #define FOVEA_RELU_KERNELS void relu_forward(const float* x, float* y, int64_t n, StreamHandle stream);
//   FOVEA_DECLARE_KERNELS(FOVEA_RELU_KERNELS)
//
// declares fovea::emu_kernels::relu_forward (always built) and fovea::cuda_kernels::relu_forward
// (built when the CUDA toolkit is found: call it only under #if FOVEA_HAVE_CUDA).
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/op_params.h"

namespace fovea {
using StreamHandle = void*;
}

#if defined(FOVEA_EMU_CHECKED)  // the checked emulator build of a kernel file (cmake/FoveaKernels.cmake)
#define FOVEA_DECLARE_CHECKED_KERNELS(...) \
  namespace fovea::emu_kernels_checked {   \
  __VA_ARGS__                              \
  }
#else
#define FOVEA_DECLARE_CHECKED_KERNELS(...)
#endif
#define FOVEA_DECLARE_KERNELS(...) \
  namespace fovea::emu_kernels {   \
  __VA_ARGS__                      \
  }                                \
  namespace fovea::cuda_kernels {  \
  __VA_ARGS__                      \
  }                                \
  FOVEA_DECLARE_CHECKED_KERNELS(__VA_ARGS__)

// Calls the build of a launcher that matches the device: FOVEA_KERNEL_CALL(dev, relu_forward, x, y, n, stream).
// 'cpu' is not a kernel device (use cpu_reference); 'cuda' in a build without CUDA is a clear error.
#include "core/device.h"
#include "core/error.h"
#if FOVEA_HAVE_CUDA
#define FOVEA_KERNEL_CALL(device, fn, ...)                                                 \
  do {                                                                                     \
    const ::fovea::Device fovea_dev_ = (device);                                           \
    if (fovea_dev_.type == ::fovea::DeviceType::cuda)                                      \
      ::fovea::cuda_kernels::fn(__VA_ARGS__);                                              \
    else if (fovea_dev_.type == ::fovea::DeviceType::emu)                                  \
      ::fovea::emu_kernels::fn(__VA_ARGS__);                                               \
    else                                                                                   \
      FOVEA_FAIL(#fn ": our kernels run on devices emu and cuda, not ", fovea_dev_.str()); \
  } while (0)
#else
#define FOVEA_KERNEL_CALL(device, fn, ...)                                                   \
  do {                                                                                       \
    const ::fovea::Device fovea_dev_ = (device);                                             \
    if (fovea_dev_.type == ::fovea::DeviceType::emu)                                         \
      ::fovea::emu_kernels::fn(__VA_ARGS__);                                                 \
    else if (fovea_dev_.type == ::fovea::DeviceType::cuda)                                   \
      FOVEA_FAIL(#fn ": device cuda requested but this build of fovea has no CUDA support"); \
    else                                                                                     \
      FOVEA_FAIL(#fn ": our kernels run on devices emu and cuda, not ", fovea_dev_.str());   \
  } while (0)
#endif
