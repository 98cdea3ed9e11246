// The measuring part of `fovea bench` (apps/bench.cpp): timing with events, statistics over
// repetitions, the environment of the run, the measured roofline, and the output formats (terminal
// table, CSV, JSON, PNG chart). The suites that produce rows are in bench/bench_suites.h.
//
// Method, for every row: the implementation is first run once on buffer 0 and compared with the
// CPU reference (relative L2 error; a failure is reported and the row is not timed); then `warmup`
// untimed runs; then `reps` runs, each timed alone between two events on the bench stream (CUDA
// events on cuda, a steady clock on the host), cycling through `rotate` input buffers filled with
// random numbers (never zeros) so that repeated runs do not find their inputs in the cache.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/stream.h"

namespace fovea::bench {

struct TimingOptions {
  int warmup = 2;
  int reps = 5;
  int rotate = 3;  // input buffer sets cycled through
  // The process's CPU time (all its threads) instead of wall time, on device cpu: on one thread it counts the
  // work and not the waits for a core, so runs on a machine shared with other work compare (--cpu-time).
  bool cpu_time = false;
};

// Milliseconds over the timed repetitions.
struct Stats {
  double median_ms = 0, min_ms = 0, max_ms = 0, p10_ms = 0, p90_ms = 0;
  int reps = 0;
  double spread() const { return median_ms > 0 ? (p90_ms - p10_ms) / median_ms : 0; }  // relative
};
Stats summarize(std::vector<double> ms);

// Runs fn(buffer index) warmup + reps times; times each of the reps between two events on `stream`.
Stats time_runs(const Stream& stream, const TimingOptions& o, const std::function<void(int)>& fn);

// The ceilings of the run: measured once (0: not measured).
struct Roofline {
  double copy_gbs = 0;      // a large copy on the device (read + write bytes / time)
  double sgemm_tflops = 0;  // a large float32 GEMM
  double fma_tflops = 0;    // the FP32 FMA peak, measured without memory traffic (cpu; bench/cpu_peak.h)
  std::string copy_how, sgemm_how, fma_how;
  // The FLOP/s ceiling of the roofline: the FMA peak where measured, else the large GEMM.
  double peak_tflops() const { return fma_tflops > 0 ? fma_tflops : sgemm_tflops; }
  // Fraction of the roofline a run reaches: max(flops / peak, bytes / bandwidth) / time. 0: unknown.
  double fraction(double flops, double bytes, double ms) const;
};

// One measured (or failed) implementation of one op on one shape.
struct Row {
  std::string suite;   // "kernels" or "train-step"
  std::string op;      // "conv2d_forward", "gemm", "maxpool2d_forward", ...
  std::string shape;   // "N128 C16 32x32 K16 3x3 s1 p1" or "M128 N10 K64"
  std::string impl;    // "ours:implicit_gemm", "cudnn:IMPLICIT_PRECOMP_GEMM", "cublas", "reference"
  std::string verify;  // "ok 3.2e-07", "oracle" (the reference itself), "FAILED ...", "skipped: why"
  bool timed = false;
  Stats stats;
  double flops = 0, bytes = 0;  // per run (minimal traffic: each input read once, each output written once)
  double tflops = 0, gbs = 0, roofline = 0;
  double vs_vendor = 0;     // best vendor (cuDNN / cuBLAS) time / this time; 0: no vendor row
  double images_per_s = 0;  // train-step only
  std::string note;
};

// What the numbers were measured on; printed in every output.
struct Environment {
  std::string device, device_name, driver, runtime, cudnn, clocks, git_revision, build_type, fovea_version, date_utc;
  int sm_count = 0, host_threads = 0;
  Roofline roofline;
  TimingOptions timing;
  std::string command_line;
};
Environment describe_environment(Device d);

// Fills tflops, gbs, roofline for timed rows, and vs_vendor against the fastest vendor row
// (impl starting with "cudnn" or "cublas") of the same op and shape.
void finish_rows(std::vector<Row>& rows, const Roofline& roofline);

std::string format_table(const std::vector<Row>& rows, const Environment& env);
std::string format_csv(const std::vector<Row>& rows, const Environment& env);
std::string format_json(const std::vector<Row>& rows, const Environment& env);
// Bar chart as a line chart over the shape index: per implementation family, TFLOP/s of its best
// version on each (op, shape). Written as PNG.
void write_chart(const std::string& path, const std::vector<Row>& rows, const Environment& env);

}  // namespace fovea::bench
