// See tensor_core_test_kernels.h. Ordinary kernels on the instructions of kernels/mma.cuh; some carry planted
// bugs the emulator must expose (never launch those on a GPU).
#include "kernels/mma.cuh"
#include "tests/tensor_core_test_kernels.h"

namespace fovea::FOVEA_KERNEL_NS {
namespace {

__global__ void mma_kernel(int kind, const uint32_t* a_, const uint32_t* b_, const float* c_, float* d_) {
  const int lane = threadIdx.x, w = blockIdx.x;
  uint32_t a[4], b[2];
  float c[4], d[4];
  for (int r = 0; r < 4; ++r) a[r] = a_[(w * 32 + lane) * 4 + r], c[r] = c_[(w * 32 + lane) * 4 + r];
  for (int r = 0; r < 2; ++r) b[r] = b_[(w * 32 + lane) * 2 + r];
  if (kind == 0)
    tc::mma_m16n8k8_tf32(d, a, b, c);
  else if (kind == 1)
    tc::mma_m16n8k16_bf16(d, a, b, c);
  else
    tc::mma_m16n8k16_f16(d, a, b, c);
  for (int r = 0; r < 4; ++r) d_[(w * 32 + lane) * 4 + r] = d[r];
}

__global__ void mma_partial_warp_kernel(float* d_) {
  if (threadIdx.x >= 16) return;
  const uint32_t a[4] = {0, 0, 0, 0}, b[2] = {0, 0};
  const float c[4] = {1, 1, 1, 1};
  float d[4];
  tc::mma_m16n8k16_bf16(d, a, b, c);
  d_[threadIdx.x] = d[0];
}

template <int kNum, bool kTrans>
__global__ void ldmatrix_kernel(const uint16_t* src, const int* row_of_lane, int misalign, uint32_t* out) {
  __shared__ __align__(16) uint16_t rows[32][16];  // 8 values per row, then 16 bytes of padding
  const int lane = threadIdx.x;
  for (int i = 0; i < 8; ++i) rows[lane][i] = src[lane * 8 + i], rows[lane][8 + i] = 0xdead;
  __syncwarp();
  const char* p = reinterpret_cast<const char*>(&rows[row_of_lane[lane]][0]) + (lane == 3 ? misalign : 0);
  uint32_t r[kNum];
  tc::ldmatrix<kNum, kTrans>(r, p);
  for (int j = 0; j < 4; ++j) out[lane * 4 + j] = j < kNum ? r[j] : 0u;
}

template <int kBytes>
__device__ void copy_sized(void* dst, const void* src, int src_bytes) {
  tc::cp_async<kBytes>(dst, src, src_bytes);
}

__global__ void cp_async_sizes_kernel(const uint8_t* src, uint8_t* out) {
  __shared__ __align__(16) uint8_t slots[31][16];
  const int t = threadIdx.x;
  for (int i = 0; i < 16; ++i) slots[t][i] = 0xab;
  __syncthreads();
  if (t < 5)
    copy_sized<4>(slots[t], src + 16 * t, t);
  else if (t < 14)
    copy_sized<8>(slots[t], src + 16 * t, t - 5);
  else
    copy_sized<16>(slots[t], src + 16 * t, t - 14);
  tc::cp_async_commit();
  tc::cp_async_wait<0>();
  __syncthreads();
  for (int i = 0; i < 16; ++i) out[16 * t + i] = slots[t][i];
}

__global__ void cp_async_groups_kernel(const float* src, float* out) {
  __shared__ __align__(16) float dst[4];
  auto snapshot = [&](int k) {
    for (int i = 0; i < 4; ++i) out[4 * k + i] = dst[i];
  };
  for (int i = 0; i < 3; ++i) {
    tc::cp_async<4>(&dst[i], &src[i]);
    tc::cp_async_commit();
  }
  tc::cp_async<4>(&dst[3], &src[3]);  // not committed: no wait_group covers it
  snapshot(0);
  tc::cp_async_wait<2>();
  snapshot(1);
  tc::cp_async_wait<1>();
  snapshot(2);
  tc::cp_async_wait<0>();
  snapshot(3);
  tc::cp_async_commit();
  tc::cp_async_wait<0>();
  snapshot(4);
}

__global__ void cp_async_abandoned_kernel(const float* src, float* out) {
  __shared__ __align__(16) float slot[4];
  if (blockIdx.x == 0) {
    tc::cp_async<16>(slot, src);
    return;  // never waits
  }
  slot[0] = 7.0f;
  tc::cp_async_commit();
  tc::cp_async_wait<0>();
  out[0] = slot[0];
}

__global__ void cp_async_misuse_kernel(int mode, const float* src, float* out) {
  __shared__ __align__(16) float slot[8];
  if (mode == 0)
    tc::cp_async<16>(slot + 1, src);
  else
    tc::cp_async<16>(slot, src, 17);
  tc::cp_async_commit();
  tc::cp_async_wait<0>();
  out[0] = slot[0];
}

// One warp, BF16, D = A B^T over K in slabs of 16 through two shared-memory stages. The fragment loads are
// those of kernels/tc_gemm.cu: A by ldmatrix.x4 on 16 rows of 16 k, B by ldmatrix.x2 on 8 rows of 16 k.
__global__ void warp_gemm_kernel(int bug, const uint16_t* A, const uint16_t* B, float* D, int K) {
  __shared__ __align__(16) uint16_t as[2][16][16 + 8];  // +8: rows 48 bytes apart, 16-byte aligned
  __shared__ __align__(16) uint16_t bs[2][8][16 + 8];
  const int lane = threadIdx.x, slabs = K / 16;
  auto load = [&](int slab, int stage) {
    // A: 16 rows x 32 bytes = 32 chunks of 16 bytes, one per lane; B: 16 chunks, lanes 0-15.
    const int row = lane / 2, half = lane % 2, k = slab * 16 + half * 8;
    tc::cp_async<16>(&as[stage][row][half * 8], A + row * K + k);
    if (lane < 16) tc::cp_async<16>(&bs[stage][row][half * 8], B + row * K + k);
  };
  float acc[4] = {0, 0, 0, 0};
  load(0, 0);
  tc::cp_async_commit();
  for (int t = 0; t < slabs; ++t) {
    if (t + 1 < slabs) load(t + 1, (t + 1) % 2);
    tc::cp_async_commit();  // possibly empty: keeps "all but the newest group" meaning "slab t is in"
    if (bug != int(TcPlantedBug::missing_wait)) tc::cp_async_wait<1>();
    __syncwarp();
    const int s = t % 2;
    uint32_t a[4], b[2];
    tc::ldmatrix<4>(a, &as[s][(lane % 8) + 8 * ((lane / 8) % 2)][8 * (lane / 16)]);
    tc::ldmatrix<2>(b, &bs[s][lane % 8][8 * ((lane / 8) % 2)]);
    if (bug == int(TcPlantedBug::wrong_fragment_index)) {
      const uint32_t x = a[1];
      a[1] = a[2], a[2] = x;
    }
    tc::mma_m16n8k16_bf16(acc, a, b, acc);
    __syncwarp();  // every lane is done with stage s before the next iteration's copies refill it
  }
  tc::cp_async_wait<0>();
  for (int i = 0; i < 4; ++i) {
    const int row = lane / 4 + 8 * (i / 2), col = 2 * (lane % 4) + i % 2;
    D[row * 8 + col] = acc[i];
  }
}

__global__ void cvt_rna_kernel(const float* x, uint32_t* y, int n) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) y[i] = tc::cvt_rna_tf32(x[i]);
}

void tc_test_mma(const Exec& ex, int kind, int count, const uint32_t* a, const uint32_t* b, const float* c, float* d) {
  FOVEA_LAUNCH(mma_kernel, count, 32, 0, ex.stream, kind, a, b, c, d);
}

void tc_test_mma_partial_warp(const Exec& ex, float* d) {
  FOVEA_LAUNCH(mma_partial_warp_kernel, 1, 32, 0, ex.stream, d);
}

void tc_test_ldmatrix(const Exec& ex, int num, bool trans, const uint16_t* src, const int* row_of_lane, int misalign,
                      uint32_t* out) {
  const int form = num * 2 + (trans ? 1 : 0);
  StreamHandle s = ex.stream;
  if (form == 2) FOVEA_LAUNCH((ldmatrix_kernel<1, false>), 1, 32, 0, s, src, row_of_lane, misalign, out);
  if (form == 3) FOVEA_LAUNCH((ldmatrix_kernel<1, true>), 1, 32, 0, s, src, row_of_lane, misalign, out);
  if (form == 4) FOVEA_LAUNCH((ldmatrix_kernel<2, false>), 1, 32, 0, s, src, row_of_lane, misalign, out);
  if (form == 5) FOVEA_LAUNCH((ldmatrix_kernel<2, true>), 1, 32, 0, s, src, row_of_lane, misalign, out);
  if (form == 8) FOVEA_LAUNCH((ldmatrix_kernel<4, false>), 1, 32, 0, s, src, row_of_lane, misalign, out);
  if (form == 9) FOVEA_LAUNCH((ldmatrix_kernel<4, true>), 1, 32, 0, s, src, row_of_lane, misalign, out);
}

void tc_test_cp_async_sizes(const Exec& ex, const uint8_t* src, uint8_t* out) {
  FOVEA_LAUNCH(cp_async_sizes_kernel, 1, 31, 0, ex.stream, src, out);
}

void tc_test_cp_async_groups(const Exec& ex, const float* src, float* out) {
  FOVEA_LAUNCH(cp_async_groups_kernel, 1, 1, 0, ex.stream, src, out);
}

void tc_test_cp_async_abandoned(const Exec& ex, const float* src, float* out) {
  FOVEA_LAUNCH(cp_async_abandoned_kernel, 2, 1, 0, ex.stream, src, out);
}

void tc_test_cp_async_misuse(const Exec& ex, int mode, const float* src, float* out) {
  FOVEA_LAUNCH(cp_async_misuse_kernel, 1, 1, 0, ex.stream, mode, src, out);
}

void tc_test_warp_gemm(const Exec& ex, TcPlantedBug bug, const uint16_t* A, const uint16_t* B, float* D, int K) {
  FOVEA_LAUNCH(warp_gemm_kernel, 1, 32, 0, ex.stream, int(bug), A, B, D, K);
}

void tc_test_cvt_rna(const Exec& ex, const float* x, uint32_t* y, int n) {
  FOVEA_LAUNCH(cvt_rna_kernel, (n + 255) / 256, 256, 0, ex.stream, x, y, n);
}

[[maybe_unused]] const bool registered =
    test::tc_test_mma_stub.define(kThisSlot, &tc_test_mma) &&
    test::tc_test_mma_partial_warp_stub.define(kThisSlot, &tc_test_mma_partial_warp) &&
    test::tc_test_ldmatrix_stub.define(kThisSlot, &tc_test_ldmatrix) &&
    test::tc_test_cp_async_sizes_stub.define(kThisSlot, &tc_test_cp_async_sizes) &&
    test::tc_test_cp_async_groups_stub.define(kThisSlot, &tc_test_cp_async_groups) &&
    test::tc_test_cp_async_abandoned_stub.define(kThisSlot, &tc_test_cp_async_abandoned) &&
    test::tc_test_cp_async_misuse_stub.define(kThisSlot, &tc_test_cp_async_misuse) &&
    test::tc_test_warp_gemm_stub.define(kThisSlot, &tc_test_warp_gemm) &&
    test::tc_test_cvt_rna_stub.define(kThisSlot, &tc_test_cvt_rna);

}  // namespace
}  // namespace fovea::FOVEA_KERNEL_NS
