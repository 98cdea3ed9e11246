// Errors: every failure is a fovea::Error whose message names what failed and the source place.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace fovea {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// cat("conv2d: stride ", 0) -> "conv2d: stride 0"
template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

[[noreturn]] void fail_at(const char* file, int line, const std::string& message);

}  // namespace fovea

// FOVEA_FAIL("conv2d: argument 'stride' must be > 0, got ", s);
#define FOVEA_FAIL(...) ::fovea::fail_at(__FILE__, __LINE__, ::fovea::cat(__VA_ARGS__))
#define FOVEA_CHECK(cond, ...)            \
  do {                                    \
    if (!(cond)) FOVEA_FAIL(__VA_ARGS__); \
  } while (0)
