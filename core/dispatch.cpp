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
  switch (b) {
    case Backend::custom: return "custom";
    case Backend::cudnn: return "cudnn";
    case Backend::onednn: return "onednn";
  }
  return "?";
}

Backend parse_backend(std::string_view text) {
  if (text == "custom" || text == "reference") return Backend::custom;
  if (text == "cudnn") return Backend::cudnn;
  if (text == "onednn") return Backend::onednn;
  FOVEA_FAIL("backend: '", text, "' is not a backend (expected custom, reference, cudnn or onednn)");
}

void check_backend_device(const char* who, Backend b, Device d) {
  if (b == Backend::custom) return;
  const DeviceType on = b == Backend::cudnn ? DeviceType::cuda : DeviceType::cpu;
  FOVEA_CHECK(d.type == on, who, ": backend ", backend_name(b), " runs on device ",
              on == DeviceType::cuda ? "cuda" : "cpu", " only, not ", d.str());
}

Slot Exec::slot() const {
  switch (device.type) {
    case DeviceType::cpu: return backend == Backend::onednn ? Slot::onednn : Slot::cpu;
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
  check_backend(stub, ex);  // a library backend that is not there says why
  FOVEA_FAIL(stub, ": no implementation for device ", ex.device.str(), " with backend ", backend_name(ex.backend),
             " (slot ", slot_name(s), ")");
}

void check_backend(const char* stub, const Exec& ex) {
  if (ex.backend == Backend::custom) return;
  check_backend_device(stub, ex.backend, ex.device);
  require_module(ex.backend, stub);  // its slots exist only once it is loaded; never a silent fallback to ours
}

[[noreturn]] void fail_defined_twice(const char* stub, Slot s) {
  std::fprintf(stderr, "fovea: internal error: two implementations registered for slot %s of %s\n", slot_name(s), stub);
  std::abort();
}

}  // namespace fovea
