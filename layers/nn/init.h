// Weight initialisation from the Philox stream (seed, offset): the same numbers on cpu, emu and cuda.
//   pytorch         torch.nn.Conv2d / Linear defaults: weight U(-b, b), b = 1/sqrt(fan_in)
//                   (kaiming_uniform_ with a = sqrt(5)); bias U(-b, b) too
//   kaiming_normal  N(0, gain^2 / fan), gain sqrt(2) (ReLU), fan = fan_in or fan_out; bias 0
//   kaiming_uniform U(-b, b), b = gain * sqrt(3 / fan); bias 0
//   xavier_uniform  U(-b, b), b = sqrt(6 / (fan_in + fan_out)); bias 0
//   xavier_normal   N(0, 2 / (fan_in + fan_out)); bias 0
//   normal          N(0, std^2) (Caffe's "gaussian" filler); bias 0
// Fans as torch.nn.init computes them: fan_in = C/groups * R * S (conv) or in_features; fan_out = K * R * S
// or out_features.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "core/tensor.h"
#include "layers/ops/ops.h"

namespace fovea::nn {

enum class InitScheme : uint8_t { pytorch, kaiming_normal, kaiming_uniform, xavier_uniform, xavier_normal, normal };

struct InitSpec {
  InitScheme scheme = InitScheme::pytorch;
  double std = 0.01;                 // normal only
  bool fan_out = false;              // kaiming: use fan_out (torchvision's ResNets) instead of fan_in
  double gain = 1.4142135623730951;  // kaiming: sqrt(2), for ReLU
};

// "pytorch", "kaiming" (= kaiming_normal, fan_out), "kaiming_in", "kaiming_uniform", "xavier"
// (= xavier_uniform), "xavier_normal", "normal" (std from the `std` argument). Throws naming the text.
InitSpec parse_init(std::string_view text);
std::string init_name(const InitSpec& s);

// Fans of a weight of shape [out, in] or [K, C/groups, R, S].
struct Fans {
  int64_t in = 1, out = 1;
};
Fans weight_fans(const Shape& w);

// Fills the weight / bias in place on their device. `offset` selects the Philox stream.
void init_weight(ops::Context& ctx, Tensor& w, const InitSpec& s, uint64_t seed, uint64_t offset);
void init_bias(ops::Context& ctx, Tensor& b, const InitSpec& s, int64_t fan_in, uint64_t seed, uint64_t offset);

}  // namespace fovea::nn
