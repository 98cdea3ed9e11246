// fovea's CUDA emulator (device 'emu'): runs the unchanged source of kernels/*.cu on the CPU. Every CUDA thread
// is a fiber (Boost.Context fcontext); a block's fibers run on one OS thread, blocks run in parallel on a pool of
// worker threads. See core/emu/README.md for the design, the environment variables and the limits.
//
// Host code uses this header: launch_kernel() and the settings below. Kernel code gets the CUDA device API
// (threadIdx, __syncthreads, __shfl_*_sync, atomics, ...) from core/emu/device_api.h, through kernels/common.cuh.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "core/emu/types.h"

// Functions that read the emulator's own state (threadIdx, the dynamic shared memory pointer, ...) stay out of the
// instrumented build's access hooks: their reads are not the kernel's memory accesses.
#define FOVEA_EMU_UNCHECKED __attribute__((no_sanitize_address))

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

// Memory checks of instrumented launches (FOVEA_EMU_CHECK, a comma-separated list; see core/emu/README.md):
//   memcheck         every global and shared access against live device allocations, the dynamic shared memory,
//                    the launch's parameters: out of bounds, use after free, misaligned for its size. The first
//                    error stops the launch, as on a GPU.
//   initcheck        reads of device memory (global) that nothing ever wrote.
//   racecheck        shared-memory hazards between threads with no barrier (or __syncwarp) between them.
//   racecheck-global racecheck plus global-memory writes of one byte by two blocks of one launch.
// Findings of initcheck and racecheck are collected over the whole launch, which then throws fovea::Error with
// the report. Checks run the instrumented build of every kernel (built beside the normal one), so they cost time
// only when on.
enum Check : unsigned { kMemcheck = 1, kInitcheck = 2, kRacecheck = 4, kRacecheckGlobal = 8 };
unsigned checks();  // FOVEA_EMU_CHECK, default none (0)
void set_checks(unsigned mask);
unsigned parse_checks(std::string_view text);  // "memcheck,racecheck", "none" or ""; throws fovea::Error otherwise
std::string checks_str(unsigned mask);         // "memcheck,racecheck", "none"
// Whether this build has the instrumented kernels that checks and profiling need (not in FOVEA_SANITIZE builds).
bool instrumented_build_available();

// The device the emulator pretends to be, for launch limits (dynamic shared memory above 48 KiB needs the
// cudaFuncSetAttribute opt-in, up to the architecture's maximum): FOVEA_EMU_ARCH=800 (sm_80, A100: 163 KiB) or
// 900 (sm_90, H100: 227 KiB); default 800. Kernels compiled with an emulated __CUDA_ARCH__ (cmake
// FOVEA_EMU_CUDA_ARCH) use that architecture's limits instead.
int arch();
void set_arch(int sm);  // 0 restores the default

class ScopedChecks {
 public:
  explicit ScopedChecks(unsigned mask) : saved_(checks()) { set_checks(mask); }
  explicit ScopedChecks(std::string_view text) : ScopedChecks(parse_checks(text)) {}
  ~ScopedChecks() { set_checks(saved_); }
  ScopedChecks(const ScopedChecks&) = delete;
  ScopedChecks& operator=(const ScopedChecks&) = delete;

 private:
  unsigned saved_;
};

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

// ------------------------------------------------------------------ the runtime API a kernel file may call
// The part of CUDA's runtime API the emulator build of a kernel file can use (device_api.h brings these to global
// scope): cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes) is the opt-in a launch
// with more than 48 KiB of dynamic shared memory needs, up to the emulated architecture's maximum (arch()).
enum cudaError { cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorInvalidDeviceFunction = 98 };
using cudaError_t = cudaError;
enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
  cudaFuncAttributePreferredSharedMemoryCarveout = 9
};
namespace detail {
// sm: the __CUDA_ARCH__ the caller was compiled with, 0 for none (then arch() applies).
cudaError_t func_set_attribute(const void* kernel, cudaFuncAttribute attr, int value, int sm);  // runtime.cpp
}  // namespace detail

// ------------------------------------------------------------------ launching
// One launch as the runtime sees it.
struct LaunchSpec {
  const char* name = "kernel";
  dim3 grid{1, 1, 1}, block{1, 1, 1};
  size_t smem_bytes = 0;
  const void* kernel = nullptr;  // the kernel function (cudaFuncSetAttribute), null for plain bodies
  int arch = 0;                  // the emulated __CUDA_ARCH__ the kernel was compiled with, 0 when none
  bool instrumented = false;     // compiled with the memory-access hooks (checks, profiling)
  const void* params = nullptr;  // the parameter block every thread reads (reads of it are legal)
  size_t params_bytes = 0;
  const char* key = nullptr;  // the kernel's identity across its two builds (kernels/common.cuh), null for plain bodies
  double flop = 0;            // floating-point work the launcher stated (note_flop), for the cost model
};

namespace detail {
// Check modes and profiling, as one word the launch path reads before every launch of a kernel file. It starts
// as kUnreadFlag, so that the first launch reads FOVEA_EMU_CHECK (instrumentation_wanted, settings.cpp).
inline constexpr unsigned kProfileFlag = 1u << 16;
inline constexpr unsigned kUnreadFlag = 1u << 31;
inline std::atomic<unsigned> g_check_flags{kUnreadFlag};
inline unsigned check_flags() {
  return g_check_flags.load(std::memory_order_relaxed);
}
void set_check_flags(unsigned flags);
bool instrumentation_wanted();
// An instrumented launch is wanted: a check mode or profiling is on.
inline bool wants_instrumentation() {
  return check_flags() != 0 && instrumentation_wanted();
}

// The instrumented ("checked") build of a kernel file registers, for every kernel it launches, a function that
// runs that kernel with a parameter tuple; the normal build finds it by the kernel's key when checks or profiling
// are on (kernels/common.cuh). Keys name the kernel with its template arguments.
using TwinFn = void (*)(const LaunchSpec& spec, const void* params);
bool register_twin(const char* key, TwinFn fn);
TwinFn find_twin(const char* key);  // throws fovea::Error when the kernel has no instrumented build

using KernelBody = void (*)(const void* body);
void launch(const LaunchSpec& spec, KernelBody invoke, const void* body, size_t body_bytes);

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
  void* monitor = nullptr;    // the checks' per-worker state while an instrumented launch runs, else null
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
// by the kernel, a deadlock, a barrier that part of the block never reaches, a misused warp function, a finding
// of a memory check.
template <class F>
void launch_kernel(const LaunchSpec& spec, F&& body) {
  using Body = std::remove_reference_t<F>;
  detail::launch(
      spec, [](const void* p) { (*static_cast<Body*>(const_cast<void*>(p)))(); },
      static_cast<const void*>(std::addressof(body)), sizeof(Body));
}
template <class F>
void launch_kernel(const char* name, dim3 grid, dim3 block, size_t smem_bytes, F&& body) {
  LaunchSpec spec;
  spec.name = name;
  spec.grid = grid;
  spec.block = block;
  spec.smem_bytes = smem_bytes;
  launch_kernel(spec, std::forward<F>(body));
}

// The running block's dynamic shared memory: smem_bytes of the launch, 16-byte aligned, exactly that size
// (AddressSanitizer reports any access past it), private to the block.
FOVEA_EMU_UNCHECKED inline void* dynamic_shared_memory() {
  return detail::current.dynamic_smem;
}
FOVEA_EMU_UNCHECKED inline size_t dynamic_shared_memory_size() {
  return detail::current.dynamic_smem_bytes;
}
// `extern __shared__ T name[];` in a kernel file becomes `T* const name = ...(extern_shared_memory())` in the
// emulator build (cmake/FoveaEmuSource.cmake). Throws when called outside a kernel: such a declaration at
// namespace scope would be initialised once, before any block runs.
void* extern_shared_memory();

namespace detail {
// The FLOP count a kernel file states for its next launch (fovea::note_flop in kernels/common.cuh).
inline thread_local double noted_flop = 0;
inline double take_noted_flop() {
  const double f = noted_flop;
  noted_flop = 0;
  return f;
}
}  // namespace detail

// Launches since the start of the process (every launch_kernel, instrumented or not).
uint64_t launch_count();

}  // namespace fovea::emu
