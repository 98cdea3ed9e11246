// CUDA's built-in vector types for the emulator, in namespace fovea::emu (device_api.h brings them to global
// scope for kernel files). A binary links the emulator build and the nvcc build of the same kernels, so these
// must never be global types of their own: CUDA's ::dim3 and ours would then be two definitions of one name.
#pragma once
#include <cstddef>

namespace fovea::emu {

// Alignments follow CUDA's vector_types.h: 2- and 4-vectors are aligned to their size up to 16 bytes
// (float2: 8, float4/int4/double2: 16); 1- and 3-vectors keep the element's alignment.
#define FOVEA_EMU_VECTOR_TYPES(T, name)                             \
  struct name##1 {                                                  \
    T x;                                                            \
  };                                                                \
  struct alignas(2 * sizeof(T) < 16 ? 2 * sizeof(T) : 16) name##2 { \
    T x, y;                                                         \
  };                                                                \
  struct name##3 {                                                  \
    T x, y, z;                                                      \
  };                                                                \
  struct alignas(4 * sizeof(T) < 16 ? 4 * sizeof(T) : 16) name##4 { \
    T x, y, z, w;                                                   \
  };                                                                \
  constexpr name##1 make_##name##1(T x) {                           \
    return name##1 {x};                                             \
  }                                                                 \
  constexpr name##2 make_##name##2(T x, T y) {                      \
    return name##2 {x, y};                                          \
  }                                                                 \
  constexpr name##3 make_##name##3(T x, T y, T z) {                 \
    return name##3 {x, y, z};                                       \
  }                                                                 \
  constexpr name##4 make_##name##4(T x, T y, T z, T w) {            \
    return name##4 {x, y, z, w};                                    \
  }

FOVEA_EMU_VECTOR_TYPES(signed char, char)
FOVEA_EMU_VECTOR_TYPES(unsigned char, uchar)
FOVEA_EMU_VECTOR_TYPES(short, short)
FOVEA_EMU_VECTOR_TYPES(unsigned short, ushort)
FOVEA_EMU_VECTOR_TYPES(int, int)
FOVEA_EMU_VECTOR_TYPES(unsigned int, uint)
FOVEA_EMU_VECTOR_TYPES(long, long)
FOVEA_EMU_VECTOR_TYPES(unsigned long, ulong)
FOVEA_EMU_VECTOR_TYPES(long long, longlong)
FOVEA_EMU_VECTOR_TYPES(unsigned long long, ulonglong)
FOVEA_EMU_VECTOR_TYPES(float, float)
FOVEA_EMU_VECTOR_TYPES(double, double)
#undef FOVEA_EMU_VECTOR_TYPES

static_assert(sizeof(float4) == 16 && alignof(float4) == 16 && alignof(int4) == 16 && alignof(double2) == 16);
static_assert(alignof(float2) == 8 && alignof(int2) == 8 && sizeof(float3) == 12 && alignof(float3) == 4);

struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};

}  // namespace fovea::emu
