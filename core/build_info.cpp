#include "core/build_info.h"

#include "core/device.h"
#include "core/error.h"
#include "fovea_build_config.h"
#include "fovea_git_revision.h"

#if FOVEA_HAVE_CUDA
#include <cuda_runtime.h>
#endif

namespace fovea {

const BuildInfo& build_info() {
  static const BuildInfo info = [] {
    BuildInfo b;
    b.version = FOVEA_VERSION_STRING;
    b.git_revision = FOVEA_GIT_REVISION;
    b.build_type = FOVEA_BUILD_TYPE;
    b.compiler = FOVEA_COMPILER;
    b.cuda_architectures = FOVEA_CUDA_ARCHITECTURES;
#if FOVEA_HAVE_CUDA
    b.cuda = true;
#endif
#if FOVEA_HAVE_CUDNN
    b.cudnn = true;
    b.cudnn_version = FOVEA_CUDNN_VERSION_STRING;
#endif
#if FOVEA_EMU_SANITIZE
    b.sanitize = true;
#endif
    return b;
  }();
  return info;
}

[[maybe_unused]] static std::string version_string(int v) {
  return cat(v / 1000, ".", (v % 1000) / 10);
}

std::vector<GpuInfo> gpu_infos() {
  std::vector<GpuInfo> out;
#if FOVEA_HAVE_CUDA
  if (!cuda_available()) return out;
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) return out;
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
    GpuInfo g;
    g.index = i;
    g.name = p.name;
    g.sm_count = p.multiProcessorCount;
    g.cc_major = p.major;
    g.cc_minor = p.minor;
    g.total_memory = p.totalGlobalMem;
    int mem_clock_khz = 0, bus_bits = 0, clock_khz = 0;
    cudaDeviceGetAttribute(&mem_clock_khz, cudaDevAttrMemoryClockRate, i);
    cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, i);
    cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, i);
    g.memory_bandwidth_gbs = 2.0 * mem_clock_khz * 1e3 * (bus_bits / 8.0) / 1e9;
    g.clock_mhz = clock_khz / 1000;
    out.push_back(g);
  }
#endif
  return out;
}

std::string cuda_driver_version() {
#if FOVEA_HAVE_CUDA
  int v = 0;
  if (cudaDriverGetVersion(&v) != cudaSuccess || v == 0) return "none (no NVIDIA driver found)";
  return version_string(v);
#else
  return "not built";
#endif
}

std::string cuda_runtime_version() {
#if FOVEA_HAVE_CUDA
  int v = 0;
  if (cudaRuntimeGetVersion(&v) != cudaSuccess) return "unknown";
  return version_string(v);
#else
  return "not built";
#endif
}

}  // namespace fovea
