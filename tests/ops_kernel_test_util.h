// Shared by the non-GEMM kernel tests (tests/<op>_kernel_test.cpp): comparison with the reference that also
// checks every element was written and records the errors, bitwise comparison for determinism, and the
// emulator schedules every determinism test runs under.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "core/emu/emu.h"
#include "tests/kernel_test_util.h"
#include "tests/test_util.h"

// FOVEA_KERNEL_CALL for launchers that return a value (the metric reductions).
#if FOVEA_HAVE_CUDA
#define FOVEA_KERNEL_CALL_RESULT(device, fn, ...)                                      \
  ((device).type == ::fovea::DeviceType::cuda ? ::fovea::cuda_kernels::fn(__VA_ARGS__) \
                                              : ::fovea::emu_kernels::fn(__VA_ARGS__))
#else
#define FOVEA_KERNEL_CALL_RESULT(device, fn, ...)                                                \
  ((device).type == ::fovea::DeviceType::cuda                                                    \
       ? (FOVEA_FAIL(#fn ": device cuda requested but this build of fovea has no CUDA support"), \
          ::fovea::emu_kernels::fn(__VA_ARGS__))                                                 \
       : ::fovea::emu_kernels::fn(__VA_ARGS__))
#endif

namespace fovea::test {

// Largest |a - b| (+inf when either is not finite).
template <typename A, typename B>
double max_abs_error(const std::vector<A>& a, const std::vector<B>& b) {
  double m = 0.0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    const double d = std::fabs(double(a[i]) - double(b[i]));
    if (!(d <= m)) m = std::isfinite(d) ? d : std::numeric_limits<double>::infinity();
  }
  return m;
}

// Every element written (no NaN poison left) and rel L2 <= tol. Records "<what>.rel_l2" and "<what>.max_abs" as
// test properties (in the --gtest_output XML) so that the errors are reported, not only checked.
inline ::testing::AssertionResult matches_reference(const std::vector<float>& got, const std::vector<float>& want,
                                                    const std::string& what, double tol = 1e-5) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << what << ": size " << got.size() << " != " << want.size();
  ::testing::AssertionResult written = all_written(got, what.c_str());
  if (!written) return written;
  const double e = rel_l2(got, want), m = max_abs_error(got, want);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3e", e);
  ::testing::Test::RecordProperty(what + ".rel_l2", buf);
  std::snprintf(buf, sizeof buf, "%.3e", m);
  ::testing::Test::RecordProperty(what + ".max_abs", buf);
  if (e <= tol) return ::testing::AssertionSuccess();
  return close_l2(got, want, tol, what) << " (max abs error " << m << ")";
}

template <typename T>
::testing::AssertionResult bitwise_equal(const std::vector<T>& a, const std::vector<T>& b, const std::string& what) {
  if (a.size() != b.size()) return ::testing::AssertionFailure() << what << ": sizes differ";
  if (std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0) return ::testing::AssertionSuccess();
  size_t i = 0;
  while (std::memcmp(&a[i], &b[i], sizeof(T)) == 0) ++i;
  return ::testing::AssertionFailure() << what << ": not bitwise identical between runs, first difference at " << i
                                       << ": " << a[i] << " vs " << b[i];
}

// Runs `run()` (which launches and downloads one result) under several emulator schedules on device emu, or
// twice on cuda (or when !all_schedules, for big cases: CI runs the whole suite under every order anyway), and
// expects bitwise-identical results. Returns the first result.
template <class F>
auto expect_deterministic(Device dev, const std::string& what, F&& run, bool all_schedules = true) {
  if (dev.type != DeviceType::emu || !all_schedules) {
    auto first = run();
    EXPECT_TRUE(bitwise_equal(first, run(), what));
    return first;
  }
  auto first = run();
  for (const char* order : {"reverse", "shuffle:7", "forward"}) {
    emu::ScopedSchedule s(order);
    EXPECT_TRUE(bitwise_equal(first, run(), what + " [" + order + "]"));
  }
  return first;
}

// A device copy of `host` starting `offset` floats into its allocation: offset 1 breaks 16-byte alignment and
// sends launchers down their scalar path.
class OffsetArray {
 public:
  OffsetArray(const std::vector<float>& host, Device d, size_t offset) : offset_(offset) {
    std::vector<float> padded(host.size() + offset, 0.5f);
    std::copy(host.begin(), host.end(), padded.begin() + offset);
    arr_ = DeviceArray<float>::upload(padded, d);
  }
  float* data() const { return arr_.data() + offset_; }
  // New contents of the same size, in the same device memory.
  void assign(const std::vector<float>& host) {
    copy_bytes(data(), arr_.device(), host.data(), kCPU, host.size() * sizeof(float));
  }
  void poison() { arr_.poison(); }
  std::vector<float> download() const {
    std::vector<float> all = arr_.download();
    return std::vector<float>(all.begin() + offset_, all.end());
  }

 private:
  size_t offset_;
  DeviceArray<float> arr_;
};

}  // namespace fovea::test
