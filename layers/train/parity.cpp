#include "layers/train/parity.h"

#include <fmt/core.h>

#include <cmath>
#include <limits>
#include <map>

#include "core/error.h"

namespace fovea::nn {

double relative_error(const Tensor& a, const Tensor& b, double floor) {
  if (!a.defined() || !b.defined() || !(a.shape() == b.shape())) return std::numeric_limits<double>::infinity();
  const std::vector<float> va = a.to_vector<float>(), vb = b.to_vector<float>();
  double num = 0, den = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    if (!std::isfinite(vb[i]) || !std::isfinite(va[i])) return std::numeric_limits<double>::infinity();
    const double d = double(vb[i]) - double(va[i]);
    num += d * d;
    den += double(va[i]) * double(va[i]);
  }
  if (num == 0) return 0;
  den = std::max(den, floor * floor);
  return den > 0 ? std::sqrt(num / den) : std::numeric_limits<double>::infinity();
}

std::string ParityReport::summary() const {
  std::string s = fmt::format("{:>5} {:>14} {:>14} {:>10}\n", "step", "loss A", "loss B", "rel diff");
  for (const ParityStep& p : steps)
    s += fmt::format("{:>5} {:>14.8f} {:>14.8f} {:>10.2e}{}\n", p.step, p.loss_a, p.loss_b, p.rel,
                     p.step == first_bad_step ? "  <-- first step out of tolerance" : "");
  if (!checks.empty()) {
    s +=
        fmt::format("\nlayer by layer at step {} (model B's layer on model A's inputs and gradients):\n", checked_step);
    for (const LayerCheck& c : checks) s += fmt::format("  {:<40} {:<36} {:>10.2e}\n", c.layer, c.what, c.rel);
  }
  if (has_divergent)
    s += fmt::format("\nfirst divergent layer: {} ({} differs by {:.2e})\n", first_divergent.layer,
                     first_divergent.what, first_divergent.rel);
  else if (first_bad_step >= 0)
    s += "\nevery layer agrees on the same inputs: the runs drifted apart by accumulated rounding differences, which "
         "unstable training (a high learning rate, a small batch) amplifies; no single layer is wrong\n";
  s += ok ? "parity: OK\n" : "parity: FAILED\n";
  return s;
}

ParityReport run_parity(Model& a, ops::Context& ctx_a, Model& b, ops::Context& ctx_b,
                        const std::vector<std::pair<Tensor, Tensor>>& batches, const ParityOptions& options) {
  FOVEA_CHECK(!batches.empty(), "parity: no batches");
  FOVEA_CHECK(options.steps > 0, "parity: steps must be > 0, got ", options.steps);
  FOVEA_CHECK(a.net().size() == b.net().size(), "parity: the models differ (", a.net().size(), " vs ", b.net().size(),
              " layers)");
  FOVEA_CHECK(a.device() == ctx_a.device && b.device() == ctx_b.device, "parity: models and contexts disagree");
  b.load_state_dict(a.state_dict(), /*strict=*/true);
  a.train(true);
  b.train(true);
  Optimizer opt_a(options.optimizer, a.parameters()), opt_b(options.optimizer, b.parameters());
  ParityReport report;
  Sequential::Trace trace;

  for (int64_t step = 0; step < options.steps; ++step) {
    const auto& [xh, yh] = batches[size_t(step) % batches.size()];
    const std::map<std::string, Tensor> a_before = a.state_dict();

    // Model A, traced.
    a.net().set_trace(&trace);
    a.set_rng(options.seed, uint64_t(step));
    a.zero_grad();
    const Tensor xa = xh.to(ctx_a.device), ya = yh.to(ctx_a.device);
    Output out_a = a.forward(ctx_a, xa);
    const ops::CrossEntropyOut loss_a = ops::cross_entropy(ctx_a, out_a.y, ya);
    a.backward(ctx_a, loss_a.dlogits, *out_a.saved, true);
    a.net().set_trace(nullptr);
    std::map<std::string, Tensor> grads_a;
    for (const ParamRef& p : a.parameters()) grads_a[p.path] = p.param->grad;
    opt_a.step(ctx_a, options.lr);

    // Model B.
    b.set_rng(options.seed, uint64_t(step));
    b.zero_grad();
    const Tensor xb = xh.to(ctx_b.device), yb = yh.to(ctx_b.device);
    Output out_b = b.forward(ctx_b, xb);
    const ops::CrossEntropyOut loss_b = ops::cross_entropy(ctx_b, out_b.y, yb);
    b.backward(ctx_b, loss_b.dlogits, *out_b.saved, true);
    opt_b.step(ctx_b, options.lr);

    ParityStep p;
    p.step = step;
    p.loss_a = loss_a.loss.to_vector<float>()[0];
    p.loss_b = loss_b.loss.to_vector<float>()[0];
    p.rel = std::abs(p.loss_b - p.loss_a) / std::max(std::abs(p.loss_a), 1e-30);
    if (!std::isfinite(p.loss_a) || !std::isfinite(p.loss_b)) p.rel = std::numeric_limits<double>::infinity();
    report.steps.push_back(p);
    const bool bad = !(p.rel <= options.tolerance);
    if (bad) {
      report.ok = false;
      report.first_bad_step = step;
    }
    if (!bad && step + 1 < options.steps) continue;

    // Layer by layer: B's layers on A's inputs and output gradients, with A's pre-step weights.
    report.checked_step = step;
    b.load_state_dict(a_before, /*strict=*/true);
    b.zero_grad();
    b.set_rng(options.seed, uint64_t(step));
    Sequential& nb = b.net();
    const size_t n = nb.size();
    std::vector<SavedPtr> saved(n);
    auto name = [&](size_t i) { return fmt::format("{} {}", i, nb.at(i).describe()).substr(0, 40); };
    for (size_t i = 0; i < n; ++i) {
      const Tensor in = (i == 0 ? xh : trace.outputs[i - 1]).to(ctx_b.device);
      Output o = nb.at(i).forward(ctx_b, in);
      report.checks.push_back({i, name(i), "output", relative_error(trace.outputs[i], o.y)});
      saved[i] = std::move(o.saved);
    }
    for (size_t i = n; i-- > 0;) {
      const Tensor dy = (i + 1 == n ? loss_a.dlogits : trace.input_grads[i + 1]).to(ctx_b.device);
      const Tensor dx = nb.at(i).backward(ctx_b, dy, *saved[i], true);
      report.checks.push_back({i, name(i), "input gradient", relative_error(trace.input_grads[i], dx)});
      std::vector<ParamRef> refs;
      nb.at(i).collect_params(std::to_string(i) + ".", refs);
      const std::vector<float> dyv = dy.to_vector<float>();
      double dy_norm = 0;
      for (float v : dyv) dy_norm += double(v) * double(v);
      dy_norm = std::sqrt(dy_norm);
      for (const ParamRef& r : refs)
        report.checks.push_back(
            {i, name(i), "gradient of " + r.path, relative_error(grads_a[r.path], r.param->grad, dy_norm)});
    }
    for (const LayerCheck& c : report.checks)
      if (!(c.rel <= options.layer_tolerance)) {
        report.has_divergent = true;
        report.first_divergent = c;
        break;
      }
    if (report.has_divergent) report.ok = false;
    break;
  }
  return report;
}

}  // namespace fovea::nn
