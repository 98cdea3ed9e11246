#include "core/dispatch.h"

#include <cstdio>
#include <cstdlib>

#include "core/library_module.h"

namespace fovea {

const char* slot_name(Slot s) {
  switch (s) {
    case Slot::cpu: return "cpu";
    case Slot::emu: return "emu";
    case Slot::cuda: return "cuda";
    case Slot::cudnn: return "cudnn";
    case Slot::onednn: return "onednn";
  }
  return "?";
}

const char* backend_name(Backend b) {
  return b == Backend::custom ? "custom" : "cudnn";
}

Backend parse_backend(std::string_view text) {
  if (text == "custom") return Backend::custom;
  if (text == "cudnn") return Backend::cudnn;
  FOVEA_FAIL("backend: '", text, "' is not a backend (expected custom or cudnn)");
}

Slot Exec::slot() const {
  switch (device.type) {
    case DeviceType::cpu: return Slot::cpu;
    case DeviceType::emu: return Slot::emu;
    case DeviceType::cuda: return backend == Backend::cudnn ? Slot::cudnn : Slot::cuda;
  }
  return Slot::cpu;
}

[[noreturn]] void fail_no_implementation(const char* stub, const Exec& ex) {
  const Slot s = ex.slot();
#if !FOVEA_HAVE_CUDA
  if (s == Slot::cuda || s == Slot::cudnn)
    FOVEA_FAIL(stub, ": device ", ex.device.str(), " requested but this build of fovea has no CUDA support");
#endif
#if !FOVEA_HAVE_CUDNN
  if (s == Slot::cudnn)
    FOVEA_FAIL(stub,
               ": backend cudnn requested but this build of fovea has no cuDNN (not found at build time or "
               "FOVEA_WITH_CUDNN=OFF); use --backend custom");
#endif
  FOVEA_FAIL(stub, ": no implementation for device ", ex.device.str(), " with backend ", backend_name(ex.backend),
             " (slot ", slot_name(s), ")");
}

void check_backend(const char* stub, const Exec& ex) {
  if (ex.backend != Backend::cudnn) return;
  FOVEA_CHECK(ex.device.type == DeviceType::cuda, stub, ": backend cudnn runs on device cuda only, not ",
              ex.device.str());
  require_cudnn_module(stub);  // its slots exist only once it is loaded; never a silent fallback to cuda
}

[[noreturn]] void fail_defined_twice(const char* stub, Slot s) {
  std::fprintf(stderr, "fovea: internal error: two implementations registered for slot %s of %s\n", slot_name(s), stub);
  std::abort();
}

}  // namespace fovea
