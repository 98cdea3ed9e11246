// Tensor-core GEMM, the optimised kernels (design and cost model: kernels/tc_gemm_multistage.cuh), one per precision,
// registered in the tc_gemm_multistage_* stubs of kernels/tc_gemm.h.
#include "kernels/tc_gemm_multistage.cuh"

namespace fovea::FOVEA_KERNEL_NS {
namespace {

void tc_gemm_multistage_tf32(const Exec& ex, const SgemmParams& g, const float* A, const float* B, float* C) {
  tcg::launch_multistage<tcg::Tf32>("tc_gemm_multistage_tf32", ex, Precision::tf32, g, A, B, C);
}

void tc_gemm_multistage_bf16(const Exec& ex, const SgemmParams& g, const BFloat16* A, const BFloat16* B, BFloat16* C) {
  tcg::launch_multistage<tcg::Bf16>("tc_gemm_multistage_bf16", ex, Precision::bf16, g,
                                    reinterpret_cast<const uint16_t*>(A), reinterpret_cast<const uint16_t*>(B),
                                    reinterpret_cast<uint16_t*>(C));
}

void tc_gemm_multistage_fp16(const Exec& ex, const SgemmParams& g, const Half* A, const Half* B, Half* C) {
  tcg::launch_multistage<tcg::Fp16>("tc_gemm_multistage_fp16", ex, Precision::fp16, g,
                                    reinterpret_cast<const uint16_t*>(A), reinterpret_cast<const uint16_t*>(B),
                                    reinterpret_cast<uint16_t*>(C));
}

[[maybe_unused]] const bool registered =
    ops::tc_gemm_multistage_tf32_stub.define(kThisSlot, &tc_gemm_multistage_tf32) &&
    ops::tc_gemm_multistage_bf16_stub.define(kThisSlot, &tc_gemm_multistage_bf16) &&
    ops::tc_gemm_multistage_fp16_stub.define(kThisSlot, &tc_gemm_multistage_fp16);

}  // namespace
}  // namespace fovea::FOVEA_KERNEL_NS
