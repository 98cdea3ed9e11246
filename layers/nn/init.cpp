#include "layers/nn/init.h"

#include <cmath>

#include "core/error.h"

namespace fovea::nn {

InitSpec parse_init(std::string_view text) {
  InitSpec s;
  if (text == "pytorch" || text == "default") {
    s.scheme = InitScheme::pytorch;
  } else if (text == "kaiming" || text == "kaiming_normal" || text == "kaiming_out") {
    s.scheme = InitScheme::kaiming_normal;
    s.fan_out = true;
  } else if (text == "kaiming_in") {
    s.scheme = InitScheme::kaiming_normal;
  } else if (text == "kaiming_uniform") {
    s.scheme = InitScheme::kaiming_uniform;
  } else if (text == "xavier" || text == "xavier_uniform") {
    s.scheme = InitScheme::xavier_uniform;
  } else if (text == "xavier_normal") {
    s.scheme = InitScheme::xavier_normal;
  } else if (text == "normal") {
    s.scheme = InitScheme::normal;
  } else {
    FOVEA_FAIL("init: unknown scheme '", text,
               "' (expected pytorch, kaiming, kaiming_in, kaiming_uniform, xavier, xavier_normal or normal)");
  }
  return s;
}

std::string init_name(const InitSpec& s) {
  switch (s.scheme) {
    case InitScheme::pytorch: return "pytorch";
    case InitScheme::kaiming_normal: return s.fan_out ? "kaiming" : "kaiming_in";
    case InitScheme::kaiming_uniform: return "kaiming_uniform";
    case InitScheme::xavier_uniform: return "xavier";
    case InitScheme::xavier_normal: return "xavier_normal";
    case InitScheme::normal: return "normal(" + std::to_string(s.std) + ")";
  }
  return "?";
}

Fans weight_fans(const Shape& w) {
  FOVEA_CHECK(w.ndim() >= 2, "init: a weight needs at least 2 dimensions, got ", w.str());
  int64_t receptive = 1;
  for (int i = 2; i < w.ndim(); ++i) receptive *= w[i];
  return {w[1] * receptive, w[0] * receptive};
}

void init_weight(ops::Context& ctx, Tensor& w, const InitSpec& s, uint64_t seed, uint64_t offset) {
  const Fans f = weight_fans(w.shape());
  switch (s.scheme) {
    case InitScheme::pytorch: {
      const double b = 1.0 / std::sqrt(double(f.in));
      ops::fill_uniform(ctx, w, float(-b), float(b), seed, offset);
      return;
    }
    case InitScheme::kaiming_normal:
      ops::fill_normal(ctx, w, 0.0f, float(s.gain / std::sqrt(double(s.fan_out ? f.out : f.in))), seed, offset);
      return;
    case InitScheme::kaiming_uniform: {
      const double b = s.gain * std::sqrt(3.0 / double(s.fan_out ? f.out : f.in));
      ops::fill_uniform(ctx, w, float(-b), float(b), seed, offset);
      return;
    }
    case InitScheme::xavier_uniform: {
      const double b = std::sqrt(6.0 / double(f.in + f.out));
      ops::fill_uniform(ctx, w, float(-b), float(b), seed, offset);
      return;
    }
    case InitScheme::xavier_normal:
      ops::fill_normal(ctx, w, 0.0f, float(std::sqrt(2.0 / double(f.in + f.out))), seed, offset);
      return;
    case InitScheme::normal:
      FOVEA_CHECK(s.std > 0, "init: normal needs std > 0, got ", s.std);
      ops::fill_normal(ctx, w, 0.0f, float(s.std), seed, offset);
      return;
  }
}

void init_bias(ops::Context& ctx, Tensor& b, const InitSpec& s, int64_t fan_in, uint64_t seed, uint64_t offset) {
  if (s.scheme == InitScheme::pytorch) {
    const double bound = fan_in > 0 ? 1.0 / std::sqrt(double(fan_in)) : 0.0;
    ops::fill_uniform(ctx, b, float(-bound), float(bound), seed, offset);
  } else {
    ops::fill_value(ctx, b, 0.0f);
  }
}

}  // namespace fovea::nn
