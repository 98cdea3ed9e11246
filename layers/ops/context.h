// Where and how ops run: the device, the backend, the stream, scratch space, our kernels' convolution
// version. Every op takes a Context; ctx.exec() is what it passes to the dispatch stubs.
#pragma once
#include <memory>

#include "core/dispatch.h"
#include "core/float_formats.h"
#include "core/memory.h"
#include "layers/ops/conv2d.h"  // ConvAlgo

namespace fovea::ops {

using fovea::Backend;
using fovea::backend_name;
using fovea::check_backend_device;
using fovea::parse_backend;

struct Context {
  Device device = kCPU;
  Backend backend = Backend::custom;
  ConvAlgo conv_algo = ConvAlgo::implicit_gemm;  // our kernels' convolution version (all tested)
  bool deterministic = true;                     // only deterministic algorithms (the default everywhere)
  // The precision of the GEMM and convolution ops (linear, conv2d; fovea op --precision): fp32, or tf32 / bf16 /
  // fp16 with cpu_reference/gemm.h's semantics on FP32 tensors (tensor cores on emu and cuda).
  Precision precision = Precision::fp32;
  StreamHandle stream = nullptr;
  std::shared_ptr<Workspace> workspace;
  // The device copy of the optimizer's tensor list, uploaded again only when the list changes.
  struct OptimizerList;
  std::shared_ptr<OptimizerList> optimizer_list;
  std::shared_ptr<OptimizerList> amp_list;  // the gradients that loss scaling unscales (ops::amp_unscale)

  explicit Context(Device d = kCPU, Backend b = Backend::custom);
  Exec exec() const { return Exec{device, backend, stream, workspace.get(), deterministic}; }
};

// Argument checks shared by the ops: defined, on the context's device, of the dtype; errors name the op
// and the argument.
void check_tensor(const Context& ctx, const char* op, const char* arg, const Tensor& t, DType dtype = DType::float32);
void check_same_shape(const char* op, const char* a, const Tensor& x, const char* b, const Tensor& y);
// A new tensor on the context's device (from its caching allocator).
Tensor empty_like(const Context& ctx, const Shape& s, DType t = DType::float32);
// The float data of a tensor, or nullptr for an undefined (optional) one.
inline const float* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<float>() : nullptr;
}
inline float* data_or_null(Tensor& t) {
  return t.defined() ? t.data<float>() : nullptr;
}

}  // namespace fovea::ops
