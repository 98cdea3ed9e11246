// The optimised tensor-core GEMM with a planted bug (tests/tc_gemm_planted_kernels.h): the kernel template of
// kernels/tc_gemm_multistage.cuh instantiated at BF16 with a compile-time switch that the library never sets.
#include "tests/tc_gemm_planted_kernels.h"

#include "kernels/tc_gemm_multistage.cuh"

namespace fovea::FOVEA_KERNEL_NS {
namespace {

void tc_gemm_planted(const Exec& ex, test::TcGemmPlant bug, const SgemmParams& g, const BFloat16* A, const BFloat16* B,
                     BFloat16* C) {
  const auto* a = reinterpret_cast<const uint16_t*>(A);
  const auto* b = reinterpret_cast<const uint16_t*>(B);
  auto* c = reinterpret_cast<uint16_t*>(C);
  switch (bug) {
    case test::TcGemmPlant::missing_wait:
      tcg::launch_multistage<tcg::Bf16, tcg::Plant::missing_wait>("tc_gemm_planted_missing_wait", g, a, b, c,
                                                                  ex.stream);
      return;
    case test::TcGemmPlant::wrong_fragment:
      tcg::launch_multistage<tcg::Bf16, tcg::Plant::wrong_fragment>("tc_gemm_planted_wrong_fragment", g, a, b, c,
                                                                    ex.stream);
      return;
  }
  FOVEA_FAIL("tc_gemm_planted: unknown bug ", int(bug));
}

[[maybe_unused]] const bool registered = test::tc_gemm_planted_stub.define(kThisSlot, &tc_gemm_planted);

}  // namespace
}  // namespace fovea::FOVEA_KERNEL_NS
