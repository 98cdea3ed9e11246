// Device parity (layers/train/parity.h): 20 lock-step training steps on cpu and emu agree within 1e-4 at
// every step, and a deliberately perturbed layer of one model is named as the first that diverges.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <memory>

#include "core/library_module.h"
#include "core/philox.h"
#include "layers/data/data.h"
#include "layers/data/loader.h"
#include "layers/nn/models.h"
#include "layers/train/parity.h"

namespace fovea::nn {
namespace {

// Wraps a parameter-free layer and adds a fixed random tensor to its output (forward) or to its
// input gradient (backward): a stand-in for a kernel bug in that one layer.
class Perturbed : public Layer {
 public:
  Perturbed(LayerPtr inner, bool in_forward, float amount)
      : inner_(std::move(inner)), in_forward_(in_forward), amount_(amount) {}
  const char* kind() const override { return inner_->kind(); }
  std::string describe() const override { return inner_->describe() + " (perturbed)"; }
  Shape output_shape(const Shape& in) const override { return inner_->output_shape(in); }

 protected:
  Output forward_impl(ops::Context& ctx, const Tensor& x) override {
    Output o = inner_->forward(ctx, x);
    if (in_forward_) o.y = ops::add(ctx, o.y, noise(o.y.shape(), ctx.device));
    return o;
  }
  Tensor backward_impl(ops::Context& ctx, const Tensor& dy, Saved& saved, bool propagate_down) override {
    Tensor dx = inner_->backward(ctx, dy, saved, propagate_down);
    if (!in_forward_ && propagate_down) dx = ops::add(ctx, dx, noise(dx.shape(), ctx.device));
    return dx;
  }

 private:
  Tensor noise(const Shape& s, Device d) const {
    std::vector<float> v(size_t(s.numel()));
    for (size_t i = 0; i < v.size(); ++i) v[i] = amount_ * philox_normal(99, 0, i);
    return Tensor::from_vector(v, s, d);
  }
  LayerPtr inner_;
  bool in_forward_;
  float amount_;
};

constexpr const char* kSpec = "conv:6:3:pad=1,bn,relu,maxpool:2,conv:8:3:pad=1,relu,dropout:0.2,gap,linear";

struct Fixture {
  std::unique_ptr<Model> a, b;
  ops::Context ca{kCPU}, cb{kEmu};
  std::vector<std::pair<Tensor, Tensor>> batches;

  Fixture() {
    const data::Dataset ds = data::make_shapes(64, data::Split::train, 3);
    data::LoaderOptions lo;
    lo.batch_size = 4;
    lo.prefetch = 0;
    lo.normalization = data::channel_stats(ds);
    data::BatchLoader loader(ds, lo);
    loader.start_epoch(0);
    data::Batch batch;
    while (loader.next(batch)) batches.emplace_back(batch.images.to(kCPU), batch.labels.to(kCPU));
    a = build_model(kSpec, {3, 32, 32}, 10);
    b = build_model(kSpec, {3, 32, 32}, 10);
    a->initialize(ca, 5);
    b->to(kEmu);
  }
};

TEST(Parity, CpuAndEmuAgreeForTwentySteps) {
  Fixture f;
  ParityOptions o;
  o.steps = 20;
  const ParityReport r = run_parity(*f.a, f.ca, *f.b, f.cb, f.batches, o);
  ASSERT_EQ(r.steps.size(), 20u) << r.summary();
  for (const ParityStep& s : r.steps) EXPECT_LE(s.rel, 1e-4) << "step " << s.step << "\n" << r.summary();
  EXPECT_TRUE(r.ok) << r.summary();
  EXPECT_FALSE(r.has_divergent) << r.summary();
  EXPECT_EQ(r.checked_step, 19);
  EXPECT_FALSE(r.checks.empty());
  // The losses must actually change, or the comparison proves little.
  EXPECT_NE(r.steps.front().loss_a, r.steps.back().loss_a);
}

// Mixed precision (fovea train --precision bf16): conv and linear at BF16 (operands and outputs rounded, FP32 sums)
// with FP32 weights and optimizer, on cpu (the reference of the precision) and emu (im2col + the tensor-core
// GEMM, exactly emulated mma.sync). Both follow cpu_reference/gemm.h's semantics; only the FP32 summation order
// differs, so an output lands on the other BF16 neighbour where the two FP32 sums straddle a rounding boundary
// (rare: the sums differ by ~2^-24 sqrt(K) relative, a BF16 unit is 2^-7) and moves by one BF16 unit (2^-7
// relative). Over 3 steps that keeps the losses within 1e-3 relative and every layer within 1e-2 (a flipped
// element of a small tensor weighs 2^-7 / sqrt(n)); BF16 against FP32 differs by ~2^-8 per op: the losses must
// differ from the FP32 run's.
TEST(Parity, Bf16CpuAndEmuAgreeAndDifferFromFp32) {
  Fixture fp32, f;
  f.ca.precision = f.cb.precision = Precision::bf16;
  ParityOptions o;
  o.steps = 3;
  o.tolerance = 1e-3;
  o.layer_tolerance = 1e-2;
  const ParityReport r = run_parity(*f.a, f.ca, *f.b, f.cb, f.batches, o);
  ASSERT_EQ(r.steps.size(), 3u) << r.summary();
  EXPECT_TRUE(r.ok) << r.summary();
  double max_rel = 0;
  for (const ParityStep& st : r.steps) {
    EXPECT_TRUE(std::isfinite(st.loss_a) && std::isfinite(st.loss_b)) << r.summary();
    max_rel = std::max(max_rel, st.rel);
  }
  // The first step's loss (the forward pass) at FP32: another value.
  ParityOptions o32 = o;
  o32.steps = 1;
  o32.tolerance = o32.layer_tolerance = 1e-4;
  const ParityReport r32 = run_parity(*fp32.a, fp32.ca, *fp32.b, fp32.cb, fp32.batches, o32);
  ASSERT_EQ(r32.steps.size(), 1u) << r32.summary();
  const double vs_fp32 = std::fabs(r.steps[0].loss_a - r32.steps[0].loss_a) / std::fabs(r32.steps[0].loss_a);
  EXPECT_GT(vs_fp32, 1e-6) << "the bf16 loss equals the fp32 one: the precision was not applied\n" << r.summary();
  std::printf("bf16 cpu vs emu: max loss rel %.3g; first loss bf16 vs fp32: rel %.3g\n", max_rel, vs_fp32);
}

// The same on cpu with backend onednn (oneDNN's BF16 kernels, layers/onednn/onednn_precision.cpp) against the
// reference at BF16: the same semantics, oneDNN's summation order; the same bounds.
TEST(Parity, Bf16OnednnAgreesWithTheReference) {
  if (!load_module(ops::Backend::onednn)) GTEST_SKIP() << "backend onednn: " << module_status(ops::Backend::onednn);
  Fixture f;
  f.b->to(kCPU);
  ops::Context onednn(kCPU, ops::Backend::onednn);
  f.ca.precision = onednn.precision = Precision::bf16;
  ParityOptions o;
  o.steps = 3;
  o.tolerance = 1e-3;
  o.layer_tolerance = 1e-2;
  const ParityReport r = run_parity(*f.a, f.ca, *f.b, onednn, f.batches, o);
  ASSERT_EQ(r.steps.size(), 3u) << r.summary();
  EXPECT_TRUE(r.ok) << r.summary();
}

TEST(Parity, NamesALayerWhoseOutputDiverges) {
  Fixture f;
  f.b->net().replace(2, std::make_unique<Perturbed>(f.b->net().replace(2, nullptr), true, 0.01f));
  ParityOptions o;
  o.steps = 3;
  const ParityReport r = run_parity(*f.a, f.ca, *f.b, f.cb, f.batches, o);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_step, 0) << r.summary();
  ASSERT_TRUE(r.has_divergent) << r.summary();
  EXPECT_EQ(r.first_divergent.index, 2u) << r.summary();
  EXPECT_EQ(r.first_divergent.what, "output") << r.summary();
  EXPECT_NE(r.summary().find("first divergent layer: 2 relu"), std::string::npos) << r.summary();
}

TEST(Parity, NamesALayerWhoseGradientDiverges) {
  Fixture f;
  f.b->net().replace(3, std::make_unique<Perturbed>(f.b->net().replace(3, nullptr), false, 1.0f));
  ParityOptions o;
  o.steps = 3;
  const ParityReport r = run_parity(*f.a, f.ca, *f.b, f.cb, f.batches, o);
  EXPECT_FALSE(r.ok);
  ASSERT_TRUE(r.has_divergent) << r.summary();
  EXPECT_EQ(r.first_divergent.index, 3u) << r.summary();
  EXPECT_EQ(r.first_divergent.what, "input gradient") << r.summary();
}

}  // namespace
}  // namespace fovea::nn
