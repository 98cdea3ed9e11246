// Helpers for kernel tests: device arrays with explicit upload/download and NaN poisoning, and the
// device list every kernel test runs on (emu always; cuda when this build has it and a GPU is visible).
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/dispatch.h"
#include "core/memory.h"

namespace fovea::test {

template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;
  DeviceArray(size_t n, Device d) : n_(n), buf_(n * sizeof(T), d) {}
  static DeviceArray upload(const std::vector<T>& host, Device d) {
    DeviceArray a(host.size(), d);
    copy_bytes(a.data(), d, host.data(), kCPU, host.size() * sizeof(T));
    return a;
  }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    copy_bytes(host.data(), kCPU, data(), buf_.device(), n_ * sizeof(T));
    return host;
  }
  // 0xFF bytes: NaN for floats, -1 for integers; a later check finds every element not written.
  void poison() { fill_bytes(data(), buf_.device(), 0xFF, n_ * sizeof(T)); }
  T* data() const { return buf_.as<T>(); }
  size_t size() const { return n_; }
  Device device() const { return buf_.device(); }

 private:
  size_t n_ = 0;
  Buffer buf_;
};

// Where a kernel test's stub call runs: our kernels on `d` (slot emu or cuda), with scratch from `ws` when given.
inline Exec kernel_exec(Device d, Workspace* ws = nullptr) {
  return Exec{d, Backend::custom, nullptr, ws, true};
}

// gtest parameter list for kernel tests: INSTANTIATE_TEST_SUITE_P(Devices, MyTest, KernelDevices(), DeviceName).
inline auto KernelDevices() {
  return ::testing::Values(kEmu, kCUDA);
}
inline std::string DeviceName(const ::testing::TestParamInfo<Device>& info) {
  return info.param.type == DeviceType::emu ? "emu" : "cuda";
}
// First line of every parameterised kernel test.
#define FOVEA_SKIP_IF_NO_DEVICE(dev)                                           \
  do {                                                                         \
    if ((dev).type == ::fovea::DeviceType::cuda && !::fovea::cuda_available()) \
      GTEST_SKIP() << "device cuda: " << ::fovea::cuda_unavailable_reason();   \
  } while (0)

}  // namespace fovea::test

namespace fovea {
// gtest prints a Device parameter as its name ("emu"), not as bytes (found by argument-dependent lookup).
inline void PrintTo(const Device& d, std::ostream* os) {
  *os << d.str();
}
}  // namespace fovea
