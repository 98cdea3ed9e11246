// Dropout; the emu/cuda slots of layers/ops/dropout.h (semantics there).
//
// dropout_kernel: per element 4 bytes read + 4 written, one compare and multiply, plus a quarter of a
// Philox4x32-10 call (one call yields the words of 4 consecutive elements: ~10 rounds x 2 32-bit
// mul-hi/lo ~ 60 integer ops per 4 elements). On an H100 that is ~15 integer ops per 8 bytes of HBM
// traffic, still under the integer roofline, so the design limit is HBM bandwidth (>= 85% of 3.35 TB/s on
// tensors larger than L2): each thread owns groups of 4 elements, 16-byte loads/stores when aligned.
#include "layers/ops/dropout.h"

#include "core/philox.h"
#include "kernels/common.cuh"
#include "kernels/elementwise.cuh"

namespace fovea::FOVEA_KERNEL_NS {
namespace {

struct IdentityOp {
  FOVEA_HD float operator()(float x) const { return x; }
};

// The reference's expression: kept iff the 24-bit uniform of philox_uniform() is >= p; dropped elements are
// +0 (not x * 0, which would be -0 or NaN).
__device__ inline float drop(float x, uint32_t word, float p, float scale) {
  return float(word >> 8) * (1.0f / 16777216.0f) >= p ? x * scale : 0.0f;
}

// Thread-group g covers elements [4g, 4g + 4): one Philox call with counter g (philox_u32's layout).
template <bool Vec>
__global__ void dropout_kernel(const float* in, float* out, int64_t n, uint64_t seed, uint64_t offset, float p,
                               float scale) {
  const int64_t groups = (n + 3) / 4, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t g = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; g < groups; g += stride) {
    const Philox4 r = philox4x32(
        Philox4{{uint32_t(uint64_t(g)), uint32_t(uint64_t(g) >> 32), uint32_t(offset), uint32_t(offset >> 32)}},
        uint32_t(seed), uint32_t(seed >> 32));
    const int64_t i = 4 * g;
    if (Vec && i + 4 <= n) {
      float4 v = reinterpret_cast<const float4*>(in)[g];
      v.x = drop(v.x, r.v[0], p, scale), v.y = drop(v.y, r.v[1], p, scale);
      v.z = drop(v.z, r.v[2], p, scale), v.w = drop(v.w, r.v[3], p, scale);
      reinterpret_cast<float4*>(out)[g] = v;
    } else {
      for (int k = 0; k < 4 && i + k < n; ++k) out[i + k] = drop(in[i + k], r.v[k], p, scale);
    }
  }
}

// `names`: the op's names of `in` and `out`, for errors.
void apply(const Exec& ex, const char* op, const char* const names[2], const DropoutParams& p, int64_t n,
           const float* in, float* out) {
  p.validate(op);
  FOVEA_CHECK(n >= 0, op, ": argument 'n' must be >= 0, got ", n);
  if (n == 0) return;
  check_ptr(op, names[0], in), check_ptr(op, names[1], out);
  if (!p.training) {
    if (in != out) launch_map1(ex, op, in, out, n, IdentityOp{});
    return;
  }
  const float pf = float(p.p), scale = float(1.0 / (1.0 - p.p));
  const dim3 grid(grid_stride_blocks((n + 3) / 4, kMapBlock));
  if (aligned16(in) && aligned16(out))
    launch<dropout_kernel<true>>(op, grid, dim3(kMapBlock), 0, ex.stream, in, out, n, p.seed, p.offset, pf, scale);
  else
    launch<dropout_kernel<false>>(op, grid, dim3(kMapBlock), 0, ex.stream, in, out, n, p.seed, p.offset, pf, scale);
}

}  // namespace

void dropout_forward(const Exec& ex, const DropoutParams& p, int64_t n, const float* x, float* y) {
  static const char* const names[2] = {"x", "y"};
  apply(ex, "dropout_forward", names, p, n, x, y);
}
void dropout_backward(const Exec& ex, const DropoutParams& p, int64_t n, const float* dy, float* dx) {
  static const char* const names[2] = {"dy", "dx"};
  apply(ex, "dropout_backward", names, p, n, dy, dx);
}

const bool registered = ops::dropout_forward_stub.define(kThisSlot, dropout_forward) &&
                        ops::dropout_backward_stub.define(kThisSlot, dropout_backward);

}  // namespace fovea::FOVEA_KERNEL_NS
