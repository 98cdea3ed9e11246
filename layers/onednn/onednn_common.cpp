#include "layers/onednn/onednn_common.h"

#include <omp.h>
#include <oneapi/dnnl/dnnl_debug.h>

#include <map>

#include "core/memory.h"

namespace fovea::onednn {

namespace detail {

std::atomic<int64_t> g_primitives{0}, g_plans{0}, g_calls{0};

[[noreturn]] void fail(const dnnl::error& e, const char* call, const char* file, int line) {
  throw DeviceError(cat("oneDNN error: ", call, " failed: ", dnnl_status2str(e.status), " (", e.what(), ")"), file,
                    line);
}

const dnnl::engine& engine() {
  static const dnnl::engine e = FOVEA_DNNL(dnnl::engine(dnnl::engine::kind::cpu, 0));
  return e;
}

dnnl::stream& stream() {
  thread_local dnnl::stream s = FOVEA_DNNL(dnnl::stream(engine()));
  return s;
}

namespace {

constexpr size_t kAlign = 64;  // a cache line: oneDNN's kernels load whole vectors

size_t align_up(size_t n) {
  return (n + kAlign - 1) / kAlign * kAlign;
}

}  // namespace

void Plan::add(int arg, const memory::desc& want, const memory::desc& user, Dir dir) {
  Arg a{arg, dir, FOVEA_DNNL(memory(user, engine(), DNNL_MEMORY_NONE)), {}, {}};
  if (want == user) {
    a.prim = a.user;
  } else {
    a.prim = FOVEA_DNNL(memory(want, engine(), DNNL_MEMORY_NONE));
    a.reordered = true;
    a.offset = scratch_bytes_;
    scratch_bytes_ += align_up(want.get_size());
    a.reorder = dir == Dir::in ? FOVEA_DNNL(dnnl::reorder(a.user, a.prim)) : FOVEA_DNNL(dnnl::reorder(a.prim, a.user));
    ++g_primitives;
  }
  exec_args_[arg] = a.prim;
  args_.push_back(std::move(a));
}

void Plan::add_scratch(int arg, const memory::desc& md) {
  Arg a{arg, Dir::in, {}, FOVEA_DNNL(memory(md, engine(), DNNL_MEMORY_NONE)), {}};
  a.scratch_only = true;
  a.offset = scratch_bytes_;
  scratch_bytes_ += align_up(md.get_size());
  exec_args_[arg] = a.prim;
  args_.push_back(std::move(a));
}

void Plan::set(dnnl::primitive p, const memory::desc& scratchpad, const char* impl) {
  prim_ = std::move(p);
  impl_ = impl;
  ++g_primitives;
  if (scratchpad.get_size() > 0) {
    scratchpad_ = FOVEA_DNNL(memory(scratchpad, engine(), DNNL_MEMORY_NONE));
    scratchpad_offset_ = scratch_bytes_;
    scratch_bytes_ += align_up(scratchpad.get_size());
    exec_args_[DNNL_ARG_SCRATCHPAD] = scratchpad_;
  }
}

void* Plan::scratch_arg(int arg) const {
  for (const Arg& a : args_)
    if (a.arg == arg && a.scratch_only) return scratch_ + a.offset;
  fail_internal(__FILE__, __LINE__, cat(stub_, ": no scratch argument ", arg));
}

memory::desc Plan::scratch_desc(int arg) const {
  for (const Arg& a : args_)
    if (a.arg == arg && a.scratch_only) return a.prim.get_desc();
  fail_internal(__FILE__, __LINE__, cat(stub_, ": no scratch argument ", arg));
}

void Plan::bind(const Exec& ex, const Ptr* ptrs, size_t n) {
  ++g_calls;
  scratch_ = nullptr;
  if (scratch_bytes_ > 0) {
    FOVEA_CHECK(ex.workspace, stub_, ": backend onednn needs scratch memory but the call has no workspace");
    // Aligned here: a workspace may hand out any address (the kernel tests' misaligned ones).
    const auto base = reinterpret_cast<uintptr_t>(ex.workspace->get(scratch_bytes_ + kAlign));
    scratch_ = reinterpret_cast<char*>((base + kAlign - 1) / kAlign * kAlign);
  }
  size_t bound = 0;
  for (Arg& a : args_) {
    if (a.scratch_only) {
      a.prim.set_data_handle(scratch_ + a.offset);
      continue;
    }
    const void* p = nullptr;
    for (size_t i = 0; i < n; ++i)
      if (ptrs[i].arg == a.arg) p = ptrs[i].p, ++bound;
    FOVEA_ASSERT(p != nullptr, stub_, ": no pointer for oneDNN argument ", a.arg);
    a.user.set_data_handle(const_cast<void*>(p));  // oneDNN's memory has no const view; inputs are only read
    if (a.reordered) a.prim.set_data_handle(scratch_ + a.offset);
  }
  FOVEA_ASSERT(bound == n, stub_, ": ", n, " pointers for ", bound, " arguments");
  if (scratchpad_) scratchpad_.set_data_handle(scratch_ + scratchpad_offset_);
}

void Plan::execute() {
  dnnl::stream& s = stream();
  try {
    for (Arg& a : args_)
      if (a.reordered && a.dir == Dir::in) a.reorder.execute(s, a.user, a.prim);
    prim_.execute(s, exec_args_);
    for (Arg& a : args_)
      if (a.reordered && a.dir == Dir::out) a.reorder.execute(s, a.prim, a.user);
    s.wait();
  } catch (const dnnl::error& e) {
    fail(e, cat(stub_, " (", impl_, ")").c_str(), __FILE__, __LINE__);
  }
}

namespace {

struct Cache {
  std::map<Key, std::unique_ptr<Plan>> plans;
  std::map<const char*, const Plan*> last;  // by stub name (a stable pointer)
};
Cache& cache() {
  thread_local Cache c;
  return c;
}

}  // namespace

Plan* find_plan(const char* stub, Key& key) {
  key.push_back(reinterpret_cast<intptr_t>(stub));
  key.push_back(omp_get_max_threads());
  Cache& c = cache();
  auto it = c.plans.find(key);
  if (it == c.plans.end()) return nullptr;
  c.last[stub] = it->second.get();
  return it->second.get();
}

Plan& insert_plan(const char* stub, Key key, std::unique_ptr<Plan> plan) {
  Cache& c = cache();
  ++g_plans;
  Plan& p = *c.plans.emplace(std::move(key), std::move(plan)).first->second;
  c.last[stub] = &p;
  return p;
}

dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr a;
  FOVEA_DNNL(a.set_scratchpad_mode(dnnl::scratchpad_mode::user));
  return a;
}

}  // namespace detail

namespace {

std::string runtime_version_impl() {
  const dnnl_version_t* v = dnnl_version();
  std::string isa;
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::sse41: isa = "sse41"; break;
    case dnnl::cpu_isa::avx: isa = "avx"; break;
    case dnnl::cpu_isa::avx2: isa = "avx2"; break;
    case dnnl::cpu_isa::avx2_vnni: isa = "avx2_vnni"; break;
    case dnnl::cpu_isa::avx512_core: isa = "avx512_core"; break;
    case dnnl::cpu_isa::avx512_core_vnni: isa = "avx512_core_vnni"; break;
    case dnnl::cpu_isa::avx512_core_bf16: isa = "avx512_core_bf16"; break;
    case dnnl::cpu_isa::avx512_core_amx: isa = "avx512_core_amx"; break;
    default: isa = "other"; break;
  }
  return cat(v->major, ".", v->minor, ".", v->patch, ", CPU ISA ", isa, ", ", omp_get_max_threads(), " OpenMP threads");
}

CacheStats cache_stats_impl() {
  return {detail::g_primitives.load(), detail::g_plans.load(), detail::g_calls.load()};
}

std::string last_implementation_impl(const char* stub) {
  detail::Cache& c = detail::cache();
  for (const auto& [name, p] : c.last)
    if (std::string_view(name) == stub) return p->impl();
  return "";
}

// The module's entry points, handed to the program while the module loads (onednn_backend.h, ModuleApi).
const bool api_set = [] {
  ModuleApi& api = module_api();
  api.runtime_version = runtime_version_impl;
  api.cache_stats = cache_stats_impl;
  api.last_implementation = last_implementation_impl;
  return true;
}();

}  // namespace

}  // namespace fovea::onednn
