// fovea op NAME: run one registered op (layers/ops/registry.h) with PyTorch semantics on .npy inputs and write
// every output as .npy; output gradients given as inputs (--in dy=...) also run the backward pass.
//   fovea op conv2d --device emu --attr stride=2 --attr pad=1 --in x=x.npy --in w=w.npy --in dy=dy.npy --out out/
//   fovea op --list [--json]
#include <fmt/core.h>

#include <filesystem>
#include <map>

#include "apps/command.h"
#include "apps/flags.h"
#include "core/npy.h"
#include "layers/ops/context.h"
#include "layers/ops/registry.h"

namespace fovea::app {
namespace {

struct OpOptions {
  std::string name, device = "cpu", backend = "custom", precision = "fp32", out;
  std::vector<std::string> attrs, inputs;
  bool list = false, json = false;
};

std::pair<std::string, std::string> key_value(const std::string& kv, const char* flag, const char* form) {
  const size_t eq = kv.find('=');
  FOVEA_CHECK(eq != std::string::npos && eq > 0, "fovea op: ", flag, " '", kv, "' is not ", form);
  return {kv.substr(0, eq), kv.substr(eq + 1)};
}

int list_ops(bool json) {
  if (json) {
    fmt::print("{}\n", ops::registry_json());
    return 0;
  }
  for (const ops::OpInfo* op : ops::registered_ops()) {
    std::string inputs, attrs, slots;
    for (const ops::InputInfo& in : op->inputs) inputs += fmt::format(" {}{}", in.name, in.optional ? "?" : "");
    for (const ops::AttrInfo& a : op->attrs)
      attrs += fmt::format(" {}={}", a.name, a.default_value.empty() ? "''" : a.default_value);
    for (Slot s : {Slot::cpu, Slot::emu, Slot::cuda, Slot::cudnn})
      if (op->implemented(s)) slots += fmt::format(" {}", slot_name(s));
    std::string grads;
    for (const std::string& g : op->grads()) grads += " " + g;
    fmt::print("{}\n  {}\n  inputs:{}\n  attributes:{}\n  outputs:", op->name, op->doc, inputs,
               attrs.empty() ? " none" : attrs);
    for (const std::string& o : op->outputs) fmt::print(" {}", o);
    fmt::print("\n  backward: {}\n  implementations:{}\n  precisions: {}\n\n",
               grads.empty() ? std::string("none") : "gives" + grads, slots,
               op->precision_stubs.empty() ? "fp32" : "fp32 tf32 bf16 fp16 (--precision)");
  }
  return 0;
}

int run_op(const OpOptions& o) {
  if (o.list) return list_ops(o.json);
  FOVEA_CHECK(!o.name.empty(), "fovea op: give an op name (fovea op --list shows them)");
  FOVEA_CHECK(!o.out.empty(), "fovea op: --out DIR is required");
  const ops::OpInfo& op = ops::find_op(o.name);
  const Device device = parse_device(o.device);
  require_device(device);
  ops::Context ctx(device, resolve_backend(o.backend, device, "--backend"));
  const std::optional<Precision> precision = precision_from_name(o.precision);
  FOVEA_CHECK(precision, "fovea op: --precision '", o.precision, "' is not fp32, tf32, bf16 or fp16");
  ctx.precision = *precision;
  if (ctx.precision != Precision::fp32) {
    std::string have;
    for (const ops::OpInfo* other : ops::registered_ops())
      if (!other->precision_stubs.empty()) have += (have.empty() ? "" : ", ") + other->name;
    FOVEA_CHECK(!op.precision_stubs.empty(), "fovea op: --precision ", o.precision, ": op ", op.name,
                " runs in fp32 only (ops with tf32, bf16 and fp16: ", have, ")");
  }

  std::map<std::string, std::string> attrs;
  for (const std::string& kv : o.attrs) {
    auto [k, v] = key_value(kv, "--attr", "KEY=VALUE");
    FOVEA_CHECK(attrs.emplace(k, v).second, "fovea op: --attr '", k, "' given twice");
  }
  std::map<std::string, Tensor> host;
  for (const std::string& kv : o.inputs) {
    auto [k, path] = key_value(kv, "--in", "NAME=FILE.npy");
    FOVEA_CHECK(!host.count(k), "fovea op: --in '", k, "' given twice");
    host[k] = read_npy(path);
  }
  // Class labels are checked here, on the host: a kernel cannot throw, it can only produce a NaN loss.
  for (const ops::InputInfo& in : op.inputs) {
    if (in.fill != ops::Fill::labels || !host.count(in.name) || op.inputs.empty() || !host.count(op.inputs[0].name))
      continue;
    const Tensor& first = host[op.inputs[0].name];
    const Tensor& labels = host[in.name];
    if (labels.dtype() != DType::int64 || first.ndim() != 2) continue;  // the op reports the shape or dtype
    const std::vector<int64_t> v = labels.to_vector<int64_t>();
    for (size_t i = 0; i < v.size(); ++i)
      FOVEA_CHECK(v[i] >= 0 && v[i] < first.size(1), "op ", op.name, ": ", in.name, "[", i, "] = ", v[i],
                  " is out of range for ", first.size(1), " classes");
  }
  std::map<std::string, Tensor> inputs;
  for (auto& [name, t] : host) inputs[name] = t.to(device);  // the explicit host -> device copies
  const ops::OpArgs args(op, std::move(inputs), std::move(attrs));

  ops::NamedTensors outputs = op.forward(ctx, args);
  bool backward = false;
  for (const std::string& y : op.differentiated_outputs()) backward = backward || args.has("d" + y);
  if (backward) {
    FOVEA_CHECK(op.backward, "op ", op.name, " has no backward pass");
    for (auto& g : op.backward(ctx, args, outputs)) outputs.push_back(std::move(g));
  }
  std::filesystem::create_directories(o.out);
  for (const auto& [name, t] : outputs) {
    const std::string path = (std::filesystem::path(o.out) / (name + ".npy")).string();
    write_npy(path, t.to(kCPU));
    fmt::print("{} {} -> {}\n", name, t.shape().str(), path);
  }
  return 0;
}

Command op_command("op", "Run one op (PyTorch semantics) on .npy inputs; write each output as .npy", [](CLI::App& app) {
  auto o = std::make_shared<OpOptions>();
  app.add_option("name", o->name, "the op (fovea op --list shows every op, its inputs and attributes)");
  app.add_flag("--list", o->list, "list the ops");
  app.add_flag("--json", o->json, "with --list: the whole registry as JSON (scripts/check_op_vs_torch.py reads it)");
  app.add_option("--device", o->device, "cpu (reference), emu (our kernels on the emulator) or cuda")
      ->default_val("cpu");
  app.add_option("--backend", o->backend, kBackendHelp)->default_val("custom")->check(one_of(kBackendNames));
  app.add_option("--precision", o->precision,
                 "fp32, or tf32 / bf16 / fp16 for linear and conv2d: operands rounded to the type, FP32 sums, "
                 "outputs of the type (cpu: the reference; emu, cuda: tensor cores; --backend cudnn: cuDNN/cuBLASLt)")
      ->default_val("fp32");
  app.add_option("--attr", o->attrs, "KEY=VALUE; pairs as 2 or 2,1; lists as 0.5,0.4,0.3");
  app.add_option("--in", o->inputs, "NAME=FILE.npy; dy=FILE.npy (d + an output) also runs the backward pass");
  app.add_option("--out", o->out, "output folder");
  return [o] { return run_op(*o); };
});

}  // namespace
}  // namespace fovea::app
