// The optimised tensor-core GEMM and convolution with a planted bug (tests/tc_gemm_planted_kernels.h): the kernel
// template of kernels/tc_gemm_multistage.cuh instantiated at BF16 with a compile-time switch that the library never
// sets.
#include "tests/tc_gemm_planted_kernels.h"

#include "kernels/conv2d_tc_igemm.cuh"
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

void conv2d_tc_planted(const Exec& ex, test::TcGemmPlant bug, const Conv2dParams& p, const BFloat16* X,
                       const BFloat16* W, BFloat16* Y) {
  const auto* x = reinterpret_cast<const uint16_t*>(X);
  const auto* w = reinterpret_cast<const uint16_t*>(W);
  auto* y = reinterpret_cast<uint16_t*>(Y);
  switch (bug) {
    case test::TcGemmPlant::missing_wait:
      tcg::launch_conv_fprop<tcg::Bf16, tcg::Plant::missing_wait>("conv2d_tc_planted_missing_wait", p, x, w, nullptr, y,
                                                                  ex.stream);
      return;
    case test::TcGemmPlant::wrong_fragment:
      tcg::launch_conv_fprop<tcg::Bf16, tcg::Plant::wrong_fragment>("conv2d_tc_planted_wrong_fragment", p, x, w,
                                                                    nullptr, y, ex.stream);
      return;
  }
  FOVEA_FAIL("conv2d_tc_planted: unknown bug ", int(bug));
}

[[maybe_unused]] const bool registered = test::tc_gemm_planted_stub.define(kThisSlot, &tc_gemm_planted) &&
                                         test::conv2d_tc_planted_stub.define(kThisSlot, &conv2d_tc_planted);

}  // namespace
}  // namespace fovea::FOVEA_KERNEL_NS
