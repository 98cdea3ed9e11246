// Augmentation on the training device (kernels/augment.cu): the loader gathers raw pixels and computes
// one Affine per image on the host (cheap: a few Philox draws), the kernel warps, scales and normalises
// every pixel with the arithmetic of core/augment.h. Same values as the host loader and
// cpu_reference/augment.h: bitwise on the emulator, within float contraction on a GPU.
#pragma once
#include <cstdint>

#include "core/augment.h"
#include "core/op_params.h"
#include "kernels/api.h"

#define FOVEA_AUGMENT_KERNELS                                                                                         \
  /* x [N,C,H,W] uint8 or float, warps [N] (ignored unless p.warp), y [N,C,H,W] float; y must not alias x. */         \
  void augment_forward(const AugmentParams& p, const uint8_t* x, const Affine* warps, float* y, StreamHandle stream); \
  void augment_forward(const AugmentParams& p, const float* x, const Affine* warps, float* y, StreamHandle stream);

FOVEA_DECLARE_KERNELS(FOVEA_AUGMENT_KERNELS)
