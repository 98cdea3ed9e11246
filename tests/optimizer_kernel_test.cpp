// kernels/optimizer: fused multi-tensor SGD (plain, momentum + dampening + weight decay, Nesterov) and AdamW over
// one launch for a list of tensors of different sizes (empty, 1, odd, chunk-sized +-1, several chunks, an
// unaligned one on the scalar path), three steps, each tensor and its state compared with
// cpu_reference/optimizers; determinism across emulator schedules; argument errors.
#include "layers/ops/optimizers.h"

#include <gtest/gtest.h>

#include <memory>

#include "cpu_reference/optimizers.h"
#include "tests/ops_kernel_test_util.h"

namespace fovea::test {
namespace {

struct TensorSpec {
  int64_t n;
  size_t offset;  // 1: unaligned, scalar path
};
const std::vector<TensorSpec> kTensors = {{1, 0},    {3, 0},     {4096, 0}, {0, 0},           {4097, 0},
                                          {4095, 1}, {10000, 0}, {17, 1},   {3 * 4096 + 5, 0}};

// Host and device copies of one parameter tensor with its gradient and two state buffers.
struct Param {
  std::vector<float> w, g, s0, s1;
  std::unique_ptr<OffsetArray> dw, dg, ds0, ds1;
};

std::vector<Param> make_params(Device dev, uint64_t seed) {
  std::vector<Param> ps;
  for (const TensorSpec& t : kTensors) {
    Param p;
    p.w = random_vector(t.n, seed++), p.g = random_vector(t.n, seed++);
    p.s0 = std::vector<float>(t.n, 0.0f), p.s1 = std::vector<float>(t.n, 0.0f);
    p.dw = std::make_unique<OffsetArray>(p.w, dev, t.offset), p.dg = std::make_unique<OffsetArray>(p.g, dev, t.offset);
    p.ds0 = std::make_unique<OffsetArray>(p.s0, dev, t.offset);
    p.ds1 = std::make_unique<OffsetArray>(p.s1, dev, t.offset);
    ps.push_back(std::move(p));
  }
  return ps;
}

// Plans the chunks on the host list and uploads it: the descriptor array the launch reads.
struct DeviceList {
  DeviceArray<OptimizerTensor> list;
  int64_t count = 0, chunks = 0;
};
DeviceList upload_list(Device dev, std::vector<Param>& ps, bool state0, bool state1, const char* op) {
  std::vector<OptimizerTensor> host;
  for (Param& p : ps)
    host.push_back({p.dw->data(), p.dg->data(), state0 ? p.ds0->data() : nullptr, state1 ? p.ds1->data() : nullptr,
                    int64_t(p.w.size())});
  DeviceList d;
  d.count = int64_t(host.size());
  d.chunks = plan_optimizer_chunks(host.data(), d.count, op, state0, state1);
  d.list = DeviceArray<OptimizerTensor>::upload(host, dev);
  return d;
}

SgdParams sgd(double lr, double momentum, double dampening, double wd, bool nesterov) {
  SgdParams p;
  p.lr = lr, p.momentum = momentum, p.dampening = dampening, p.weight_decay = wd, p.nesterov = nesterov;
  return p;
}

class OptimizerKernels : public ::testing::TestWithParam<Device> {};

TEST_P(OptimizerKernels, SgdMatchesReferencePerTensor) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  const std::vector<std::pair<const char*, SgdParams>> configs = {
      {"plain", sgd(0.1, 0.0, 0.0, 0.0, false)},
      {"momentum_damp_wd", sgd(0.05, 0.9, 0.1, 1e-2, false)},
      {"nesterov_wd", sgd(0.05, 0.9, 0.0, 5e-3, true)},
  };
  for (const auto& [name, sp] : configs) {
    std::vector<Param> ps = make_params(dev, 200);
    const bool mom = sp.momentum != 0.0;
    const DeviceList d = upload_list(dev, ps, mom, false, "sgd");
    for (int64_t step = 1; step <= 3; ++step) {
      for (Param& p : ps) {  // a new gradient every step, on both sides
        p.g = random_vector(p.w.size(), 300 + step * 17 + p.w.size());
        p.dg->assign(p.g);
      }
      for (Param& p : ps)
        if (!p.w.empty())
          ref::sgd_step(sp, int64_t(p.w.size()), p.w.data(), p.g.data(), mom ? p.s0.data() : nullptr, step);
      ops::sgd_step_stub(kernel_exec(dev), sp, OptimizerList{d.list.data(), d.count, d.chunks}, step);
      for (size_t t = 0; t < ps.size(); ++t) {
        if (ps[t].w.empty()) continue;
        const std::string tag = cat("sgd.", name, ".step", step, ".tensor", t, ".n", ps[t].w.size());
        EXPECT_TRUE(matches_reference(ps[t].dw->download(), ps[t].w, tag + ".w"));
        if (mom) {
          EXPECT_TRUE(matches_reference(ps[t].ds0->download(), ps[t].s0, tag + ".momentum"));
        }
      }
    }
  }
}

TEST_P(OptimizerKernels, AdamWMatchesReferencePerTensor) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  AdamWParams ap;
  ap.lr = 1e-2, ap.weight_decay = 0.05;
  std::vector<Param> ps = make_params(dev, 400);
  const DeviceList d = upload_list(dev, ps, true, true, "adamw");
  for (int64_t step = 1; step <= 3; ++step) {
    for (Param& p : ps)
      if (!p.w.empty())
        ref::adamw_step(ap, int64_t(p.w.size()), p.w.data(), p.g.data(), p.s0.data(), p.s1.data(), step);
    ops::adamw_step_stub(kernel_exec(dev), ap, OptimizerList{d.list.data(), d.count, d.chunks}, step);
    for (size_t t = 0; t < ps.size(); ++t) {
      if (ps[t].w.empty()) continue;
      const std::string tag = cat("adamw.step", step, ".tensor", t, ".n", ps[t].w.size());
      EXPECT_TRUE(matches_reference(ps[t].dw->download(), ps[t].w, tag + ".w"));
      EXPECT_TRUE(matches_reference(ps[t].ds0->download(), ps[t].s0, tag + ".m"));
      EXPECT_TRUE(matches_reference(ps[t].ds1->download(), ps[t].s1, tag + ".v"));
    }
  }
}

TEST_P(OptimizerKernels, Deterministic) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  AdamWParams ap;
  expect_deterministic(dev, "adamw_step_multi", [&] {
    std::vector<Param> ps = make_params(dev, 500);
    const DeviceList d = upload_list(dev, ps, true, true, "adamw");
    ops::adamw_step_stub(kernel_exec(dev), ap, OptimizerList{d.list.data(), d.count, d.chunks}, 1);
    ops::adamw_step_stub(kernel_exec(dev), ap, OptimizerList{d.list.data(), d.count, d.chunks}, 2);
    std::vector<float> all;
    for (const Param& p : ps)
      for (const OffsetArray* a : {p.dw.get(), p.ds0.get(), p.ds1.get()}) {
        const auto v = a->download();
        all.insert(all.end(), v.begin(), v.end());
      }
    return all;
  });
}

TEST_P(OptimizerKernels, BadArguments) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  DeviceArray<float> w(8, dev), g(8, dev);
  std::vector<OptimizerTensor> host = {{w.data(), g.data(), nullptr, nullptr, 8}};
  // Momentum needs a buffer; AdamW needs both states.
  EXPECT_TRUE(throws_error([&] { plan_optimizer_chunks(host.data(), 1, "sgd", true, false); },
                           {"sgd", "tensor 0", "null first state buffer"}));
  EXPECT_TRUE(throws_error([&] { plan_optimizer_chunks(host.data(), 1, "adamw", true, true); },
                           {"adamw", "tensor 0", "null first state buffer"}));
  host[0].n = -1;
  EXPECT_TRUE(
      throws_error([&] { plan_optimizer_chunks(host.data(), 1, "sgd", false, false); }, {"sgd", "tensor 0 has n=-1"}));
  host[0].n = 8;
  const int64_t chunks = plan_optimizer_chunks(host.data(), 1, "sgd", false, false);
  EXPECT_EQ(chunks, 1);
  auto list = DeviceArray<OptimizerTensor>::upload(host, dev);
  EXPECT_TRUE(throws_error(  // step is 1-based
      [&] {
        ops::sgd_step_stub(kernel_exec(dev), sgd(0.1, 0, 0, 0, false), OptimizerList{list.data(), 1, chunks}, 0);
      },
      {"sgd_step", "argument 'step' must be >= 1, got 0"}));
  EXPECT_TRUE(throws_error(  // Nesterov without momentum
      [&] {
        ops::sgd_step_stub(kernel_exec(dev), sgd(0.1, 0, 0, 0, true), OptimizerList{list.data(), 1, chunks}, 1);
      },
      {"sgd_step", "argument 'nesterov' requires momentum > 0", "got momentum 0"}));
  EXPECT_TRUE(throws_error(
      [&] {
        ops::sgd_step_stub(kernel_exec(dev), sgd(0.1, 0, 0, 0, false), OptimizerList{nullptr, 1, chunks}, 1);
      },
      {"sgd_step", "argument 'tensors' is null"}));
  EXPECT_TRUE(throws_error(
      [&] {
        ops::sgd_step_stub(kernel_exec(dev), sgd(0.1, 0, 0, 0, false), OptimizerList{list.data(), 0, chunks}, 1);
      },
      {"sgd_step", "1 chunks but 'count' is 0"}));
  AdamWParams bad;
  bad.beta1 = 1.0;
  EXPECT_TRUE(throws_error(
      [&] {
        ops::adamw_step_stub(kernel_exec(dev), bad, OptimizerList{list.data(), 1, chunks}, 1);
      },
      {"adamw_step", "argument 'beta1' must be in [0, 1), got 1"}));
}

INSTANTIATE_TEST_SUITE_P(Devices, OptimizerKernels, KernelDevices(), DeviceName);

}  // namespace
}  // namespace fovea::test
