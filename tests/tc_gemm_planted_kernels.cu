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
      tcg::launch_multistage<tcg::Bf16, tcg::Plant::missing_wait>("tc_gemm_planted_missing_wait", ex, Precision::bf16,
                                                                  g, a, b, c);
      return;
    case test::TcGemmPlant::wrong_fragment:
      tcg::launch_multistage<tcg::Bf16, tcg::Plant::wrong_fragment>("tc_gemm_planted_wrong_fragment", ex,
                                                                    Precision::bf16, g, a, b, c);
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
                                                                  nullptr, ex.stream);
      return;
    case test::TcGemmPlant::wrong_fragment:
      tcg::launch_conv_fprop<tcg::Bf16, tcg::Plant::wrong_fragment>("conv2d_tc_planted_wrong_fragment", p, x, w,
                                                                    nullptr, y, nullptr, ex.stream);
      return;
  }
  FOVEA_FAIL("conv2d_tc_planted: unknown bug ", int(bug));
}

template <tcg::Plant kPlant>
void wgrad_planted(const char* op, const Exec& ex, const Conv2dParams& p, const uint16_t* x, const uint16_t* dy,
                   float* dw) {
  using M = tcg::Ms<tcg::Bf16>;
  const tcg::ConvArgs c = tcg::conv_args<tcg::Pass::fprop>(op, p);
  FOVEA_CHECK(tcg::conv2d_tc_wgrad_fast<tcg::Bf16>(c, x, dy), op, ": ", p.str(), " does not take the fast path");
  const int ktiles = (c.M + M::kBK - 1) / M::kBK;
  const dim3 grid(unsigned((c.Kred + M::kTile - 1) / M::kTile), unsigned((c.cols + M::kTile - 1) / M::kTile),
                  unsigned(p.groups));
  const cudaError_t err = cudaFuncSetAttribute(tcg::conv2d_tc_wgrad_kernel<tcg::Bf16, true, kPlant>,
                                               cudaFuncAttributeMaxDynamicSharedMemorySize, M::kSmemBytes);
  FOVEA_CHECK(err == cudaSuccess, op, ": cudaFuncSetAttribute failed: ", cudaGetErrorString(err));
  FOVEA_LAUNCH((tcg::conv2d_tc_wgrad_kernel<tcg::Bf16, true, kPlant>), grid, M::kThreads, M::kSmemBytes, ex.stream, c,
               1, ktiles, x, dy, dw);
}

void conv2d_tc_wgrad_planted(const Exec& ex, int bug, const Conv2dParams& p, const BFloat16* X, const BFloat16* DY,
                             float* dw) {
  const auto* x = reinterpret_cast<const uint16_t*>(X);
  const auto* dy = reinterpret_cast<const uint16_t*>(DY);
  switch (bug) {
    case 0: return wgrad_planted<tcg::Plant::none>("conv2d_tc_wgrad_planted_none", ex, p, x, dy, dw);
    case int(test::TcGemmPlant::missing_wait):
      return wgrad_planted<tcg::Plant::missing_wait>("conv2d_tc_wgrad_planted_missing_wait", ex, p, x, dy, dw);
    case int(test::TcGemmPlant::wrong_fragment):
      return wgrad_planted<tcg::Plant::wrong_fragment>("conv2d_tc_wgrad_planted_wrong_fragment", ex, p, x, dy, dw);
  }
  FOVEA_FAIL("conv2d_tc_wgrad_planted: unknown bug ", bug);
}

[[maybe_unused]] const bool registered = test::tc_gemm_planted_stub.define(kThisSlot, &tc_gemm_planted) &&
                                         test::conv2d_tc_planted_stub.define(kThisSlot, &conv2d_tc_planted) &&
                                         test::conv2d_tc_wgrad_planted_stub.define(kThisSlot, &conv2d_tc_wgrad_planted);

}  // namespace
}  // namespace fovea::FOVEA_KERNEL_NS
