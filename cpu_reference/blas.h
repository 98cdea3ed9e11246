// The BLAS under the CPU reference (OpenBLAS) and the kernels it runs on this CPU.
//
// Debian's OpenBLAS is built with DYNAMIC_ARCH: at load it picks one of its kernel sets from the CPU it
// recognises, and a CPU newer than the release falls back to an older set (0.3.21 runs AVX2 "Haswell" kernels on
// AMD Zen 4/5 and Prescott SSE3 kernels on some new Intel Xeons, though both have AVX-512). Before the first BLAS
// call, fovea reads the CPU's features and, where OpenBLAS chose a weaker set than the CPU can run, switches it
// (OpenBLAS's own OPENBLAS_CORETYPE mechanism, applied in-process): the AVX-512 "SkylakeX" kernels on a CPU
// with AVX-512 F/BW/DQ/VL, "Haswell" on one with AVX2 and FMA. Measured on this project's AMD EPYC (Zen 5):
// SGEMM 1.6-2.0x faster at the shapes of the CPU reference's convolutions.
//   OPENBLAS_CORETYPE=NAME   the user's choice, left alone
//   FOVEA_BLAS_KERNELS=NAME  a kernel set for fovea to select; =openblas keeps OpenBLAS's own choice
// Results stay bitwise reproducible run to run on one machine; another kernel set sums in another order.
#pragma once
#include <string>
#include <string_view>

namespace fovea::ref {

struct CpuFeatures {
  bool sse3 = false, avx = false, avx2 = false, fma = false;
  bool avx512f = false, avx512bw = false, avx512dq = false, avx512vl = false, avx512_bf16 = false, avx512_fp16 = false;
  std::string str() const;  // "avx2 fma avx512f ..." (the ones present)
};
CpuFeatures cpu_features();  // of this CPU (cpuid)

// The kernel set fovea selects for a CPU with `f` when OpenBLAS chose `current` (a name as
// openblas_get_corename() returns it, any case), or "" to keep `current`.
std::string better_openblas_kernels(const CpuFeatures& f, std::string_view current);

struct BlasInfo {
  std::string library;    // openblas_get_config()
  std::string kernels;    // openblas_get_corename() after fovea's choice
  std::string chosen_by;  // who chose them, in words
  std::string error;      // FOVEA_BLAS_KERNELS named a set this OpenBLAS lacks (then OpenBLAS's choice stands)
};
// Initialises the BLAS first (see above); the same object every call; never throws (programs check .error).
const BlasInfo& blas_info();

}  // namespace fovea::ref
