// Tests that compare with PyTorch, torchvision or PIL run Debian's /usr/bin/python3 (never a build
// dependency): they skip, saying why, when it or a module is missing.
#pragma once
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

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

// A fresh empty folder under the temporary directory, unique to this process and `tag`.
inline std::string fresh_temp_dir(const std::string& tag) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("fovea_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

// The folder where `/usr/bin/python3 SCRIPT FOLDER` (SCRIPT relative to the source tree) has written
// its files: made once per content of the script under FOVEA_FIXTURE_DIR in the build tree and
// shared by the test processes ctest starts (each test is its own process), written to a temporary
// folder and renamed so that processes running at once never see half of it. "" with *error set
// when the script fails.
inline std::string python_fixtures(const std::string& script, std::string* error) {
  namespace fs = std::filesystem;
  const std::string path = std::string(FOVEA_SOURCE_DIR) + "/" + script;
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  uint64_t h = 1469598103934665603ull;  // FNV-1a of the script
  for (unsigned char c : text.str()) h = (h ^ c) * 1099511628211ull;
  const fs::path dir = fs::path(FOVEA_FIXTURE_DIR) / (fs::path(script).stem().string() + "_" + std::to_string(h));
  if (fs::exists(dir / "done")) return dir.string();
  const fs::path tmp = dir.string() + ".tmp" + std::to_string(::getpid());
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  std::string out;
  if (run_shell(std::string(kPython) + " " + path + " " + tmp.string(), &out) != 0) {
    *error = path + " failed:\n" + out;
    fs::remove_all(tmp);
    return "";
  }
  std::ofstream(tmp / "done") << "ok\n";
  std::error_code ec;
  fs::rename(tmp, dir, ec);  // fails if another process got there first: use theirs
  if (ec) fs::remove_all(tmp);
  return dir.string();
}

}  // namespace fovea::test
