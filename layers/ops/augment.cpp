#include "layers/ops/augment.h"

#include <cmath>

#include "core/error.h"
#include "layers/ops/context.h"

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
