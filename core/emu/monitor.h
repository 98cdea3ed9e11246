// Internal to the emulator: what the runtime (runtime.cpp) tells the memory checks and the profiler (check.cpp)
// about an instrumented launch. A launch is instrumented when its kernel was compiled with the access hooks (the
// checked build of a kernel file) and a check mode or profiling is on; nothing here runs otherwise.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/emu/emu.h"

namespace fovea::emu::detail {

class LaunchMonitor;  // one per instrumented launch
class WorkerMonitor;  // one per worker thread of an instrumented launch; current.monitor while a block runs

struct StackRange {
  const char* lo;  // lowest usable byte of a fiber's stack
  const char* hi;  // one past its highest
};

// Null when the launch is not instrumented or nothing is on.
LaunchMonitor* monitor_begin(const LaunchSpec& spec, const void* body, size_t body_bytes);
// Merges the workers' findings and statistics; throws fovea::Error with the report of initcheck and racecheck
// findings unless the launch already failed (`failed`: its own error wins).
void monitor_end(LaunchMonitor* m, bool failed);
void monitor_discard(LaunchMonitor* m);  // the launch threw before monitor_end

WorkerMonitor* worker_begin(LaunchMonitor* m, const StackRange* stacks, int threads, const void* dynamic_smem,
                            size_t dynamic_smem_bytes);
void worker_end(WorkerMonitor* w);
void block_begin(WorkerMonitor* w);                                // current.block_idx is set
void block_barrier(WorkerMonitor* w);                              // every thread of the block passed a __syncthreads
void block_warp_sync(WorkerMonitor* w, int warp, uint32_t lanes);  // these lanes completed a __syncwarp together
void block_end(WorkerMonitor* w);

}  // namespace fovea::emu::detail
