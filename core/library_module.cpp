#include "core/library_module.h"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <vector>

#include "core/dispatch.h"
#include "core/error.h"

namespace fovea {
namespace {

// One backend's module: what it is called, whether this build made it, and how loading it went.
struct Module {
  const char* backend;
  const char* file;       // libfovea_<backend>.so
  const char* env;        // the variable that names the file to load instead
  bool built;             // CMake found the library and built the module
  const char* not_built;  // why not, for the errors of a build without it
  std::once_flag once{};
  bool loaded = false;
  std::string status{};
};

#if FOVEA_HAVE_CUDNN
constexpr bool kCudnnBuilt = true;
#else
constexpr bool kCudnnBuilt = false;
#endif
#if FOVEA_HAVE_ONEDNN
constexpr bool kOnednnBuilt = true;
#else
constexpr bool kOnednnBuilt = false;
#endif

Module& module_of(Backend b) {
  static Module cudnn{"cudnn", "libfovea_cudnn.so", "FOVEA_CUDNN_MODULE", kCudnnBuilt,
                      "this build of fovea has no cuDNN (not found at build time or FOVEA_WITH_CUDNN=OFF); use "
                      "--backend custom"};
  static Module onednn{"onednn", "libfovea_onednn.so", "FOVEA_ONEDNN_MODULE", kOnednnBuilt,
                       "this build of fovea has no oneDNN (libdnnl-dev 2.x not found at build time or "
                       "FOVEA_WITH_ONEDNN=OFF); use --backend reference"};
  FOVEA_ASSERT(b == Backend::cudnn || b == Backend::onednn, "backend ", backend_name(b), " has no module");
  return b == Backend::cudnn ? cudnn : onednn;
}

std::vector<std::string> candidate_paths(const Module& m) {
  std::vector<std::string> out;
  if (const char* env = std::getenv(m.env); env && *env) out.emplace_back(env);
  char exe[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    const std::filesystem::path dir = std::filesystem::path(std::string(exe, size_t(n))).parent_path();
    out.push_back((dir / m.file).string());
    out.push_back((dir.parent_path() / "lib" / m.file).string());
  }
  out.push_back((std::filesystem::path(FOVEA_MODULE_BUILD_DIR) / m.file).string());
  return out;
}

void load_once(Module& m) {
  std::string tried;
  for (const std::string& path : candidate_paths(m)) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
      tried += cat("\n  ", path, ": no such file");
      continue;
    }
    // RTLD_NOW: a symbol the program does not provide is an error here, not a crash at the first call.
    if (dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL)) {
      m.loaded = true;
      m.status = "loaded from " + path;
      return;
    }
    const char* why = dlerror();
    tried += cat("\n  ", path, ": ", why ? why : "dlopen failed");
  }
  m.status = "not loaded; tried:" + tried;
}

}  // namespace

bool load_module(Backend b) {
  if (b == Backend::custom) return true;
  Module& m = module_of(b);
  if (!m.built) return false;
  std::call_once(m.once, [&m] { load_once(m); });
  return m.loaded;
}

void require_module(Backend b, const char* who) {
  if (load_module(b)) return;
  const Module& m = module_of(b);
  FOVEA_CHECK(m.built, who, ": backend ", m.backend, " requested but ", m.not_built);
  throw DeviceError(cat(who, ": backend ", m.backend, ": its module ", m.file, " is ", m.status));
}

std::string module_status(Backend b) {
  if (b == Backend::custom) return "linked in";
  const Module& m = module_of(b);
  if (!m.built) return cat("not built: ", m.not_built);
  load_module(b);  // the status is final once the one load attempt is over
  return m.status;
}

}  // namespace fovea
