#include "bench/cpu_peak.h"

#include <fmt/format.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define FOVEA_X86 1
#else
#define FOVEA_X86 0
#endif

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

namespace fovea::bench {

namespace {

// Independent accumulators per thread: an FMA's latency (4 cycles on current x86 cores) times its pipes (2)
// is 8 in flight; 16 leaves room without spilling (AVX-512 has 32 vector registers, AVX2 16: the AVX2 version
// keeps 12).
constexpr int kChains512 = 16, kChains256 = 12;
constexpr long kIters = long(1) << 21;

// Each chain iterates acc = acc * a + b, which converges to b / (1 - a) = 0.1: no overflow, no subnormals.
constexpr float kA = 0.999f, kB = 1e-4f;

#if FOVEA_X86
__attribute__((target("avx512f"))) float fma_avx512(long iters) {
  __m512 acc[kChains512];
  for (int c = 0; c < kChains512; ++c) acc[c] = _mm512_set1_ps(0.01f * float(c));
  const __m512 a = _mm512_set1_ps(kA), b = _mm512_set1_ps(kB);
  for (long i = 0; i < iters; ++i)
#pragma GCC unroll 16
    for (int c = 0; c < kChains512; ++c) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
  __m512 s = acc[0];
  for (int c = 1; c < kChains512; ++c) s = _mm512_add_ps(s, acc[c]);
  float lanes[16];  // not _mm512_reduce_add_ps: GCC 12 warns inside it (-Wuninitialized)
  _mm512_storeu_ps(lanes, s);
  float t = 0;
  for (float v : lanes) t += v;
  return t;
}

__attribute__((target("avx2,fma"))) float fma_avx2(long iters) {
  __m256 acc[kChains256];
  for (int c = 0; c < kChains256; ++c) acc[c] = _mm256_set1_ps(0.01f * float(c));
  const __m256 a = _mm256_set1_ps(kA), b = _mm256_set1_ps(kB);
  for (long i = 0; i < iters; ++i)
#pragma GCC unroll 12
    for (int c = 0; c < kChains256; ++c) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
  __m256 s = acc[0];
  for (int c = 1; c < kChains256; ++c) s = _mm256_add_ps(s, acc[c]);
  float lanes[8];
  _mm256_storeu_ps(lanes, s);
  float t = 0;
  for (float v : lanes) t += v;
  return t;
}
#endif

float fma_scalar(long iters) {
  float acc[kChains256 * 8];
  for (int c = 0; c < kChains256 * 8; ++c) acc[c] = 0.01f * float(c);
  for (long i = 0; i < iters; ++i)
    for (float& v : acc) v = v * kA + kB;
  float t = 0;
  for (float v : acc) t += v;
  return t;
}

// Best wall time (seconds) of `reps` runs of fn(thread) on `threads` threads started together.
double best_parallel_seconds(int threads, int reps, const std::function<void(int)>& fn) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(fn, t);
    fn(0);
    for (std::thread& th : pool) th.join();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace

CpuPeak measure_cpu_fma_peak(int threads) {
  threads = std::max(1, threads);
#if FOVEA_X86
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  const bool avx512 = false, avx2 = false;
#endif
  const int lanes = avx512 ? 16 : avx2 ? 8 : 1;
  const int chains = avx512 ? kChains512 : avx2 ? kChains256 : kChains256 * 8;
  const long iters = avx512 || avx2 ? kIters : kIters / 8;
  std::vector<float> sink(size_t(threads), 0.0f);
  const double s = best_parallel_seconds(threads, 5, [&](int t) {
#if FOVEA_X86
    if (avx512 || avx2) {
      sink[size_t(t)] = avx512 ? fma_avx512(iters) : fma_avx2(iters);
      return;
    }
#endif
    sink[size_t(t)] = fma_scalar(iters);
  });
  CpuPeak p;
  const double flop = 2.0 * double(iters) * chains * lanes * threads;
  p.value = flop / s * 1e-9;
  p.how =
      fmt::format("{} threads x {} independent {} FMA chains in registers, best of 5 (result {:.3g})", threads, chains,
                  avx512 ? "AVX-512"
                  : avx2 ? "AVX2"
                         : "scalar",
                  double(sink[0]));
  return p;
}

CpuPeak measure_cpu_copy(int threads, size_t bytes) {
  threads = std::max(1, threads);
  const size_t slice = bytes / size_t(threads);
  std::unique_ptr<char[]> src(new char[slice * size_t(threads)]), dst(new char[slice * size_t(threads)]);
  // First touch by the thread that copies the slice: its pages are mapped before the timing.
  (void)best_parallel_seconds(threads, 1, [&](int t) {
    std::memset(src.get() + size_t(t) * slice, t + 1, slice);
    std::memset(dst.get() + size_t(t) * slice, 0, slice);
  });
  const double s = best_parallel_seconds(
      threads, 5, [&](int t) { std::memcpy(dst.get() + size_t(t) * slice, src.get() + size_t(t) * slice, slice); });
  CpuPeak p;
  p.value = 2.0 * double(slice) * threads / s * 1e-9;
  p.how = fmt::format("{} threads each memcpy 1/{} of {} MiB, read+write bytes / best of 5", threads, threads,
                      (slice * size_t(threads)) >> 20);
  return p;
}

}  // namespace fovea::bench
