// The emulator's memory checks (memcheck, initcheck, racecheck) and memory metrics.
//
// The checked build of every kernel file is compiled by g++ with -fsanitize=kernel-address and
// asan-instrumentation-with-call-threshold=0 (cmake/FoveaKernels.cmake): every load and store of the kernel calls
// __asan_{load,store}{1,2,4,8,16,N}_noabort(address) first, with no runtime library behind them. This file
// defines those functions. A call outside an instrumented launch's fiber returns at once (the checked build's host
// code, other threads); inside one, the address is classified (the fiber's stack, dynamic or static shared
// memory, a device allocation, the launch's parameters, the program's static data) and handed to the modes that
// are on. The return address of the hook is the access site: the instruction after the access.
//
// Static __shared__ variables are thread-locals (one block per OS thread at a time), so an access that lands in
// the worker thread's TLS block is a static shared memory access: the kernel's own code reads no other
// thread-local (threadIdx and friends are read by FOVEA_EMU_UNCHECKED functions, which are not instrumented).
#include "core/emu/check.h"

#include "core/emu/cost_model.h"

#include <dlfcn.h>
#include <link.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "core/emu/emu.h"
#include "core/emu/monitor.h"
#include "core/emu/profile.h"
#include "core/error.h"

namespace fovea::emu {
namespace {

// ------------------------------------------------------------------ helpers
std::string hex_addr(uintptr_t a) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(a));
  return buf;
}

std::string normalize_key(std::string_view key);

// The kernel's name from the key of its checked build: "fovea::emu_kernels::relu_kernel<float>".
std::string kernel_function(const char* key) {
  if (key == nullptr) return "";
  std::string s = key;
  const size_t at = s.find("Kernel = ");
  if (at != std::string::npos) s = s.substr(at + 9);
  if (!s.empty() && s.back() == ']') s.pop_back();
  return normalize_key(s);
}

// ------------------------------------------------------------------ the program's memory map
struct Range {
  uintptr_t lo, hi;
  bool contains(uintptr_t a) const { return a - lo < hi - lo; }
};

// Loaded segments of every module: static data (__device__ / __constant__ variables, tables, string literals).
const std::vector<Range>& static_ranges() {
  static const std::vector<Range> ranges = [] {
    std::vector<Range> out;
    dl_iterate_phdr(
        [](dl_phdr_info* info, size_t, void* data) {
          auto* v = static_cast<std::vector<Range>*>(data);
          for (int i = 0; i < info->dlpi_phnum; ++i) {
            const ElfW(Phdr)& ph = info->dlpi_phdr[i];
            if (ph.p_type == PT_LOAD)
              v->push_back(
                  {uintptr_t(info->dlpi_addr + ph.p_vaddr), uintptr_t(info->dlpi_addr + ph.p_vaddr + ph.p_memsz)});
          }
          return 0;
        },
        &out);
    return out;
  }();
  return ranges;
}

// This thread's TLS blocks of every module (where static __shared__ variables live).
const std::vector<Range>& tls_ranges() {
  thread_local const std::vector<Range> ranges = [] {
    std::vector<Range> out;
    dl_iterate_phdr(
        [](dl_phdr_info* info, size_t, void* data) {
          auto* v = static_cast<std::vector<Range>*>(data);
          if (info->dlpi_tls_data == nullptr) return 0;
          for (int i = 0; i < info->dlpi_phnum; ++i) {
            const ElfW(Phdr)& ph = info->dlpi_phdr[i];
            if (ph.p_type == PT_TLS) {
              const auto lo = reinterpret_cast<uintptr_t>(info->dlpi_tls_data);
              v->push_back({lo, lo + ph.p_memsz});
            }
          }
          return 0;
        },
        &out);
    return out;
  }();
  return ranges;
}

// ------------------------------------------------------------------ device allocations
struct Allocation {
  uintptr_t base = 0;
  size_t bytes = 0;
  uint64_t id = 0;
  // initcheck: one bit per byte, set when written; only for allocations made while initcheck was on.
  std::unique_ptr<std::atomic<uint8_t>[]> init;

  bool initialised(uintptr_t a, size_t n) const {
    if (!init) return true;
    for (uintptr_t i = a - base, end = i + n; i < end; ++i)
      if (!(init[i >> 3].load(std::memory_order_relaxed) >> (i & 7) & 1)) return false;
    return true;
  }
  void mark_written(uintptr_t a, size_t n) {
    if (!init) return;
    uintptr_t i = a - base;
    const uintptr_t end = std::min<uintptr_t>(i + n, bytes);
    for (; i < end && (i & 7); ++i) init[i >> 3].fetch_or(uint8_t(1u << (i & 7)), std::memory_order_relaxed);
    for (; i + 8 <= end; i += 8) init[i >> 3].store(0xff, std::memory_order_relaxed);
    for (; i < end; ++i) init[i >> 3].fetch_or(uint8_t(1u << (i & 7)), std::memory_order_relaxed);
  }
};

struct Freed {
  size_t bytes;
  uint64_t id;
};

class Registry {
 public:
  void add(const void* p, size_t bytes) {
    if (p == nullptr || bytes == 0) return;
    auto a = std::make_shared<Allocation>();
    a->base = reinterpret_cast<uintptr_t>(p);
    a->bytes = bytes;
    if (checks() & kInitcheck) {
      a->init = std::make_unique<std::atomic<uint8_t>[]>((bytes + 7) / 8);
      for (size_t i = 0; i < (bytes + 7) / 8; ++i) a->init[i].store(0, std::memory_order_relaxed);
    }
    std::lock_guard lock(mu_);
    a->id = next_id_++;
    // A freed block handed out again is no longer use-after-free.
    for (auto it = freed_.lower_bound(a->base); it != freed_.end() && it->first < a->base + bytes;)
      it = freed_.erase(it);
    if (auto it = freed_.lower_bound(a->base); it != freed_.begin()) {
      --it;
      if (it->first + it->second.bytes > a->base) freed_.erase(it);
    }
    live_[a->base] = std::move(a);
  }

  void remove(const void* p) {
    if (p == nullptr) return;
    std::lock_guard lock(mu_);
    auto it = live_.find(reinterpret_cast<uintptr_t>(p));
    if (it == live_.end()) return;
    freed_[it->first] = Freed{it->second->bytes, it->second->id};
    freed_order_.push_back(it->first);
    live_.erase(it);
    while (freed_order_.size() > kMaxFreed) {
      freed_.erase(freed_order_.front());
      freed_order_.pop_front();
    }
  }

  std::shared_ptr<Allocation> find(uintptr_t a) {
    std::lock_guard lock(mu_);
    auto it = live_.upper_bound(a);
    if (it == live_.begin()) return nullptr;
    --it;
    return a - it->first < it->second->bytes ? it->second : nullptr;
  }

  std::vector<std::shared_ptr<Allocation>> snapshot() {
    std::lock_guard lock(mu_);
    std::vector<std::shared_ptr<Allocation>> out;
    out.reserve(live_.size());
    for (auto& [base, a] : live_) out.push_back(a);
    return out;
  }

  // What an address outside every allocation is near: for the report.
  std::string describe_outside(uintptr_t a) {
    std::lock_guard lock(mu_);
    if (auto it = freed_.upper_bound(a); it != freed_.begin()) {
      --it;
      if (a - it->first < it->second.bytes)
        return cat("use after free: allocation #", it->second.id, " (", it->second.bytes, " bytes at ",
                   hex_addr(it->first), ") was freed; offset ", a - it->first);
    }
    std::string out = "the address is in no live device allocation";
    if (auto it = live_.upper_bound(a); it != live_.begin()) {
      --it;
      const Allocation& b = *it->second;
      out += cat("; the nearest below, allocation #", b.id, ", has ", b.bytes, " bytes at ", hex_addr(b.base),
                 ": the access starts ", a - (b.base + b.bytes), " bytes past its end (offset ", a - b.base, ")");
    }
    return out;
  }

 private:
  static constexpr size_t kMaxFreed = 1 << 14;
  std::mutex mu_;
  std::map<uintptr_t, std::shared_ptr<Allocation>> live_;
  std::map<uintptr_t, Freed> freed_;
  std::deque<uintptr_t> freed_order_;
  uint64_t next_id_ = 1;
};

Registry& registry() {
  static Registry* r = new Registry;  // leaked: buffers are freed during static destruction
  return *r;
}

// ------------------------------------------------------------------ symbols
std::mutex g_symbol_mu;
std::unordered_map<uintptr_t, SourceLocation> g_symbols;

std::string shorten_path(std::string file) {
  file = std::filesystem::path(file).lexically_normal().string();  // "build/../kernels/x.cuh" -> "kernels/x.cuh"
#if defined(FOVEA_SOURCE_DIR)
  const std::string root = std::string(FOVEA_SOURCE_DIR) + "/";
  if (file.compare(0, root.size(), root) == 0) file.erase(0, root.size());
#endif
  return file;
}

// "void fovea::emu_kernels_checked::tile<float, 4>(float const*, int)" -> "fovea::emu_kernels::tile<float, 4>".
std::string short_function(const std::string& f) {
  std::string s = normalize_key(f);
  if (!s.empty() && s.back() == ')') {  // drop the parameter list
    int depth = 0;
    for (size_t i = s.size(); i-- > 0;) {
      if (s[i] == ')') ++depth;
      if (s[i] == '(' && --depth == 0) {
        s.resize(i);
        break;
      }
    }
  }
  int depth = 0;  // drop the return type: the text before the last space outside <...> and (...)
  for (size_t i = s.size(); i-- > 0;) {
    if (s[i] == '>' || s[i] == ')') ++depth;
    if (s[i] == '<' || s[i] == '(') --depth;
    if (s[i] == ' ' && depth == 0) return s.substr(i + 1);
  }
  return s;
}

// The main program's file: "/proc/self/exe" would name addr2line itself in the child.
std::string executable_path() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, size_t(n)) : std::string();
}

// The file of the module whose loaded segments hold `pc`, and its load bias (0 for a non-PIE executable).
bool module_of(uintptr_t pc, std::string& file, uintptr_t& bias) {
  struct Find {
    uintptr_t pc;
    uintptr_t bias;
    std::string name;
    bool found;
  } find{pc, 0, "", false};
  dl_iterate_phdr(
      [](dl_phdr_info* i, size_t, void* data) {
        auto* f = static_cast<Find*>(data);
        for (int k = 0; k < i->dlpi_phnum; ++k) {
          const ElfW(Phdr)& ph = i->dlpi_phdr[k];
          const uintptr_t lo = i->dlpi_addr + ph.p_vaddr;
          if (ph.p_type == PT_LOAD && f->pc - lo < ph.p_memsz) {
            f->bias = i->dlpi_addr;
            f->name = i->dlpi_name;
            f->found = true;
            return 1;
          }
        }
        return 0;
      },
      &find);
  if (!find.found) return false;
  file = find.name.empty() ? executable_path() : find.name;
  bias = find.bias;
  return true;
}

// The lines addr2line prints for `args` on `file`.
std::vector<std::string> addr2line(const std::string& file, const std::string& args) {
  std::vector<std::string> lines;
  FILE* f = popen(("addr2line " + args + " -e '" + file + "' 2>/dev/null").c_str(), "r");
  if (!f) return lines;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, f)) {
    std::string line = buf;
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    lines.push_back(line);
  }
  pclose(f);
  return lines;
}

// Runs addr2line once per module for the addresses not seen yet (the caller holds g_symbol_mu).
void symbolize_locked(const std::vector<uintptr_t>& pcs) {
  struct Module {
    std::string file;
    uintptr_t bias;
    std::vector<uintptr_t> pcs;
  };
  std::map<std::string, Module> modules;
  for (uintptr_t pc : pcs) {
    if (pc == 0 || g_symbols.count(pc)) continue;
    g_symbols[pc] = SourceLocation{"?", 0, "?"};
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(pc), &info) == 0 || info.dli_fname == nullptr) continue;
    if (info.dli_sname) g_symbols[pc].function = info.dli_sname;
    std::string file;
    uintptr_t bias = 0;
    if (!module_of(pc, file, bias)) continue;
    Module& m = modules[file];
    m.file = file;
    m.bias = bias;
    m.pcs.push_back(pc);
  }
  for (auto& [file, m] : modules) {
    std::string args = "-f -C -i -a";
    for (uintptr_t pc : m.pcs) {
      args += ' ';
      args += hex_addr(pc - 1 - m.bias);  // pc - 1: the access, not the next one
    }
    const std::vector<std::string> lines = addr2line(m.file, args);
    // -a prints the address, then function / file:line pairs, innermost inline first.
    size_t k = 0;
    for (uintptr_t pc : m.pcs) {
      while (k < lines.size() && !lines[k].starts_with("0x")) ++k;
      if (k >= lines.size()) break;
      ++k;
      if (k + 1 < lines.size() && !lines[k].starts_with("0x")) {
        SourceLocation& loc = g_symbols[pc];
        loc.function = short_function(lines[k]);
        const std::string& fl = lines[k + 1];
        const size_t colon = fl.rfind(':');
        if (colon != std::string::npos && fl.compare(0, 2, "??") != 0) {
          loc.file = shorten_path(fl.substr(0, colon));
          loc.line = std::atoi(fl.c_str() + colon + 1);
        }
        k += 2;
      }
    }
  }
}

}  // namespace

std::string mangled_symbol(uintptr_t address) {
  std::string file;
  uintptr_t bias = 0;
  if (!module_of(address, file, bias)) return "";
  const std::vector<std::string> lines = addr2line(file, "-f " + hex_addr(address - bias));
  return lines.empty() || lines[0] == "??" ? std::string() : lines[0];
}

namespace {

SourceLocation location_of(uintptr_t pc) {
  std::lock_guard lock(g_symbol_mu);
  symbolize_locked({pc});
  return g_symbols[pc];
}

std::string where(uintptr_t pc) {
  const SourceLocation loc = location_of(pc);
  std::string out = loc.line > 0 ? cat(loc.file, ":", loc.line) : cat("pc ", hex_addr(pc));
  if (!loc.function.empty() && loc.function != "?") out += cat(" (", loc.function, ")");
  return out;
}

// ------------------------------------------------------------------ instrumented kernels
std::mutex& twin_mu() {
  static std::mutex m;
  return m;
}
struct TwinEntry {
  detail::TwinFn fn;
  bool ambiguous;
};
std::unordered_map<std::string, TwinEntry>& twins() {
  static auto* t = new std::unordered_map<std::string, TwinEntry>;
  return *t;
}
// The key with "_checked::" read as "::": the two builds of a kernel differ only in their namespace.
std::string normalize_key(std::string_view key) {
  constexpr std::string_view kTag = "_checked::";
  std::string out;
  out.reserve(key.size());
  for (size_t i = 0; i < key.size();) {
    if (key.substr(i, kTag.size()) == kTag) {
      out += "::";
      i += kTag.size();
    } else {
      out += key[i++];
    }
  }
  return out;
}

}  // namespace

// ------------------------------------------------------------------ public API
void register_allocation(const void* p, size_t bytes) {
  registry().add(p, bytes);
}
void unregister_allocation(const void* p) {
  registry().remove(p);
}
void note_host_write(const void* p, size_t bytes) {
  if (!(detail::check_flags() & kInitcheck) || bytes == 0) return;
  const auto base = reinterpret_cast<uintptr_t>(p);
  for (uintptr_t a = base, end = base + bytes; a < end;) {
    std::shared_ptr<Allocation> alloc = registry().find(a);
    if (!alloc) return;
    const uintptr_t stop = std::min<uintptr_t>(end, alloc->base + alloc->bytes);
    alloc->mark_written(a, stop - a);
    a = stop;
  }
}

bool instrumented_build_available() {
  std::lock_guard lock(twin_mu());
  return !twins().empty();
}

const char* space_name(Space s) {
  return s == Space::global ? "global" : "shared";
}
const char* op_name(AccessOp op) {
  return op == AccessOp::load ? "load" : op == AccessOp::store ? "store" : "atomic";
}

std::vector<SourceLocation> symbolize(const std::vector<uintptr_t>& pcs) {
  std::lock_guard lock(g_symbol_mu);
  symbolize_locked(pcs);
  std::vector<SourceLocation> out;
  out.reserve(pcs.size());
  for (uintptr_t pc : pcs) out.push_back(g_symbols[pc]);
  return out;
}

SiteMetrics KernelMetrics::total(Space s, AccessOp op) const {
  SiteMetrics t;
  t.space = s;
  t.op = op;
  for (const SiteMetrics& m : sites) {
    if (m.space != s || m.op != op) continue;
    t.requests += m.requests;
    t.lanes += m.lanes;
    t.sectors += m.sectors;
    t.lines += m.lines;
    t.wavefronts += m.wavefronts;
    t.bytes += m.bytes;
  }
  return t;
}

namespace detail {

bool register_twin(const char* key, TwinFn fn) {
  std::lock_guard lock(twin_mu());
  auto [it, inserted] = twins().try_emplace(normalize_key(key), TwinEntry{fn, false});
  if (!inserted && it->second.fn != fn) it->second.ambiguous = true;
  return true;
}

TwinFn find_twin(const char* key) {
  std::lock_guard lock(twin_mu());
  auto it = twins().find(normalize_key(key));
  if (it == twins().end())
    FOVEA_FAIL("emu: no instrumented build of kernel ", kernel_function(key),
               ": checks and profiling need the checked build of the kernel files (not made in FOVEA_SANITIZE "
               "or -DFOVEA_EMU_CHECKED=OFF builds; kernels must be launched with launch<kernel>(...) or FOVEA_LAUNCH)");
  if (it->second.ambiguous)
    FOVEA_FAIL("emu: two kernels share the name ", kernel_function(key),
               " (kernels in anonymous namespaces of different files?): give them distinct names");
  return it->second.fn;
}

}  // namespace detail

// ==================================================================== the monitors
namespace detail {
namespace {

enum class Kind : uint8_t { uninit, raw, war, waw, global_waw };

// One finding of initcheck or racecheck: deduplicated by its kind and sites, counted, with its first example.
// Sites are symbolized when the launch ends (addr2line once per launch), and findings at the same source lines
// merged (an unrolled loop has one site per copy).
struct Finding {
  Kind kind = Kind::uninit;
  uintptr_t pc1 = 0, pc2 = 0;  // the lower thread's access and the other one (pc2 = 0 for uninit)
  uint64_t count = 0;
  uint3 block{0, 0, 0};
  uint64_t block_linear = 0;
  int thread1 = 0, thread2 = 0;  // linear in the block; for global_waw: the two blocks (linear)
  uintptr_t addr = 0;
  size_t bytes = 0;
  std::string where;  // region or allocation of addr
};
using FindingKey = std::tuple<Kind, uintptr_t, uintptr_t>;
bool example_before(uint64_t block, int t1, int t2, uintptr_t addr, const Finding& f) {
  return std::tie(block, t1, t2, addr) < std::tie(f.block_linear, f.thread1, f.thread2, f.addr);
}

// ------------------------------------------------------------------ metrics
struct SiteStats {
  uintptr_t pc = 0;
  Space space = Space::global;
  AccessOp op = AccessOp::load;
  unsigned size = 0;
  uint64_t requests = 0, lanes = 0, sectors = 0, lines = 0, wavefronts = 0, bytes = 0;
};

inline uint64_t site_key(uintptr_t pc, Space s, AccessOp op) {
  return uint64_t(pc) | (uint64_t(s) << 56) | (uint64_t(op) << 58);
}

struct Request {
  uint32_t lanes = 0;
  uint64_t addr[32];
};

// One access site as executed by the lanes of one warp since the block's last barrier: the k-th execution of each
// lane belongs to request k.
struct WarpSite {
  uint32_t count[32] = {};
  uint32_t base = 0;  // execution number of pending[head]
  std::vector<Request> pending;
  size_t head = 0;
  SiteStats* stats = nullptr;
};

// Distinct values of v[0..n) (n <= 64 here).
int distinct(uint64_t* v, int n) {
  std::sort(v, v + n);
  return int(std::unique(v, v + n) - v);
}

void finish_request(SiteStats& s, const Request& r) {
  const int n = std::popcount(r.lanes);
  s.requests += 1;
  s.lanes += uint64_t(n);
  s.bytes += uint64_t(n) * s.size;
  if (s.op == AccessOp::atomic && s.space == Space::global) {
    uint64_t sec[64], lin[64];
    int k = 0;
    for (uint32_t m = r.lanes; m; m &= m - 1) {
      const uint64_t a = r.addr[std::countr_zero(m)];
      sec[k] = a >> 5;
      lin[k++] = a >> 7;
    }
    s.sectors += uint64_t(distinct(sec, k));
    s.lines += uint64_t(distinct(lin, k));
    return;
  }
  if (s.space == Space::global) {
    uint64_t sec[64], lin[64];
    int ks = 0, kl = 0;
    for (uint32_t m = r.lanes; m; m &= m - 1) {
      const uint64_t a = r.addr[std::countr_zero(m)], last = a + s.size - 1;
      for (uint64_t x = a >> 5; x <= last >> 5 && ks < 64; ++x) sec[ks++] = x;
      for (uint64_t x = a >> 7; x <= last >> 7 && kl < 64; ++x) lin[kl++] = x;
    }
    s.sectors += uint64_t(distinct(sec, ks));
    s.lines += uint64_t(distinct(lin, kl));
    return;
  }
  // Shared memory: 32 banks of 4 bytes; 64-bit accesses in 2 phases of 16 lanes, 128-bit in 4 of 8.
  const int phases = s.size <= 4 ? 1 : s.size <= 8 ? 2 : 4;
  const int per_phase = 32 / phases;
  for (int p = 0; p < phases; ++p) {
    const uint32_t lanes = r.lanes & (per_phase == 32 ? 0xffffffffu : ((1u << per_phase) - 1) << (p * per_phase));
    if (!lanes) continue;
    uint64_t words[128];
    int k = 0;
    for (uint32_t m = lanes; m; m &= m - 1) {
      const uint64_t a = r.addr[std::countr_zero(m)];
      for (uint64_t w = a >> 2; w <= (a + s.size - 1) >> 2 && k < 128; ++w) words[k++] = w;
    }
    k = distinct(words, k);
    int per_bank[32] = {};
    int most = 0;
    for (int i = 0; i < k; ++i) most = std::max(most, ++per_bank[words[i] & 31]);
    s.wavefronts += uint64_t(most);
  }
}

// ------------------------------------------------------------------ racecheck shadow
// Per byte of shared memory, per barrier interval: the last writer and up to two readers (distinct threads).
struct Cell {
  uint32_t interval;
  uint16_t writer, reader1, reader2;  // thread + 1, 0 for none
  uint16_t wepoch, r1epoch, r2epoch;  // the thread's __syncwarp count in the interval at the access
  uint32_t wsite, r1site, r2site;
};

class Shadow {
 public:
  Cell& at(uintptr_t a) {
    const uintptr_t page = a >> kPageBits;
    if (page != last_page_) {
      auto& p = pages_[page];
      if (!p) p = std::make_unique<Cell[]>(size_t(1) << kPageBits);
      last_page_ = page;
      last_ = p.get();
    }
    return last_[a & ((uintptr_t(1) << kPageBits) - 1)];
  }

 private:
  static constexpr int kPageBits = 12;
  std::unordered_map<uintptr_t, std::unique_ptr<Cell[]>> pages_;
  uintptr_t last_page_ = ~uintptr_t(0);
  Cell* last_ = nullptr;
};

// Reused by every instrumented launch on this OS thread; intervals keep increasing, so old cells never match.
struct ThreadShadow {
  Shadow shadow;
  uint32_t interval = 0;
};
ThreadShadow& thread_shadow() {
  thread_local ThreadShadow s;
  return s;
}

}  // namespace

// ------------------------------------------------------------------ one launch
class LaunchMonitor {
 public:
  LaunchSpec spec;
  std::string function;  // the kernel's name (from the twin's key), or spec.name
  unsigned checks = 0;
  bool profile = false;
  std::vector<std::shared_ptr<Allocation>> allocations;  // sorted by base
  std::vector<Range> params;
  uint64_t threads_per_block = 0;

  std::mutex mu;  // guards what workers merge in
  std::map<FindingKey, Finding> findings;
  std::unordered_map<uint64_t, SiteStats> sites;
  uint64_t barriers = 0, blocks = 0;

  // racecheck-global: per allocation, per byte, (block + 1) << 32 | site index of the launch's site table.
  std::vector<std::atomic<std::atomic<uint64_t>*>> writers;
  std::mutex site_mu;
  std::vector<uintptr_t> global_sites;
  std::unordered_map<uintptr_t, uint32_t> global_site_index;

  // Profiling: per allocation, a bit per 32-byte sector read and one per sector written (DRAM footprint).
  std::vector<std::atomic<std::atomic<uint64_t>*>> read_sectors, written_sectors;

  ~LaunchMonitor() {
    for (auto& w : writers) delete[] w.load();
    for (auto& b : read_sectors) delete[] b.load();
    for (auto& b : written_sectors) delete[] b.load();
  }

  static std::atomic<uint64_t>* bits_of(std::atomic<std::atomic<uint64_t>*>& slot, size_t bytes) {
    std::atomic<uint64_t>* p = slot.load(std::memory_order_acquire);
    if (p) return p;
    auto* fresh = new std::atomic<uint64_t>[(bytes / 32 + 64) / 64]();
    if (slot.compare_exchange_strong(p, fresh)) return fresh;
    delete[] fresh;
    return p;
  }
  void touch(size_t alloc, uintptr_t offset, size_t n, bool write) {
    auto& slot = write ? written_sectors[alloc] : read_sectors[alloc];
    std::atomic<uint64_t>* bits = bits_of(slot, allocations[alloc]->bytes);
    for (uintptr_t s = offset / 32; s <= (offset + n - 1) / 32; ++s) {
      const uint64_t bit = uint64_t(1) << (s & 63);
      if (!(bits[s >> 6].load(std::memory_order_relaxed) & bit)) bits[s >> 6].fetch_or(bit, std::memory_order_relaxed);
    }
  }
  uint64_t sectors(const std::vector<std::atomic<std::atomic<uint64_t>*>>& v) const {
    uint64_t total = 0;
    for (size_t i = 0; i < v.size(); ++i)
      if (const std::atomic<uint64_t>* bits = v[i].load())
        for (size_t w = 0; w < (allocations[i]->bytes / 32 + 64) / 64; ++w) total += std::popcount(bits[w].load());
    return total;
  }

  uint32_t global_site(uintptr_t pc) {
    std::lock_guard lock(site_mu);
    auto [it, inserted] = global_site_index.try_emplace(pc, uint32_t(global_sites.size()));
    if (inserted) global_sites.push_back(pc);
    return it->second;
  }
  uintptr_t global_site_pc(uint32_t i) {
    std::lock_guard lock(site_mu);
    return i < global_sites.size() ? global_sites[i] : 0;
  }
  std::atomic<uint64_t>* writers_of(size_t alloc) {
    std::atomic<uint64_t>* p = writers[alloc].load(std::memory_order_acquire);
    if (p) return p;
    auto* fresh = new std::atomic<uint64_t>[allocations[alloc]->bytes]();
    if (writers[alloc].compare_exchange_strong(p, fresh)) return fresh;
    delete[] fresh;
    return p;
  }
};

// ------------------------------------------------------------------ one worker of a launch
class WorkerMonitor {
 public:
  WorkerMonitor(LaunchMonitor* launch, const StackRange* stacks, int threads, const void* dyn, size_t dyn_bytes)
      : L(*launch),
        stacks_(stacks, stacks + threads),
        dyn_{reinterpret_cast<uintptr_t>(dyn), reinterpret_cast<uintptr_t>(dyn) + dyn_bytes},
        tls_(tls_ranges()),
        statics_(static_ranges()),
        race_(L.checks & kRacecheck),
        epoch_(size_t(threads), 0),
        warps_(size_t((threads + 31) / 32)) {
    block_dim_ = L.spec.block;
    threads_ = threads;
  }

  // ---------------------------------------------------------------- the hooks
  void access(uintptr_t a, size_t n, AccessOp op, uintptr_t pc) {
    const uint3 t3 = current.thread_idx;
    const int t = int(t3.x + block_dim_.x * (t3.y + block_dim_.y * t3.z));
    if (dyn_.contains(a)) return shared(a, n, op, pc, t, true);
    if (reinterpret_cast<uintptr_t>(stacks_[t].lo) <= a && a < reinterpret_cast<uintptr_t>(stacks_[t].hi)) return;
    for (const Range& r : tls_)
      if (r.contains(a)) return shared(a, n, op, pc, t, false);
    if (Allocation* g = find_allocation(a)) return global(*g, a, n, op, pc, t);
    for (const Range& r : L.params)
      if (r.contains(a)) return;  // the launch's parameters: every thread reads them
    for (const Range& r : statics_)
      if (r.contains(a)) return static_data(a, n, op, pc, t);
    if (L.checks & kMemcheck) fail_outside(a, n, op, pc);
  }

  void atomic(uintptr_t a, size_t n, uintptr_t pc) { access(a, n, AccessOp::atomic, pc); }

  // ---------------------------------------------------------------- block events
  void begin_block() {
    ++blocks_;
    new_interval();
    std::fill(live_.begin(), live_.end(), 0u);
    for (int warp = 0; warp * 32 < threads_; ++warp) {
      const int lanes = std::min(32, threads_ - warp * 32);
      live_[size_t(warp)] = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1;
    }
  }
  void barrier() {
    barriers_ += uint64_t(warps_.size());
    flush_requests();
    new_interval();
  }
  void warp_sync(int warp, uint32_t lanes) {
    for (uint32_t m = lanes; m; m &= m - 1) ++epoch_[size_t(warp * 32 + std::countr_zero(m))];
  }
  void end_block() { flush_requests(); }

  void merge() {
    std::lock_guard lock(L.mu);
    L.barriers += barriers_;
    L.blocks += blocks_;
    for (auto& [key, f] : findings_) {
      Finding& g = L.findings[key];
      const uint64_t before = g.count;
      if (before == 0 || example_before(f.block_linear, f.thread1, f.thread2, f.addr, g)) g = f;
      g.count = before + f.count;
    }
    for (auto& [key, s] : stats_) {
      SiteStats& g = L.sites[key];
      if (g.requests == 0 && g.pc == 0) g = SiteStats{s.pc, s.space, s.op, s.size};
      g.requests += s.requests;
      g.lanes += s.lanes;
      g.sectors += s.sectors;
      g.lines += s.lines;
      g.wavefronts += s.wavefronts;
      g.bytes += s.bytes;
    }
  }

 private:
  // ---------------------------------------------------------------- classification
  Allocation* find_allocation(uintptr_t a) {
    if (last_alloc_ && a - last_alloc_->base < last_alloc_->bytes) return last_alloc_;
    auto& v = L.allocations;
    auto it = std::upper_bound(v.begin(), v.end(), a, [](uintptr_t x, const auto& p) { return x < p->base; });
    if (it == v.begin()) return nullptr;
    --it;
    if (a - (*it)->base >= (*it)->bytes) return nullptr;
    last_alloc_ = it->get();
    last_alloc_index_ = size_t(it - v.begin());
    return last_alloc_;
  }

  static const char* verb(AccessOp op) {
    return op == AccessOp::load ? "read" : op == AccessOp::store ? "write" : "atomic";
  }

  [[noreturn]] void fail_outside(uintptr_t a, size_t n, AccessOp op, uintptr_t pc) {
    std::string near;
    if (dyn_.hi > dyn_.lo && a >= dyn_.hi && a - dyn_.hi < 4096)
      near = cat("; ", a - dyn_.hi, " bytes past the end of the block's dynamic shared memory (", dyn_.hi - dyn_.lo,
                 " bytes)");
    else
      near = "; " + registry().describe_outside(a);
    FOVEA_FAIL("memcheck: invalid ", verb(op), " of ", n, " bytes at ", hex_addr(a), near, ", at ", where(pc));
  }

  void check_alignment(uintptr_t a, size_t n, AccessOp op, uintptr_t pc, const char* space) {
    if ((n == 2 || n == 4 || n == 8 || n == 16) && (a & (n - 1)) != 0)
      FOVEA_FAIL("memcheck: misaligned ", space, " ", verb(op), " of ", n, " bytes at ", hex_addr(a), " (address % ", n,
                 " = ", a & (n - 1), "; CUDA needs an access of n bytes at a multiple of n), at ", where(pc));
  }

  // ---------------------------------------------------------------- global memory
  void global(Allocation& g, uintptr_t a, size_t n, AccessOp op, uintptr_t pc, int t) {
    if (L.checks & kMemcheck) {
      if (a + n > g.base + g.bytes)
        FOVEA_FAIL("memcheck: invalid ", verb(op), " of ", n, " bytes at ", hex_addr(a), ": allocation #", g.id,
                   " has ", g.bytes, " bytes at ", hex_addr(g.base), ": the access ends ", a + n - (g.base + g.bytes),
                   " bytes past its end (offset ", a - g.base, "), at ", where(pc));
      check_alignment(a, n, op, pc, "global");
    }
    if (L.checks & kInitcheck) {
      if (op != AccessOp::store && !g.initialised(a, n)) {
        if (Finding* f = note(Kind::uninit, pc, 0, t, 0, a)) {
          f->bytes = n;
          f->where = cat("allocation #", g.id, ", ", g.bytes, " bytes, offset ", a - g.base);
        }
      }
      if (op != AccessOp::load) g.mark_written(a, n);
    }
    if ((L.checks & kRacecheckGlobal) && op == AccessOp::store) global_write(a, n, pc);
    if (L.profile) {
      record(a, n, op, pc, t, Space::global);
      if (op != AccessOp::store) L.touch(last_alloc_index_, a - g.base, n, false);
      if (op != AccessOp::load) L.touch(last_alloc_index_, a - g.base, n, true);
    }
  }

  void static_data(uintptr_t a, size_t n, AccessOp op, uintptr_t pc, int t) {
    if (L.checks & kMemcheck) check_alignment(a, n, op, pc, "global");
    if (L.profile) record(a, n, op, pc, t, Space::global);
  }

  void global_write(uintptr_t a, size_t n, uintptr_t pc) {
    std::atomic<uint64_t>* w = L.writers_of(last_alloc_index_);
    const uint64_t block =
        current.block_idx.x +
        uint64_t(L.spec.grid.x) * (current.block_idx.y + uint64_t(L.spec.grid.y) * current.block_idx.z);
    auto it = my_global_sites_.find(pc);
    if (it == my_global_sites_.end()) it = my_global_sites_.emplace(pc, L.global_site(pc)).first;
    const uint64_t mine = ((block + 1) << 32) | it->second;
    const uintptr_t base = L.allocations[last_alloc_index_]->base;
    for (size_t i = 0; i < n; ++i) {
      const uint64_t old = w[a + i - base].exchange(mine, std::memory_order_relaxed);
      if (old != 0 && (old >> 32) != block + 1) {
        const uintptr_t other = L.global_site_pc(uint32_t(old));
        const uint64_t ob = (old >> 32) - 1;
        Finding* f = other <= pc ? note(Kind::global_waw, other, pc, int(ob), int(block), a + i)
                                 : note(Kind::global_waw, pc, other, int(block), int(ob), a + i);
        if (f) {
          f->bytes = 1;
          f->where = cat("allocation #", L.allocations[last_alloc_index_]->id, ", offset ", a + i - base);
        }
        return;
      }
    }
  }

  // ---------------------------------------------------------------- shared memory
  void shared(uintptr_t a, size_t n, AccessOp op, uintptr_t pc, int t, bool dynamic) {
    if (L.checks & kMemcheck) {
      if (dynamic && a + n > dyn_.hi)
        FOVEA_FAIL("memcheck: invalid shared ", verb(op), " of ", n, " bytes at ", hex_addr(a), ": the access ends ",
                   a + n - dyn_.hi, " bytes past the block's ", dyn_.hi - dyn_.lo,
                   " bytes of dynamic shared memory (offset ", a - dyn_.lo, "), at ", where(pc));
      check_alignment(a, n, op, pc, "shared");
    }
    if (race_ && op != AccessOp::atomic) race(a, n, op == AccessOp::store, pc, t, dynamic);
    if (L.profile) record(a, n, op, pc, t, Space::shared);
  }

  uint32_t site_index(uintptr_t pc) {
    auto [it, inserted] = site_index_.try_emplace(pc, uint32_t(site_pcs_.size()));
    if (inserted) site_pcs_.push_back(pc);
    return it->second;
  }

  void race(uintptr_t a, size_t n, bool write, uintptr_t pc, int t, bool dynamic) {
    ThreadShadow& ts = thread_shadow();
    const uint16_t me = uint16_t(t + 1);
    const uint16_t my_epoch = epoch_[size_t(t)];
    const uint32_t site = site_index(pc);
    bool reported = false;
    for (size_t i = 0; i < n; ++i) {
      Cell& c = ts.shadow.at(a + i);
      if (c.interval != ts.interval) c = Cell{ts.interval, 0, 0, 0, 0, 0, 0, 0, 0, 0};
      auto unordered = [&](uint16_t other, uint16_t other_epoch) {
        if (other == 0 || other == me) return false;
        return (other - 1) >> 5 != t >> 5 || other_epoch == my_epoch;  // a __syncwarp between orders a warp's lanes
      };
      if (!reported) {
        if (unordered(c.writer, c.wepoch)) {
          hazard(c.writer - 1, true, c.wsite, t, write, site, a + i, dynamic);
          reported = true;
        } else if (write && unordered(c.reader1, c.r1epoch)) {
          hazard(c.reader1 - 1, false, c.r1site, t, true, site, a + i, dynamic);
          reported = true;
        } else if (write && unordered(c.reader2, c.r2epoch)) {
          hazard(c.reader2 - 1, false, c.r2site, t, true, site, a + i, dynamic);
          reported = true;
        }
      }
      if (write) {
        c.writer = me;
        c.wepoch = my_epoch;
        c.wsite = site;
      } else if (c.reader1 == 0 || c.reader1 == me) {
        c.reader1 = me;
        c.r1epoch = my_epoch;
        c.r1site = site;
      } else if (c.reader2 == 0 || c.reader2 == me) {
        c.reader2 = me;
        c.r2epoch = my_epoch;
        c.r2site = site;
      }
    }
  }

  // The two accesses are unordered: they are named in thread order (the lower thread's access first), which makes
  // the report the same under every schedule.
  void hazard(int u, bool u_write, uint32_t u_site, int t, bool t_write, uint32_t t_site, uintptr_t a, bool dynamic) {
    int first = u, second = t;
    bool w1 = u_write, w2 = t_write;
    uint32_t s1 = u_site, s2 = t_site;
    if (first > second) {
      std::swap(first, second);
      std::swap(w1, w2);
      std::swap(s1, s2);
    }
    const Kind kind = w1 && w2 ? Kind::waw : w1 ? Kind::raw : Kind::war;
    if (Finding* f = note(kind, site_pcs_[s1], site_pcs_[s2], first, second, a)) {
      f->bytes = 1;
      f->where = dynamic ? cat("dynamic shared memory, offset ", a - dyn_.lo) : std::string("static shared memory");
    }
  }

  // Counts an occurrence; returns the finding when this occurrence becomes its example: the first one in (block,
  // thread, other thread, address) order, so that the report does not depend on the schedule.
  Finding* note(Kind kind, uintptr_t pc1, uintptr_t pc2, int t1, int t2, uintptr_t addr) {
    Finding& f = findings_[FindingKey{kind, pc1, pc2}];
    const uint3 b = current.block_idx;
    const uint64_t block = b.x + uint64_t(L.spec.grid.x) * (b.y + uint64_t(L.spec.grid.y) * b.z);
    const bool first = f.count++ == 0;
    if (!first && !example_before(block, t1, t2, addr, f)) return nullptr;
    f.kind = kind;
    f.pc1 = pc1;
    f.pc2 = pc2;
    f.block = b;
    f.block_linear = block;
    f.thread1 = t1;
    f.thread2 = t2;
    f.addr = addr;
    return &f;
  }

  void new_interval() {
    ThreadShadow& ts = thread_shadow();
    if (++ts.interval == 0) {  // wrapped: forget everything
      ts.shadow = Shadow();
      ts.interval = 1;
    }
    std::fill(epoch_.begin(), epoch_.end(), uint16_t(0));
  }

  // ---------------------------------------------------------------- metrics
  void record(uintptr_t a, size_t n, AccessOp op, uintptr_t pc, int t, Space space) {
    const int warp = t >> 5, lane = t & 31;
    const uint64_t key = site_key(pc, space, op);
    auto& sites = warps_[size_t(warp)];
    auto it = sites.find(key);
    if (it == sites.end()) {
      it = sites.try_emplace(key).first;
      SiteStats& s = stats_[key];
      if (s.pc == 0) s = SiteStats{pc, space, op, unsigned(n)};
      it->second.stats = &s;
    }
    WarpSite& ws = it->second;
    const uint32_t k = ws.count[lane]++;
    const size_t slot = ws.head + (k - ws.base);
    while (slot >= ws.pending.size()) ws.pending.emplace_back().lanes = 0;
    Request& r = ws.pending[slot];
    r.lanes |= 1u << lane;
    r.addr[lane] = a;
    // Lanes run one after another: request k is complete when the last live lane has done it.
    const uint32_t live = live_[size_t(warp)];
    while (ws.head < ws.pending.size() && (ws.pending[ws.head].lanes & live) == live) {
      finish_request(*ws.stats, ws.pending[ws.head]);
      ++ws.head;
      ++ws.base;
    }
    if (ws.head == ws.pending.size()) {
      ws.pending.clear();
      ws.head = 0;
    }
  }

  // A barrier ends every request: what the warp's lanes did before it are requests of their own.
  void flush_requests() {
    if (!L.profile) return;
    for (auto& sites : warps_) {
      for (auto& [key, ws] : sites) {
        for (size_t i = ws.head; i < ws.pending.size(); ++i)
          if (ws.pending[i].lanes) finish_request(*ws.stats, ws.pending[i]);
        ws.pending.clear();
        ws.head = 0;
        ws.base = 0;
        std::fill(std::begin(ws.count), std::end(ws.count), 0u);
      }
    }
  }

  LaunchMonitor& L;
  std::vector<StackRange> stacks_;
  Range dyn_;
  const std::vector<Range>& tls_;
  const std::vector<Range>& statics_;
  bool race_;
  dim3 block_dim_;
  int threads_ = 0;
  Allocation* last_alloc_ = nullptr;
  size_t last_alloc_index_ = 0;

  std::vector<uint16_t> epoch_;  // per thread: __syncwarp calls in this barrier interval
  std::unordered_map<uintptr_t, uint32_t> site_index_;
  std::vector<uintptr_t> site_pcs_;
  std::unordered_map<uintptr_t, uint32_t> my_global_sites_;
  std::map<FindingKey, Finding> findings_;

  std::vector<std::unordered_map<uint64_t, WarpSite>> warps_;
  std::array<uint32_t, 32> live_{};
  std::unordered_map<uint64_t, SiteStats> stats_;  // node-based: WarpSite keeps pointers
  uint64_t barriers_ = 0, blocks_ = 0;
};

// ------------------------------------------------------------------ the profile session
namespace {
struct ProfileSession {
  std::mutex mu;
  bool on = false;
  std::map<std::string, KernelMetrics> kernels;
  std::map<std::string, std::unordered_map<uint64_t, SiteStats>> sites;
};
ProfileSession& session() {
  static ProfileSession s;
  return s;
}
}  // namespace

namespace {
std::string thread_name(const LaunchMonitor& m, int t) {
  const dim3 bd = m.spec.block;
  return cat("(", unsigned(t) % bd.x, ",", unsigned(t) / bd.x % bd.y, ",", unsigned(t) / (bd.x * bd.y), ")");
}

// The launch's initcheck and racecheck findings, merged by source line, in a fixed order.
std::string findings_report(const LaunchMonitor& m) {
  std::vector<uintptr_t> pcs;
  for (auto& [key, f] : m.findings) {
    pcs.push_back(f.pc1);
    if (f.pc2) pcs.push_back(f.pc2);
  }
  const std::vector<SourceLocation> locs = symbolize(pcs);
  std::unordered_map<uintptr_t, std::string> at;
  for (size_t i = 0; i < pcs.size(); ++i)
    at[pcs[i]] = locs[i].line > 0 ? cat(locs[i].file, ":", locs[i].line, " (", locs[i].function, ")")
                                  : cat("pc ", hex_addr(pcs[i]), " (", locs[i].function, ")");
  struct Merged {
    uint64_t count = 0;
    const Finding* first = nullptr;
    std::string example;
  };
  std::map<std::string, Merged> merged;  // by kind and locations
  for (auto& [key, f] : m.findings) {
    const std::string& l1 = at[f.pc1];
    const std::string l2 = f.pc2 ? at[f.pc2] : std::string();
    const std::string b = cat("(", f.block.x, ",", f.block.y, ",", f.block.z, ")");
    std::string text;
    switch (f.kind) {
      case Kind::uninit:
        text = cat("initcheck: uninitialised global read at ", l1, ": block ", b, " thread ", thread_name(m, f.thread1),
                   " reads ", f.bytes, " bytes at ", hex_addr(f.addr), " (", f.where, ") that nothing wrote");
        break;
      case Kind::global_waw:
        text = cat("racecheck: global-memory write conflict between blocks of one launch, at ", l1, " and ", l2,
                   ": blocks ", f.thread1, " and ", f.thread2, " (linear) both write ", hex_addr(f.addr), " (", f.where,
                   ")");
        break;
      default: {
        const bool w1 = f.kind != Kind::war, w2 = f.kind != Kind::raw;
        const char* kind = f.kind == Kind::raw   ? "RAW (read after write)"
                           : f.kind == Kind::war ? "WAR (write after read)"
                                                 : "WAW (write after write)";
        text = cat("racecheck: shared-memory ", kind, " hazard, no barrier between ", l1, " and ", l2, ": in block ", b,
                   ", thread ", thread_name(m, f.thread1), w1 ? " writes" : " reads", " and thread ",
                   thread_name(m, f.thread2), w2 ? " writes " : " reads ", hex_addr(f.addr), " (", f.where, ")");
      }
    }
    Merged& g = merged[cat(int(f.kind), "|", l1, "|", l2)];
    if (g.count == 0 || example_before(f.block_linear, f.thread1, f.thread2, f.addr, *g.first)) {
      g.example = text;
      g.first = &f;
    }
    g.count += f.count;
  }
  uint64_t total = 0;
  for (auto& [key, g] : merged) total += g.count;
  std::string report =
      cat("emu: kernel '", m.spec.name, "': ", checks_str(m.checks), " found ", total,
          total == 1 ? " problem" : " problems", " at ", merged.size(), merged.size() == 1 ? " place:" : " places:");
  int shown = 0;
  for (auto& [key, g] : merged) {
    if (++shown > 20) {
      report += cat("\n  ... and ", merged.size() - 20, " more");
      break;
    }
    report += cat("\n  ", g.example, " [", g.count, g.count == 1 ? " time]" : " times]");
  }
  return report;
}
}  // namespace

LaunchMonitor* monitor_begin(const LaunchSpec& spec, const void* body, size_t body_bytes) {
  if (!spec.instrumented) return nullptr;
  const unsigned flags = check_flags() & ~kUnreadFlag;
  auto m = std::make_unique<LaunchMonitor>();
  m->spec = spec;
  m->checks = flags & (kMemcheck | kInitcheck | kRacecheck | kRacecheckGlobal);
  m->profile = flags & kProfileFlag;
  if (!m->checks && !m->profile) return nullptr;
  m->function = spec.key ? kernel_function(spec.key) : std::string(spec.name);
  m->allocations = registry().snapshot();
  m->writers = std::vector<std::atomic<std::atomic<uint64_t>*>>(m->allocations.size());
  if (m->profile) {
    m->read_sectors = std::vector<std::atomic<std::atomic<uint64_t>*>>(m->allocations.size());
    m->written_sectors = std::vector<std::atomic<std::atomic<uint64_t>*>>(m->allocations.size());
  }
  if (spec.params) m->params.push_back({uintptr_t(spec.params), uintptr_t(spec.params) + spec.params_bytes});
  if (body) m->params.push_back({uintptr_t(body), uintptr_t(body) + body_bytes});
  m->threads_per_block = uint64_t(spec.block.x) * spec.block.y * spec.block.z;
  return m.release();
}

void monitor_discard(LaunchMonitor* m) {
  delete m;
}

void monitor_end(LaunchMonitor* m, bool failed) {
  std::unique_ptr<LaunchMonitor> own(m);
  if (m->profile) {
    ProfileSession& s = session();
    std::lock_guard lock(s.mu);
    if (s.on) {
      KernelMetrics& k = s.kernels[m->function];
      k.name = m->function;
      k.launches += 1;
      k.grid = m->spec.grid;
      k.block = m->spec.block;
      k.smem_bytes = m->spec.smem_bytes;
      const uint64_t blocks = uint64_t(m->spec.grid.x) * m->spec.grid.y * m->spec.grid.z;
      k.blocks += blocks;
      k.warps += blocks * ((m->threads_per_block + 31) / 32);
      k.barriers += m->barriers;
      k.dram_read_bytes += 32 * m->sectors(m->read_sectors);
      k.dram_write_bytes += 32 * m->sectors(m->written_sectors);
      k.entry = reinterpret_cast<uintptr_t>(m->spec.kernel);
      k.flop += m->spec.flop;
      auto& sites = s.sites[m->function];
      for (auto& [key, st] : m->sites) {
        SiteStats& g = sites[key];
        if (g.pc == 0) g = SiteStats{st.pc, st.space, st.op, st.size};
        g.requests += st.requests;
        g.lanes += st.lanes;
        g.sectors += st.sectors;
        g.lines += st.lines;
        g.wavefronts += st.wavefronts;
        g.bytes += st.bytes;
      }
    }
  }
  if (failed || m->findings.empty()) return;
  throw DeviceError(findings_report(*m));
}

WorkerMonitor* worker_begin(LaunchMonitor* m, const StackRange* stacks, int threads, const void* dyn,
                            size_t dyn_bytes) {
  return new WorkerMonitor(m, stacks, threads, dyn, dyn_bytes);
}
void worker_end(WorkerMonitor* w) {
  w->merge();
  delete w;
}
void block_begin(WorkerMonitor* w) {
  w->begin_block();
}
void block_barrier(WorkerMonitor* w) {
  w->barrier();
}
void block_warp_sync(WorkerMonitor* w, int warp, uint32_t lanes) {
  w->warp_sync(warp, lanes);
}
void block_end(WorkerMonitor* w) {
  w->end_block();
}

void note_atomic(const void* p, unsigned bytes, const void* site) {
  if (auto* w = static_cast<WorkerMonitor*>(current.monitor))
    w->atomic(reinterpret_cast<uintptr_t>(p), bytes, reinterpret_cast<uintptr_t>(site));
}

}  // namespace detail

void profile_start() {
  detail::ProfileSession& s = detail::session();
  {
    std::lock_guard lock(s.mu);
    s.on = true;
    s.kernels.clear();
    s.sites.clear();
  }
  detail::set_check_flags(detail::check_flags() | detail::kProfileFlag);
}

bool profiling() {
  return detail::check_flags() & detail::kProfileFlag & ~detail::kUnreadFlag;
}

std::vector<KernelMetrics> profile_stop() {
  detail::set_check_flags(detail::check_flags() & ~detail::kProfileFlag);
  detail::ProfileSession& s = detail::session();
  std::lock_guard lock(s.mu);
  s.on = false;
  std::vector<uintptr_t> pcs;
  for (auto& [name, sites] : s.sites)
    for (auto& [key, st] : sites) pcs.push_back(st.pc);
  const std::vector<SourceLocation> locs = symbolize(pcs);
  std::unordered_map<uintptr_t, SourceLocation> by_pc;
  for (size_t i = 0; i < pcs.size(); ++i) by_pc[pcs[i]] = locs[i];
  std::vector<KernelMetrics> out;
  for (auto& [name, k] : s.kernels) {
    KernelMetrics km = k;
    for (auto& [key, st] : s.sites[name]) {
      SiteMetrics m;
      m.pc = st.pc;
      const SourceLocation& loc = by_pc[st.pc];
      m.location = loc.line > 0 ? cat(loc.file, ":", loc.line) : std::string("?");
      m.function = loc.function;
      m.space = st.space;
      m.op = st.op;
      m.bytes_per_lane = st.size;
      m.requests = st.requests;
      m.lanes = st.lanes;
      m.sectors = st.sectors;
      m.lines = st.lines;
      m.wavefronts = st.wavefronts;
      m.bytes = st.bytes;
      km.sites.push_back(std::move(m));
    }
    // One row per source line, space, op and width (an unrolled loop has one site per copy).
    std::sort(km.sites.begin(), km.sites.end(), [](const SiteMetrics& a, const SiteMetrics& b) {
      return std::tie(a.space, a.op, a.location, a.bytes_per_lane, a.pc) <
             std::tie(b.space, b.op, b.location, b.bytes_per_lane, b.pc);
    });
    std::vector<SiteMetrics> merged;
    for (SiteMetrics& m : km.sites) {
      SiteMetrics* last = merged.empty() ? nullptr : &merged.back();
      if (last && m.location != "?" && last->location == m.location && last->space == m.space && last->op == m.op &&
          last->bytes_per_lane == m.bytes_per_lane) {
        last->requests += m.requests;
        last->lanes += m.lanes;
        last->sectors += m.sectors;
        last->lines += m.lines;
        last->wavefronts += m.wavefronts;
        last->bytes += m.bytes;
      } else {
        merged.push_back(std::move(m));
      }
    }
    km.sites = std::move(merged);
    out.push_back(std::move(km));
  }
  s.kernels.clear();
  s.sites.clear();
  return out;
}

}  // namespace fovea::emu

// ==================================================================== the hooks g++ calls
// Declared by the compiler; defined here because -fsanitize=kernel-address links no runtime. Not in an
// AddressSanitizer build (no checked kernels there): these names would replace ASan's own runtime functions,
// and a no-op __asan_handle_no_return leaves the stack poisoned after every exception.
#ifndef __SANITIZE_ADDRESS__
extern "C" {
#define FOVEA_EMU_HOOK(kind, n, op)                                                                        \
  void __asan_##kind##n##_noabort(uintptr_t a) {                                                           \
    if (auto* w = static_cast<fovea::emu::detail::WorkerMonitor*>(fovea::emu::detail::current.monitor))    \
      w->access(a, n, fovea::emu::AccessOp::op, reinterpret_cast<uintptr_t>(__builtin_return_address(0))); \
  }
FOVEA_EMU_HOOK(load, 1, load)
FOVEA_EMU_HOOK(load, 2, load)
FOVEA_EMU_HOOK(load, 4, load)
FOVEA_EMU_HOOK(load, 8, load)
FOVEA_EMU_HOOK(load, 16, load)
FOVEA_EMU_HOOK(store, 1, store)
FOVEA_EMU_HOOK(store, 2, store)
FOVEA_EMU_HOOK(store, 4, store)
FOVEA_EMU_HOOK(store, 8, store)
FOVEA_EMU_HOOK(store, 16, store)
#undef FOVEA_EMU_HOOK
void __asan_loadN_noabort(uintptr_t a, size_t n) {
  if (auto* w = static_cast<fovea::emu::detail::WorkerMonitor*>(fovea::emu::detail::current.monitor))
    w->access(a, n, fovea::emu::AccessOp::load, reinterpret_cast<uintptr_t>(__builtin_return_address(0)));
}
void __asan_storeN_noabort(uintptr_t a, size_t n) {
  if (auto* w = static_cast<fovea::emu::detail::WorkerMonitor*>(fovea::emu::detail::current.monitor))
    w->access(a, n, fovea::emu::AccessOp::store, reinterpret_cast<uintptr_t>(__builtin_return_address(0)));
}
// Bookkeeping calls the instrumentation also emits; nothing to do for them.
void __asan_handle_no_return() {}
void __asan_before_dynamic_init(const char*) {}
void __asan_after_dynamic_init() {}
void __asan_register_globals(void*, size_t) {}
void __asan_unregister_globals(void*, size_t) {}
}
#endif  // __SANITIZE_ADDRESS__
