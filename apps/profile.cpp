// fovea profile: the memory metrics of our kernels on the emulator (every access of the instrumented build counted,
// in Nsight Compute's terms) and a lower-bound time model for a named GPU. See core/emu/profile.h and
// core/emu/cost_model.h.
//   fovea profile conv2d --x 128,3,32,32 --w 32,3,5,5 --attr pad=2 --gpu h100
//   fovea profile train-step --model cifar_quick --batch 128 --json step.json
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "apps/command.h"
#include "apps/flags.h"
#include "core/counters.h"
#include "core/emu/cost_model.h"
#include "core/emu/emu.h"
#include "core/emu/profile.h"
#include "core/io.h"
#include "core/memory.h"
#include "core/stream.h"
#include "layers/nn/models.h"
#include "layers/nn/optimizer.h"
#include "layers/ops/ops.h"

#ifndef FOVEA_KERNEL_RESOURCES
#define FOVEA_KERNEL_RESOURCES ""
#endif

namespace fovea::app {
namespace {

struct ProfileOptions {
  std::string what, device = "emu", gpu = "h100", x, w, pass = "fprop", model = "cifar_quick", csv, json, resources;
  std::string measure;  // "cuda": also time the same work on the GPU
  std::vector<std::string> attrs;
  int64_t batch = 128;
};

std::vector<int64_t> parse_shape(const std::string& flag, const std::string& text) {
  std::vector<int64_t> dims;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    const std::string part = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    size_t pos = 0;
    long long v = 0;
    try {
      v = std::stoll(part, &pos);
    } catch (...) {
      pos = std::string::npos;
    }
    FOVEA_CHECK(pos == part.size() && v > 0, "fovea profile: ", flag,
                " must be positive integers like 128,3,32,32, got '", text, "'");
    dims.push_back(v);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return dims;
}

std::pair<int64_t, int64_t> pair_attr(const std::map<std::string, std::string>& attrs, const std::string& key,
                                      int64_t def) {
  auto it = attrs.find(key);
  if (it == attrs.end()) return {def, def};
  const std::vector<int64_t> v = parse_shape("--attr " + key, it->second);
  FOVEA_CHECK(v.size() <= 2, "fovea profile: --attr ", key, " takes one number or a pair A,B, got '", it->second, "'");
  return {v[0], v.size() == 2 ? v[1] : v[0]};
}

Tensor random_tensor(ops::Context& ctx, const Shape& shape, uint64_t seed) {
  Tensor t = Tensor::empty(shape, DType::float32, ctx.device);
  ops::fill_uniform(ctx, t, -1.0f, 1.0f, seed, 0);
  return t;
}

// One profiled piece of work: its kernels' metrics.
struct Section {
  std::string title;
  std::vector<emu::KernelMetrics> kernels;
  uint64_t launches = 0, host_syncs = 0;
};

// Runs one piece of work: on emu it is profiled, on cuda (--measure) it is timed.
using Work = std::function<void()>;
using Runner = std::function<void(const std::string& title, const Work& work)>;

Section profile_section(const std::string& title, const Work& work) {
  Section s;
  s.title = title;
  const uint64_t launches = emu::launch_count(), syncs = uint64_t(host_sync_count());
  emu::profile_start();
  try {
    work();
  } catch (...) {
    emu::profile_stop();
    throw;
  }
  s.kernels = emu::profile_stop();
  s.launches = emu::launch_count() - launches;
  s.host_syncs = uint64_t(host_sync_count()) - syncs;
  return s;
}

void run_op(const ProfileOptions& o, ops::Context& ctx, const Runner& section) {
  std::map<std::string, std::string> attrs;
  for (const std::string& kv : o.attrs) {
    const size_t eq = kv.find('=');
    FOVEA_CHECK(eq != std::string::npos && eq > 0, "fovea profile: --attr '", kv, "' is not KEY=VALUE");
    attrs[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  auto shape_or = [&](const std::string& flag, const std::string& text, std::vector<int64_t> def) {
    return Shape(text.empty() ? def : parse_shape(flag, text));
  };
  const bool fprop = o.pass == "fprop" || o.pass == "all", dgrad = o.pass == "dgrad" || o.pass == "all",
             wgrad = o.pass == "wgrad" || o.pass == "all";
  FOVEA_CHECK(fprop || dgrad || wgrad, "fovea profile: --pass must be fprop, dgrad, wgrad or all, got '", o.pass, "'");
  const std::string& w = o.what;
  if (w == "conv2d") {
    const Shape xs = shape_or("--x", o.x, {128, 3, 32, 32}), ws = shape_or("--w", o.w, {32, 3, 5, 5});
    ops::Conv2dAttrs a;
    std::tie(a.stride_h, a.stride_w) = pair_attr(attrs, "stride", 1);
    std::tie(a.pad_h, a.pad_w) = pair_attr(attrs, "pad", ws.ndim() == 4 ? ws[2] / 2 : 0);
    std::tie(a.dil_h, a.dil_w) = pair_attr(attrs, "dilation", 1);
    a.groups = pair_attr(attrs, "groups", 1).first;
    const Conv2dParams p = ops::conv2d_params(xs, ws, a);
    const std::string shape = fmt::format("x{} w{} stride {},{} pad {},{} dilation {},{} groups {}", xs.str(), ws.str(),
                                          a.stride_h, a.stride_w, a.pad_h, a.pad_w, a.dil_h, a.dil_w, a.groups);
    const Tensor x = random_tensor(ctx, xs, 1), wt = random_tensor(ctx, ws, 2), b = random_tensor(ctx, {ws[0]}, 3);
    const Tensor dy = random_tensor(ctx, {p.N, p.K, p.P(), p.Q()}, 4);
    if (fprop) section("conv2d fprop " + shape, [&] { ops::conv2d_forward(ctx, x, wt, b, a); });
    if (dgrad) section("conv2d dgrad " + shape, [&] { ops::conv2d_backward_data(ctx, dy, wt, xs, a); });
    if (wgrad) section("conv2d wgrad " + shape, [&] { ops::conv2d_backward_filter(ctx, x, dy, ws, a); });
  } else if (w == "linear") {
    const Shape xs = shape_or("--x", o.x, {128, 1024}), ws = shape_or("--w", o.w, {10, 1024});
    const Tensor x = random_tensor(ctx, xs, 1), wt = random_tensor(ctx, ws, 2), b = random_tensor(ctx, {ws[0]}, 3);
    const Tensor dy = random_tensor(ctx, {xs[0], ws[0]}, 4);
    const std::string shape = fmt::format("x{} w{}", xs.str(), ws.str());
    if (fprop) section("linear fprop " + shape, [&] { ops::linear_forward(ctx, x, wt, b); });
    if (dgrad) section("linear dgrad " + shape, [&] { ops::linear_backward_data(ctx, dy, wt); });
    if (wgrad) section("linear wgrad " + shape, [&] { ops::linear_backward_weight(ctx, x, dy); });
  } else if (w == "maxpool2d" || w == "avgpool2d") {
    const Shape xs = shape_or("--x", o.x, {128, 32, 32, 32});
    ops::Pool2dAttrs a;
    std::tie(a.kernel_h, a.kernel_w) = pair_attr(attrs, "kernel", 3);
    std::tie(a.stride_h, a.stride_w) = pair_attr(attrs, "stride", 2);
    std::tie(a.pad_h, a.pad_w) = pair_attr(attrs, "pad", 0);
    const Tensor x = random_tensor(ctx, xs, 1);
    const std::string shape = fmt::format("x{} kernel {},{} stride {},{} pad {},{}", xs.str(), a.kernel_h, a.kernel_w,
                                          a.stride_h, a.stride_w, a.pad_h, a.pad_w);
    if (w == "maxpool2d") {
      ops::MaxPoolOut r;
      if (fprop || dgrad) r = ops::maxpool2d_forward(ctx, x, a);
      if (fprop) section("maxpool2d fprop " + shape, [&] { ops::maxpool2d_forward(ctx, x, a); });
      if (dgrad) {
        const Tensor dy = random_tensor(ctx, r.y.shape(), 4);
        section("maxpool2d dgrad " + shape, [&] { ops::maxpool2d_backward(ctx, dy, r, xs, a); });
      }
    } else {
      if (fprop) section("avgpool2d fprop " + shape, [&] { ops::avgpool2d_forward(ctx, x, a); });
      if (dgrad) {
        const Tensor dy = random_tensor(ctx, ops::avgpool2d_forward(ctx, x, a).shape(), 4);
        section("avgpool2d dgrad " + shape, [&] { ops::avgpool2d_backward(ctx, dy, xs, a); });
      }
    }
  } else if (w == "batchnorm2d") {
    const Shape xs = shape_or("--x", o.x, {128, 32, 32, 32});
    const int64_t C = xs[1];
    const Tensor x = random_tensor(ctx, xs, 1), gamma = random_tensor(ctx, {C}, 2), beta = random_tensor(ctx, {C}, 3);
    Tensor mean = Tensor::zeros({C}, DType::float32, ctx.device), var = Tensor::zeros({C}, DType::float32, ctx.device);
    ops::fill_value(ctx, var, 1.0f);
    const ops::BatchNormOut r = ops::batchnorm_forward_train(ctx, x, gamma, beta, mean, var, 0.1f, 1e-5f);
    const std::string shape = fmt::format("x{}", xs.str());
    if (fprop)
      section("batchnorm2d fprop (training) " + shape,
              [&] { ops::batchnorm_forward_train(ctx, x, gamma, beta, mean, var, 0.1f, 1e-5f); });
    if (dgrad || wgrad) {
      const Tensor dy = random_tensor(ctx, xs, 4);
      section("batchnorm2d backward " + shape,
              [&] { ops::batchnorm_backward(ctx, dy, x, gamma, r.save_mean, r.save_invstd); });
    }
  } else if (w == "softmax" || w == "log_softmax") {
    const Shape xs = shape_or("--x", o.x, {128, 10});
    const bool log = w == "log_softmax";
    const Tensor x = random_tensor(ctx, xs, 1);
    const Tensor y = log ? ops::log_softmax_forward(ctx, x) : ops::softmax_forward(ctx, x);
    const std::string shape = fmt::format("x{}", xs.str());
    if (fprop)
      section(w + " fprop " + shape, [&] { log ? ops::log_softmax_forward(ctx, x) : ops::softmax_forward(ctx, x); });
    if (dgrad) {
      const Tensor dy = random_tensor(ctx, xs, 4);
      section(w + " dgrad " + shape,
              [&] { log ? ops::log_softmax_backward(ctx, dy, y) : ops::softmax_backward(ctx, dy, y); });
    }
  } else if (w == "relu") {
    const Shape xs = shape_or("--x", o.x, {128, 32, 32, 32});
    const Tensor x = random_tensor(ctx, xs, 1);
    if (fprop) section("relu fprop x" + xs.str(), [&] { ops::relu_forward(ctx, x); });
    if (dgrad) {
      const Tensor dy = random_tensor(ctx, xs, 4);
      section("relu dgrad x" + xs.str(), [&] { ops::relu_backward(ctx, dy, x); });
    }
  } else {
    FOVEA_FAIL("fovea profile: unknown op '", w,
               "' (known: conv2d, linear, maxpool2d, avgpool2d, batchnorm2d, softmax, log_softmax, relu, train-step)");
  }
}

// One training step of a zoo model on random CIFAR-shaped data, after one step that is not profiled (warm-up):
// forward, cross-entropy, backward, SGD update, the loss read back, as `fovea train` does it.
void run_train_step(const ProfileOptions& o, ops::Context& ctx, const Runner& section) {
  auto model = nn::build_model(o.model, Shape{3, 32, 32}, 10);
  model->to(ctx.device);
  model->initialize(ctx, 1);
  model->train(true);
  nn::OptimizerConfig oc;
  nn::Optimizer opt(oc, model->parameters());
  const Tensor x = random_tensor(ctx, {o.batch, 3, 32, 32}, 7);
  std::vector<int64_t> labels(size_t(o.batch));
  for (int64_t i = 0; i < o.batch; ++i) labels[size_t(i)] = (i * 7) % model->classes();
  const Tensor y = Tensor::from_vector(labels, Shape{o.batch}, ctx.device);
  float loss = NAN;
  auto step = [&] {
    model->zero_grad();
    nn::Output out = model->forward(ctx, x);
    ops::CrossEntropyOut ce = ops::cross_entropy(ctx, out.y, y);
    model->backward(ctx, ce.dlogits, *out.saved);
    opt.step(ctx, 0.01);
    loss = ce.loss.to(kCPU).to_vector<float>()[0];
  };
  step();
  section(fmt::format("training step of {} at batch {} (3x32x32 inputs, SGD)", o.model, o.batch), step);
  FOVEA_CHECK(std::isfinite(loss), "fovea profile: the training step gave a loss of ", loss);
}

void run_what(const ProfileOptions& o, ops::Context& ctx, const Runner& section) {
  if (o.what == "train-step")
    run_train_step(o, ctx, section);
  else
    run_op(o, ctx, section);
}

// --measure cuda: the same work on the GPU, timed with events (median of 20 after 3 warm-up runs), in
// microseconds by section title.
std::map<std::string, double> measure_on_cuda(const ProfileOptions& o) {
  const Device cuda = parse_device(o.measure);
  FOVEA_CHECK(cuda.type == DeviceType::cuda, "fovea profile: --measure must be cuda, got '", o.measure, "'");
  FOVEA_CHECK(cuda_available(), "fovea profile: --measure cuda needs a GPU: ", cuda_unavailable_reason());
  std::map<std::string, double> out;
  Stream stream(cuda);
  ops::Context ctx(cuda);
  ctx.stream = stream.handle();
  run_what(o, ctx, [&](const std::string& title, const Work& work) {
    for (int i = 0; i < 3; ++i) work();
    std::vector<double> ms;
    for (int i = 0; i < 20; ++i) {
      Event a(cuda), b(cuda);
      a.record(stream);
      work();
      b.record(stream);
      b.synchronize();
      ms.push_back(b.elapsed_ms_since(a));
    }
    std::nth_element(ms.begin(), ms.begin() + 10, ms.end());
    out[title] = ms[10] * 1e3;
  });
  return out;
}

std::string per(uint64_t v, uint64_t n) {
  return n ? fmt::format("{:.2f}", double(v) / double(n)) : std::string("-");
}

std::string short_kernel(std::string name) {
  for (const char* prefix : {"fovea::emu_kernels::", "fovea::"})
    if (name.starts_with(prefix)) name.erase(0, std::strlen(prefix));
  for (size_t p; (p = name.find("fovea::emu_kernels::")) != std::string::npos;) name.erase(p, 20);
  return name;
}

int run_profile(const ProfileOptions& o) {
  const Device device = parse_device(o.device);
  FOVEA_CHECK(device.type == DeviceType::emu, "fovea profile: --device must be emu (the metrics come from the ",
              "emulator's instrumented build), got '", o.device, "'");
  FOVEA_CHECK(emu::instrumented_build_available(), "fovea profile: this build has no instrumented kernels ",
              "(-DFOVEA_SANITIZE=ON and -DFOVEA_EMU_CHECKED=OFF builds make none)");
  const emu::GpuSpec& gpu = emu::gpu_spec(o.gpu);
  const std::string table_path = o.resources.empty() ? std::string(FOVEA_KERNEL_RESOURCES) : o.resources;
  const emu::ResourceTable resources(table_path);
  ops::Context ctx(device);

  std::vector<Section> sections;
  run_what(o, ctx,
           [&](const std::string& title, const Work& work) { sections.push_back(profile_section(title, work)); });
  const std::map<std::string, double> measured =
      o.measure.empty() ? std::map<std::string, double>() : measure_on_cuda(o);

  nlohmann::json json = nlohmann::json::object();
  json["gpu"] = {{"name", gpu.name},           {"sms", gpu.sms},
                 {"clock_ghz", gpu.clock_ghz}, {"fp32_tflops", gpu.fp32_tflops},
                 {"dram_gb_s", gpu.dram_gb_s}, {"launch_us_assumed", gpu.launch_us},
                 {"source", gpu.source}};
  json["resources"] = resources.empty() ? std::string("none") : resources.path();
  json["sections"] = nlohmann::json::array();
  std::string csv =
      "section,kernel,row,location,space,op,bytes_per_lane,requests,lanes_per_request,sectors_per_request,"
      "lines_per_request,wavefronts_per_request,bytes,launches,blocks,flop,dram_bytes,registers,static_smem,"
      "blocks_per_sm,t_fp32_us,t_dram_us,t_l1_us,t_launch_us,predicted_us,bound\n";

  fmt::print(
      "fovea profile: memory metrics counted on the emulator (every access of the instrumented build), and a "
      "cost model for {} -- a model (lower bounds at published peaks), not a measurement.\n",
      gpu.name);
  if (resources.empty())
    fmt::print("No ptxas resource table ({}): registers and occupancy are unknown (an nvcc build writes it).\n",
               table_path.empty() ? "none configured" : table_path);
  double total_us = 0;
  for (const Section& s : sections) {
    fmt::print("\n=== {}\n", s.title);
    nlohmann::json js = {{"title", s.title}, {"launches", s.launches}, {"host_syncs", s.host_syncs}};
    js["kernels"] = nlohmann::json::array();
    double section_us = 0;
    std::vector<emu::KernelCost> costs;
    for (const emu::KernelMetrics& k : s.kernels) {
      const emu::KernelResources r = resources.find(gpu.sm, k.entry);
      costs.push_back(emu::model_kernel(gpu, k, k.flop, r));
    }
    for (size_t i = 0; i < s.kernels.size(); ++i) {
      const emu::KernelMetrics& k = s.kernels[i];
      const emu::KernelCost& c = costs[i];
      section_us += c.predicted_us;
      fmt::print(
          "\nkernel {}\n  {} launch{}, grid ({},{},{}), block ({},{},{}), {} B dynamic shared, {} warps, "
          "{} barriers (warp-level), {:.3g} FLOP\n",
          short_kernel(k.name), k.launches, k.launches == 1 ? "" : "es", k.grid.x, k.grid.y, k.grid.z, k.block.x,
          k.block.y, k.block.z, k.smem_bytes, k.warps, k.barriers, k.flop);
      fmt::print("  {:<44} {:<6} {:<6} {:>3} {:>10} {:>9} {:>11} {:>9} {:>14} {:>12}\n", "site", "space", "op", "B",
                 "requests", "lanes/req", "sectors/req", "lines/req", "wavefronts/req", "bytes");
      nlohmann::json jk = {{"name", k.name},
                           {"launches", k.launches},
                           {"grid", {k.grid.x, k.grid.y, k.grid.z}},
                           {"block", {k.block.x, k.block.y, k.block.z}},
                           {"dynamic_smem_bytes", k.smem_bytes},
                           {"warps", k.warps},
                           {"barriers", k.barriers},
                           {"flop", k.flop},
                           {"dram_read_bytes", k.dram_read_bytes},
                           {"dram_write_bytes", k.dram_write_bytes}};
      jk["sites"] = nlohmann::json::array();
      for (const emu::SiteMetrics& m : k.sites) {
        const bool global = m.space == emu::Space::global;
        fmt::print("  {:<44} {:<6} {:<6} {:>3} {:>10} {:>9} {:>11} {:>9} {:>14} {:>12}\n", m.location,
                   emu::space_name(m.space), emu::op_name(m.op), m.bytes_per_lane, m.requests, per(m.lanes, m.requests),
                   global ? per(m.sectors, m.requests) : "-", global ? per(m.lines, m.requests) : "-",
                   global ? "-" : per(m.wavefronts, m.requests), m.bytes);
        jk["sites"].push_back({{"location", m.location},
                               {"function", m.function},
                               {"space", emu::space_name(m.space)},
                               {"op", emu::op_name(m.op)},
                               {"bytes_per_lane", m.bytes_per_lane},
                               {"requests", m.requests},
                               {"lanes", m.lanes},
                               {"sectors", m.sectors},
                               {"lines", m.lines},
                               {"wavefronts", m.wavefronts},
                               {"bytes", m.bytes}});
        csv +=
            fmt::format("\"{}\",\"{}\",site,{},{},{},{},{},{},{},{},{},{},,,,,,,,,,,,,\n", s.title, k.name, m.location,
                        emu::space_name(m.space), emu::op_name(m.op), m.bytes_per_lane, m.requests,
                        per(m.lanes, m.requests), global ? per(m.sectors, m.requests) : "",
                        global ? per(m.lines, m.requests) : "", global ? "" : per(m.wavefronts, m.requests), m.bytes);
      }
      fmt::print(
          "  model {}: {:.1f} us ({}-bound); limits: fp32 {:.2f} us, dram {:.2f} us ({:.3g} MB), L1/shared "
          "{:.2f} us ({} wavefronts), launch {:.1f} us; ",
          gpu.key, c.predicted_us, c.bound, c.t_fp32_us, c.t_dram_us, double(c.dram_bytes) / 1e6, c.t_l1_us,
          c.l1_wavefronts, c.t_launch_us);
      if (c.resources.known)
        fmt::print("{} registers, {} B static shared, occupancy {} blocks/SM = {} warps ({:.0f}%, {})\n",
                   c.resources.registers, c.resources.static_smem, c.occ.blocks_per_sm, c.occ.warps_per_sm,
                   100 * c.occ.fraction, c.occ.limiter);
      else
        fmt::print("registers unknown, occupancy at most {} blocks/SM ({})\n", c.occ.blocks_per_sm, c.occ.limiter);
      jk["model"] = {{"predicted_us", c.predicted_us},
                     {"bound", c.bound},
                     {"t_fp32_us", c.t_fp32_us},
                     {"t_dram_us", c.t_dram_us},
                     {"t_l1_us", c.t_l1_us},
                     {"t_launch_us", c.t_launch_us},
                     {"dram_bytes", c.dram_bytes},
                     {"l1_wavefronts", c.l1_wavefronts},
                     {"registers", c.resources.known ? nlohmann::json(c.resources.registers) : nlohmann::json()},
                     {"static_smem", c.resources.known ? nlohmann::json(c.resources.static_smem) : nlohmann::json()},
                     {"blocks_per_sm", c.occ.blocks_per_sm},
                     {"occupancy", c.occ.fraction},
                     {"occupancy_limiter", c.occ.limiter}};
      js["kernels"].push_back(jk);
      csv += fmt::format("\"{}\",\"{}\",kernel,,,,,,,,,,,{},{},{},{},{},{},{},{:.3f},{:.3f},{:.3f},{:.3f},{:.3f},{}\n",
                         s.title, k.name, k.launches, k.blocks, k.flop, c.dram_bytes,
                         c.resources.known ? std::to_string(c.resources.registers) : "",
                         c.resources.known ? std::to_string(c.resources.static_smem) : "", c.occ.blocks_per_sm,
                         c.t_fp32_us, c.t_dram_us, c.t_l1_us, c.t_launch_us, c.predicted_us, c.bound);
    }
    total_us += section_us;
    js["predicted_us"] = section_us;
    fmt::print(
        "\n{}: {} launch{}, {} host synchronisation{}; modelled {} time {:.1f} us (sum of the kernels' bounds)\n",
        s.title, s.launches, s.launches == 1 ? "" : "es", s.host_syncs, s.host_syncs == 1 ? "" : "s", gpu.key,
        section_us);
    if (auto it = measured.find(s.title); it != measured.end()) {
      js["measured_us"] = it->second;
      fmt::print("measured on this machine's GPU: {:.1f} us (median of 20 runs); model / measured = {:.2f}\n",
                 it->second, section_us / it->second);
    }
    json["sections"].push_back(js);
  }
  json["predicted_us"] = total_us;
  auto write = [](const std::string& path, const std::string& text) {
    const std::filesystem::path p(path);
    if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
    write_file_atomic(path, text);
  };
  if (!o.csv.empty()) write(o.csv, csv);
  if (!o.json.empty()) write(o.json, json.dump(2) + "\n");
  return 0;
}

Command profile_command(
    "profile", "Memory metrics of our kernels on the emulator, and a modelled GPU time (a model)", [](CLI::App& app) {
      auto o = std::make_shared<ProfileOptions>();
      app.add_option("what", o->what,
                     "conv2d, linear, maxpool2d, avgpool2d, batchnorm2d, softmax, log_softmax, relu, or train-step")
          ->required();
      app.add_option("--device", o->device, "emu (the only device with metrics)")->default_val("emu");
      app.add_option("--x", o->x, "input shape, e.g. 128,3,32,32 (defaults per op: CIFAR-sized)");
      app.add_option("--w", o->w, "weight shape: conv K,C,R,S; linear OUT,IN");
      app.add_option("--attr", o->attrs, "KEY=VALUE: stride, pad, dilation, groups (conv); kernel, stride, pad (pool)");
      app.add_option("--pass", o->pass, "fprop, dgrad, wgrad or all")->default_val("fprop");
      app.add_option("--model", o->model, "train-step: zoo model")->default_val("cifar_quick");
      app.add_option("--batch", o->batch, "train-step: batch size")->default_val(128)->check(kPositiveInt);
      app.add_option("--gpu", o->gpu, "the GPU of the cost model: h100 or a100")->default_val("h100");
      app.add_option("--csv", o->csv, "write the sites and kernels as CSV");
      app.add_option("--json", o->json, "write everything as JSON");
      app.add_option("--resources", o->resources, "ptxas resource table (default: the build's)");
      app.add_option("--measure", o->measure, "cuda: also time the same work on the GPU, beside the model");
      return [o] { return run_profile(*o); };
    });

}  // namespace
}  // namespace fovea::app
