#include "core/error.h"

namespace fovea {

[[noreturn]] void fail_at(const char* file, int line, const std::string& message) {
  throw Error(cat(message, " [", file, ":", line, "]"));
}

}  // namespace fovea
