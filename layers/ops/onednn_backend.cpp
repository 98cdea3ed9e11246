// The side of backend onednn every program links: its settings, and the calls that load the module
// (libfovea_onednn.so, core/library_module.h) and go through the table it fills (onednn_backend.h, ModuleApi).
#include "layers/onednn/onednn_backend.h"

#include "core/library_module.h"

namespace fovea::onednn {

Settings& settings() {
  thread_local Settings s;
  return s;
}

ModuleApi& module_api() {
  static ModuleApi api;
  return api;
}

std::string runtime_version() {
  if (!load_module(Backend::onednn)) return module_status(Backend::onednn);
  return module_api().runtime_version();
}

CacheStats cache_stats() {
  require_module(Backend::onednn, "onednn::cache_stats");
  return module_api().cache_stats();
}

std::string last_implementation(const char* stub) {
  require_module(Backend::onednn, "onednn::last_implementation");
  return module_api().last_implementation(stub);
}

}  // namespace fovea::onednn
