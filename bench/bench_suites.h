// The suites of `fovea bench` (apps/bench.cpp); the measuring method is in bench/bench_harness.h.
//   kernels    : conv2d fprop / dgrad / wgrad (our three versions, each cuDNN algorithm), GEMM (our
//                sgemm, cuBLAS), and every other op of the op registry (layers/ops/registry.h), forward and
//                backward, ours and cuDNN's where it has the op, on the registry's samples. On device cpu:
//                the reference.
//   train-step : one training step (forward, loss, backward, SGD update) of zoo models, in images/s,
//                with PyTorch's CPU figure for the same net when /usr/bin/python3 has torch.
//   inference  : eval-mode forward of ImageNet zoo models (torchvision's resnet50 by default) at 224x224,
//                in images/s, with torchvision's figure on the same CPU and thread count (device cpu).
//   precision  : GEMM and conv at TF32 / BF16 / FP16, ours beside cuBLASLt and cuDNN's fastest algorithm, the
//                tensor-core roofline and issue 16's design targets (bench/precision_suite.h).
// Shape sets:
//   tiny      a few small shapes (seconds anywhere; the tests use it); registry ops: each op's largest test sample
//   cifar     every conv and linear layer of the zoo's CIFAR nets (small_cnn, cifar_quick, cifar_full, resnet20,
//             resnet18_cifar, resnet9), read from the built models, at each --batch; registry ops: their bench samples
//   deepbench a subset of the DeepBench training convolution and GEMM problems that fit one GPU; registry ops:
//             their bench samples
//   and any --conv N,C,H,W,K,R,S[,stride[,pad]] / --gemm M,N,K given on the command line.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "bench/bench_harness.h"
#include "core/device.h"
#include "core/tensor.h"
#include "layers/ops/conv2d.h"
#include "layers/ops/pooling.h"

namespace fovea::bench {

struct GemmShape {
  int64_t M = 0, N = 0, K = 0;  // C[M,N] = A[M,K] B[N,K]^T (a linear layer's forward)
};

struct ShapeSet {
  std::vector<Conv2dParams> convs;
  std::vector<GemmShape> gemms;
  // Rows of the registry's ops: none, each op's largest test sample (tiny), or its bench samples.
  enum class RegistryRows { none, test_samples, bench_samples } registry_rows = RegistryRows::bench_samples;
  std::string notes;  // how the set was obtained
};

// name: tiny | cifar | deepbench | none (only the command-line shapes). Duplicates removed.
ShapeSet make_shape_set(const std::string& name, const std::vector<int64_t>& batches,
                        const std::vector<std::string>& conv_specs, const std::vector<std::string>& gemm_specs);

// Appends the conv and linear (as GemmShape) layers of zoo model `model` (a CIFAR net: 3x32x32 input, 10 classes)
// at `batch` to out, in network order (duplicates kept).
void add_model_shapes(const std::string& model, int64_t batch, ShapeSet& out);

struct BenchConfig {
  Device device = kCPU;
  TimingOptions timing;
  double tolerance = 1e-4;       // relative L2 error allowed before a row is timed
  std::vector<std::string> ops;  // empty: all; else conv2d, gemm or registry op names (fovea op --list)
  bool cudnn = true;             // include cuDNN / cuBLAS rows when built and on cuda
  // train-step
  std::vector<std::string> train_models;
  int64_t train_batch = 32;
  bool torch = true;
  std::string python = "/usr/bin/python3", torch_script;
  // inference
  std::vector<std::string> infer_models{"resnet50"};
  std::vector<int64_t> infer_batches{8, 1};
  int64_t infer_image_size = 224;
  std::string infer_torch_script;
};

// Measured once per run: a large copy and a large SGEMM on the device (cuBLAS when built, else ours;
// on cpu: memcpy and the reference GEMM).
Roofline measure_roofline(const BenchConfig& c, const Stream& stream);

std::vector<Row> run_kernel_suite(const BenchConfig& c, const ShapeSet& shapes, const Stream& stream);
std::vector<Row> run_train_step_suite(const BenchConfig& c, const Stream& stream);
std::vector<Row> run_inference_suite(const BenchConfig& c, const Stream& stream);

std::string conv_shape_name(const Conv2dParams& p);
// Throws a UsageError naming the first of `ops` that is neither conv2d, gemm nor a registry op with a bench row.
void check_op_names(const std::vector<std::string>& ops);

}  // namespace fovea::bench
