// Flatten (torch.flatten(x, 1)): [N, C, H, W] -> [N, C*H*W] is a reshape of a contiguous NCHW
// array, so there is nothing to compute in either direction: the same buffer is read as the
// linear layer's input, and the linear layer's dx is the conv stack's dy as it is.
#pragma once
#include <cstdint>

namespace fovea::ref {

// Features per sample after flattening [N, C, H, W].
constexpr int64_t flatten_features(int64_t C, int64_t H, int64_t W) {
  return C * H * W;
}

}  // namespace fovea::ref
