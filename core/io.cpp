#include "core/io.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

namespace fovea {

namespace {

// All of `bytes` to `fd` (partial writes and EINTR retried); false with errno set on failure.
bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(size_t(n));
  }
  return true;
}

// `path` with its symlinks followed (at most 40, as the kernel does); the path itself when it is not one.
std::string follow_symlinks(const std::string& path) {
  std::filesystem::path p = path;
  for (int i = 0; i < 40; ++i) {
    std::error_code ec;
    if (!std::filesystem::is_symlink(std::filesystem::symlink_status(p, ec))) return p.string();
    const std::filesystem::path to = std::filesystem::read_symlink(p, ec);
    if (ec) return p.string();
    p = to.is_absolute() ? to : p.parent_path() / to;
  }
  throw Error(cat("cannot write '", path, "': too many levels of symbolic links"));
}

[[noreturn]] void write_failed(const std::string& path, int err) {
  throw Error(cat("cannot write '", path, "': ", std::strerror(err)));
}

}  // namespace

int descriptor_path(const std::string& path) {
  if (path == "/dev/stdin") return 0;
  if (path == "/dev/stdout") return 1;
  if (path == "/dev/stderr") return 2;
  for (const char* prefix : {"/dev/fd/", "/proc/self/fd/"}) {
    const std::string_view pre(prefix);
    if (path.size() > pre.size() && path.compare(0, pre.size(), pre) == 0 &&
        path.find_first_not_of("0123456789", pre.size()) == std::string::npos && path.size() - pre.size() < 6)
      return std::stoi(path.substr(pre.size()));
  }
  return -1;
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  if (const int fd = descriptor_path(path); fd >= 0) {
    if (fd == 1) std::fflush(stdout);  // what was printed before comes first
    if (fd == 2) std::fflush(stderr);
    if (!write_all(fd, bytes)) write_failed(path, errno);
    return;
  }
  const std::string target = follow_symlinks(path);
  struct stat st;
  if (::stat(target.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    FOVEA_CHECK(!S_ISDIR(st.st_mode), "cannot write '", path, "': it is a directory");
    // A device or a FIFO: written in place (there is nothing to rename over).
    const int fd = ::open(target.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) write_failed(path, errno);
    const bool ok = write_all(fd, bytes);
    const int err = errno;
    ::close(fd);
    if (!ok) write_failed(path, err);
    return;
  }
  const std::string tmp = cat(target, ".tmp.", ::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) write_failed(path, errno);
  bool ok = write_all(fd, bytes) && ::fsync(fd) == 0;
  int err = errno;
  if (::close(fd) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    ::unlink(tmp.c_str());
    write_failed(path, err);
  }
  if (std::rename(tmp.c_str(), target.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    throw Error(cat("cannot rename '", tmp, "' to '", target, "': ", std::strerror(e)));
  }
}

std::FILE* messages_stream(const std::string& output) {
  return descriptor_path(output) == 1 ? stderr : stdout;
}

void refuse_output_over_input(const std::string& output, std::string_view output_flag, const std::string& input,
                              std::string_view input_flag) {
  struct stat a, b;
  if (output.empty() || input.empty() || ::stat(output.c_str(), &a) != 0 || ::stat(input.c_str(), &b) != 0) return;
  if (!S_ISREG(a.st_mode)) return;  // /dev/stdout and the like may well be the input's device
  FOVEA_CHECK(a.st_dev != b.st_dev || a.st_ino != b.st_ino, output_flag, ": '", output, "' is the input ", input_flag,
              input_flag.empty() ? "" : " ", "'", input, "'; writing it would destroy the input");
}

std::string read_file(const std::string& path) {
  // A FIFO, a device or a socket could block forever or never end: inputs are regular files.
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    FOVEA_CHECK(!S_ISDIR(st.st_mode), "cannot read '", path, "': it is a directory, not a file");
    FOVEA_CHECK(S_ISREG(st.st_mode), "cannot read '", path, "': not a regular file (",
                S_ISFIFO(st.st_mode)   ? "a FIFO"
                : S_ISCHR(st.st_mode)  ? "a character device"
                : S_ISBLK(st.st_mode)  ? "a block device"
                : S_ISSOCK(st.st_mode) ? "a socket"
                                       : "not a file",
                "); fovea reads its inputs from regular files only");
  }
  std::ifstream in(path, std::ios::binary);
  FOVEA_CHECK(in, "cannot open '", path, "': ", std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  FOVEA_CHECK(!in.bad(), "cannot read '", path, "'");
  return ss.str();
}

void remove_stale_temp_files(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const size_t at = name.rfind(".tmp.");
    if (at == std::string::npos || at + 5 == name.size()) continue;
    const std::string digits = name.substr(at + 5);
    if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9) continue;
    const pid_t pid = pid_t(std::stol(digits));
    if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH) std::filesystem::remove(entry.path(), ec);
  }
}

std::string filesystem_message(const std::filesystem::filesystem_error& e) {
  // what() is "filesystem error: cannot create directories: No such file or directory [/proc/x]".
  std::string op = e.what();
  const std::string prefix = "filesystem error: ";
  if (op.rfind(prefix, 0) == 0) op = op.substr(prefix.size());
  const size_t colon = op.find(':');
  if (colon != std::string::npos) op = op.substr(0, colon);
  std::string paths;
  if (!e.path1().empty()) paths += " '" + e.path1().string() + "'";
  if (!e.path2().empty()) paths += " and '" + e.path2().string() + "'";
  return cat(op, paths, ": ", e.code().message());
}

}  // namespace fovea
