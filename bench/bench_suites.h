// The suites of `fovea bench` (apps/bench.cpp); the measuring method is in bench/bench_harness.h.
//   kernels    : conv2d fprop / dgrad / wgrad (our three versions, each cuDNN algorithm), GEMM (our
//                sgemm, cuBLAS), max pooling forward / backward, softmax cross-entropy, batch norm
//                training forward / backward, the fused SGD update. On device cpu: the reference.
//   train-step : one training step (forward, loss, backward, SGD update) of zoo models, in images/s,
//                with PyTorch's CPU figure for the same net when /usr/bin/python3 has torch.
// Shape sets:
//   tiny      a few small shapes (seconds anywhere; the tests use it)
//   cifar     every conv, linear and batch-norm layer of the zoo's CIFAR nets (small_cnn, cifar_quick,
//             cifar_full, resnet20, resnet18, resnet9), read from the built models, at each --batch;
//             pooling from layers/ops/conv_shapes.h (the pooling layers expose no window accessor yet)
//   deepbench a subset of the DeepBench training convolution and GEMM problems that fit one GPU
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
  std::vector<Pool2dParams> pools;
  std::vector<Shape> batchnorms;                       // [N,C,H,W] inputs
  std::vector<std::pair<int64_t, int64_t>> softmaxes;  // [N, classes]
  std::vector<int64_t> sgd_sizes;                      // parameters updated by one fused step
  std::string notes;                                   // how the set was obtained
};

// name: tiny | cifar | deepbench | none (only the command-line shapes). Duplicates removed.
ShapeSet make_shape_set(const std::string& name, const std::vector<int64_t>& batches,
                        const std::vector<std::string>& conv_specs, const std::vector<std::string>& gemm_specs);

struct BenchConfig {
  Device device = kCPU;
  TimingOptions timing;
  double tolerance = 1e-4;       // relative L2 error allowed before a row is timed
  std::vector<std::string> ops;  // empty: all; else any of conv2d, gemm, maxpool2d, cross_entropy, batchnorm, sgd
  bool cudnn = true;             // include cuDNN / cuBLAS rows when built and on cuda
  // train-step
  std::vector<std::string> train_models;
  int64_t train_batch = 32;
  bool torch = true;
  std::string python = "/usr/bin/python3", torch_script;
};

// Measured once per run: a large copy and a large SGEMM on the device (cuBLAS when built, else ours;
// on cpu: memcpy and the reference GEMM).
Roofline measure_roofline(const BenchConfig& c, const Stream& stream);

std::vector<Row> run_kernel_suite(const BenchConfig& c, const ShapeSet& shapes, const Stream& stream);
std::vector<Row> run_train_step_suite(const BenchConfig& c, const Stream& stream);

std::string conv_shape_name(const Conv2dParams& p);

}  // namespace fovea::bench
