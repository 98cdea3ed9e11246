#include "core/dispatch.h"

#include <cstdio>
#include <cstdlib>

#if FOVEA_HAVE_CUDNN
#define FOVEA_HAVE_CUDNN_BOOL true
#else
#define FOVEA_HAVE_CUDNN_BOOL false
#endif
#if FOVEA_HAVE_ONEDNN
#define FOVEA_HAVE_ONEDNN_BOOL true
#else
#define FOVEA_HAVE_ONEDNN_BOOL false
#endif

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

const char* backend_name(Backend b, Device d) {
  return b == Backend::custom && d.type == DeviceType::cpu ? "reference" : backend_name(b);
}

Backend parse_backend(std::string_view text) {
  if (text == "custom" || text == "reference") return Backend::custom;
  if (text == "cudnn") return Backend::cudnn;
  if (text == "onednn") return Backend::onednn;
  FOVEA_FAIL("backend: '", text, "' is not a backend (expected custom, reference, cudnn or onednn)");
}

bool backend_built(Backend b) {
  switch (b) {
    case Backend::custom: return true;
    case Backend::cudnn: return FOVEA_HAVE_CUDNN_BOOL;
    case Backend::onednn: return FOVEA_HAVE_ONEDNN_BOOL;
  }
  return false;
}

Backend default_backend(Device d) {
  return d.type == DeviceType::cpu && backend_built(Backend::onednn) ? Backend::onednn : Backend::custom;
}

Backend resolve_backend(std::string_view text, Device d) {
  return text == "auto" ? default_backend(d) : parse_backend(text);
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
  if (ex.backend != Backend::custom) check_backend(stub, ex);
  FOVEA_FAIL(stub, ": no implementation for device ", ex.device.str(), " with backend ", backend_name(ex.backend),
             " (slot ", slot_name(s), ")");
}

void check_backend(const char* stub, const Exec& ex) {
  switch (ex.backend) {
    case Backend::custom: return;
    case Backend::cudnn:
      FOVEA_CHECK(ex.device.type == DeviceType::cuda, stub, ": backend cudnn runs on device cuda only, not ",
                  ex.device.str());
      FOVEA_CHECK(FOVEA_HAVE_CUDNN_BOOL, stub,
                  ": backend cudnn requested but this build of fovea has no cuDNN (not found at build time or "
                  "FOVEA_WITH_CUDNN=OFF); use --backend custom");
      return;
    case Backend::onednn:
      FOVEA_CHECK(ex.device.type == DeviceType::cpu, stub, ": backend onednn runs on device cpu only, not ",
                  ex.device.str());
      FOVEA_CHECK(FOVEA_HAVE_ONEDNN_BOOL, stub,
                  ": backend onednn requested but this build of fovea has no oneDNN (libdnnl-dev not found at build "
                  "time or FOVEA_WITH_ONEDNN=OFF); use --backend reference");
      return;
  }
}

[[noreturn]] void fail_defined_twice(const char* stub, Slot s) {
  std::fprintf(stderr, "fovea: internal error: two implementations registered for slot %s of %s\n", slot_name(s), stub);
  std::abort();
}

}  // namespace fovea
