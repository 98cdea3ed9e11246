#include "core/op_params.h"

#include <cmath>

#include "core/error.h"

namespace fovea {

void Conv2dParams::validate(const char* op) const {
  auto positive = [&](const char* arg, int64_t v) {
    FOVEA_CHECK(v > 0, op, ": argument '", arg, "' must be > 0, got ", v, " (", str(), ")");
  };
  positive("N", N), positive("C", C), positive("H", H), positive("W", W);
  positive("K", K), positive("kernel_h", R), positive("kernel_w", S);
  positive("stride_h", stride_h), positive("stride_w", stride_w);
  positive("dilation_h", dil_h), positive("dilation_w", dil_w), positive("groups", groups);
  FOVEA_CHECK(pad_h >= 0 && pad_w >= 0, op, ": argument 'pad' must be >= 0, got ", pad_h, ",", pad_w);
  FOVEA_CHECK(C % groups == 0, op, ": argument 'groups'=", groups, " does not divide input channels C=", C);
  FOVEA_CHECK(K % groups == 0, op, ": argument 'groups'=", groups, " does not divide output channels K=", K);
  FOVEA_CHECK(H + 2 * pad_h >= dil_h * (R - 1) + 1, op, ": kernel height ", R, " (dilation ", dil_h,
              ") is larger than the padded input height ", H + 2 * pad_h);
  FOVEA_CHECK(W + 2 * pad_w >= dil_w * (S - 1) + 1, op, ": kernel width ", S, " (dilation ", dil_w,
              ") is larger than the padded input width ", W + 2 * pad_w);
}

std::string Conv2dParams::str() const {
  return cat("x[", N, ",", C, ",", H, ",", W, "] w[", K, ",", C / (groups ? groups : 1), ",", R, ",", S, "] stride ",
             stride_h, ",", stride_w, " pad ", pad_h, ",", pad_w, " dilation ", dil_h, ",", dil_w, " groups ", groups);
}

void Pool2dParams::validate(const char* op) const {
  auto positive = [&](const char* arg, int64_t v) {
    FOVEA_CHECK(v > 0, op, ": argument '", arg, "' must be > 0, got ", v, " (", str(), ")");
  };
  positive("N", N), positive("C", C), positive("H", H), positive("W", W);
  positive("kernel_h", kernel_h), positive("kernel_w", kernel_w);
  positive("stride_h", stride_h), positive("stride_w", stride_w);
  FOVEA_CHECK(pad_h >= 0 && pad_w >= 0, op, ": argument 'pad' must be >= 0, got ", pad_h, ",", pad_w);
  // PyTorch: "pad should be at most half of effective kernel size".
  FOVEA_CHECK(2 * pad_h <= kernel_h && 2 * pad_w <= kernel_w, op, ": argument 'pad'=", pad_h, ",", pad_w,
              " must be at most half the kernel ", kernel_h, ",", kernel_w);
  FOVEA_CHECK(H + 2 * pad_h >= kernel_h && W + 2 * pad_w >= kernel_w, op, ": kernel ", kernel_h, "x", kernel_w,
              " is larger than the padded input ", H + 2 * pad_h, "x", W + 2 * pad_w);
}

std::string Pool2dParams::str() const {
  return cat("x[", N, ",", C, ",", H, ",", W, "] kernel ", kernel_h, ",", kernel_w, " stride ", stride_h, ",", stride_w,
             " pad ", pad_h, ",", pad_w);
}

// ---- appended by the CPU reference.

namespace {
void check_positive(const char* op, const char* arg, int64_t v, const std::string& where) {
  FOVEA_CHECK(v > 0, op, ": argument '", arg, "' must be > 0, got ", v, " (", where, ")");
}
void check_finite_nonneg(const char* op, const char* arg, double v) {
  FOVEA_CHECK(std::isfinite(v) && v >= 0.0, op, ": argument '", arg, "' must be finite and >= 0, got ", v);
}
}  // namespace

void LinearParams::validate(const char* op) const {
  check_positive(op, "N", N, str());
  check_positive(op, "in_features", in_features, str());
  check_positive(op, "out_features", out_features, str());
}

std::string LinearParams::str() const {
  return cat("x[", N, ",", in_features, "] w[", out_features, ",", in_features, "]");
}

void BatchNormParams::validate(const char* op) const {
  check_positive(op, "N", N, str()), check_positive(op, "C", C, str());
  check_positive(op, "H", H, str()), check_positive(op, "W", W, str());
  FOVEA_CHECK(std::isfinite(eps) && eps > 0.0, op, ": argument 'eps' must be finite and > 0, got ", eps);
  FOVEA_CHECK(momentum >= 0.0 && momentum <= 1.0, op, ": argument 'momentum' must be in [0, 1], got ", momentum);
  // PyTorch: "Expected more than 1 value per channel when training".
  FOVEA_CHECK(!training || N * H * W > 1, op, ": training needs more than 1 value per channel, got N*H*W=", N * H * W,
              " (", str(), ")");
}

std::string BatchNormParams::str() const {
  return cat("x[", N, ",", C, ",", H, ",", W, "] eps ", eps, " momentum ", momentum, training ? " training" : " eval");
}

void LrnParams::validate(const char* op) const {
  check_positive(op, "N", N, str()), check_positive(op, "C", C, str());
  check_positive(op, "H", H, str()), check_positive(op, "W", W, str());
  check_positive(op, "size", size, str());
  check_finite_nonneg(op, "alpha", alpha);
  check_finite_nonneg(op, "beta", beta);
  FOVEA_CHECK(std::isfinite(k) && k > 0.0, op, ": argument 'k' must be finite and > 0, got ", k);
}

std::string LrnParams::str() const {
  return cat("x[", N, ",", C, ",", H, ",", W, "] size ", size, " alpha ", alpha, " beta ", beta, " k ", k);
}

void DropoutParams::validate(const char* op) const {
  FOVEA_CHECK(p >= 0.0 && p < 1.0, op, ": argument 'p' must be in [0, 1), got ", p);
}

void AugmentParams::validate(const char* op) const {
  FOVEA_CHECK(N >= 0 && H >= 0 && W >= 0, op, ": sizes must be >= 0, got N=", N, " H=", H, " W=", W);
  FOVEA_CHECK(C >= 1 && C <= kMaxChannels, op, ": argument 'C' must be in [1, ", kMaxChannels, "], got ", C);
  FOVEA_CHECK(std::isfinite(scale) && scale > 0, op, ": argument 'scale' must be finite and > 0, got ", scale);
  if (normalize)
    for (int64_t c = 0; c < C; ++c)
      FOVEA_CHECK(std::isfinite(mean[c]) && std::isfinite(stddev[c]) && stddev[c] > 0, op, ": channel ", c,
                  " has mean ", mean[c], " and stddev ", stddev[c], " (the stddev must be finite and > 0)");
}

void CrossEntropyParams::validate(const char* op) const {
  FOVEA_CHECK(N > 0, op, ": argument 'N' must be > 0, got ", N);
  FOVEA_CHECK(C > 0, op, ": argument 'C' must be > 0, got ", C);
  FOVEA_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, op,
              ": argument 'label_smoothing' must be in [0, 1], got ", label_smoothing);
}

void SgdParams::validate(const char* op) const {
  check_finite_nonneg(op, "lr", lr);
  check_finite_nonneg(op, "momentum", momentum);
  FOVEA_CHECK(std::isfinite(dampening), op, ": argument 'dampening' must be finite, got ", dampening);
  check_finite_nonneg(op, "weight_decay", weight_decay);
  // PyTorch: "Nesterov momentum requires a momentum and zero dampening".
  FOVEA_CHECK(!nesterov || (momentum > 0.0 && dampening == 0.0), op,
              ": argument 'nesterov' requires momentum > 0 and dampening 0, got momentum ", momentum, " dampening ",
              dampening);
}

void AdamWParams::validate(const char* op) const {
  check_finite_nonneg(op, "lr", lr);
  FOVEA_CHECK(beta1 >= 0.0 && beta1 < 1.0, op, ": argument 'beta1' must be in [0, 1), got ", beta1);
  FOVEA_CHECK(beta2 >= 0.0 && beta2 < 1.0, op, ": argument 'beta2' must be in [0, 1), got ", beta2);
  check_finite_nonneg(op, "eps", eps);
  check_finite_nonneg(op, "weight_decay", weight_decay);
}

}  // namespace fovea
