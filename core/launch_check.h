#pragma once
#include <cstddef>

#include "core/counters.h"  // kernel_launch_count()

namespace fovea::detail {
// The limits every CUDA GPU since sm_30 shares; a launch outside them fails the same way on both devices.
// Plain integers: the emulator's dim3 and CUDA's dim3 are different types. Counts the launch.
void check_launch_config(const char* kernel, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                         unsigned bz, size_t smem_bytes);
}  // namespace fovea::detail
