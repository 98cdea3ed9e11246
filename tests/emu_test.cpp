// The CUDA emulator (core/emu): kernels from tests/emu_test_kernels.cu against host loops, and planted bugs that
// it must detect. Tests that do not pick a schedule run in the one FOVEA_EMU_SCHEDULE selects, so CI runs this
// binary under forward, reverse and shuffled orders.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/emu/check.h"
#include "core/emu/emu.h"
#include "core/error.h"
#include "tests/emu_test_kernels.h"

namespace fovea {
namespace {

namespace k = emu_kernels;

const float kNaN = std::numeric_limits<float>::quiet_NaN();

// Small integers as floats: sums and products are exact in any order, so results compare bitwise.
std::vector<float> random_ints(size_t n, uint32_t seed, int lo = -4, int hi = 4) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) {
    do x = float(dist(gen));
    while (x == 0.0f);
  }
  return v;
}

std::vector<float> host_sgemm(const std::vector<float>& a, const std::vector<float>& b, int m, int n, int kk) {
  std::vector<float> c(size_t(m) * n, 0.0f);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double acc = 0;
      for (int p = 0; p < kk; ++p) acc += double(a[size_t(i) * kk + p]) * b[size_t(p) * n + j];
      c[size_t(i) * n + j] = float(acc);
    }
  return c;
}

// Elements that differ from the reference; NaN (never written) counts as different.
int count_wrong(const std::vector<float>& got, const std::vector<float>& want) {
  int wrong = 0;
  for (size_t i = 0; i < got.size(); ++i) wrong += !(got[i] == want[i]);
  return wrong;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Host memory the test kernels use as device memory, registered with the emulator so that its memcheck knows the
// bounds (CI runs this suite under FOVEA_EMU_CHECK=memcheck).
template <class T>
class EmuVector : public std::vector<T> {
 public:
  template <class... A>
  explicit EmuVector(A&&... a)
      : std::vector<T>(std::forward<A>(a)...), registered_(this->data(), this->size() * sizeof(T)) {}

 private:
  emu::ScopedAllocation registered_;
};

const char* const kOrders[] = {"forward", "reverse", "shuffle:1", "shuffle:2", "shuffle:12345"};

// ------------------------------------------------------------------ settings
TEST(EmuSettings, ScheduleParsesAndScopes) {
  EXPECT_EQ(emu::Schedule::parse("forward").order, emu::Order::forward);
  EXPECT_EQ(emu::Schedule::parse("reverse").order, emu::Order::reverse);
  const emu::Schedule s = emu::Schedule::parse("shuffle:42");
  EXPECT_EQ(s.order, emu::Order::shuffle);
  EXPECT_EQ(s.seed, 42u);
  EXPECT_EQ(s.str(), "shuffle:42");
  EXPECT_THROW(emu::Schedule::parse("backwards"), Error);
  EXPECT_THROW(emu::Schedule::parse("shuffle:x"), Error);
  const emu::Schedule before = emu::schedule();
  {
    emu::ScopedSchedule scoped("reverse");
    EXPECT_EQ(emu::schedule().order, emu::Order::reverse);
  }
  EXPECT_EQ(emu::schedule(), before);
}

TEST(EmuSettings, WorkersAndStack) {
  {
    emu::ScopedWorkers w(3);
#if defined(FOVEA_EMU_SANITIZE)
    EXPECT_EQ(emu::workers(), 1);  // plain-static shared memory: one block at a time
#else
    EXPECT_EQ(emu::workers(), 3);
#endif
  }
  EXPECT_THROW(emu::set_workers(-1), Error);
  EXPECT_THROW(emu::set_stack_size(1024), Error);
}

// ------------------------------------------------------------------ kernels against host loops
TEST(EmuKernels, TiledSgemmMatchesHostLoop) {
  const int m = 70, n = 45, kk = 53;  // not multiples of the 16x16 tile
  const EmuVector<float> a(random_ints(size_t(m) * kk, 1)), b(random_ints(size_t(kk) * n, 2));
  EmuVector<float> c(size_t(m) * n, kNaN);
  k::emu_test_sgemm(a.data(), b.data(), c.data(), m, n, kk, nullptr);
  EXPECT_EQ(count_wrong(c, host_sgemm(a, b, m, n, kk)), 0);
}

TEST(EmuKernels, TiledSgemmIsCorrectInEveryOrder) {
  const int m = 48, n = 64, kk = 80;
  const EmuVector<float> a(random_ints(size_t(m) * kk, 3)), b(random_ints(size_t(kk) * n, 4));
  const auto want = host_sgemm(a, b, m, n, kk);
  for (const char* order : kOrders) {
    emu::ScopedSchedule s(order);
    EmuVector<float> c(size_t(m) * n, kNaN);
    k::emu_test_sgemm(a.data(), b.data(), c.data(), m, n, kk, nullptr);
    EXPECT_EQ(count_wrong(c, want), 0) << "schedule " << order;
  }
}

TEST(EmuKernels, BlockAndWarpReductions) {
  const int n = 256 * 37 + 11;
  const EmuVector<float> x(random_ints(n, 5, -100, 100));
  const int blocks = (n + 255) / 256;
  EmuVector<float> want(blocks, 0.0f);
  for (int i = 0; i < n; ++i) want[i / 256] += x[i];
  EmuVector<float> tree(blocks, kNaN), shuffled(blocks, kNaN);
  k::emu_test_block_reduce(x.data(), tree.data(), n, nullptr);
  k::emu_test_warp_reduce(x.data(), shuffled.data(), n, nullptr);
  EXPECT_EQ(count_wrong(tree, want), 0);
  EXPECT_EQ(count_wrong(shuffled, want), 0);
}

TEST(EmuKernels, HalfWarpsReduceWithTheirOwnMasks) {
  const int n = 128 * 5;
  EmuVector<int> x(n), out(n, -1);
  for (int i = 0; i < n; ++i) x[i] = (i * 7919) % 1000 + 1;
  for (const char* order : kOrders) {
    emu::ScopedSchedule s(order);
    k::emu_test_half_warp_sum(x.data(), out.data(), n, nullptr);
    for (int i = 0; i < n; ++i) {
      int want = 0;
      for (int j = i / 16 * 16; j < i / 16 * 16 + 16; ++j) want += x[j];
      ASSERT_EQ(out[i], want) << "element " << i << ", schedule " << order;
    }
  }
}

TEST(EmuKernels, ShufflesFollowCudaSegmentRules) {
  EmuVector<int> out(64 * 8, -1);
  k::emu_test_shuffle_semantics(out.data(), nullptr);
  for (int t = 0; t < 64; ++t) {
    const int lane = t % 32;
    // CUDA Programming Guide, warp shuffle functions: width splits the warp into segments; up/down beyond the
    // segment return the caller's value; xor may read earlier segments only; __shfl_sync takes srcLane % width.
    const int up = lane % 16 >= 3 ? lane - 3 : lane;
    const int down = lane % 16 + 3 < 16 ? lane + 3 : lane;
    const int x = lane ^ 20;
    const int xr = x / 16 <= lane / 16 ? x : lane;
    const int idx = lane / 8 * 8 + 37 % 8;
    const int down1 = lane + 1 < 32 ? lane + 1 : lane;
    const int* o = &out[t * 8];
    EXPECT_EQ(o[0], up * 10) << "shfl_up width 16, lane " << lane;
    EXPECT_EQ(o[1], down * 10) << "shfl_down width 16, lane " << lane;
    EXPECT_EQ(o[2], xr * 10) << "shfl_xor 20 width 16, lane " << lane;
    EXPECT_EQ(o[3], idx * 10) << "shfl 37 width 8, lane " << lane;
    EXPECT_EQ(o[4], down1 * 10) << "shfl_down 1, lane " << lane;
    EXPECT_EQ(o[5], 2 * (31 - lane) + 1) << "double shuffle, lane " << lane;
    EXPECT_EQ(o[6], lane ^ 1) << "long long shuffle, lane " << lane;
    EXPECT_EQ(o[7], (lane ^ 1) * 10) << "per-lane source, lane " << lane;
  }
}

TEST(EmuKernels, BallotAnyAll) {
  EmuVector<unsigned> out(64 * 5, 12345);
  k::emu_test_vote(out.data(), nullptr);
  unsigned every_third = 0, odd_low = 0, high_quarter = 0;
  for (int l = 0; l < 32; ++l) {
    if (l % 3 == 0) every_third |= 1u << l;
    if (l < 16 && l % 2 == 1) odd_low |= 1u << l;
    if (l >= 24) high_quarter |= 1u << l;
  }
  for (int t = 0; t < 64; ++t) {
    const unsigned* o = &out[t * 5];
    EXPECT_EQ(o[0], every_third) << t;
    EXPECT_EQ(o[1], t < 32 ? 1u : 0u) << t;
    EXPECT_EQ(o[2], 1u) << t;
    EXPECT_EQ(o[3], 0u) << t;
    EXPECT_EQ(o[4], t % 32 < 16 ? odd_low : high_quarter) << t;
  }
}

TEST(EmuKernels, SyncthreadsCountAndOr) {
  EmuVector<int> out(256 * 3, -1);
  k::emu_test_barrier_predicates(out.data(), nullptr);
  for (int t = 0; t < 256; ++t) {
    EXPECT_EQ(out[t * 3 + 0], 64) << t;
    EXPECT_EQ(out[t * 3 + 1], 0) << t;
    EXPECT_NE(out[t * 3 + 2], 0) << t;
  }
}

TEST(EmuKernels, AtomicsAcrossBlocksAndWorkers) {
  const int blocks = 300, threads = blocks * 256;
  for (int nworkers : {1, 2, 4}) {
    emu::ScopedWorkers w(nworkers);
    struct {
      int count = 0, imin = 0, cas_count = 0;
      float fcount = 0.0f;
      unsigned umax = 0, wrap = 0;
      unsigned long long sum = 0;
      double dsum = 0;
    } c;
    emu::ScopedAllocation registered(&c, sizeof c);
    k::emu_test_atomics(blocks, &c.count, &c.fcount, &c.umax, &c.imin, &c.sum, &c.cas_count, &c.wrap, &c.dsum, nullptr);
    const auto [count, imin, cas_count, fcount, umax, wrap, sum, dsum] = c;
    EXPECT_EQ(count, threads) << nworkers << " workers";
    EXPECT_EQ(fcount, float(threads)) << nworkers << " workers";  // exact: integers below 2^24
    EXPECT_EQ(umax, unsigned(threads - 1));
    EXPECT_EQ(imin, -(threads - 1));
    EXPECT_EQ(sum, static_cast<unsigned long long>(threads) * (threads - 1) / 2);
    EXPECT_EQ(cas_count, threads);
    EXPECT_EQ(wrap, unsigned(threads % 100));
    EXPECT_EQ(dsum, 0.5 * threads);
  }
}

TEST(EmuKernels, DynamicSharedMemory) {
  const int n = 1000, block = 96;
  const EmuVector<float> in(random_ints(n, 6, -50, 50));
  EmuVector<float> out(n, kNaN);
  EmuVector<int> aligned((n + block - 1) / block, -1);
  k::emu_test_dynamic_reverse(in.data(), out.data(), aligned.data(), n, block, nullptr);
  for (int i = 0; i < n; ++i) {
    const int base = i / block * block, r = base + block - 1 - (i - base);
    EXPECT_EQ(out[i], r < n ? in[r] : 0.0f) << i;
  }
  for (int a : aligned) EXPECT_EQ(a, 1);
}

TEST(EmuKernels, PoisonFillsSharedMemory) {
  const bool saved = emu::poison();
  emu::set_poison(true);
  EmuVector<unsigned> out(64, 0);
  k::emu_test_read_unwritten_shared(out.data(), nullptr);
  emu::set_poison(saved);
  for (unsigned v : out) EXPECT_EQ(v, 0xffffffffu);
}

TEST(EmuKernels, MultiDimensionalGridAndBlock) {
  EmuVector<int> out(12 * 24 * 8, -1);
  k::emu_test_indices(out.data(), nullptr);
  for (int bz = 0; bz < 2; ++bz)
    for (int by = 0; by < 2; ++by)
      for (int bx = 0; bx < 3; ++bx)
        for (int tz = 0; tz < 2; ++tz)
          for (int ty = 0; ty < 3; ++ty)
            for (int tx = 0; tx < 4; ++tx) {
              const int block = bx + 3 * (by + 2 * bz), thread = tx + 4 * (ty + 3 * tz);
              const int* o = &out[(block * 24 + thread) * 8];
              const int want[8] = {tx, ty, tz, bx, by, bz, 24, 12};
              for (int q = 0; q < 8; ++q) ASSERT_EQ(o[q], want[q]) << "block " << block << " thread " << thread;
            }
}

TEST(EmuKernels, BigPerThreadArrayWithBiggerStack) {
  const size_t saved = emu::stack_size();
  emu::set_stack_size(256 * 1024);
  const EmuVector<float> in(random_ints(64, 7));
  EmuVector<float> out(8, kNaN);
  k::emu_test_big_stack(in.data(), out.data(), nullptr);
  emu::set_stack_size(saved);
  const int size = 96 * 1024 / 4;
  for (int t = 0; t < 8; ++t) {
    float want = 0.0f;
    for (int i = 0; i < size; i += 97) want += in[((i * 7 + t) % size + t) % 64];
    EXPECT_EQ(out[t], want) << t;
  }
}

TEST(EmuKernelsDeathTest, StackOverflowHitsTheGuardPage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const EmuVector<float> in(random_ints(64, 7));
  EmuVector<float> out(8, kNaN);
  // 96 KiB per thread on a 32 KiB stack: the guard page stops it.
  EXPECT_DEATH(
      {
        emu::set_stack_size(32 * 1024);
        k::emu_test_big_stack(in.data(), out.data(), nullptr);
      },
#if defined(__SANITIZE_ADDRESS__)
      "stack-overflow|SEGV");  // AddressSanitizer's report
#else
      "fiber stack overflow in kernel 'big_stack_kernel'");  // the emulator's guard-page message
#endif
}

// ------------------------------------------------------------------ planted bugs
TEST(EmuPlantedBugs, MissingSyncthreadsGivesWrongResultsUnderPerturbedOrders) {
  emu::ScopedChecks none(0);  // racecheck would report the race instead (next test)
  const int m = 64, n = 64, kk = 64;
  const EmuVector<float> a(random_ints(size_t(m) * kk, 8)), b(random_ints(size_t(kk) * n, 9));
  const auto want = host_sgemm(a, b, m, n, kk);
  int wrong_perturbed = 0;
  for (const char* order : kOrders) {
    emu::ScopedSchedule s(order);
    EmuVector<float> with(size_t(m) * n, kNaN), without(size_t(m) * n, kNaN);
    k::emu_test_sgemm(a.data(), b.data(), with.data(), m, n, kk, nullptr);
    k::emu_test_sgemm_missing_sync(a.data(), b.data(), without.data(), m, n, kk, nullptr);
    EXPECT_EQ(count_wrong(with, want), 0) << "with the barrier, schedule " << order;
    const int wrong = count_wrong(without, want);
    if (std::string(order) != "forward") wrong_perturbed += wrong;
    std::printf("missing __syncthreads, schedule %-13s: %d of %d results wrong\n", order, wrong, m * n);
  }
  EXPECT_GT(wrong_perturbed, 0) << "the missing barrier went unnoticed under reverse and shuffled orders";
}

// racecheck finds the same bug in every order, at the two lines: the next tile's stores and this tile's loads.
TEST(EmuPlantedBugs, MissingSyncthreadsIsFoundByRacecheckInEveryOrder) {
  if (!emu::instrumented_build_available()) {
    GTEST_SKIP() << "needs the checked build of the kernels, which -DFOVEA_SANITIZE=ON and -DFOVEA_EMU_CHECKED=OFF "
                    "builds do not make";
  }
  const int m = 32, n = 32, kk = 64;
  const EmuVector<float> a(random_ints(size_t(m) * kk, 8)), b(random_ints(size_t(kk) * n, 9));
  EmuVector<float> c(size_t(m) * n, kNaN);
  std::string first;
  for (const char* order : kOrders) {
    emu::ScopedSchedule s(order);
    emu::ScopedChecks checks(emu::kRacecheck);
    const std::string msg =
        error_of([&] { k::emu_test_sgemm_missing_sync(a.data(), b.data(), c.data(), m, n, kk, nullptr); });
    EXPECT_NE(msg.find("kernel '(sgemm_tiled_kernel<false>)': racecheck found"), std::string::npos) << msg;
    EXPECT_NE(msg.find("WAR (write after read) hazard, no barrier between tests/emu_test_kernels.cu"),
              std::string::npos)
        << msg;
    // The kinds and lines of the findings (the text before each ": in block"), without counts.
    std::string kinds;
    for (size_t p = 0; (p = msg.find("racecheck: ", p)) != std::string::npos; ++p)
      kinds += msg.substr(p, msg.find(": in block", p) - p) + "\n";
    if (first.empty()) first = kinds;
    EXPECT_EQ(kinds, first) << "schedule " << order;
  }
  emu::ScopedChecks checks(emu::kRacecheck);
  k::emu_test_sgemm(a.data(), b.data(), c.data(), m, n, kk, nullptr);  // with the barrier: no finding
}

TEST(EmuPlantedBugs, DeadlockIsReported) {
  EmuVector<int> out(3 * 64, 0);
  for (const char* order : kOrders) {
    emu::ScopedSchedule s(order);
    const std::string msg = error_of([&] { k::emu_test_deadlock(out.data(), nullptr); });
    if (std::string(order) == "forward") std::printf("reported: %s\n", msg.c_str());
    EXPECT_NE(msg.find("deadlock_kernel"), std::string::npos) << msg;
    EXPECT_NE(msg.find("block (2,0,0)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("deadlock"), std::string::npos) << msg;
    EXPECT_NE(msg.find("lanes 0-15 wait in __shfl_sync(mask 0xffffffff) for lanes 16-31"), std::string::npos) << msg;
    EXPECT_NE(msg.find("threads 16-63 wait at __syncthreads"), std::string::npos) << msg;
  }
}

TEST(EmuPlantedBugs, DivergentBarrierIsReported) {
  EmuVector<float> out(3 * 128, kNaN);
  {
    emu::ScopedLenient strict(false);
    const std::string msg = error_of([&] { k::emu_test_divergent_barrier(out.data(), 100, nullptr); });
    std::printf("reported: %s\n", msg.c_str());
    EXPECT_NE(msg.find("divergent_barrier_kernel"), std::string::npos) << msg;
    EXPECT_NE(msg.find("barrier reached by only part of the block"), std::string::npos) << msg;
    EXPECT_NE(msg.find("threads 100-127 returned"), std::string::npos) << msg;
    EXPECT_NE(msg.find("threads 0-99 wait at __syncthreads"), std::string::npos) << msg;
  }
  {
    emu::ScopedLenient lenient(true);  // returned threads count as arrived
    k::emu_test_divergent_barrier(out.data(), 100, nullptr);
    for (int t = 0; t < 100; ++t) EXPECT_EQ(out[t], float(99 - t));
  }
  // With every thread active the same kernel is fine in strict mode.
  emu::ScopedLenient strict(false);
  k::emu_test_divergent_barrier(out.data(), 128, nullptr);
  EXPECT_EQ(out[128 + 5], 122.0f);
}

TEST(EmuPlantedBugs, LaneOutsideItsMaskIsReported) {
  EmuVector<int> out(3 * 64, 0);
  const std::string msg = error_of([&] { k::emu_test_bad_mask(out.data(), nullptr); });
  std::printf("reported: %s\n", msg.c_str());
  EXPECT_NE(msg.find("bad_mask_kernel"), std::string::npos) << msg;
  EXPECT_NE(msg.find("block (2,0,0) thread (35,0,0)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("lane 3 (warp 1) is not in mask 0x0000fff0"), std::string::npos) << msg;
}

TEST(EmuPlantedBugs, ShuffleReadingOutsideItsMaskIsReported) {
  EmuVector<int> out(3 * 32, 0);
  const std::string msg = error_of([&] { k::emu_test_shuffle_outside_mask(out.data(), nullptr); });
  std::printf("reported: %s\n", msg.c_str());
  EXPECT_NE(msg.find("shuffle_outside_mask_kernel"), std::string::npos) << msg;
  EXPECT_NE(msg.find("block (2,0,0)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("reads lane 20, which is not in mask 0x0000ffff"), std::string::npos) << msg;
}

TEST(EmuPlantedBugs, TrapNamesBlockAndThread) {
  EmuVector<int> out(8 * 32, 0);
  for (int nworkers : {1, 2}) {
    emu::ScopedWorkers w(nworkers);
    const std::string msg = error_of([&] { k::emu_test_trap(out.data(), nullptr); });
    EXPECT_NE(msg.find("kernel 'trap_kernel' block (5,0,0) thread (7,0,0): __trap() called"), std::string::npos) << msg;
  }
  // The runtime is usable after a failed launch.
  EmuVector<float> ok(3 * 128, kNaN);
  k::emu_test_divergent_barrier(ok.data(), 128, nullptr);
  EXPECT_EQ(ok[0], 127.0f);
}

TEST(EmuPlantedBugs, OutOfBoundsGlobalWriteIsReportedByAddressSanitizer) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        EmuVector<float> out(1000);
        k::emu_test_out_of_bounds_write(out.data(), int(out.size()), nullptr);
      },
      "heap-buffer-overflow");
#else
  GTEST_SKIP() << "needs AddressSanitizer: configure with -DFOVEA_SANITIZE=ON (the write past the end goes unseen "
                  "in a normal build)";
#endif
}

TEST(EmuPlantedBugs, ShuffleWidthMustBeAPowerOfTwo) {
  EmuVector<int> out(32, 0);
  const std::string msg = error_of([&] { k::emu_test_bad_width(out.data(), nullptr); });
  EXPECT_NE(msg.find("bad_width_kernel"), std::string::npos) << msg;
  EXPECT_NE(msg.find("__shfl_down_sync: width must be a power of 2 in 1..32, got 12"), std::string::npos) << msg;
}

// g++ gives AddressSanitizer red zones to the function-local statics of non-template kernels only (those of
// template instances are COMDAT and left alone), and only a FOVEA_EMU_SANITIZE build makes __shared__ plain static.
TEST(EmuPlantedBugs, StaticSharedOverflowIsReportedInSanitizerBuilds) {
#if defined(__SANITIZE_ADDRESS__) && defined(FOVEA_EMU_SANITIZE)
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        EmuVector<float> out(65);
        k::emu_test_static_shared_overflow(out.data(), nullptr);
      },
      "global-buffer-overflow");
#else
  GTEST_SKIP() << "needs a -DFOVEA_SANITIZE=ON build: static __shared__ is thread_local otherwise, and "
                  "AddressSanitizer puts no red zones around thread-locals";
#endif
}

TEST(EmuRuntime, LaunchOutsideCudaLimitsThrows) {
  EXPECT_THROW(k::emu_test_empty(1, 2048, nullptr), Error);
}

// launch_kernel directly: host C++ exceptions thrown by a kernel body come back as fovea::Error.
TEST(EmuRuntime, ExceptionInKernelBodyNamesKernelBlockAndThread) {
  for (int nworkers : {1, 2}) {
    emu::ScopedWorkers w(nworkers);
    const std::string msg = error_of([] {
      emu::launch_kernel("throwing_body", emu::dim3(4), emu::dim3(8, 2), 0, [] {
        const auto& c = emu::detail::current;
        if (c.block_idx.x == 2 && c.thread_idx.x == 3 && c.thread_idx.y == 1) throw std::runtime_error("boom");
      });
    });
    EXPECT_NE(msg.find("kernel 'throwing_body' block (2,0,0) thread (3,1,0): boom"), std::string::npos) << msg;
  }
}

TEST(EmuRuntime, LaunchFromDeviceCodeThrows) {
  const std::string msg = error_of([] {
    emu::launch_kernel("outer", emu::dim3(1), emu::dim3(1), 0,
                       [] { emu::launch_kernel("inner", emu::dim3(1), emu::dim3(1), 0, [] {}); });
  });
  EXPECT_NE(msg.find("'inner' launched from device code"), std::string::npos) << msg;
}

TEST(EmuRuntime, ManyLaunchesReuseFibersAndStacks) {
  for (int i = 0; i < 200; ++i) k::emu_test_empty(1 + i % 7, 1 + (i * 37) % 1024, nullptr);
  EmuVector<float> out(3 * 128, kNaN);
  k::emu_test_divergent_barrier(out.data(), 128, nullptr);
  EXPECT_EQ(out[0], 127.0f);
}

}  // namespace
}  // namespace fovea
