// Fills from the Philox stream (core/philox.h): element i gets the i-th number of (seed, offset),
// so every device produces the same tensor.
#pragma once
#include "kernels/api.h"

#define FOVEA_FILL_KERNELS                                                                                         \
  void fill_uniform(float* y, int64_t n, float lo, float hi, uint64_t seed, uint64_t offset, StreamHandle stream); \
  void fill_normal(float* y, int64_t n, float mean, float stddev, uint64_t seed, uint64_t offset,                  \
                   StreamHandle stream);                                                                           \
  void fill_value(float* y, int64_t n, float value, StreamHandle stream);
FOVEA_DECLARE_KERNELS(FOVEA_FILL_KERNELS)
