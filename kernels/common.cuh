// The prelude of every file in kernels/: one kernel source, compiled by nvcc for device 'cuda'
// and by the host compiler for the emulator (device 'emu').
//
//   #include "kernels/common.cuh"
//   #include "layers/ops/scale.h"   // the op's dispatch stubs
//   namespace fovea::FOVEA_KERNEL_NS {
//   namespace {
//   __global__ void scale_kernel(float* y, const float* x, float a, int64_t n) { ... }
//   void scale(const Exec& ex, int64_t n, const float* x, float a, float* y) {
//     FOVEA_LAUNCH(scale_kernel, grid_1d(n, 256), 256, 0, ex.stream, y, x, a, n);
//   }
//   }  // namespace
//   const bool registered = ops::scale_stub.define(kThisSlot, scale);
//   }
//
// FOVEA_KERNEL_NS is emu_kernels or cuda_kernels (set by cmake/FoveaKernels.cmake), so both builds
// of the same file link into one binary, each registering itself in its own slot (kThisSlot: emu or
// cuda). Template kernels go in parentheses:
//   FOVEA_LAUNCH((tile_kernel<float, 16>), grid, block, smem, stream, args...);
// or, with a name of your own: launch<tile_kernel<float, 16>>("tile", grid, block, smem, stream, args...).
//
// In the emulator build every .cu is compiled twice (cmake/FoveaKernels.cmake): normally, and "checked" with a hook
// before every load and store (memcheck, initcheck, racecheck, memory metrics; core/emu/README.md). launch<>
// runs the normal build unless a check mode or profiling is on. The checked build registers no stub (kThisSlot is
// NoSlot there).
#pragma once
#include <cstddef>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <utility>

#include "core/dispatch.h"  // Exec, Slot; StreamHandle: a cudaStream_t on cuda; the emulator runs launches synchronously
#include "core/error.h"
#include "core/hostdevice.h"
#include "core/launch_check.h"
#include "core/memory.h"  // Workspace

#if defined(__CUDACC__)
#include <cuda_runtime.h>
#include "core/cuda_check.h"
#else
#include "core/emu/device_api.h"  // dim3, threadIdx, __syncthreads, __shfl_*_sync, atomics, intrinsics
#endif

#ifndef FOVEA_KERNEL_NS
#error "kernels/*.cu are compiled through fovea_add_kernels(), which sets FOVEA_KERNEL_NS"
#endif

namespace fovea {

// The dispatch slot this build of the kernels fills.
#if defined(__CUDACC__)
inline constexpr Slot kThisSlot = Slot::cuda;
#elif defined(FOVEA_EMU_CHECKED)
inline constexpr NoSlot kThisSlot{};  // the normal emu build registers; this one's kernels run as its twins
#else
inline constexpr Slot kThisSlot = Slot::emu;
#endif

// Throws "<op>: argument '<arg>' is null".
inline void check_ptr(const char* op, const char* arg, const void* p) {
  FOVEA_CHECK(p != nullptr, op, ": argument '", arg, "' is null");
}

inline unsigned grid_1d(int64_t n, int block) {
  return unsigned((n + block - 1) / block);
}

namespace detail {
// The parameter types of a kernel, decayed: the values every thread receives.
template <class F>
struct KernelParams;
template <class... A>
struct KernelParams<void (*)(A...)> {
  using Tuple = std::tuple<std::decay_t<A>...>;
};
// Names a kernel, with its template arguments, the same way in both emulator builds of its file (they differ
// only in FOVEA_KERNEL_NS, which the emulator ignores when it compares keys).
template <auto Kernel>
constexpr const char* kernel_key() {
  return __PRETTY_FUNCTION__;
}

#if !defined(__CUDACC__)
// Runs Kernel on the emulator with a parameter tuple. In the checked build (FOVEA_EMU_CHECKED) the kernel's loads
// and stores call the emulator's access hooks, and this function is the kernel's "twin" that the normal build
// calls when checks or profiling are on.
template <auto Kernel>
void emu_run(const ::fovea::emu::LaunchSpec& spec_in, const void* p) {
  using Tuple = typename KernelParams<decltype(Kernel)>::Tuple;
  const Tuple& params = *static_cast<const Tuple*>(p);
  ::fovea::emu::LaunchSpec spec = spec_in;
  spec.params = p;
  spec.params_bytes = sizeof(Tuple);
#if defined(FOVEA_EMU_CHECKED)
  spec.instrumented = true;
#endif
  ::fovea::emu::launch_kernel(spec, [&params] { std::apply(Kernel, params); });
}
#if defined(FOVEA_EMU_CHECKED)
template <auto Kernel>
struct EmuTwin {
  static inline const bool registered = ::fovea::emu::detail::register_twin(kernel_key<Kernel>(), &emu_run<Kernel>);
};
#endif
#endif
}  // namespace detail

// The one launch function of the project: launch<kernel>(name, grid, block, smem_bytes, stream, args...).
// The kernel is a template argument so that the emulator can find its instrumented build (checks, profiling).
template <auto Kernel, typename... Args>
void launch(const char* name, dim3 grid, dim3 block, size_t smem_bytes, StreamHandle stream, Args&&... args) {
  detail::check_launch_config(name, grid.x, grid.y, grid.z, block.x, block.y, block.z, smem_bytes);
#if defined(__CUDACC__)
  Kernel<<<grid, block, smem_bytes, static_cast<cudaStream_t>(stream)>>>(std::forward<Args>(args)...);
  check_cuda_launch(name, static_cast<cudaStream_t>(stream), __FILE__, __LINE__);
#else
  (void)stream;
  // Arguments are converted to the kernel's parameter types once, then every fiber calls the kernel with the
  // same values, as every GPU thread receives the same parameter block.
  using Tuple = typename detail::KernelParams<decltype(Kernel)>::Tuple;
  const Tuple params(std::forward<Args>(args)...);
  ::fovea::emu::LaunchSpec spec;
  spec.name = name;
  spec.grid = grid;
  spec.block = block;
  spec.smem_bytes = smem_bytes;
  spec.kernel = reinterpret_cast<const void*>(Kernel);
  spec.key = detail::kernel_key<Kernel>();
  spec.flop = ::fovea::emu::detail::take_noted_flop();
#if defined(__CUDA_ARCH__)
  spec.arch = __CUDA_ARCH__;
#endif
#if defined(FOVEA_EMU_CHECKED)
  (void)detail::EmuTwin<Kernel>::registered;  // instantiates the registration: runs at program start
  detail::emu_run<Kernel>(spec, &params);
#else
  if (::fovea::emu::detail::wants_instrumentation()) [[unlikely]] {
    ::fovea::emu::detail::find_twin(spec.key)(spec, &params);
    return;
  }
  detail::emu_run<Kernel>(spec, &params);
#endif
#endif
}

// States the floating-point work of the next launch (2 per multiply-add) for the emulator's cost model
// (core/emu/cost_model.h); nothing on a GPU. A launcher calls it right before the launch of a compute kernel.
inline void note_flop(double flop) {
#if defined(__CUDACC__)
  (void)flop;
#else
  ::fovea::emu::detail::noted_flop = flop;
#endif
}

// The older form with the kernel as an argument: no instrumented build can be found for it on the emulator.
template <typename... KernelArgs, typename... Args>
void launch(const char* name, void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t smem_bytes,
            StreamHandle stream, Args&&... args) {
  detail::check_launch_config(name, grid.x, grid.y, grid.z, block.x, block.y, block.z, smem_bytes);
#if defined(__CUDACC__)
  kernel<<<grid, block, smem_bytes, static_cast<cudaStream_t>(stream)>>>(std::forward<Args>(args)...);
  check_cuda_launch(name, static_cast<cudaStream_t>(stream), __FILE__, __LINE__);
#else
  (void)stream;
  FOVEA_CHECK(!::fovea::emu::detail::wants_instrumentation(), "launch of ", name,
              ": the kernel is passed as a pointer, so the emulator's checks and profiling cannot find its "
              "instrumented build; launch it with launch<kernel>(name, grid, ...) or FOVEA_LAUNCH");
  auto params = std::tuple<std::decay_t<KernelArgs>...>(std::forward<Args>(args)...);
  ::fovea::emu::launch_kernel(name, grid, block, smem_bytes, [&params, kernel] { std::apply(kernel, params); });
#endif
}

}  // namespace fovea

#define FOVEA_LAUNCH(kernel, grid, block, smem_bytes, stream, ...) \
  ::fovea::launch<kernel>(#kernel, dim3(grid), dim3(block), size_t(smem_bytes), stream __VA_OPT__(, ) __VA_ARGS__)

// Dynamic shared memory: FOVEA_DYNAMIC_SHARED(float, tile); declares `float* tile`, 16-byte aligned.
#if defined(__CUDACC__)
#define FOVEA_DYNAMIC_SHARED(type, name)                              \
  extern __shared__ __align__(16) unsigned char fovea_dynamic_smem[]; \
  type* name = reinterpret_cast<type*>(fovea_dynamic_smem)
#else
#define FOVEA_DYNAMIC_SHARED(type, name) type* name = reinterpret_cast<type*>(::fovea::emu::dynamic_shared_memory())
#endif
