// A scratch folder for one test, removed with everything in it when the test ends.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace fovea::test {

class TempDir {
 public:
  // <tmp>/<prefix>_<pid>_<n>: unique per process and per TempDir. `create` false leaves only the name (for
  // commands that must create the folder themselves).
  explicit TempDir(const std::string& prefix = "fovea_test", bool create = true)
      : path_(std::filesystem::temp_directory_path() /
              (prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++))) {
    std::filesystem::remove_all(path_);
    if (create) std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;  // never throw from a destructor
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  std::string file(const std::string& name) const { return *this / name; }
  std::string str() const { return path_.string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  static inline int counter_ = 0;
};

}  // namespace fovea::test
