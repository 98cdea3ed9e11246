// Qualifiers for code shared by host C++, the emulator build and nvcc.
#pragma once
#if defined(__CUDACC__)
#define FOVEA_HD __host__ __device__
#define FOVEA_HD_INLINE __host__ __device__ __forceinline__
#else
#define FOVEA_HD
#define FOVEA_HD_INLINE inline
#endif
