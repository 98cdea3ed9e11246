// fovea's CUDA emulator (device 'emu'): runs the unchanged source of kernels/*.cu on the CPU. Every CUDA thread
// is a fiber (Boost.Context fcontext); a block's fibers run on one OS thread, blocks run in parallel on a pool of
// worker threads. See core/emu/README.md for the design, the environment variables and the limits.
//
// Host code uses this header: launch_kernel() and the settings below. Kernel code gets the CUDA device API
// (threadIdx, __syncthreads, __shfl_*_sync, atomics, ...) from core/emu/device_api.h, through kernels/common.cuh.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

#include "core/emu/types.h"

namespace fovea::emu {

// ------------------------------------------------------------------ settings
// Each setting starts from its environment variable, read once, and can be changed at run time (tests).
// They are process-wide and take effect at the next launch.

// The order in which a block's runnable fibers are resumed in each scheduling round. A correct kernel gives the
// same result in every order; a missing __syncthreads or __syncwarp usually does not.
enum class Order { forward, reverse, shuffle };
struct Schedule {
  Order order = Order::forward;
  uint64_t seed = 0;  // shuffle: a fresh permutation every round, from (seed, block index, round)

  // "forward", "reverse", "shuffle:SEED" ("shuffle" alone means seed 1); throws fovea::Error otherwise.
  static Schedule parse(std::string_view text);
  std::string str() const;
  bool operator==(const Schedule&) const = default;
};
Schedule schedule();  // FOVEA_EMU_SCHEDULE, default forward
void set_schedule(Schedule s);

// Worker threads that run blocks in parallel (the launching thread is one of them). 0 restores the default:
// FOVEA_EMU_WORKERS, else std::thread::hardware_concurrency(). Always 1 in a FOVEA_EMU_SANITIZE build, whose
// static __shared__ variables are plain statics shared by every thread.
int workers();
void set_workers(int n);

// Lenient barriers (FOVEA_EMU_LENIENT=1): threads that returned count as arrived at __syncthreads. Off by
// default: a barrier that part of the block never reaches because some threads returned is an error.
bool lenient();
void set_lenient(bool on);

// Poisoning (FOVEA_EMU_POISON=1, always on in a FOVEA_EMU_SANITIZE build): shared memory is filled with 0xFF
// bytes (NaN as float, -1 as int) at the start of every block, so reads of shared memory that the block never
// wrote give visibly wrong results. Dynamic shared memory only: see README.md for static __shared__.
bool poison();
void set_poison(bool on);

// Stack size of every fiber in bytes (FOVEA_EMU_STACK_KB, default 64 KiB; 256 KiB in sanitizer builds).
// Kernels with big per-thread arrays need more; an overflow hits a guard page (SIGSEGV), never other memory.
size_t stack_size();
void set_stack_size(size_t bytes);

// RAII overrides for tests: restore the previous value on destruction.
class ScopedSchedule {
 public:
  explicit ScopedSchedule(Schedule s) : saved_(schedule()) { set_schedule(s); }
  explicit ScopedSchedule(std::string_view text) : ScopedSchedule(Schedule::parse(text)) {}
  ~ScopedSchedule() { set_schedule(saved_); }
  ScopedSchedule(const ScopedSchedule&) = delete;
  ScopedSchedule& operator=(const ScopedSchedule&) = delete;

 private:
  Schedule saved_;
};

class ScopedWorkers {
 public:
  explicit ScopedWorkers(int n) : saved_(workers()) { set_workers(n); }
  ~ScopedWorkers() { set_workers(saved_); }
  ScopedWorkers(const ScopedWorkers&) = delete;
  ScopedWorkers& operator=(const ScopedWorkers&) = delete;

 private:
  int saved_;
};

class ScopedLenient {
 public:
  explicit ScopedLenient(bool on) : saved_(lenient()) { set_lenient(on); }
  ~ScopedLenient() { set_lenient(saved_); }
  ScopedLenient(const ScopedLenient&) = delete;
  ScopedLenient& operator=(const ScopedLenient&) = delete;

 private:
  bool saved_;
};

// ------------------------------------------------------------------ launching
namespace detail {
using KernelBody = void (*)(const void* body);
void launch(const char* name, dim3 grid, dim3 block, size_t smem_bytes, KernelBody invoke, const void* body);

// What the running fiber sees: the CUDA built-in variables and its block's dynamic shared memory. One per OS
// thread: fibers never migrate, and the scheduler updates thread_idx before every resume.
struct Current {
  uint3 thread_idx{0, 0, 0};
  uint3 block_idx{0, 0, 0};
  dim3 block_dim{1, 1, 1};
  dim3 grid_dim{1, 1, 1};
  void* dynamic_smem = nullptr;
  size_t dynamic_smem_bytes = 0;
  void* worker = nullptr;     // the runtime's per-thread state while a block runs, else null
  uint64_t block_serial = 0;  // bumped at every block start: per-block state kept outside the runtime resets on it
};
inline thread_local constinit Current current{};

// Device-side entry points used by device_api.h (core/emu/runtime.cpp); they switch fibers.
enum class WarpOp : uint8_t {
  sync,
  shfl_idx,
  shfl_up,
  shfl_down,
  shfl_xor,
  ballot,
  any,
  all,
  reduce_add,
  reduce_min,
  reduce_max,
  reduce_umin,
  reduce_umax,
  reduce_and,
  reduce_or,
  reduce_xor,
  match_any,
  match_all,
  custom,  // warp_custom()
};
// The calling lane's part of a warp collective over the lanes in `mask`: blocks until every live lane named in
// mask has called it, then returns this lane's result (the bits of the value read, a lane mask, ...).
uint64_t warp_collective(WarpOp op, const char* fn, unsigned mask, uint64_t value, int arg, int width);
// A warp-synchronous instruction defined outside the runtime (core/emu/tensor_core.cpp: mma.sync, ldmatrix). Each
// lane passes a record of its own whose first member is a WarpCustom; when the last live lane named in mask has
// arrived, that lane calls combine(records, lanes) once, with records[l] lane l's record for every lane l in
// `lanes` (null for the others); combine reads every lane's inputs and writes every lane's outputs before any
// lane resumes. Lanes passing different combine functions are an error, as are different masks.
using WarpCombine = void (*)(void* const records[32], uint32_t lanes);
struct WarpCustom {
  WarpCombine combine;
};
inline void warp_custom(const char* fn, unsigned mask, WarpCustom* record) {
  warp_collective(WarpOp::custom, fn, mask, uint64_t(reinterpret_cast<uintptr_t>(record)), 0, 32);
}
enum class BarrierKind : uint8_t { sync, count, all, any };
int block_barrier(BarrierKind kind, int predicate);
unsigned active_mask();
[[noreturn]] void device_trap(const char* what);

}  // namespace detail

// Runs `body()` once per CUDA thread of grid x block and returns when every block is done (launches are
// synchronous). Throws fovea::Error naming the kernel, the block and the thread on failure: an exception thrown
// by the kernel, a deadlock, a barrier that part of the block never reaches, a misused warp function.
template <class F>
void launch_kernel(const char* name, dim3 grid, dim3 block, size_t smem_bytes, F&& body) {
  using Body = std::remove_reference_t<F>;
  detail::launch(
      name, grid, block, smem_bytes, [](const void* p) { (*static_cast<Body*>(const_cast<void*>(p)))(); },
      static_cast<const void*>(std::addressof(body)));
}

// The running block's dynamic shared memory: smem_bytes of the launch, 16-byte aligned, exactly that size
// (AddressSanitizer reports any access past it), private to the block.
inline void* dynamic_shared_memory() {
  return detail::current.dynamic_smem;
}
inline size_t dynamic_shared_memory_size() {
  return detail::current.dynamic_smem_bytes;
}

}  // namespace fovea::emu
