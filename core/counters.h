// Process-wide counters (all threads) for tests that prove a loop never waits for the device, and for
// launch budgets. Counted where the waits and launches happen: core/memory.cpp and core/stream.cpp (copies
// between the host and a device - on emu too, whose copies are memcpy but would wait on a GPU - and
// stream, event and device synchronizes on emu and cuda), core/cuda_check.cpp (FOVEA_SYNC_LAUNCHES),
// core/launch_check.cpp (every launch through fovea::launch, emu and cuda; cuDNN, cuBLAS and Thrust
// launches are not seen).
#pragma once
#include <cstdint>

namespace fovea {

int64_t host_sync_count();
int64_t kernel_launch_count();

namespace detail {
void count_host_sync();
void count_launch();
}  // namespace detail

}  // namespace fovea
