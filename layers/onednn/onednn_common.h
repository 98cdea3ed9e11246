// Internals of backend onednn (layers/onednn/*.cpp and the backend's tests only): checked oneDNN calls, the
// engine and stream, and Plan, the cached primitive with its argument memories and reorders.
#pragma once
#include <oneapi/dnnl/dnnl.hpp>

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/dispatch.h"
#include "core/error.h"
#include "layers/onednn/onednn_backend.h"

#if DNNL_VERSION_MAJOR != 2
#error "layers/onednn is written against the oneDNN 2.x API (operation descriptors); CMake should not build it"
#endif

namespace fovea::onednn::detail {

using dnnl::memory;
using Tag = memory::format_tag;
using Dims = memory::dims;

// ---------------------------------------------------------------- checked calls

// Throws fovea::DeviceError naming the file, line, the call's text, oneDNN's status and message.
[[noreturn]] void fail(const dnnl::error& e, const char* call, const char* file, int line);

template <class F>
auto checked(F&& f, const char* call, const char* file, int line) {
  try {
    return f();
  } catch (const dnnl::error& e) {
    fail(e, call, file, line);
  }
}

}  // namespace fovea::onednn::detail

// FOVEA_DNNL(dnnl::convolution_forward::primitive_desc(d, engine())): the value of the call, or a DeviceError
// with the file, line, call and oneDNN's message (the C++ API reports failures by throwing dnnl::error).
#define FOVEA_DNNL(...) \
  ::fovea::onednn::detail::checked([&]() { return __VA_ARGS__; }, #__VA_ARGS__, __FILE__, __LINE__)

namespace fovea::onednn::detail {

extern std::atomic<int64_t> g_primitives, g_plans, g_calls;

// The CPU engine (one per process) and this thread's stream on it.
const dnnl::engine& engine();
dnnl::stream& stream();

// A plain float32 memory descriptor.
inline memory::desc plain(const Dims& dims, Tag tag) {
  return FOVEA_DNNL(memory::desc(dims, memory::data_type::f32, tag));
}
// Letting the primitive choose (blocked) or the plain format.
inline memory::desc any_or(bool any, const Dims& dims, Tag tag) {
  return any ? FOVEA_DNNL(memory::desc(dims, memory::data_type::f32, Tag::any)) : plain(dims, tag);
}

// One cached primitive and its arguments. Each argument has the user's memory (the stub's pointer, plain
// format) and, when the primitive wants another format, its own memory in scratch with a reorder before
// (inputs) or after (outputs) the primitive. Scratch (reorder buffers, oneDNN's scratchpad, internal buffers
// a stub asks for) is one block from Exec::workspace per call.
class Plan {
 public:
  enum class Dir : uint8_t { in, out };

  explicit Plan(std::string stub) : stub_(std::move(stub)) {}

  // An argument (DNNL_ARG_*): the descriptor the primitive wants and the user's.
  void add(int arg, const memory::desc& want, const memory::desc& user, Dir dir);
  // An argument that lives in scratch only (batch-norm statistics the stub does not keep, a workspace):
  // its pointer is scratch_arg(arg) during run().
  void add_scratch(int arg, const memory::desc& md);
  // The primitive; its scratchpad is taken from scratch too (scratchpad_mode::user).
  void set(dnnl::primitive p, const memory::desc& scratchpad, const char* impl);

  // Runs with the user pointers {DNNL_ARG_*, pointer} (every argument added with add(), none other), after
  // `before(*this)` (it may fill scratch arguments) and before `after(*this)`.
  struct Ptr {
    int arg;
    const void* p;
  };
  void run(const Exec& ex, std::initializer_list<Ptr> ptrs) {
    bind(ex, ptrs.begin(), ptrs.size());
    execute();
  }
  template <class Before, class After>
  void run(const Exec& ex, const std::vector<Ptr>& ptrs, Before&& before, After&& after) {
    bind(ex, ptrs.data(), ptrs.size());
    before(*this);
    execute();
    after(*this);
  }
  template <class Before, class After>
  void run(const Exec& ex, std::initializer_list<Ptr> ptrs, Before&& before, After&& after) {
    bind(ex, ptrs.begin(), ptrs.size());
    before(*this);
    execute();
    after(*this);
  }
  // The scratch block of an argument added with add_scratch (valid during run()), and its descriptor.
  void* scratch_arg(int arg) const;
  memory::desc scratch_desc(int arg) const;
  const std::string& impl() const { return impl_; }

 private:
  struct Arg {
    int arg;
    Dir dir;
    memory user, prim;  // prim == user when no reorder is needed
    dnnl::reorder reorder;
    bool reordered = false, scratch_only = false;
    size_t offset = 0;  // in the scratch block
  };
  void bind(const Exec& ex, const Ptr* ptrs, size_t n);
  void execute();

  std::string stub_, impl_;
  std::vector<Arg> args_;
  dnnl::primitive prim_;
  memory scratchpad_;
  size_t scratchpad_offset_ = 0, scratch_bytes_ = 0;
  std::unordered_map<int, memory> exec_args_;
  char* scratch_ = nullptr;
};

// This thread's plan of `stub` for `key` (the shape and settings), made by make() -> Plan on first use. The
// OpenMP thread count is part of the key: oneDNN divides the work for it when it creates a primitive.
using Key = std::vector<int64_t>;
Plan* find_plan(const char* stub, Key& key);  // appends the thread count to key; null when not cached
Plan& insert_plan(const char* stub, Key key, std::unique_ptr<Plan> plan);
template <class Make>
Plan& cached_plan(const char* stub, Key key, Make&& make) {
  if (Plan* p = find_plan(stub, key)) return *p;
  return insert_plan(stub, std::move(key), std::make_unique<Plan>(make()));
}

// Attributes of every primitive here: the scratchpad comes from the caller (Plan: Exec::workspace).
dnnl::primitive_attr user_scratchpad();

}  // namespace fovea::onednn::detail
