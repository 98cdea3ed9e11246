// Internal to the emulator runtime: one consistent snapshot of the settings per launch.
#pragma once
#include <cstddef>

#include "core/emu/emu.h"

namespace fovea::emu::detail {

struct LaunchSettings {
  Schedule schedule;
  int workers = 1;
  bool lenient = false;
  bool poison = false;
  size_t stack_bytes = 0;
};
LaunchSettings launch_settings();

}  // namespace fovea::emu::detail
