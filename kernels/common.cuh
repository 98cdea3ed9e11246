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

// The one launch function of the project.
template <typename... KernelArgs, typename... Args>
void launch(const char* name, void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t smem_bytes,
            StreamHandle stream, Args&&... args) {
  detail::check_launch_config(name, grid.x, grid.y, grid.z, block.x, block.y, block.z, smem_bytes);
#if defined(__CUDACC__)
  kernel<<<grid, block, smem_bytes, static_cast<cudaStream_t>(stream)>>>(std::forward<Args>(args)...);
  check_cuda_launch(name, static_cast<cudaStream_t>(stream), __FILE__, __LINE__);
#else
  (void)stream;
  // Arguments are converted to the kernel's parameter types once, then every fiber calls the kernel
  // with the same values, as every GPU thread receives the same parameter block.
  auto params = std::tuple<std::decay_t<KernelArgs>...>(std::forward<Args>(args)...);
  ::fovea::emu::launch_kernel(name, grid, block, smem_bytes, [&params, kernel] { std::apply(kernel, params); });
#endif
}

}  // namespace fovea

#define FOVEA_LAUNCH(kernel, grid, block, smem_bytes, stream, ...) \
  ::fovea::launch(#kernel, kernel, dim3(grid), dim3(block), size_t(smem_bytes), stream __VA_OPT__(, ) __VA_ARGS__)

// Dynamic shared memory: FOVEA_DYNAMIC_SHARED(float, tile); declares `float* tile`, 16-byte aligned.
#if defined(__CUDACC__)
#define FOVEA_DYNAMIC_SHARED(type, name)                              \
  extern __shared__ __align__(16) unsigned char fovea_dynamic_smem[]; \
  type* name = reinterpret_cast<type*>(fovea_dynamic_smem)
#else
#define FOVEA_DYNAMIC_SHARED(type, name) type* name = reinterpret_cast<type*>(::fovea::emu::dynamic_shared_memory())
#endif
