// `fovea bench --suites precision`: GEMM and convolution at the tensor cores' precisions (tf32, bf16, fp16), ours
// beside NVIDIA's at the same types, with the roofline against the device's dense tensor-core peak and issue 16's
// design targets as pass/fail columns (printed, never asserted).
//   gemm   : C[M,N] = A[M,K] B[N,K]^T at 4096^3 and the linear layers of resnet20 and resnet9 at the batch:
//            ours = the multistage tensor-core GEMM (kernels/tc_gemm.h) on raw buffers (16-bit for bf16/fp16,
//            FP32 for tf32); anchor = cuBLASLt on the same buffers (the fastest of its heuristic's first 8 algorithms).
//   conv2d : fprop, dgrad, wgrad of every conv layer of resnet20 and resnet9 at the batch (CIFAR, 32x32):
//            anchor = cuDNN's fastest algorithm (every algorithm it lists as supported is timed; the row says
//            whether the fastest is deterministic) on 16-bit NHWC tensors (FP32 NCHW for tf32);
//            ours = the op-level precision stubs (layers/ops/conv2d.h) on FP32 NCHW tensors, conversions included
//            (the row says so), and every raw contender of raw_conv_contenders() on the anchor's buffers.
// Each row: median time, TFLOP/s, time ratio anchor / row, fraction of the tensor-core peak; outputs are checked
// against the anchor's (a sanity check at rel L2 <= 2e-2; the tests, not the benchmark, check correctness).
// On cpu a tiny version runs the reference of each precision (no vendor rows, peak unknown): it exercises the
// suite's code and output, and measures nothing about GPUs. The emulator is refused by `fovea bench` itself.
#pragma once
#include <string>
#include <vector>

#include "bench/bench_suites.h"
#include "core/float_formats.h"

namespace fovea::bench {

// Dense tensor-core peak of the device at a precision (FLOP/s of FMA-accumulating mma, no sparsity):
// per-SM FLOP per clock from NVIDIA's whitepapers (precision_suite.cpp), times the SM count and the SM clock read
// at run time. tflops = 0 and how = "peak unknown ..." for a device not in the table.
struct TensorCorePeak {
  double tflops = 0;
  std::string how;
};
TensorCorePeak tensor_core_peak(Device d, Precision p);

// A convolution on raw device buffers in the precision's layout (bf16/fp16: NHWC activations and KRSC weights, the
// 16-bit bits; tf32: FP32 NCHW and KCRS), buffers as cudnn::conv_precision_raw's: forward (x, w) -> y,
// backward_data (dy, w) -> dx, backward_filter (x, dy) -> dw. Scratch from ex.workspace.
using RawConvFn = void (*)(const Exec& ex, Precision prec, ConvOp op, const Conv2dParams& p, const void* in0,
                           const void* in1, void* out);
struct RawConvContender {
  std::string impl;  // the row's name, e.g. "ours:igemm_tc (raw NHWC)"
  RawConvFn run = nullptr;
  // false: the contender does not take this case (the row is left out).
  bool (*supports)(Precision prec, ConvOp op, const Conv2dParams& p) = nullptr;
};
// Our raw-buffer tensor-core convolutions, timed beside cuDNN on the same buffers: the implicit-GEMM kernels of
// kernels/conv2d_tc.h at bf16 and fp16 (precision_suite.cpp, raw_conv_contenders(): add more there).
std::vector<RawConvContender> raw_conv_contenders();

struct PrecisionSuiteOptions {
  std::string shapes;   // "design" (4096^3 + resnet20/resnet9 layers) or "tiny"; empty: by device
  int64_t batch = 256;  // of the resnet shapes
  std::vector<Precision> precisions{Precision::tf32, Precision::bf16, Precision::fp16};
};

// After finish_rows: the precision rows' roofline becomes their fraction of the tensor-core peak of their precision
// (finish_rows measures against the FP32 SGEMM roofline); 0 where the peak is unknown.
void set_tensor_core_roofline(std::vector<Row>& rows, Device d);

// Rows for the common outputs (bench.csv/json), and the suite's own table (with the peak and target columns) in
// *table.
std::vector<Row> run_precision_suite(const BenchConfig& c, const PrecisionSuiteOptions& o, const Stream& stream,
                                     std::string* table);

}  // namespace fovea::bench
