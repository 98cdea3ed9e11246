// The CUDA emulator's own costs: an empty 64x256 launch (fiber and scheduling overhead) and a 256^3 tiled
// shared-memory SGEMM (barriers). Prints the median of several runs in milliseconds.
//   emu_bench [repetitions]        settings from FOVEA_EMU_WORKERS, FOVEA_EMU_SCHEDULE, ...
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <random>
#include <vector>

#include "core/emu/device_api.h"
#include "core/parse.h"

namespace {

constexpr int kTile = 16;

__global__ void empty_kernel() {}

__global__ void sgemm_tiled_kernel(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ c,
                                   int m, int n, int k) {
  __shared__ float as[kTile][kTile];
  __shared__ float bs[kTile][kTile];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int row = blockIdx.y * kTile + ty, col = blockIdx.x * kTile + tx;
  float acc = 0.0f;
  for (int t = 0; t < k; t += kTile) {
    as[ty][tx] = (row < m && t + tx < k) ? a[row * k + t + tx] : 0.0f;
    bs[ty][tx] = (t + ty < k && col < n) ? b[(t + ty) * n + col] : 0.0f;
    __syncthreads();
    for (int i = 0; i < kTile; ++i) acc += as[ty][i] * bs[i][tx];
    __syncthreads();
  }
  if (row < m && col < n) c[row * n + col] = acc;
}

double cpu_ms() {  // all threads of the process: on a shared machine, less noisy than wall time
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) / 1e6;
}

struct Timing {
  double wall_ms, cpu_ms;  // medians
};

template <class F>
Timing measure(int reps, F&& f) {
  f();  // warm: stacks mapped, pool threads started
  std::vector<double> wall, cpu;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = cpu_ms();
    f();
    cpu.push_back(cpu_ms() - c0);
    wall.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::nth_element(wall.begin(), wall.begin() + reps / 2, wall.end());
  std::nth_element(cpu.begin(), cpu.begin() + reps / 2, cpu.end());
  return {wall[reps / 2], cpu[reps / 2]};
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 21;
  if (argc > 1) {
    const std::optional<int64_t> n = fovea::try_parse_int(argv[1]);
    if (!n || *n < 1 || *n > 100000) {
      std::fprintf(stderr, "emu_bench: repetitions must be an integer in 1..100000, got '%s'\n", argv[1]);
      return 2;
    }
    reps = int(*n);
  }
  namespace emu = fovea::emu;

  const Timing empty =
      measure(reps, [] { emu::launch_kernel("empty_kernel", dim3(64), dim3(256), 0, [] { empty_kernel(); }); });

  const int n = 256;
  std::vector<float> a(n * n), b(n * n), c(n * n), ref(n * n, 0.0f);
  std::mt19937 gen(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (float& x : a) x = dist(gen);
  for (float& x : b) x = dist(gen);
  const float *pa = a.data(), *pb = b.data();
  float* pc = c.data();
  const Timing sgemm = measure(reps, [&] {
    emu::launch_kernel("sgemm_tiled_kernel", dim3(n / kTile, n / kTile), dim3(kTile, kTile), 0,
                       [&] { sgemm_tiled_kernel(pa, pb, pc, n, n, n); });
  });
  // The plain triple loop on the host, timed as a yardstick for this machine's speed at the moment.
  const Timing host = measure(reps, [&] {
    std::fill(ref.begin(), ref.end(), 0.0f);
    for (int i = 0; i < n; ++i)
      for (int p = 0; p < n; ++p)
        for (int j = 0; j < n; ++j) ref[i * n + j] += a[i * n + p] * b[p * n + j];
  });
  double err = 0, norm = 0;
  for (int i = 0; i < n * n; ++i) {
    err += double(c[i] - ref[i]) * (c[i] - ref[i]);
    norm += double(ref[i]) * ref[i];
  }

  std::printf("emu_bench: %d workers, schedule %s, fiber stack %zu KiB, median of %d runs\n", emu::workers(),
              emu::schedule().str().c_str(), emu::stack_size() / 1024, reps);
  std::printf("                                    wall        CPU (all threads)\n");
  std::printf("  empty launch 64x256           %8.3f ms  %8.3f ms\n", empty.wall_ms, empty.cpu_ms);
  std::printf("  tiled SGEMM 256x256x256       %8.3f ms  %8.3f ms   (relative L2 error vs host %.1e)\n", sgemm.wall_ms,
              sgemm.cpu_ms, std::sqrt(err / norm));
  std::printf("  host triple loop 256^3        %8.3f ms  %8.3f ms   (no emulator: the machine's yardstick)\n",
              host.wall_ms, host.cpu_ms);
  return std::sqrt(err / norm) < 1e-5 ? 0 : 1;
}
