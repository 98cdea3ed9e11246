// The host CPU's ceilings for `fovea bench --device cpu` (issue 17: a roofline beside each row):
//   measure_cpu_fma_peak  FP32 FMA throughput: every thread runs independent chains of vector FMAs in registers
//                         (AVX-512 when the CPU has it, else AVX2+FMA, else scalar code the compiler vectorises as
//                         it can); enough chains to cover the FMA latency on two pipes. No memory traffic.
//   measure_cpu_copy      memory bandwidth: each thread copies its slice of a buffer far larger than the caches.
// Both use `threads` threads (the run's compute threads) and report the best of a few repetitions: a ceiling, not
// a typical value.
#pragma once
#include <string>

namespace fovea::bench {

struct CpuPeak {
  double value = 0;  // GFLOP/s for the FMA peak, GB/s (read + write) for the copy
  std::string how;   // what was measured, for the bench header
};

CpuPeak measure_cpu_fma_peak(int threads);
CpuPeak measure_cpu_copy(int threads, size_t bytes);

}  // namespace fovea::bench
