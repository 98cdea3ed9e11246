// The emulator as a GPU lab (core/emu/check.cpp, issue 14): known answers for the memory metrics (textbook
// kernels whose counts follow from the CUDA programming guide's coalescing and bank rules), the checks finding
// planted bugs with the right numbers and source lines, and the fidelity fixes (extern __shared__ as in NVIDIA's
// samples, an emulated __CUDA_ARCH__, the 48 KiB opt-in, buffered device printf).
//
// Expected source lines are looked up in tests/emu_lab_kernels.cu by their text, never typed in here.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "core/emu/check.h"
#include "core/emu/cost_model.h"
#include "core/emu/emu.h"
#include "core/emu/profile.h"
#include "core/memory.h"
#include "tests/emu_lab_kernels.h"
#include "tests/kernel_test_util.h"
#include "tests/test_util.h"

namespace fovea {
namespace {

namespace k = emu_kernels;
using test::DeviceArray;
using test::error_of;

// The checks and metrics run the kernels' checked build, which -DFOVEA_SANITIZE=ON and -DFOVEA_EMU_CHECKED=OFF
// builds do not make.
#define SKIP_WITHOUT_CHECKED_BUILD()                                                                          \
  do {                                                                                                        \
    if (!emu::instrumented_build_available()) {                                                               \
      GTEST_SKIP() << "needs the checked (instrumented) build of the kernels, which -DFOVEA_SANITIZE=ON and " \
                      "-DFOVEA_EMU_CHECKED=OFF builds do not make";                                           \
    }                                                                                                         \
  } while (0)

const char* const kOrders[] = {"forward", "reverse", "shuffle:1", "shuffle:2", "shuffle:12345"};

// "tests/emu_lab_kernels.cu:N" for the line of the kernel file that contains `text`.
std::string line_of(const std::string& text) {
  std::ifstream in(std::string(FOVEA_SOURCE_DIR) + "/tests/emu_lab_kernels.cu");
  std::string line;
  for (int n = 1; std::getline(in, line); ++n)
    if (line.find(text) != std::string::npos) return "tests/emu_lab_kernels.cu:" + std::to_string(n);
  ADD_FAILURE() << "no line contains '" << text << "'";
  return "?";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

template <class T>
DeviceArray<T> upload(const std::vector<T>& v) {
  return DeviceArray<T>::upload(v, kEmu);
}

// Runs f with profiling on and returns the metrics of the one kernel whose name contains `kernel`.
template <class F>
emu::KernelMetrics profile_of(const std::string& kernel, F&& f) {
  emu::profile_start();
  try {
    f();
  } catch (...) {
    emu::profile_stop();
    throw;
  }
  const std::vector<emu::KernelMetrics> all = emu::profile_stop();
  for (const emu::KernelMetrics& m : all)
    if (contains(m.name, kernel)) return m;
  ADD_FAILURE() << "kernel " << kernel << " was not profiled";
  return {};
}

using emu::AccessOp;
using emu::Space;

// ------------------------------------------------------------------ known answers: global memory
// n = 64: 2x2 blocks of 32x8 threads, 8 warps each, 4 rows per thread: 2*2*8*4 = 128 warp-level requests per access.
TEST(EmuMetrics, NaiveTransposeWritesTouch32SectorsPerRequest) {
  SKIP_WITHOUT_CHECKED_BUILD();
  const int n = 64;
  const auto x = test::random_vector(n * n, 1);
  auto in = upload(x);
  DeviceArray<float> out(n * n, kEmu);
  const emu::KernelMetrics m =
      profile_of("lab_transpose_naive_kernel", [&] { k::lab_transpose_naive(in.data(), out.data(), n, nullptr); });
  const auto y = out.download();
  for (int r = 0; r < n; ++r)
    for (int c = 0; c < n; ++c) ASSERT_EQ(y[c * n + r], x[r * n + c]);
  EXPECT_EQ(m.launches, 1u);
  EXPECT_EQ(m.warps, 32u);
  const emu::SiteMetrics ld = m.total(Space::global, AccessOp::load), st = m.total(Space::global, AccessOp::store);
  EXPECT_EQ(ld.requests, 128u);
  EXPECT_EQ(ld.lanes, 128u * 32);
  EXPECT_EQ(ld.sectors, 128u * 4);  // a row: 32 floats, 128 bytes, 4 sectors, one L1 line (256-aligned buffer)
  EXPECT_EQ(ld.lines, 128u);
  EXPECT_EQ(ld.bytes, 128u * 32 * 4);
  EXPECT_EQ(st.requests, 128u);
  EXPECT_EQ(st.sectors, 128u * 32);  // a column: every lane 256 bytes from the next, its own sector and line
  EXPECT_EQ(st.lines, 128u * 32);
  EXPECT_EQ(m.total(Space::shared, AccessOp::load).requests, 0u);
}

TEST(EmuMetrics, Float4LoadsAreOneSixteenByteRequestPerWarp) {
  SKIP_WITHOUT_CHECKED_BUILD();
  const int n4 = 256;  // 4 blocks of 64 threads: 8 warps
  const auto x = test::random_vector(4 * n4, 2);
  auto in = upload(x);
  DeviceArray<float> out(4 * n4, kEmu);
  const emu::KernelMetrics m =
      profile_of("lab_copy_float4_kernel", [&] { k::lab_copy_float4(in.data(), out.data(), n4, nullptr); });
  EXPECT_EQ(out.download(), x);
  for (AccessOp op : {AccessOp::load, AccessOp::store}) {
    const emu::SiteMetrics t = m.total(Space::global, op);
    ASSERT_EQ(t.requests, 8u) << emu::op_name(op);
    EXPECT_EQ(t.sectors, 8u * 16) << emu::op_name(op);  // 32 lanes x 16 bytes = 512 bytes = 16 sectors, 4 lines
    EXPECT_EQ(t.lines, 8u * 4) << emu::op_name(op);
    EXPECT_EQ(t.bytes, 8u * 32 * 16) << emu::op_name(op);
    for (const emu::SiteMetrics& s : m.sites) {
      if (s.space == Space::global && s.op == op) {
        EXPECT_EQ(s.bytes_per_lane, 16u);
      }
    }
  }
}

// ------------------------------------------------------------------ known answers: shared memory
TEST(EmuMetrics, SharedTransposeHas32WayConflictsWithoutPaddingAndNoneWithIt) {
  SKIP_WITHOUT_CHECKED_BUILD();
  const int n = 64;
  const auto x = test::random_vector(n * n, 3);
  auto in = upload(x);
  for (bool pad : {false, true}) {
    DeviceArray<float> out(n * n, kEmu);
    const emu::KernelMetrics m = profile_of(pad ? "lab_transpose_shared_kernel<1>" : "lab_transpose_shared_kernel<0>",
                                            [&] { k::lab_transpose_shared(in.data(), out.data(), n, pad, nullptr); });
    const auto y = out.download();
    for (int r = 0; r < n; ++r)
      for (int c = 0; c < n; ++c) ASSERT_EQ(y[c * n + r], x[r * n + c]);
    const emu::SiteMetrics st = m.total(Space::shared, AccessOp::store), ld = m.total(Space::shared, AccessOp::load);
    EXPECT_EQ(st.requests, 128u);
    EXPECT_EQ(st.wavefronts, 128u) << "row writes are conflict-free";
    EXPECT_EQ(ld.requests, 128u);
    EXPECT_EQ(ld.wavefronts, pad ? 128u : 128u * 32) << "column reads: 32 lanes in one bank unless padded";
    // Both global sides are coalesced now: 4 sectors per request.
    EXPECT_EQ(m.total(Space::global, AccessOp::load).sectors, 128u * 4);
    EXPECT_EQ(m.total(Space::global, AccessOp::store).sectors, 128u * 4);
    EXPECT_EQ(m.barriers, 4u * 8) << "one __syncthreads per block, counted per warp";
  }
}

// 64-bit accesses run in 2 phases of 16 lanes, 128-bit in 4 of 8: consecutive vectors take 2 and 4 wavefronts.
TEST(EmuMetrics, SixtyFourAndOneTwentyEightBitSharedAccessesTakeTwoAndFourWavefronts) {
  SKIP_WITHOUT_CHECKED_BUILD();
  DeviceArray<float> out(32, kEmu);
  const emu::KernelMetrics m =
      profile_of("lab_shared_vectors_kernel", [&] { k::lab_shared_vectors(out.data(), nullptr); });
  const auto y = out.download();
  for (int lane = 0; lane < 32; ++lane) EXPECT_EQ(y[lane], 2.0f * lane + 7.0f);
  int sites = 0;
  for (const emu::SiteMetrics& s : m.sites) {
    if (s.space != Space::shared) continue;
    ++sites;
    EXPECT_EQ(s.requests, 1u) << s.location;
    EXPECT_EQ(s.wavefronts, s.bytes_per_lane == 8 ? 2u : 4u) << s.location << " " << s.bytes_per_lane << " bytes";
    EXPECT_TRUE(s.bytes_per_lane == 8 || s.bytes_per_lane == 16) << s.location;
  }
  EXPECT_EQ(sites, 4) << "a store and a load of float2 and of float4";
}

TEST(EmuMetrics, BroadcastReadIsOneWavefrontAndOneSector) {
  SKIP_WITHOUT_CHECKED_BUILD();
  auto in = upload(std::vector<float>{5.0f});
  DeviceArray<float> out(32, kEmu);
  const emu::KernelMetrics m =
      profile_of("lab_broadcast_kernel", [&] { k::lab_broadcast(in.data(), out.data(), nullptr); });
  EXPECT_EQ(out.download(), std::vector<float>(32, 7.0f));
  const emu::SiteMetrics sld = m.total(Space::shared, AccessOp::load), gld = m.total(Space::global, AccessOp::load);
  EXPECT_EQ(sld.requests, 1u);
  EXPECT_EQ(sld.lanes, 32u);
  EXPECT_EQ(sld.wavefronts, 1u);
  EXPECT_EQ(gld.requests, 1u);
  EXPECT_EQ(gld.sectors, 1u);
  const emu::SiteMetrics sst = m.total(Space::shared, AccessOp::store);
  EXPECT_EQ(sst.requests, 1u);
  EXPECT_EQ(sst.lanes, 1u) << "only lane 0 stores: one active lane";
}

TEST(EmuMetrics, AtomicsAreRequestsOfTheirOwn) {
  SKIP_WITHOUT_CHECKED_BUILD();
  auto counter = upload(std::vector<int>{0});
  const emu::KernelMetrics m =
      profile_of("lab_atomic_count_kernel", [&] { k::lab_atomic_count(counter.data(), 3, nullptr); });
  EXPECT_EQ(counter.download()[0], 3 * 64);
  const emu::SiteMetrics a = m.total(Space::global, AccessOp::atomic);
  EXPECT_EQ(a.requests, 6u);
  EXPECT_EQ(a.lanes, 3u * 64);
  EXPECT_EQ(a.sectors, 6u);  // one address
  EXPECT_EQ(m.total(Space::global, AccessOp::store).requests, 0u);
}

TEST(EmuMetrics, SitesCarryTheirSourceLines) {
  SKIP_WITHOUT_CHECKED_BUILD();
  const int n = 64;
  auto in = upload(test::random_vector(n * n, 4));
  DeviceArray<float> out(n * n, kEmu);
  const emu::KernelMetrics m =
      profile_of("lab_transpose_naive_kernel", [&] { k::lab_transpose_naive(in.data(), out.data(), n, nullptr); });
  const std::string line = line_of("out[x * n + (y + j)] = in[(y + j) * n + x]");
  ASSERT_FALSE(m.sites.empty());
  for (const emu::SiteMetrics& s : m.sites) EXPECT_EQ(s.location, line);
}

// ------------------------------------------------------------------ memcheck
TEST(EmuMemcheck, OffByOneWriteNamesKernelThreadAllocationOffsetAndLine) {
  SKIP_WITHOUT_CHECKED_BUILD();
  const int n = 100;
  DeviceArray<float> out(n, kEmu);
  {
    emu::ScopedChecks none(0);
    k::lab_off_by_one(out.data(), n, nullptr);  // unchecked: runs, silently writing past the end (slack of the block)
  }
  emu::ScopedChecks checks(emu::kMemcheck);
  const std::string msg = error_of([&] { k::lab_off_by_one(out.data(), n, nullptr); });
  EXPECT_TRUE(contains(msg, "kernel 'lab_off_by_one_kernel' block (1,0,0) thread (36,0,0)")) << msg;
  EXPECT_TRUE(contains(msg, "memcheck: invalid write of 4 bytes")) << msg;
  EXPECT_TRUE(contains(msg, "has 400 bytes")) << msg;
  EXPECT_TRUE(contains(msg, "the access starts 0 bytes past its end (offset 400)")) << msg;
  EXPECT_TRUE(contains(msg, line_of("if (i <= n) out[i] = float(i);"))) << msg;
}

TEST(EmuMemcheck, MisalignedFloat4LoadIsReported) {
  SKIP_WITHOUT_CHECKED_BUILD();
  auto in = upload(test::random_vector(64, 5));
  DeviceArray<float> out(32, kEmu);
  {
    emu::ScopedChecks none(0);
    k::lab_misaligned_float4(in.data(), out.data(), nullptr);  // unchecked: the CPU does not mind
  }
  emu::ScopedChecks checks(emu::kMemcheck);
  const std::string msg = error_of([&] { k::lab_misaligned_float4(in.data(), out.data(), nullptr); });
  EXPECT_TRUE(contains(msg, "memcheck: misaligned global read of 16 bytes")) << msg;
  EXPECT_TRUE(contains(msg, "address % 16 = 4")) << msg;
  EXPECT_TRUE(contains(msg, line_of("const float4 v = *reinterpret_cast<const float4*>(in + 1);"))) << msg;
}

TEST(EmuMemcheck, UseAfterFreeIsReported) {
  SKIP_WITHOUT_CHECKED_BUILD();
  DeviceArray<float> out(64, kEmu);
  const float* freed = nullptr;
  {
    auto in = upload(test::random_vector(64, 6));
    freed = in.data();
  }
  emu::ScopedChecks checks(emu::kMemcheck);
  const std::string msg = error_of([&] { k::lab_copy(freed, out.data(), 64, nullptr); });
  EXPECT_TRUE(contains(msg, "memcheck: invalid read of 4 bytes")) << msg;
  EXPECT_TRUE(contains(msg, "use after free: allocation #")) << msg;
  EXPECT_TRUE(contains(msg, "(256 bytes at ")) << msg;
}

TEST(EmuMemcheck, MemoryThatIsNoDeviceAllocationIsReported) {
  SKIP_WITHOUT_CHECKED_BUILD();
  std::vector<float> host(64, 1.0f);
  DeviceArray<float> out(64, kEmu);
  emu::ScopedChecks checks(emu::kMemcheck);
  const std::string msg = error_of([&] { k::lab_copy(host.data(), out.data(), 64, nullptr); });
  EXPECT_TRUE(contains(msg, "the address is in no live device allocation")) << msg;
  {
    emu::ScopedAllocation registered(host.data(), host.size() * sizeof(float));
    k::lab_copy(host.data(), out.data(), 64, nullptr);  // registered host memory is fine
  }
  EXPECT_EQ(out.download(), host);
}

TEST(EmuMemcheck, CorrectKernelsPassAndGiveTheSameBits) {
  SKIP_WITHOUT_CHECKED_BUILD();
  const int n = 64;
  const auto x = test::random_vector(n * n, 7);
  auto in = upload(x);
  DeviceArray<float> a(n * n, kEmu), b(n * n, kEmu);
  {
    emu::ScopedChecks none(0);
    k::lab_transpose_shared(in.data(), a.data(), n, true, nullptr);
  }
  {
    emu::ScopedChecks checks(emu::kMemcheck | emu::kInitcheck | emu::kRacecheck);
    k::lab_transpose_shared(in.data(), b.data(), n, true, nullptr);
  }
  EXPECT_EQ(a.download(), b.download());
}

// ------------------------------------------------------------------ initcheck
TEST(EmuInitcheck, ReadOfMemoryNothingWroteIsReportedOncePerSite) {
  SKIP_WITHOUT_CHECKED_BUILD();
  emu::ScopedChecks checks(emu::kInitcheck);  // before the allocation: its shadow starts unwritten
  DeviceArray<float> in(128, kEmu), out(128, kEmu);
  const auto half = test::random_vector(64, 8);
  copy_bytes(in.data(), kEmu, half.data(), kCPU, 64 * sizeof(float));  // the host writes the first half only
  const std::string msg = error_of([&] { k::lab_copy(in.data(), out.data(), 128, nullptr); });
  EXPECT_TRUE(contains(msg, "initcheck found 64 problems at 1 place")) << msg;
  EXPECT_TRUE(contains(msg, "initcheck: uninitialised global read at " + line_of("if (i < n) out[i] = in[i];"))) << msg;
  EXPECT_TRUE(contains(msg, "reads 4 bytes")) << msg;
  EXPECT_TRUE(contains(msg, "offset 256")) << msg;  // the first unwritten float
  copy_bytes(in.data(), kEmu, test::random_vector(128, 9).data(), kCPU, 128 * sizeof(float));
  k::lab_copy(in.data(), out.data(), 128, nullptr);  // now every byte was written
}

// ------------------------------------------------------------------ racecheck
TEST(EmuRacecheck, PlantedRaceIsReportedWithBothLinesTheSameInEveryOrder) {
  SKIP_WITHOUT_CHECKED_BUILD();
  DeviceArray<float> out(32, kEmu);
  const std::string write_line = line_of("  s[t] = float(t);");  // the first kernel with this line
  const std::string r = line_of("out[t] = s[t ^ 1];  // no barrier");
  std::set<std::string> first;
  for (const char* order : kOrders) {
    emu::ScopedSchedule s(order);
    emu::ScopedChecks checks(emu::kRacecheck);
    const std::string msg = error_of([&] { k::lab_planted_race(out.data(), nullptr); });
    EXPECT_TRUE(contains(msg, "kernel 'lab_planted_race_kernel': racecheck found")) << msg;
    const std::string raw = "RAW (read after write) hazard, no barrier between " + write_line;
    const std::string war = "WAR (write after read) hazard, no barrier between " + r;
    EXPECT_TRUE(contains(msg, raw)) << order << ": " << msg;
    EXPECT_TRUE(contains(msg, war)) << order << ": " << msg;
    // The kinds and lines of every finding, without counts and examples: the same under every order.
    std::set<std::string> kinds;
    for (size_t p = 0; (p = msg.find("racecheck: ", p)) != std::string::npos; ++p)
      kinds.insert(msg.substr(p, msg.find(": in block", p) - p));
    if (first.empty())
      first = kinds;
    else
      EXPECT_EQ(kinds, first) << order;
  }
  EXPECT_EQ(first.size(), 2u);
}

TEST(EmuRacecheck, SyncwarpOrdersTheLanesOfAWarp) {
  SKIP_WITHOUT_CHECKED_BUILD();
  DeviceArray<float> out(32, kEmu);
  emu::ScopedChecks checks(emu::kRacecheck);
  for (const char* order : kOrders) {
    emu::ScopedSchedule s(order);
    k::lab_race_fixed_by_syncwarp(out.data(), nullptr);
    const auto y = out.download();
    for (int t = 0; t < 32; ++t) ASSERT_EQ(y[t], float(t ^ 1)) << order;
  }
}

TEST(EmuRacecheck, GlobalWriteConflictBetweenBlocksInItsOwnMode) {
  SKIP_WITHOUT_CHECKED_BUILD();
  DeviceArray<float> out(32, kEmu);
  {
    emu::ScopedChecks checks(emu::kRacecheck);
    k::lab_blocks_write_same(out.data(), nullptr);  // shared-memory racecheck does not look at global memory
  }
  emu::ScopedChecks checks(emu::kRacecheckGlobal);
  const std::string msg = error_of([&] { k::lab_blocks_write_same(out.data(), nullptr); });
  EXPECT_TRUE(contains(msg, "racecheck: global-memory write conflict between blocks of one launch, at " +
                                line_of("out[threadIdx.x] = float(blockIdx.x);")))
      << msg;
  EXPECT_TRUE(contains(msg, "blocks 0 and 1 (linear) both write")) << msg;
}

// ------------------------------------------------------------------ settings
TEST(EmuChecks, ParseNamesAndScope) {
  SKIP_WITHOUT_CHECKED_BUILD();
  EXPECT_EQ(emu::parse_checks("none"), 0u);
  EXPECT_EQ(emu::parse_checks(""), 0u);
  EXPECT_EQ(emu::parse_checks("memcheck,racecheck"), unsigned(emu::kMemcheck | emu::kRacecheck));
  EXPECT_EQ(emu::parse_checks("racecheck-global"), unsigned(emu::kRacecheck | emu::kRacecheckGlobal));
  EXPECT_EQ(emu::checks_str(emu::kMemcheck | emu::kInitcheck), "memcheck,initcheck");
  EXPECT_TRUE(contains(error_of([] { emu::parse_checks("memchek"); }), "got 'memchek'"));
  const unsigned before = emu::checks();
  {
    emu::ScopedChecks s("initcheck");
    EXPECT_EQ(emu::checks(), unsigned(emu::kInitcheck));
  }
  EXPECT_EQ(emu::checks(), before);
  EXPECT_TRUE(emu::instrumented_build_available());
}

// ------------------------------------------------------------------ fidelity
TEST(EmuFidelity, ExternSharedKernelsWrittenAsInNvidiaSamplesBuildAndRun) {
  const int n = 1000;  // 4 blocks, the last one partial
  const auto x = test::random_integers(n, 10);
  std::vector<float> want(4, 0.0f);
  for (int i = 0; i < n; ++i) want[i / 256] += x[i];
  auto in = upload(x);
  for (const char* order : kOrders) {
    emu::ScopedSchedule s(order);
    DeviceArray<float> a(4, kEmu), b(4, kEmu);
    a.poison();
    b.poison();
    k::lab_sample_reduce(in.data(), a.data(), n, nullptr);
    k::lab_sample_reduce_templated(in.data(), b.data(), n, nullptr);
    EXPECT_EQ(a.download(), want) << order;
    EXPECT_EQ(b.download(), want) << order;
  }
  if (!emu::instrumented_build_available()) return;  // the rest needs the checked build
  emu::ScopedChecks checks(emu::kMemcheck | emu::kRacecheck);
  DeviceArray<float> c(4, kEmu);
  k::lab_sample_reduce(in.data(), c.data(), n, nullptr);
  EXPECT_EQ(c.download(), want);
}

TEST(EmuFidelity, CudaArchIsUndefinedUnlessTheBuildEmulatesOne) {
  DeviceArray<int> out(32, kEmu);
  k::lab_cuda_arch(out.data(), nullptr);
  EXPECT_EQ(out.download(), std::vector<int>(32, FOVEA_TEST_EMU_CUDA_ARCH));
  emu_sm90_kernels::lab_cuda_arch(out.data(), nullptr);
  EXPECT_EQ(out.download(), std::vector<int>(32, 900));
}

TEST(EmuFidelity, DynamicSharedMemoryAbove48KiBNeedsTheOptIn) {
  DeviceArray<int> out(32, kEmu);
  std::vector<int> want(32);
  for (int t = 0; t < 32; ++t) want[t] = t;
  EXPECT_EQ(k::lab_big_dynamic_shared(out.data(), 48 * 1024, false, nullptr), 0);  // the limit itself is fine
  const std::string msg = error_of([&] { k::lab_big_dynamic_shared(out.data(), 64 * 1024, false, nullptr); });
  EXPECT_TRUE(contains(msg, "65536 bytes of dynamic shared memory need cudaFuncSetAttribute")) << msg;
  out.poison();
  EXPECT_EQ(k::lab_big_dynamic_shared(out.data(), 64 * 1024, true, nullptr), 0);
  EXPECT_EQ(out.download(), want);
  // 200 KiB: more than sm_80 allows (163 KiB), within sm_90's 227 KiB.
  emu::set_arch(800);
  EXPECT_EQ(k::lab_big_dynamic_shared(out.data(), 163 * 1024, true, nullptr), 0);
  EXPECT_EQ(k::lab_big_dynamic_shared(out.data(), 200 * 1024, true, nullptr), int(emu::cudaErrorInvalidValue));
  EXPECT_TRUE(contains(error_of([&] { k::lab_big_dynamic_shared(out.data(), 200 * 1024, false, nullptr); }),
                       "exceed the 163 KiB of sm_80"));
  out.poison();
  EXPECT_EQ(emu_sm90_kernels::lab_big_dynamic_shared(out.data(), 200 * 1024, true, nullptr), 0);
  EXPECT_EQ(out.download(), want);
  emu::set_arch(0);
}

TEST(EmuFidelity, DevicePrintfIsBufferedPerLaunchInOneOrder) {
  std::string want;
  for (int b = 0; b < 2; ++b)
    for (int t = 0; t < 4; ++t) want += "block " + std::to_string(b) + " thread " + std::to_string(t) + "\n";
  for (const char* order : kOrders) {
    emu::ScopedSchedule s(order);
    testing::internal::CaptureStdout();
    k::lab_printf(nullptr);
    EXPECT_EQ(testing::internal::GetCapturedStdout(), want) << order;
  }
}

// The cost model finds an emulator kernel's ptxas row by name: nvcc and g++ spell the kernels' namespace and an
// anonymous namespace differently (names from this build's ptxas table and from g++, written out here).
TEST(CostModel, KernelNamesOfTheTwoBuildsMeet) {
  const std::string nvcc =
      "_ZN5fovea12cuda_kernels54_GLOBAL__N__fe5e2178_21_conv2d_igemm_fprop_cu_b913879325conv2d_fprop_igemm_"
      "kernelINS0_4gemm10TileConfigILi32ELi64ELi8ELi4ELi4EEELb0ELb0EEEvNS1_8ConvGeomEPKfS8_S8_Pf";
  const std::string gxx =
      "_ZN5fovea11emu_kernels12_GLOBAL__N_125conv2d_fprop_igemm_kernelINS0_4gemm10TileConfigILi32ELi64ELi8ELi4ELi4E"
      "EELb0ELb0EEEvNS1_8ConvGeomEPKfS8_S8_Pf";
  const std::string checked =
      "_ZN5fovea19emu_kernels_checked12_GLOBAL__N_125conv2d_fprop_igemm_kernelINS0_4gemm10TileConfigILi32ELi64ELi8E"
      "Li4ELi4EEELb0ELb0EEEvNS1_8ConvGeomEPKfS8_S8_Pf";
  EXPECT_EQ(emu::canonical_kernel_name(nvcc), emu::canonical_kernel_name(gxx));
  EXPECT_EQ(emu::canonical_kernel_name(checked), emu::canonical_kernel_name(gxx));
  EXPECT_EQ(emu::canonical_kernel_name(gxx),
            "_ZN5fovea12cuda_kernels12_GLOBAL__N_125conv2d_fprop_igemm_kernelINS0_4gemm10TileConfigILi32ELi64ELi8ELi4E"
            "Li4EEELb0ELb0EEEvNS1_8ConvGeomEPKfS8_S8_Pf");
  // A different template argument stays different; a name without an anonymous namespace is unchanged.
  std::string other = gxx;
  other.replace(other.find("Lb0ELb0E"), 8, "Lb1ELb0E");
  EXPECT_NE(emu::canonical_kernel_name(nvcc), emu::canonical_kernel_name(other));
  EXPECT_EQ(emu::canonical_kernel_name("_ZN5fovea12cuda_kernels15lab_copy_kernelEPKfPfi"),
            "_ZN5fovea12cuda_kernels15lab_copy_kernelEPKfPfi");
}

}  // namespace
}  // namespace fovea
