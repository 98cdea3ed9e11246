#include "core/error.h"

namespace fovea {

std::string Error::where() const {
  return file_ ? cat(file_, ":", line_) : std::string();
}

[[noreturn]] void fail_usage(const char* file, int line, const std::string& message) {
  throw UsageError(message, file, line);
}

[[noreturn]] void rethrow_with_prefix(const Error& e, const std::string& prefix) {
  const std::string m = prefix + e.what();
  if (dynamic_cast<const UsageError*>(&e)) throw UsageError(m, e.file(), e.line(), e.internal());
  if (dynamic_cast<const DeviceError*>(&e)) throw DeviceError(m, e.file(), e.line(), e.internal());
  throw Error(m, e.file(), e.line(), e.internal());
}

[[noreturn]] void fail_internal(const char* file, int line, const std::string& message) {
  throw Error(message, file, line, /*internal=*/true);
}

}  // namespace fovea
