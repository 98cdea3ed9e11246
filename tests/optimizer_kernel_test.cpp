// kernels/optimizer: fused multi-tensor SGD (plain, momentum + dampening + weight decay, Nesterov) and AdamW over
// one launch for a list of tensors of different sizes (empty, 1, odd, chunk-sized +-1, several chunks, an
// unaligned one on the scalar path), three steps, each tensor and its state compared with
// cpu_reference/optimizers; determinism across emulator schedules; argument errors.
#include "layers/ops/optimizers.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
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

// ---- loss scaling (state layout kAmp* in layers/ops/optimizers.h)

std::vector<float> amp_state(float scale, float tracker, float found_inf, float skipped) {
  std::vector<float> a(kAmpStateSize);
  a[kAmpScale] = scale, a[kAmpGrowthTracker] = tracker, a[kAmpFoundInf] = found_inf, a[kAmpSkipped] = skipped;
  return a;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

// The gradients of every tensor of the list (all sizes, an unaligned one) times 1/scale, bitwise the reference;
// found_inf stays 0 for finite gradients and becomes 1 for one Inf or NaN anywhere (a middle element of the
// unaligned tensor, the last element of a multi-chunk one), while the other elements are still unscaled.
TEST_P(OptimizerKernels, AmpUnscaleMatchesReferenceAndFindsInfs) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  for (const float scale : {1024.0f, 3.0f}) {  // 3: inv_scale is float(1 / 3.0), rounded once as PyTorch's
    for (const int plant : {0, 1, 2}) {        // none, an Inf, a NaN
      SCOPED_TRACE(cat("scale ", scale, " plant ", plant));
      std::vector<Param> ps = make_params(dev, 700);
      for (Param& p : ps) {
        for (float& g : p.g) g *= scale;
        p.dg->assign(p.g);
      }
      const size_t bad_tensor = plant == 1 ? 5 : 8, bad_at = plant == 1 ? 2000 : ps[8].g.size() - 1;
      if (plant) {
        ps[bad_tensor].g[bad_at] = plant == 1 ? INFINITY : NAN;
        ps[bad_tensor].dg->assign(ps[bad_tensor].g);
      }
      // The gradients are the list's 'w' (updated in place).
      std::vector<OptimizerTensor> host;
      for (Param& p : ps) host.push_back({p.dg->data(), p.dg->data(), nullptr, nullptr, int64_t(p.g.size())});
      const int64_t chunks = plan_optimizer_chunks(host.data(), int64_t(host.size()), "amp_unscale", false, false);
      const auto list = DeviceArray<OptimizerTensor>::upload(host, dev);
      auto amp = DeviceArray<float>::upload(amp_state(scale, 0, 0, 0), dev);
      ops::amp_unscale_stub(kernel_exec(dev), OptimizerList{list.data(), int64_t(host.size()), chunks}, amp.data());
      bool found = false;
      for (size_t t = 0; t < ps.size(); ++t) {
        found = ref::unscale_grad(int64_t(ps[t].g.size()), ps[t].g.data(), scale) || found;
        EXPECT_TRUE(same_bits(ps[t].dg->download(), ps[t].g)) << "tensor " << t << " n " << ps[t].g.size();
      }
      EXPECT_EQ(found, plant != 0);
      EXPECT_TRUE(same_bits(amp.download(), amp_state(scale, 0, plant ? 1.0f : 0.0f, 0)));
    }
  }
}

// The scale's update against the reference over a scripted sequence (growth every 2 finite steps, backoff and a
// reset tracker on non-finite ones, growth refused past FLT_MAX, a fixed scale); tests/layers_test.cpp checks the
// rule itself against an independent implementation of GradScaler's.
TEST_P(OptimizerKernels, AmpUpdateMatchesReference) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  for (const bool dynamic : {true, false}) {
    LossScaleParams p;
    p.growth_interval = 2;
    p.dynamic = dynamic;
    std::vector<float> want = amp_state(2.5e38f, 0, 0, 0);  // the first growth would overflow: refused
    auto amp = DeviceArray<float>::upload(want, dev);
    const std::string script = "FFFIFFIIFFF";
    for (size_t t = 0; t < script.size(); ++t) {
      const float flag = script[t] == 'I' ? 1.0f : 0.0f;
      want[kAmpFoundInf] = flag;
      std::vector<float> got = amp.download();
      got[kAmpFoundInf] = flag;
      amp = DeviceArray<float>::upload(got, dev);
      ref::loss_scale_update(p, want.data());
      ops::amp_update_stub(kernel_exec(dev), p, amp.data());
      EXPECT_TRUE(same_bits(amp.download(), want)) << "step " << t << (dynamic ? " dynamic" : " fixed");
    }
    EXPECT_EQ(want[kAmpSkipped], 3.0f);
    EXPECT_EQ(want[kAmpScale], dynamic ? 2.5e38f * 0.5f : 2.5e38f);  // x1 (refused), x0.5, x2, x0.25, x2
  }
  LossScaleParams bad;
  bad.backoff_factor = 1.0;
  auto amp = DeviceArray<float>::upload(amp_state(1, 0, 0, 0), dev);
  EXPECT_TRUE(throws_error([&] { ops::amp_update_stub(kernel_exec(dev), bad, amp.data()); },
                           {"amp_update", "backoff factor must be in (0, 1), got 1"}));
}

// amp_scale multiplies by the state's scale, bitwise the reference, for sizes around the block.
TEST_P(OptimizerKernels, AmpScaleMatchesReference) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  for (const int64_t n : {1, 255, 257, 10000}) {
    std::vector<float> x = random_vector(size_t(n), 800 + uint64_t(n));
    auto dx = DeviceArray<float>::upload(x, dev);
    auto amp = DeviceArray<float>::upload(amp_state(3.0f, 0, 0, 0), dev);
    ops::amp_scale_stub(kernel_exec(dev), n, dx.data(), amp.data());
    ref::loss_scale(n, x.data(), 3.0f);
    EXPECT_TRUE(same_bits(dx.download(), x)) << "n " << n;
  }
}

// With a loss scaler's state, an update whose found_inf is set leaves weights and state bitwise as they were; one
// after `skipped` skipped updates is the reference's update at step - skipped (SGD's first step with dampening,
// AdamW's bias corrections).
TEST_P(OptimizerKernels, AmpSkipsFlaggedUpdatesAndShiftsTheStepCount) {
  const Device dev = GetParam();
  FOVEA_SKIP_IF_NO_DEVICE(dev);
  for (const bool adamw : {false, true}) {
    SCOPED_TRACE(adamw ? "adamw" : "sgd");
    std::vector<Param> ps = make_params(dev, 900);
    const DeviceList d = upload_list(dev, ps, true, adamw, adamw ? "adamw" : "sgd");
    const SgdParams sp = sgd(0.05, 0.9, 0.1, 1e-2, false);
    AdamWParams ap;
    ap.lr = 1e-2, ap.weight_decay = 0.05;
    auto run = [&](const std::vector<float>& state, int64_t step) {
      auto amp = DeviceArray<float>::upload(state, dev);
      const OptimizerList list{d.list.data(), d.count, d.chunks, amp.data()};
      if (adamw) {
        ops::adamw_step_stub(kernel_exec(dev), ap, list, step);
      } else {
        ops::sgd_step_stub(kernel_exec(dev), sp, list, step);
      }
    };
    run(amp_state(1024, 0, 1, 0), 1);  // flagged: nothing moves
    for (const Param& p : ps) {
      EXPECT_TRUE(same_bits(p.dw->download(), p.w));
      EXPECT_TRUE(same_bits(p.ds0->download(), p.s0));
    }
    // Steps 2 and 5 of the run, after 1 and then 3 skipped updates: the reference's steps 1 and 2.
    for (const auto& [step, skipped] : {std::pair<int64_t, float>{2, 1}, {5, 3}}) {
      run(amp_state(1024, 0, 0, skipped), step);
      for (size_t t = 0; t < ps.size(); ++t) {
        Param& p = ps[t];
        if (p.w.empty()) continue;
        const int64_t n = int64_t(p.w.size()), ref_step = step - int64_t(skipped);
        if (adamw) {
          ref::adamw_step(ap, n, p.w.data(), p.g.data(), p.s0.data(), p.s1.data(), ref_step);
        } else {
          ref::sgd_step(sp, n, p.w.data(), p.g.data(), p.s0.data(), ref_step);
        }
        const std::string tag = cat("step ", step, " tensor ", t);
        EXPECT_TRUE(matches_reference(p.dw->download(), p.w, tag + ".w"));
        EXPECT_TRUE(matches_reference(p.ds0->download(), p.s0, tag + ".state0"));
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, OptimizerKernels, KernelDevices(), DeviceName);

}  // namespace
}  // namespace fovea::test
