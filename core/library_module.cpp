#include "core/library_module.h"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <vector>

#include "core/error.h"

namespace fovea {
namespace {

#if FOVEA_HAVE_CUDNN
constexpr const char* kModuleName = "libfovea_cudnn.so";

struct ModuleState {
  std::once_flag once;
  bool loaded = false;
  std::string status;
};

ModuleState& state() {
  static ModuleState s;
  return s;
}

std::vector<std::string> candidate_paths() {
  std::vector<std::string> out;
  if (const char* env = std::getenv("FOVEA_CUDNN_MODULE"); env && *env) out.emplace_back(env);
  char exe[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    const std::filesystem::path dir = std::filesystem::path(std::string(exe, size_t(n))).parent_path();
    out.push_back((dir / kModuleName).string());
    out.push_back((dir.parent_path() / "lib" / kModuleName).string());
  }
  out.emplace_back(FOVEA_CUDNN_MODULE_BUILD_PATH);
  return out;
}

void load_once() {
  ModuleState& s = state();
  std::string tried;
  for (const std::string& path : candidate_paths()) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
      tried += cat("\n  ", path, ": no such file");
      continue;
    }
    // RTLD_NOW: a symbol the program does not provide is an error here, not a crash at the first call.
    if (dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL)) {
      s.loaded = true;
      s.status = "loaded from " + path;
      return;
    }
    const char* why = dlerror();
    tried += cat("\n  ", path, ": ", why ? why : "dlopen failed");
  }
  s.status = "not loaded; tried:" + tried;
}
#endif

}  // namespace

bool load_cudnn_module() {
#if FOVEA_HAVE_CUDNN
  std::call_once(state().once, load_once);
  return state().loaded;
#else
  return false;
#endif
}

void require_cudnn_module(const char* who) {
#if FOVEA_HAVE_CUDNN
  if (load_cudnn_module()) return;
  throw DeviceError(cat(who, ": backend cudnn: its module ", kModuleName, " is ", state().status));
#else
  FOVEA_FAIL(who,
             ": backend cudnn requested but this build of fovea has no cuDNN (not found at build time or "
             "FOVEA_WITH_CUDNN=OFF); use --backend custom");
#endif
}

std::string cudnn_module_status() {
#if FOVEA_HAVE_CUDNN
  load_cudnn_module();  // the status is final once the one load attempt is over
  return state().status;
#else
  return "not built (cuDNN was not found or FOVEA_WITH_CUDNN=OFF)";
#endif
}

}  // namespace fovea
