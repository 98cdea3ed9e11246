// Memory metrics of emulated kernels, in Nsight Compute's terms, counted from every access of the instrumented
// build of the kernels (see README.md, "Memory metrics").
//
// A warp-level request is one access site (one load or store instruction of the kernel) executed by the lanes of a
// warp the same number of times since the block's last barrier; its active lanes are those lanes. For each
// request:
//   global:  sectors  = distinct 32-byte sectors its lanes touch (4 for 32 coalesced floats, 32 when every lane
//                       is in its own sector); lines = distinct 128-byte L1 lines.
//   shared:  wavefronts = passes the 32 banks of 4 bytes need: per phase, the largest number of distinct 4-byte
//                       words any bank must deliver (the same word to several lanes is one broadcast). 64-bit
//                       accesses run in 2 phases of 16 lanes, 128-bit accesses in 4 phases of 8 lanes.
// Atomics are requests of their own (op atomic). Local memory (the fiber's stack) is not counted: nvcc keeps most
// of it in registers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/emu/types.h"

namespace fovea::emu {

enum class Space : uint8_t { global, shared };
enum class AccessOp : uint8_t { load, store, atomic };
const char* space_name(Space s);   // "global", "shared"
const char* op_name(AccessOp op);  // "load", "store", "atomic"

struct SiteMetrics {
  uintptr_t pc = 0;      // return address of the access hook: the instruction after the access
  std::string location;  // "kernels/sgemm.cu:88" (symbolize); "?" when unknown
  std::string function;  // the kernel or the inlined function the access is in
  Space space = Space::global;
  AccessOp op = AccessOp::load;
  unsigned bytes_per_lane = 0;  // 1, 2, 4, 8, 16 (or the size of an odd access)
  uint64_t requests = 0;        // warp-level requests
  uint64_t lanes = 0;           // active lanes over all requests
  uint64_t sectors = 0;         // global: 32-byte sectors
  uint64_t lines = 0;           // global: 128-byte L1 lines
  uint64_t wavefronts = 0;      // shared: bank passes
  uint64_t bytes = 0;           // bytes the lanes asked for
  double per_request(uint64_t v) const { return requests ? double(v) / double(requests) : 0.0; }
};

struct KernelMetrics {
  std::string name;
  uint64_t launches = 0;
  dim3 grid{1, 1, 1}, block{1, 1, 1};  // of the last launch
  size_t smem_bytes = 0;               // dynamic shared memory of the last launch
  uint64_t blocks = 0, warps = 0;      // over all launches
  uint64_t barriers = 0;               // warp-level __syncthreads executions
  // Compulsory global traffic: the distinct 32-byte sectors each launch read, and wrote, times 32, summed over
  // the launches (what DRAM must move if nothing was in L2 before the launch).
  uint64_t dram_read_bytes = 0, dram_write_bytes = 0;
  uintptr_t entry = 0;             // the kernel function of the normal emulator build (cost_model.h)
  double flop = 0;                 // floating-point work its launchers stated (fovea::note_flop), over all launches
  std::vector<SiteMetrics> sites;  // by space, op, location; sites at one source line merged

  // Sums over the sites of one space and op.
  SiteMetrics total(Space s, AccessOp op) const;
};

// Profiling runs every launch of a kernel file through its instrumented build and collects the metrics, until
// stopped. Launches are counted separately per kernel name.
void profile_start();
std::vector<KernelMetrics> profile_stop();  // sites symbolized, ordered by kernel name
bool profiling();

// File, line and function of code addresses of this process (addr2line, from the binutils the compiler needs).
struct SourceLocation {
  std::string file;  // relative to the source tree when built from it
  int line = 0;
  std::string function;
};
std::vector<SourceLocation> symbolize(const std::vector<uintptr_t>& pcs);

}  // namespace fovea::emu
