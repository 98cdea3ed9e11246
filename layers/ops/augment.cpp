#include "layers/ops/augment.h"

#include <cmath>

#include "core/error.h"
#include "layers/ops/context.h"
#include "layers/ops/registry.h"

namespace fovea {

void AugmentParams::validate(const char* op) const {
  FOVEA_CHECK(N >= 0 && H >= 0 && W >= 0, op, ": sizes must be >= 0, got N=", N, " H=", H, " W=", W);
  FOVEA_CHECK(C >= 1 && C <= kMaxChannels, op, ": argument 'C' must be in [1, ", kMaxChannels, "], got ", C);
  FOVEA_CHECK(std::isfinite(scale) && scale > 0, op, ": argument 'scale' must be finite and > 0, got ", scale);
  if (normalize)
    for (int64_t c = 0; c < C; ++c)
      FOVEA_CHECK(std::isfinite(mean[c]) && std::isfinite(stddev[c]) && stddev[c] > 0, op, ": channel ", c,
                  " has mean ", mean[c], " and stddev ", stddev[c], " (the stddev must be finite and > 0)");
}

namespace ops {

AugmentParams augment_params(const Shape& x, DType dtype, bool warp, const std::vector<float>& mean,
                             const std::vector<float>& stddev) {
  const char* op = "augment";
  FOVEA_CHECK(dtype == DType::uint8 || dtype == DType::float32, op, ": argument 'x' must be uint8 or float32, got ",
              dtype_name(dtype));
  FOVEA_CHECK(x.ndim() == 4, op, ": argument 'x' must be [N, C, H, W], got ", x.str());
  AugmentParams p;
  p.N = x[0], p.C = x[1], p.H = x[2], p.W = x[3];
  p.scale = dtype == DType::uint8 ? 1.0f / 255.0f : 1.0f;
  p.warp = warp;
  FOVEA_CHECK(mean.size() == stddev.size() && (mean.empty() || int64_t(mean.size()) == p.C), op, ": ", mean.size(),
              " means and ", stddev.size(), " deviations for ", p.C,
              " channels (give one of each per channel, or none)");
  p.normalize = !mean.empty();
  FOVEA_CHECK(p.C <= AugmentParams::kMaxChannels, op, ": argument 'x' has ", p.C, " channels, at most ",
              AugmentParams::kMaxChannels, " are supported");
  for (size_t c = 0; c < mean.size(); ++c) p.mean[c] = mean[c], p.stddev[c] = stddev[c];
  p.validate(op);
  return p;
}

Tensor augment_forward(Context& ctx, const Tensor& x, const Tensor& warps, const std::vector<float>& mean,
                       const std::vector<float>& stddev) {
  const char* op = "augment";
  FOVEA_CHECK(x.defined(), op, ": argument 'x' is missing");
  check_tensor(ctx, op, "x", x, x.dtype());
  const AugmentParams p = augment_params(x.shape(), x.dtype(), warps.defined(), mean, stddev);
  if (p.warp) {
    check_tensor(ctx, op, "warps", warps);
    FOVEA_CHECK(warps.shape() == Shape({p.N, 6}), op, ": argument 'warps' must be [", p.N, ", 6], got ",
                warps.shape().str());
  }
  Tensor y = empty_like(ctx, x.shape());
  const auto* w = p.warp ? reinterpret_cast<const Affine*>(warps.data<float>()) : nullptr;
  if (x.dtype() == DType::uint8)
    augment_forward_u8_stub(ctx.exec(), p, x.data<uint8_t>(), w, y.data<float>());
  else
    augment_forward_f32_stub(ctx.exec(), p, x.data<float>(), w, y.data<float>());
  return y;
}

}  // namespace ops
}  // namespace fovea

// ---------------------------------------------------------------- registry entry

namespace fovea::ops {
namespace {

const RegisterOp augment_op{{
    .name = "augment",
    .doc = "warps (one affine per image, bilinear, zeros outside) and normalises an image batch: "
           "y = (warp(x) * scale - mean[c]) / std[c], scale 1/255 for uint8 pixels",
    .inputs = {{.name = "x", .fill = Fill::pixels, .doc = "[N, C, H, W] float (or uint8)", .also = {DType::uint8}},
               {.name = "warps",
                .optional = true,
                .fill = Fill::warps,
                .doc = "[N, 6]: output pixel (x, y) reads the source at (a0 x + a1 y + a2, a3 x + a4 y + a5)"}},
    .attrs = {{"mean", AttrType::numbers, "", "per channel (none: no normalisation)"},
              {"std", AttrType::numbers, "", "per channel, with mean"}},
    .outputs = {"y"},
    .forward = [](Context& ctx, const OpArgs& a) -> NamedTensors {
      return {{"y", augment_forward(ctx, a.tensor("x"), a.optional("warps"), a.numbers("mean"), a.numbers("std"))}};
    },
    // An independent implementation: the same sampling rule, vectorised in torch (x is float64 here; a uint8
    // input arrives as its integer values).
    .torch = "v = x * (1.0 / 255.0 if x_dtype == 'uint8' else 1.0)\n"
             "N, C, H, W = v.shape\n"
             "if warps is not None:\n"
             "    A = warps.float()  # the kernel computes source coordinates in float32\n"
             "    gy, gx = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32),"
             " indexing='ij')\n"
             "    sx = A[:, 0, None, None] * gx + A[:, 1, None, None] * gy + A[:, 2, None, None]\n"
             "    sy = A[:, 3, None, None] * gx + A[:, 4, None, None] * gy + A[:, 5, None, None]\n"
             "    fx, fy = torch.floor(sx), torch.floor(sy)\n"
             "    tx, ty = (sx - fx).double(), (sy - fy).double()\n"
             "    out = torch.zeros_like(v)\n"
             "    for dy in (0, 1):\n"
             "        for dx in (0, 1):\n"
             "            xi, yi = fx.long() + dx, fy.long() + dy\n"
             "            w = (tx if dx else 1 - tx) * (ty if dy else 1 - ty)\n"
             "            ok = (xi >= 0) & (xi < W) & (yi >= 0) & (yi < H)\n"
             "            idx = (yi.clamp(0, H - 1) * W + xi.clamp(0, W - 1)).view(N, 1, H * W).expand(N, C, H * W)\n"
             "            tap = torch.gather(v.reshape(N, C, H * W), 2, idx).view(N, C, H, W)\n"
             "            out = out + (w * ok)[:, None] * tap\n"
             "    v = out\n"
             "if mean:\n"
             "    v = (v - torch.tensor(mean, dtype=v.dtype)[None, :, None, None]) / "
             "torch.tensor(std, dtype=v.dtype)[None, :, None, None]\n"
             "y = v",
    .samples = {{"n1_c1", {{"x", {1, 1, 5, 5}}}},
                {"normalise_only", {{"x", {2, 3, 4, 6}}}, {{"mean", "0.5,0.4,0.3"}, {"std", "0.2,0.25,0.3"}}},
                {"warp", {{"x", {4, 3, 7, 9}}, {"warps", {4, 6}}}},
                {"warp_normalise",
                 {{"x", {4, 3, 8, 8}}, {"warps", {4, 6}}},
                 {{"mean", "0.49,0.48,0.45"}, {"std", "0.25,0.24,0.26"}}},
                {"cifar_n128",
                 {{"x", {128, 3, 32, 32}}, {"warps", {128, 6}}},
                 {{"mean", "0.5,0.5,0.5"}, {"std", "0.25,0.25,0.25"}},
                 true}},
    .stubs = {&augment_forward_f32_stub, &augment_forward_u8_stub},
    .cost =
        [](const OpArgs& a) {
          const double n = double(a.tensor("x").numel());
          return std::pair{12.0 * n, 8.0 * n};
        },
}};

}  // namespace
}  // namespace fovea::ops
