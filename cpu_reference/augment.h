// Augmentation and normalisation of an image batch (AugmentParams, core/op_params.h): y = (warp(x) * scale -
// mean[c]) / stddev[c], one Affine per image, with the per-pixel arithmetic of core/augment.h. The oracle of
// kernels/augment.cu; the training loader (layers/data/transform.cpp) computes the same values while
// gathering samples on the host.
#pragma once
#include <cstdint>

#include "core/augment.h"
#include "layers/ops/augment.h"

namespace fovea::ref {

void augment_forward(const AugmentParams& p, const uint8_t* x, const Affine* warps, float* y);
void augment_forward(const AugmentParams& p, const float* x, const Affine* warps, float* y);

}  // namespace fovea::ref
