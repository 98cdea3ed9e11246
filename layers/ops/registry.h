// The op registry, in the manner of PyTorch's OpInfo: one entry per op, registered by the op's own file
// (layers/ops/<op>.cpp), says everything needed to run, check and time the op:
//   its inputs (dtype, optional, how to fill a random one), attributes (type, default), outputs;
//   forward and backward entry points on tensors;
//   the PyTorch equivalent (Python run by scripts/check_op_vs_torch.py);
//   sample shapes for the tests and the benchmarks;
//   the dispatch stubs it calls (which implementations exist).
// One list drives `fovea op` (and `fovea op --list [--json]`), scripts/check_op_vs_torch.py (through that
// JSON), the non-GEMM rows of `fovea bench` and tests/op_registry_test.cpp. No other file lists the ops.
//
// Conventions: the gradient of an output `y` is the input `dy`; the gradient of an input `x` is the output
// `dx`. Backward takes the forward's inputs and outputs and the output gradients, and returns the
// gradients of the differentiable inputs (float32, not marked no_grad).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace fovea::ops {

struct Context;

enum class AttrType : uint8_t {
  integer,  // 3
  pair,     // 2 or 2,1 (PyTorch's int-or-tuple arguments: stride, padding, kernel_size)
  number,   // 0.5
  boolean,  // 1 or 0
  numbers,  // 0.49,0.48,0.45 (per channel), or empty for none
};
const char* attr_type_name(AttrType t);

struct AttrInfo {
  std::string name;
  AttrType type = AttrType::integer;
  std::string default_value;  // as a user would write it
  std::string doc;
};

// How the tests, the benchmarks and the PyTorch check make a random value of an input.
enum class Fill : uint8_t {
  uniform,   // U(-1, 1)
  positive,  // U(0.5, 1.5): variances, divisors
  distinct,  // distinct values 0.01 apart, shuffled: max pooling without ties, finite differences without kinks
  labels,    // int64 class indices in [0, C), C = dimension 1 of the op's first input
  pixels,    // uint8 in [0, 255] or float in [0, 1], for images
  warps,     // float [N, 6] affine warps near the identity (one per image)
};
const char* fill_name(Fill f);

struct InputInfo {
  std::string name;
  DType dtype = DType::float32;
  bool optional = false;
  bool no_grad = false;  // not differentiated (running statistics, optimizer state)
  Fill fill = Fill::uniform;
  std::string doc;
  // Other dtypes the op also takes for this input (augment: uint8 pixels as well as float).
  std::vector<DType> also;
};

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// The values of one call: named tensors on the context's device and attributes, every attribute parsed by
// core/parse.h against its AttrInfo (a missing one takes the default).
class OpArgs {
 public:
  OpArgs(const struct OpInfo& op, std::map<std::string, Tensor> tensors, std::map<std::string, std::string> attrs);

  const Tensor& tensor(const std::string& name) const;  // a required input or gradient
  Tensor optional(const std::string& name) const;       // undefined when not given
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  int64_t integer(const std::string& name) const;
  std::pair<int64_t, int64_t> pair(const std::string& name) const;
  double number(const std::string& name) const;
  bool boolean(const std::string& name) const;
  std::vector<float> numbers(const std::string& name) const;
  const std::map<std::string, Tensor>& tensors() const { return tensors_; }

 private:
  const std::string& text(const std::string& name, AttrType type) const;
  const struct OpInfo& op_;
  std::map<std::string, Tensor> tensors_;
  std::map<std::string, std::string> attrs_;
};

// One sample call: input shapes (an input not listed is left out: optional) and attribute values (the rest
// take their defaults). `bench`: also a row of `fovea bench`.
struct Sample {
  std::string name;
  std::map<std::string, Shape> shapes;
  std::map<std::string, std::string> attrs;
  bool bench = false;
};

struct OpInfo {
  std::string name;
  std::string doc;
  std::vector<InputInfo> inputs;
  std::vector<AttrInfo> attrs;
  std::vector<std::string> outputs;
  // The outputs whose gradients backward takes (empty: all of them); e.g. batch norm's saved statistics
  // are outputs but not differentiated through.
  std::vector<std::string> grad_outputs;
  std::function<NamedTensors(Context&, const OpArgs&)> forward;
  // Empty for ops without a gradient (augment, the optimizer steps).
  std::function<NamedTensors(Context&, const OpArgs&, const NamedTensors& outputs)> backward;
  // Python for scripts/check_op_vs_torch.py: assigns every output from the inputs and attributes (bound to
  // variables of their names; tensors in float64, labels int64), with torch and F = torch.nn.functional.
  std::string torch;
  std::vector<Sample> samples;
  std::vector<const StubInfo*> stubs;  // the entry points it calls
  // The entry points it calls at Context::precision tf32, bf16 and fp16; empty: the op runs in FP32 only.
  std::vector<const StubInfo*> precision_stubs;
  // Forward FLOPs and bytes moved of a sample call (for the benchmark's roofline); 0 when not meaningful.
  std::function<std::pair<double, double>(const OpArgs&)> cost;

  // The gradient names: "d" + each differentiable input (float32, not no_grad).
  std::vector<std::string> grads() const;
  // The outputs backward takes gradients of: grad_outputs, or every output.
  const std::vector<std::string>& differentiated_outputs() const {
    return grad_outputs.empty() ? outputs : grad_outputs;
  }
  // True when the op runs on slot `s`: every stub it calls has the slot, or, for the library backends (cudnn,
  // onednn), at least one does and the others fall back to ours.
  bool implemented(Slot s) const;
  const InputInfo* input(std::string_view name) const;
  const AttrInfo* attr(std::string_view name) const;
};

// Adds an op while the program starts (from the op's file):
//   const RegisterOp conv2d_op{{.name = "conv2d", ...}};
struct RegisterOp {
  explicit RegisterOp(OpInfo info);
};

// Every registered op, sorted by name.
std::vector<const OpInfo*> registered_ops();
// The op called `name`; a UsageError listing the known ops otherwise.
const OpInfo& find_op(std::string_view name);

// The registry as JSON (`fovea op --list --json`): one object per op with its inputs, attributes, outputs,
// gradients, PyTorch code, samples and the slots that implement it.
std::string registry_json();

// Random inputs of a sample, on `device`, from the Philox stream of `seed` (the same values everywhere).
std::map<std::string, Tensor> sample_inputs(const OpInfo& op, const Sample& s, uint64_t seed, Device device);
// Random gradients ("d" + name) for the op's differentiated outputs among `outputs`, on `device`.
NamedTensors sample_output_grads(const OpInfo& op, const NamedTensors& outputs, uint64_t seed, Device device);

}  // namespace fovea::ops
