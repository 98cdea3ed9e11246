// Counter-based random numbers (Philox4x32-10, Salmon et al., SC'11): the value at index i of the
// stream (seed, offset) is a pure function of (seed, offset, i), so cpu, emu and cuda produce the
// same numbers whatever the thread layout or schedule.
#pragma once
#include <cmath>
#include <cstdint>

#include "core/hostdevice.h"

namespace fovea {

struct Philox4 {
  uint32_t v[4];
};

FOVEA_HD_INLINE uint32_t philox_mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  const uint64_t p = uint64_t(a) * uint64_t(b);
  *hi = uint32_t(p >> 32);
  return uint32_t(p);
}

// Ten rounds of Philox4x32 on counter c with key k.
FOVEA_HD_INLINE Philox4 philox4x32(Philox4 c, uint32_t k0, uint32_t k1) {
  constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, hi1;
    const uint32_t lo0 = philox_mulhilo(M0, c.v[0], &hi0);
    const uint32_t lo1 = philox_mulhilo(M1, c.v[2], &hi1);
    c = Philox4{{hi1 ^ c.v[1] ^ k0, lo1, hi0 ^ c.v[3] ^ k1, lo0}};
    k0 += W0;
    k1 += W1;
  }
  return c;
}

// The i-th 32-bit word of stream (seed, offset). Four consecutive indices share one Philox call.
FOVEA_HD_INLINE uint32_t philox_u32(uint64_t seed, uint64_t offset, uint64_t i) {
  const uint64_t block = i >> 2;
  const Philox4 r =
      philox4x32(Philox4{{uint32_t(block), uint32_t(block >> 32), uint32_t(offset), uint32_t(offset >> 32)}},
                 uint32_t(seed), uint32_t(seed >> 32));
  return r.v[i & 3];
}

// Uniform in [0, 1) with 24 random bits: exactly representable, identical on every device.
FOVEA_HD_INLINE float philox_uniform(uint64_t seed, uint64_t offset, uint64_t i) {
  return float(philox_u32(seed, offset, i) >> 8) * (1.0f / 16777216.0f);
}

// Standard normal by Box-Muller from words 2j and 2j+1 (j = i / 2); sin for odd i, cos for even.
// Uses double internally so that host and device round the same way.
FOVEA_HD_INLINE float philox_normal(uint64_t seed, uint64_t offset, uint64_t i) {
  const uint64_t j = i >> 1;
  const double u1 = (double(philox_u32(seed, offset, 2 * j) >> 8) + 1.0) * (1.0 / 16777216.0);  // (0, 1]
  const double u2 = double(philox_u32(seed, offset, 2 * j + 1) >> 8) * (1.0 / 16777216.0);
  const double r = sqrt(-2.0 * log(u1));
  const double a = 6.283185307179586 * u2;
  return float((i & 1) ? r * sin(a) : r * cos(a));
}

}  // namespace fovea
