// Typed dispatch stubs, in the manner of ATen's DispatchStub: one entry point, several implementations.
//
// An op's header declares a stub with the exact signature every implementation has:
//
//   // layers/ops/activations.h
//   inline constinit DispatchStub<void(const Exec&, int64_t n, const float* x, float* y)> relu_forward_stub{
//       "relu_forward"};
//
// and each implementation registers itself in its slot while the program starts:
//
//   // cpu_reference/activations.cpp          (slot cpu)
//   // kernels/activations.cu                 (slot emu in the emulator build, cuda in the nvcc build)
//   // layers/cudnn/cudnn_ops.cpp             (slot cudnn)
//   const bool registered = ops::relu_forward_stub.define(kThisSlot, relu_forward);
//
// The op calls `relu_forward_stub(ctx.exec(), n, x, y)`; the stub picks the implementation from the
// Exec's device and backend. Nothing above the implementations links them by name: they are linked in
// whole (CMake target fovea_impl), which is what makes their registrations run.
#pragma once
#include <array>
#include <cstdint>
#include <utility>

#include "core/device.h"
#include "core/error.h"

namespace fovea {

using StreamHandle = void*;
class Workspace;

// The "slot" of a build that registers nothing: the emulator's checked build of the kernels
// (kernels/common.cuh), whose kernels run only as the instrumented twins of the normal emu build's.
struct NoSlot {};

// The implementations an entry point can have.
enum class Slot : uint8_t {
  cpu,     // the reference (cpu_reference/)
  emu,     // our kernels, built for the emulator
  cuda,    // our kernels, built by nvcc
  cudnn,   // cuDNN / cuBLAS (layers/cudnn/); falls back to slot cuda for what they lack
  onednn,  // a CPU library backend; falls back to slot cpu
};
inline constexpr int kSlotCount = 5;
const char* slot_name(Slot s);

// Which library runs an op on its device: ours (the reference on cpu, our kernels on emu and cuda), NVIDIA's
// (cuDNN/cuBLAS, on cuda only) or oneDNN (on cpu only). On cpu ours is the reference (the oracle every test
// compares with): "reference" is another name of backend custom.
enum class Backend : uint8_t { custom, cudnn, onednn };
const char* backend_name(Backend b);  // "custom", "cudnn", "onednn"
// "custom" | "reference" | "cudnn" | "onednn"; throws UsageError naming the text.
Backend parse_backend(std::string_view text);
// The device a library backend runs on (cudnn: cuda, onednn: cpu); throws UsageError naming `who` when `d` is
// another. Backend custom runs everywhere.
void check_backend_device(const char* who, Backend b, Device d);

// Where and how one call runs. Implementations take it first.
struct Exec {
  Device device = kCPU;
  Backend backend = Backend::custom;
  StreamHandle stream = nullptr;   // cuda: the stream to enqueue on (null: the legacy default stream)
  Workspace* workspace = nullptr;  // scratch of the device; may be null for calls that need none
  bool deterministic = true;       // only deterministic algorithms (ours always are)

  Slot slot() const;
};

// Throws the error for a stub with no implementation in the slot the call needs.
[[noreturn]] void fail_no_implementation(const char* stub, const Exec& ex);
// Throws when the Exec asks for a backend its device or this build cannot run (cudnn off device cuda, onednn
// off device cpu, or a build without the library): a library backend never falls back silently.
void check_backend(const char* stub, const Exec& ex);
// Aborts: two files registered the same slot of one stub (a build mistake, caught at start-up).
[[noreturn]] void fail_defined_twice(const char* stub, Slot s);

// What every stub can say about itself, whatever its signature (the op registry lists which slots an op has).
class StubInfo {
 public:
  constexpr explicit StubInfo(const char* name) : name_(name) {}
  const char* name() const { return name_; }
  bool has(Slot s) const { return defined_[size_t(s)]; }

 protected:
  const char* name_;
  std::array<bool, kSlotCount> defined_{};
};

template <typename Signature>
class DispatchStub;

template <typename R, typename... Args>
class DispatchStub<R(const Exec&, Args...)> : public StubInfo {
 public:
  using Fn = R (*)(const Exec&, Args...);

  constexpr explicit DispatchStub(const char* name) : StubInfo(name) {}
  DispatchStub(const DispatchStub&) = delete;
  DispatchStub& operator=(const DispatchStub&) = delete;

  R operator()(const Exec& ex, Args... args) const { return get(ex)(ex, std::forward<Args>(args)...); }

  // The implementation a call with `ex` runs: its slot, else the fallback (cudnn -> cuda, onednn -> cpu).
  Fn get(const Exec& ex) const {
    if (ex.backend != Backend::custom) check_backend(name_, ex);
    const Slot s = ex.slot();
    if (Fn f = fns_[size_t(s)]) return f;
    if (s == Slot::cudnn && fns_[size_t(Slot::cuda)]) return fns_[size_t(Slot::cuda)];
    if (s == Slot::onednn && fns_[size_t(Slot::cpu)]) return fns_[size_t(Slot::cpu)];
    fail_no_implementation(name_, ex);
  }

  // Registers the implementation of slot `s`; returns true so that a file can write
  // `const bool registered = a_stub.define(...) && b_stub.define(...);`.
  bool define(Slot s, Fn f) {
    if (fns_[size_t(s)]) fail_defined_twice(name_, s);
    fns_[size_t(s)] = f;
    defined_[size_t(s)] = f != nullptr;
    return true;
  }
  bool define(NoSlot, Fn) { return true; }

 private:
  std::array<Fn, kSlotCount> fns_{};
};

}  // namespace fovea
