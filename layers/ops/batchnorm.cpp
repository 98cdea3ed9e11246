#include "layers/ops/batchnorm.h"

#include <cmath>

#include "core/error.h"
#include "layers/ops/context.h"
#include "layers/ops/registry.h"

namespace fovea {

void BatchNormParams::validate(const char* op) const {
  auto positive = [&](const char* arg, int64_t v) {
    FOVEA_CHECK(v > 0, op, ": argument '", arg, "' must be > 0, got ", v, " (", str(), ")");
  };
  positive("N", N), positive("C", C), positive("H", H), positive("W", W);
  FOVEA_CHECK(std::isfinite(eps) && eps > 0.0, op, ": argument 'eps' must be finite and > 0, got ", eps);
  FOVEA_CHECK(momentum >= 0.0 && momentum <= 1.0, op, ": argument 'momentum' must be in [0, 1], got ", momentum);
  // PyTorch: "Expected more than 1 value per channel when training".
  FOVEA_CHECK(!training || N * H * W > 1, op, ": training needs more than 1 value per channel, got N*H*W=", N * H * W,
              " (", str(), ")");
}

std::string BatchNormParams::str() const {
  return cat("x[", N, ",", C, ",", H, ",", W, "] eps ", eps, " momentum ", momentum, training ? " training" : " eval");
}

namespace ops {
namespace {

BatchNormParams bn_params(const char* op, const Tensor& x, bool training, float momentum, float eps) {
  FOVEA_CHECK(x.ndim() == 4 || x.ndim() == 2, op, ": argument 'x' must be [N, C, H, W] or [N, C], got ",
              x.shape().str());
  BatchNormParams p;
  p.N = x.size(0), p.C = x.size(1);
  p.H = x.ndim() == 4 ? x.size(2) : 1;
  p.W = x.ndim() == 4 ? x.size(3) : 1;
  p.eps = eps, p.momentum = momentum, p.training = training;
  p.validate(op);
  return p;
}

void check_channels(const Context& ctx, const char* op, std::initializer_list<std::pair<const char*, const Tensor*>> ts,
                    int64_t C) {
  for (auto [arg, t] : ts) {
    check_tensor(ctx, op, arg, *t);
    FOVEA_CHECK(t->numel() == C, op, ": argument '", arg, "' must have ", C, " elements (one per channel), got ",
                t->shape().str());
  }
}

}  // namespace

BatchNormOut batchnorm_forward_train(Context& ctx, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                     Tensor& running_mean, Tensor& running_var, float momentum, float eps) {
  const char* op = "batchnorm2d";
  check_tensor(ctx, op, "x", x);
  const BatchNormParams p = bn_params(op, x, true, momentum, eps);
  check_channels(ctx, op,
                 {{"gamma", &gamma}, {"beta", &beta}, {"running_mean", &running_mean}, {"running_var", &running_var}},
                 p.C);
  BatchNormOut out{empty_like(ctx, x.shape()), empty_like(ctx, {p.C}), empty_like(ctx, {p.C})};
  batchnorm2d_forward_stub(ctx.exec(), p, x.data<float>(), gamma.data<float>(), beta.data<float>(),
                           running_mean.data<float>(), running_var.data<float>(), out.y.data<float>(),
                           out.save_mean.data<float>(), out.save_invstd.data<float>());
  return out;
}

Tensor batchnorm_forward_eval(Context& ctx, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                              const Tensor& running_mean, const Tensor& running_var, float eps) {
  const char* op = "batchnorm2d";
  check_tensor(ctx, op, "x", x);
  const BatchNormParams p = bn_params(op, x, false, 0.1f, eps);
  check_channels(ctx, op,
                 {{"gamma", &gamma}, {"beta", &beta}, {"running_mean", &running_mean}, {"running_var", &running_var}},
                 p.C);
  Tensor y = empty_like(ctx, x.shape());
  // Eval mode reads the running statistics and never writes them.
  batchnorm2d_forward_stub(ctx.exec(), p, x.data<float>(), gamma.data<float>(), beta.data<float>(),
                           const_cast<float*>(running_mean.data<float>()),
                           const_cast<float*>(running_var.data<float>()), y.data<float>(), nullptr, nullptr);
  return y;
}

BatchNormGrads batchnorm_backward(Context& ctx, const Tensor& dy, const Tensor& x, const Tensor& gamma,
                                  const Tensor& save_mean, const Tensor& save_invstd) {
  const char* op = "batchnorm2d_backward";
  check_tensor(ctx, op, "dy", dy);
  check_tensor(ctx, op, "x", x);
  check_same_shape(op, "dy", dy, "x", x);
  const BatchNormParams p = bn_params(op, x, true, 0.1f, 1e-5f);
  check_channels(ctx, op, {{"gamma", &gamma}, {"save_mean", &save_mean}, {"save_invstd", &save_invstd}}, p.C);
  BatchNormGrads g{empty_like(ctx, x.shape()), empty_like(ctx, {p.C}), empty_like(ctx, {p.C})};
  batchnorm2d_backward_stub(ctx.exec(), p, x.data<float>(), dy.data<float>(), gamma.data<float>(),
                            save_mean.data<float>(), save_invstd.data<float>(), g.dx.data<float>(),
                            g.dgamma.data<float>(), g.dbeta.data<float>());
  return g;
}

}  // namespace ops
}  // namespace fovea

// ---------------------------------------------------------------- registry entries

namespace fovea::ops {
namespace {

const std::vector<InputInfo> kBnInputs = {
    {.name = "x", .doc = "[N, C, H, W] or [N, C]"},
    {.name = "gamma", .doc = "[C]"},
    {.name = "beta", .doc = "[C]"},
    {.name = "running_mean", .no_grad = true, .doc = "[C]"},
    {.name = "running_var", .no_grad = true, .fill = Fill::positive, .doc = "[C]"}};

std::vector<Sample> bn_samples(bool bench_rows) {
  auto s = [](std::string name, Shape x, bool bench = false) {
    const int64_t C = x[1];
    return Sample{std::move(name),
                  {{"x", x}, {"gamma", {C}}, {"beta", {C}}, {"running_mean", {C}}, {"running_var", {C}}},
                  {},
                  bench};
  };
  std::vector<Sample> out = {s("n3_c1_1x1", {3, 1, 1, 1}), s("odd", {3, 5, 7, 3}), s("flat", {4, 6}),
                             s("resnet_16x16", {4, 16, 16, 16})};
  if (bench_rows) out.push_back(s("cifar_n64_c64_32x32", {64, 64, 32, 32}, true));
  return out;
}

const RegisterOp batchnorm2d_op{{
    .name = "batchnorm2d",
    .doc = "training-mode batch norm, torch.nn.functional.batch_norm(training=True): batch statistics, the "
           "running statistics updated (unbiased variance)",
    .inputs = kBnInputs,
    .attrs = {{"momentum", AttrType::number, "0.1", "running = (1 - momentum) * running + momentum * batch"},
              {"eps", AttrType::number, "1e-05", "added to the variance"}},
    .outputs = {"y", "save_mean", "save_invstd", "new_running_mean", "new_running_var"},
    .grad_outputs = {"y"},
    .forward = [](Context& ctx, const OpArgs& a) -> NamedTensors {
      // The running statistics are updated in place: on copies, so the caller's inputs stay as they were.
      Tensor rm = a.tensor("running_mean").to(ctx.device), rv = a.tensor("running_var").to(ctx.device);
      const BatchNormOut r = batchnorm_forward_train(ctx, a.tensor("x"), a.tensor("gamma"), a.tensor("beta"), rm, rv,
                                                     float(a.number("momentum")), float(a.number("eps")));
      return {{"y", r.y},
              {"save_mean", r.save_mean},
              {"save_invstd", r.save_invstd},
              {"new_running_mean", rm},
              {"new_running_var", rv}};
    },
    .backward = [](Context& ctx, const OpArgs& a, const NamedTensors& out) -> NamedTensors {
      const BatchNormGrads g =
          batchnorm_backward(ctx, a.tensor("dy"), a.tensor("x"), a.tensor("gamma"), out.at(1).second, out.at(2).second);
      return {{"dx", g.dx}, {"dgamma", g.dgamma}, {"dbeta", g.dbeta}};
    },
    .torch = "rm, rv = running_mean.clone(), running_var.clone()\n"
             "y = F.batch_norm(x, rm, rv, gamma, beta, training=True, momentum=momentum, eps=eps)\n"
             "new_running_mean, new_running_var = rm, rv\n"
             "dims = [0] + list(range(2, x.dim()))\n"
             "save_mean = x.mean(dim=dims)\n"
             "save_invstd = 1 / torch.sqrt(x.var(dim=dims, unbiased=False) + eps)",
    .samples = bn_samples(true),
    .stubs = {&batchnorm2d_forward_stub, &batchnorm2d_backward_stub},
    .cost =
        [](const OpArgs& a) {
          const double n = double(a.tensor("x").numel());
          return std::pair{10.0 * n, 12.0 * n};
        },
}};

const RegisterOp batchnorm2d_eval_op{{
    .name = "batchnorm2d_eval",
    .doc = "eval-mode batch norm, torch.nn.functional.batch_norm(training=False): the running statistics",
    .inputs = kBnInputs,
    .attrs = {{"eps", AttrType::number, "1e-05", "added to the variance"}},
    .outputs = {"y"},
    .forward = [](Context& ctx, const OpArgs& a) -> NamedTensors {
      return {{"y", batchnorm_forward_eval(ctx, a.tensor("x"), a.tensor("gamma"), a.tensor("beta"),
                                           a.tensor("running_mean"), a.tensor("running_var"), float(a.number("eps")))}};
    },
    .torch = "y = F.batch_norm(x, running_mean, running_var, gamma, beta, training=False, eps=eps)",
    .samples = bn_samples(false),
    .stubs = {&batchnorm2d_forward_stub},
    .cost =
        [](const OpArgs& a) {
          const double n = double(a.tensor("x").numel());
          return std::pair{2.0 * n, 8.0 * n};
        },
}};

}  // namespace
}  // namespace fovea::ops
