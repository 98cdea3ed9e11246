// Tests that compare with PyTorch, torchvision or PIL run Debian's /usr/bin/python3 (never a build
// dependency): they skip, saying why, when it or a module is missing.
#pragma once
#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#ifndef FOVEA_SOURCE_DIR
#error "FOVEA_SOURCE_DIR must be the source tree (fovea_test(... DEFINES FOVEA_SOURCE_DIR=...))"
#endif
#ifndef FOVEA_FIXTURE_DIR
#error "FOVEA_FIXTURE_DIR must be a folder in the build tree (fovea_test(... DEFINES FOVEA_FIXTURE_DIR=...))"
#endif

namespace fovea::test {

constexpr const char* kPython = "/usr/bin/python3";

// Runs a shell command; returns its exit status (-1 if it could not run) and its output (stdout and stderr).
inline int run_shell(const std::string& cmd, std::string* output) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) output->append(buf, n);
  const int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// "" when /usr/bin/python3 can import every module in `modules` (comma-separated), else why not.
inline std::string python_missing(const std::string& modules) {
  if (::access(kPython, X_OK) != 0) return std::string(kPython) + " is not installed";
  std::string out;
  if (run_shell(std::string(kPython) + " -c 'import " + modules + "'", &out) != 0)
    return std::string(kPython) + " cannot import " + modules + " (install the Debian packages): " + out;
  return "";
}

// The folder where `/usr/bin/python3 SCRIPT FOLDER` (SCRIPT relative to the source tree) has written
// its files: made once per content of the script and of `deps` (files it runs, also relative to the
// source tree) under FOVEA_FIXTURE_DIR in the build tree, and shared by the test processes ctest
// starts (each test is its own process): made by one process under a lock, in a temporary folder
// then renamed, so no process ever sees half of it. When it has to be made and python3 lacks one of `modules`
// (comma-separated), returns "" with *skip saying why; when the script fails, "" with *error.
inline std::string python_fixtures(const std::string& script, const std::vector<std::string>& deps,
                                   const std::string& modules, std::string* skip, std::string* error) {
  namespace fs = std::filesystem;
  uint64_t h = 1469598103934665603ull;  // FNV-1a of the script and its dependencies
  for (const std::string& file : [&] {
         std::vector<std::string> all = {script};
         all.insert(all.end(), deps.begin(), deps.end());
         return all;
       }()) {
    std::ifstream in(std::string(FOVEA_SOURCE_DIR) + "/" + file, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    for (unsigned char c : file + '\0' + text.str()) h = (h ^ c) * 1099511628211ull;
  }
  const fs::path dir = fs::path(FOVEA_FIXTURE_DIR) / (fs::path(script).stem().string() + "_" + std::to_string(h));
  if (fs::exists(dir / "done")) return dir.string();
  *skip = python_missing(modules);
  if (!skip->empty()) return "";
  // One process makes it while the others wait (ctest -j runs several tests of a binary at once).
  fs::create_directories(FOVEA_FIXTURE_DIR);
  const int lock = ::open((dir.string() + ".lock").c_str(), O_CREAT | O_RDWR, 0644);
  if (lock >= 0) ::flock(lock, LOCK_EX);
  struct Unlock {
    int fd;
    ~Unlock() {
      if (fd >= 0) ::close(fd);  // closing releases the lock
    }
  } unlock{lock};
  if (fs::exists(dir / "done")) return dir.string();
  const fs::path tmp = dir.string() + ".tmp" + std::to_string(::getpid());
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  std::string out;
  const std::string cmd = std::string(kPython) + " " + FOVEA_SOURCE_DIR + "/" + script + " " + tmp.string();
  if (run_shell(cmd, &out) != 0) {
    *error = cmd + " failed:\n" + out;
    fs::remove_all(tmp);
    return "";
  }
  std::ofstream(tmp / "done") << "ok\n";
  std::error_code ec;
  fs::rename(tmp, dir, ec);  // fails only if another process got there first (no lock): use theirs
  if (ec) fs::remove_all(tmp);
  return dir.string();
}

}  // namespace fovea::test
