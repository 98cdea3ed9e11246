// What this binary was built with, for `fovea info` and every benchmark/run record.
#pragma once
#include <string>
#include <vector>

namespace fovea {

struct BuildInfo {
  std::string version, git_revision, build_type, compiler;
  bool cuda = false, cudnn = false, sanitize = false;
  std::string cuda_architectures, cudnn_version;  // compile-time
};
const BuildInfo& build_info();

// Runtime facts about one GPU (empty name when unavailable).
struct GpuInfo {
  int index = 0;
  std::string name;
  int sm_count = 0, cc_major = 0, cc_minor = 0;
  size_t total_memory = 0;
  double memory_bandwidth_gbs = 0;  // from bus width and memory clock, when the runtime reports them
  int clock_mhz = 0;
};
std::vector<GpuInfo> gpu_infos();
std::string cuda_driver_version();   // "13.0" or a reason
std::string cuda_runtime_version();  // "13.0" or a reason

}  // namespace fovea
