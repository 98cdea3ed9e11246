// A lower-bound time model of our kernels on a named GPU, from the emulator's memory metrics (profile.h), the
// op's floating-point work and ptxas's registers and shared memory. It is a MODEL, not a measurement: it says
// which limit a kernel cannot beat and by how much the others stay below it; scripts/gpu_check.sh records
// measured times beside its predictions so that the first GPU run can calibrate it.
//
// Per kernel (all launches of it), each limit is the time the work needs at the GPU's published peak:
//   fp32   FLOP / (FP32 lanes x 2 x clock), on the SMs the grid keeps busy: the busiest SM runs ceil(blocks / SMs)
//          blocks, so a grid smaller than the GPU or a last partial wave counts.
//   dram   compulsory traffic / HBM bandwidth: every 32-byte sector the launch reads once, plus every sector it
//          writes once (nothing assumed in L2 when the kernel starts; an L2-resident input can beat this).
//   l1     L1TEX data-path wavefronts / (SMs x 1 per clock): for global accesses the distinct 128-byte lines of
//          each warp-level request, for shared accesses the bank wavefronts (128 bytes per clock per SM).
//   launch an assumed 2 us per launch (back-to-back launches without CUDA graphs; not a published figure).
// predicted = the largest of these; `bound` names it. Occupancy (resident blocks and warps per SM from registers,
// shared memory and threads) is reported beside: the model assumes enough warps to hide latency, which low
// occupancy may not give.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/emu/profile.h"

namespace fovea::emu {

struct GpuSpec {
  std::string key;          // "h100"
  std::string name;         // "H100 SXM5 80GB"
  int sm = 0;               // compute capability x 100
  int sms = 0;              // streaming multiprocessors
  double clock_ghz = 0;     // boost clock
  double fp32_tflops = 0;   // non-tensor FP32 peak
  double dram_gb_s = 0;     // HBM bandwidth, GB/s
  int regs_per_sm = 65536;  // 32-bit registers
  int max_threads_per_sm = 2048;
  int max_blocks_per_sm = 32;
  size_t smem_per_sm = 0;       // shared memory an SM can give to blocks
  size_t smem_reserved = 1024;  // per block, by the system (sm_80 and later)
  double launch_us = 2.0;       // assumed
  std::string source;           // where the numbers come from
};
const GpuSpec& gpu_spec(std::string_view key);  // "a100", "h100"; throws fovea::UsageError naming the known ones
std::vector<std::string> gpu_keys();

// What ptxas says about a kernel for the GPU's architecture (scripts: cmake/FoveaPtxasLog.cmake).
struct KernelResources {
  bool known = false;
  int registers = 0;       // per thread
  size_t static_smem = 0;  // bytes per block
  size_t stack = 0;        // bytes per thread
};

struct Occupancy {
  int blocks_per_sm = 0;  // 0: the kernel cannot launch on this GPU
  int warps_per_sm = 0;
  double fraction = 0;  // warps / 64
  std::string limiter;  // "registers", "shared memory", "threads", "blocks", or "unknown (no ptxas data)"
};
Occupancy occupancy(const GpuSpec& g, int threads_per_block, const KernelResources& r, size_t dynamic_smem);

struct KernelCost {
  std::string kernel;
  uint64_t launches = 0, blocks = 0;
  int threads_per_block = 0;
  double flop = 0;
  uint64_t dram_bytes = 0, l1_wavefronts = 0;
  KernelResources resources;
  Occupancy occ;
  double t_fp32_us = 0, t_dram_us = 0, t_l1_us = 0, t_launch_us = 0;
  double predicted_us = 0;
  std::string bound;  // "fp32", "dram", "l1", "launch"
};
KernelCost model_kernel(const GpuSpec& g, const KernelMetrics& m, double flop, const KernelResources& r);

// ptxas resource tables: lines "sm_80<TAB>mangled name<TAB>registers<TAB>shared bytes<TAB>stack bytes".
class ResourceTable {
 public:
  ResourceTable() = default;
  explicit ResourceTable(const std::string& path);  // missing file: empty table
  bool empty() const { return rows_.empty(); }
  const std::string& path() const { return path_; }
  // The nvcc build's entry for the kernel whose emulator build starts at `entry` (a code address of this process).
  KernelResources find(int sm, uintptr_t entry) const;

 private:
  struct Row {
    int sm;
    std::string name;
    KernelResources r;
  };
  std::string path_;
  std::vector<Row> rows_;
};

// One spelling for a kernel's mangled name in both builds, so the emulator's kernel finds its ptxas row: the
// namespace of the kernels becomes cuda_kernels (the emulator's are emu_kernels / emu_kernels_checked), and an
// anonymous namespace becomes g++'s _GLOBAL__N_1 (nvcc names it after the file and a hash, e.g.
// _GLOBAL__N__fe5e2178_21_conv2d_igemm_fprop_cu_b9138793). Substitutions (S_, S0_, ...) count components,
// which both builds have alike, so they stay valid.
std::string canonical_kernel_name(std::string mangled);

// The mangled symbol of the function at a code address of this process ("" when unknown).
std::string mangled_symbol(uintptr_t address);

}  // namespace fovea::emu
