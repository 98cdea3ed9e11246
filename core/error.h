// Errors. Every failure fovea reports is a fovea::Error whose what() is the message alone; where it was
// raised (file, line) is a separate field, printed for internal and device errors, never glued into the
// message. The kinds decide the exit code of the `fovea` command:
//   UsageError   the user's input is wrong: a flag, a spec, a file, a shape, an attribute      exit 2
//   DeviceError  a CUDA / cuDNN / cuBLAS failure or out of memory                              exit 1
//   Error        anything else that stops a run: an I/O failure, a diverged training, a bug    exit 1
// FOVEA_CHECK / FOVEA_FAIL validate input (UsageError); FOVEA_ASSERT states an invariant of fovea's own
// code (an Error marked internal).
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace fovea {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, const char* file = nullptr, int line = 0, bool internal = false)
      : std::runtime_error(message), file_(file), line_(line), internal_(internal) {}
  const char* file() const { return file_; }  // null when unknown
  int line() const { return line_; }
  bool internal() const { return internal_; }  // a broken invariant: a bug in fovea
  std::string where() const;                   // "core/tensor.cpp:42", or "" when unknown

 private:
  const char* file_;
  int line_;
  bool internal_;
};

class UsageError : public Error {
 public:
  using Error::Error;
};

class DeviceError : public Error {
 public:
  using Error::Error;
};

// cat("conv2d: stride ", 0) -> "conv2d: stride 0"
template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

[[noreturn]] void fail_usage(const char* file, int line, const std::string& message);
// Throws an error of e's kind, location and internal flag whose message is `prefix` + e's message: for
// adding context ("layer 3 (conv): ...") without turning a device error into a usage error.
[[noreturn]] void rethrow_with_prefix(const Error& e, const std::string& prefix);
[[noreturn]] void fail_internal(const char* file, int line, const std::string& message);

}  // namespace fovea

// FOVEA_FAIL("conv2d: argument 'stride' must be > 0, got ", s);
#define FOVEA_FAIL(...) ::fovea::fail_usage(__FILE__, __LINE__, ::fovea::cat(__VA_ARGS__))
#define FOVEA_CHECK(cond, ...)            \
  do {                                    \
    if (!(cond)) FOVEA_FAIL(__VA_ARGS__); \
  } while (0)
// FOVEA_ASSERT(offset <= size, "loader: batch offset ", offset, " past ", size);  (a bug if it fires)
#define FOVEA_ASSERT(cond, ...)                                                                      \
  do {                                                                                               \
    if (!(cond)) ::fovea::fail_internal(__FILE__, __LINE__, ::fovea::cat(#cond, ": ", __VA_ARGS__)); \
  } while (0)
