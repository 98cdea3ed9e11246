// The lower-bound time model (cost_model.h).
#include "core/emu/cost_model.h"

#include <cctype>
#include <cstdlib>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace fovea::emu {
namespace {

// Published figures: NVIDIA A100 and H100 datasheets and the Ampere (GA100) and Hopper (GH100) architecture
// whitepapers. FP32 peak is the non-tensor rate (FP32 lanes x 2 x boost clock).
const std::vector<GpuSpec>& specs() {
  static const std::vector<GpuSpec> s = [] {
    GpuSpec a100;
    a100.key = "a100";
    a100.name = "A100 SXM4 80GB";
    a100.sm = 800;
    a100.sms = 108;
    a100.clock_ghz = 1.41;
    a100.fp32_tflops = 19.5;
    a100.dram_gb_s = 2039;
    a100.smem_per_sm = 164 * 1024;
    a100.source = "NVIDIA A100 datasheet; NVIDIA A100 Tensor Core GPU Architecture whitepaper";
    GpuSpec h100;
    h100.key = "h100";
    h100.name = "H100 SXM5 80GB";
    h100.sm = 900;
    h100.sms = 132;
    h100.clock_ghz = 1.98;
    h100.fp32_tflops = 67;
    h100.dram_gb_s = 3350;
    h100.smem_per_sm = 228 * 1024;
    h100.source = "NVIDIA H100 datasheet; NVIDIA H100 Tensor Core GPU Architecture whitepaper";
    return std::vector<GpuSpec>{a100, h100};
  }();
  return s;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size()) s.replace(p, from.size(), to);
  return s;
}

}  // namespace

std::vector<std::string> gpu_keys() {
  std::vector<std::string> out;
  for (const GpuSpec& g : specs()) out.push_back(g.key);
  return out;
}

const GpuSpec& gpu_spec(std::string_view key) {
  std::string known;
  for (const GpuSpec& g : specs()) {
    if (g.key == key) return g;
    known += (known.empty() ? "" : ", ") + g.key;
  }
  FOVEA_FAIL("cost model: unknown GPU '", key, "' (known: ", known, ")");
}

Occupancy occupancy(const GpuSpec& g, int threads, const KernelResources& r, size_t dynamic_smem) {
  Occupancy o;
  const int warps = (threads + 31) / 32;
  int blocks = g.max_blocks_per_sm;
  o.limiter = "blocks";
  auto limit = [&](int n, const char* why) {
    if (n < blocks) {
      blocks = n;
      o.limiter = why;
    }
  };
  limit(g.max_threads_per_sm / (warps * 32), "threads");
  if (r.known) {
    // Registers are allocated per warp in units of 256 (8 per thread).
    const int per_warp = std::max(1, (r.registers * 32 + 255) / 256 * 256);
    limit(g.regs_per_sm / (per_warp * warps), "registers");
    limit(int(g.smem_per_sm / (r.static_smem + dynamic_smem + g.smem_reserved)), "shared memory");
  } else {
    limit(int(g.smem_per_sm / (dynamic_smem + g.smem_reserved)), "shared memory");
    o.limiter = "unknown (no ptxas data: " + o.limiter + " at most)";
  }
  o.blocks_per_sm = std::max(0, blocks);
  o.warps_per_sm = o.blocks_per_sm * warps;
  o.fraction = double(o.warps_per_sm) / double(g.max_threads_per_sm / 32);
  return o;
}

KernelCost model_kernel(const GpuSpec& g, const KernelMetrics& m, double flop, const KernelResources& r) {
  KernelCost c;
  c.kernel = m.name;
  c.launches = m.launches;
  c.blocks = m.blocks;
  c.threads_per_block = int(m.block.x * m.block.y * m.block.z);
  c.flop = flop;
  c.resources = r;
  c.occ = occupancy(g, c.threads_per_block, r, m.smem_bytes);
  c.dram_bytes = m.dram_read_bytes + m.dram_write_bytes;
  c.l1_wavefronts = 0;
  for (const SiteMetrics& s : m.sites) c.l1_wavefronts += s.space == Space::global ? s.lines : s.wavefronts;
  // The busiest SM runs ceil(blocks / SMs) of each launch's blocks: work per SM in units of whole blocks.
  const double launches = double(std::max<uint64_t>(1, m.launches));
  const double blocks_per_launch = double(m.blocks) / launches;
  const double busiest = std::ceil(blocks_per_launch / g.sms);
  const double share = blocks_per_launch > 0 ? busiest / blocks_per_launch : 0;  // of the work, on one SM
  const double clock = g.clock_ghz * 1e9;
  const double fp32_per_sm_clk = g.fp32_tflops * 1e12 / (g.sms * clock);
  c.t_fp32_us = flop * share / (fp32_per_sm_clk * clock) * 1e6;
  c.t_l1_us = double(c.l1_wavefronts) * share / clock * 1e6;
  c.t_dram_us = double(c.dram_bytes) / (g.dram_gb_s * 1e9) * 1e6;
  c.t_launch_us = g.launch_us * launches;
  c.predicted_us = c.t_launch_us;
  c.bound = "launch";
  for (auto [t, name] : {std::pair{c.t_fp32_us, "fp32"}, {c.t_dram_us, "dram"}, {c.t_l1_us, "l1"}})
    if (t > c.predicted_us) {
      c.predicted_us = t;
      c.bound = name;
    }
  if (c.occ.blocks_per_sm == 0) c.bound += " (cannot launch: too many resources per block)";
  return c;
}

ResourceTable::ResourceTable(const std::string& path) : path_(path) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string arch, name;
    Row row;
    if (!(fields >> arch >> name >> row.r.registers >> row.r.static_smem >> row.r.stack)) continue;
    if (!arch.starts_with("sm_")) continue;
    row.sm = std::atoi(arch.c_str() + 3) * 10;
    row.name = canonical_kernel_name(name);
    row.r.known = true;
    rows_.push_back(std::move(row));
  }
}

std::string canonical_kernel_name(std::string name) {
  name = replace_all(name, "19emu_kernels_checked", "12cuda_kernels");
  name = replace_all(name, "11emu_kernels", "12cuda_kernels");
  static const std::string kAnon = "_GLOBAL__N_", kCanonical = "12_GLOBAL__N_1";
  for (size_t p = 0; (p = name.find(kAnon, p)) != std::string::npos;) {
    // The component is <length><name>: its length prefix is the digits just before it.
    size_t b = p;
    while (b > 0 && std::isdigit(static_cast<unsigned char>(name[b - 1]))) --b;
    const size_t length = b < p ? std::strtoul(name.c_str() + b, nullptr, 10) : 0;
    if (length < kAnon.size() || p + length > name.size()) {
      p += kAnon.size();
      continue;
    }
    name.replace(b, p - b + length, kCanonical);
    p = b + kCanonical.size();
  }
  return name;
}

KernelResources ResourceTable::find(int sm, uintptr_t entry) const {
  if (rows_.empty() || entry == 0) return {};
  const std::string name = canonical_kernel_name(mangled_symbol(entry));
  for (const Row& r : rows_)
    if (r.sm == sm && r.name == name) return r.r;
  return {};
}

}  // namespace fovea::emu
