// The one place left that declares kernel launchers by macro: kernels/metrics.h (count_correct and
// metric_sum, called by name from layers/ops/metrics.cpp). Every other kernel is reached through a typed
// dispatch stub (core/dispatch.h); metrics follow when they move to stubs.
#pragma once
#include "core/dispatch.h"  // StreamHandle

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
