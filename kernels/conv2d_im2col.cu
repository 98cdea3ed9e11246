// Convolution by im2col / col2im + our tiled SGEMM, one image at a time (the classic Caffe route),
// kept beside the implicit GEMM for comparison: it moves the C*R*S x P*Q column matrix of every
// image through memory twice (write, then read by the GEMM), the traffic implicit GEMM avoids.
//
// im2col: per column element 4 bytes written and at most 4 read, no FLOPs: HBM/L2-bound, designed
// for ~80% of 3.35 TB/s. col2im: per input element R*S/(sh*sw) column reads on average and one write:
// memory-bound likewise. The GEMMs are kernels/sgemm.cu's (FMA-bound at 128x128 tiles).
#include "kernels/bias.cuh"
#include "kernels/conv2d.h"
#include "kernels/conv2d_variants.cuh"
#include "kernels/reduce.cuh"  // grid_stride_blocks, workspace_array
#include "kernels/sgemm.cuh"

namespace fovea::FOVEA_KERNEL_NS {

namespace {

constexpr int kIm2colBlock = 256;

// col[(c*R + r)*S + s][p*Q + q] = x[c][p*sh - ph + r*dh][q*sw - pw + s*dw], 0 outside the image.
// Consecutive threads write consecutive q: coalesced stores, reads strided by sw.
__global__ void im2col_kernel(Conv2dParams p, const float* __restrict__ x, float* __restrict__ col) {
  const int64_t P = p.P(), Q = p.Q(), n = p.C * p.R * p.S * P * Q;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const int64_t q = i % Q, pp = (i / Q) % P, row = i / (P * Q);
    const int64_t s = row % p.S, r = (row / p.S) % p.R, c = row / (p.R * p.S);
    const int64_t h = pp * p.stride_h - p.pad_h + r * p.dil_h, w = q * p.stride_w - p.pad_w + s * p.dil_w;
    col[i] = h >= 0 && h < p.H && w >= 0 && w < p.W ? x[(c * p.H + h) * p.W + w] : 0.0f;
  }
}

// x[c][h][w] = sum over (r, s) of the column entries im2col took from (c, h, w), in (r, s) order
// (a gather: no atomics, deterministic).
__global__ void col2im_kernel(Conv2dParams p, const float* __restrict__ col, float* __restrict__ x) {
  const int64_t P = p.P(), Q = p.Q(), n = p.C * p.H * p.W;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const int64_t w = i % p.W, h = (i / p.W) % p.H, c = i / (p.H * p.W);
    float acc = 0.0f;
    for (int64_t r = 0; r < p.R; ++r) {
      const int64_t th = h + p.pad_h - r * p.dil_h;
      if (th < 0 || th % p.stride_h != 0 || th / p.stride_h >= P) continue;
      for (int64_t s = 0; s < p.S; ++s) {
        const int64_t tw = w + p.pad_w - s * p.dil_w;
        if (tw < 0 || tw % p.stride_w != 0 || tw / p.stride_w >= Q) continue;
        acc += col[((c * p.R + r) * p.S + s) * P * Q + (th / p.stride_h) * Q + tw / p.stride_w];
      }
    }
    x[i] = acc;
  }
}

// The column matrix of one image, from the call's workspace.
float* column_buffer(const Exec& ex, const char* op, const Conv2dParams& p) {
  return workspace_array<float>(
      ex, int64_t(conv2d_workspace_bytes(ConvAlgo::im2col_gemm, ConvOp::forward, p) / sizeof(float)), op);
}

void check_ptrs(const char* op, const void* a, const char* an, const void* b, const char* bn, const void* c,
                const char* cn) {
  check_ptr(op, an, a), check_ptr(op, bn, b), check_ptr(op, cn, c);
}

}  // namespace

void im2col(const Exec& ex, const Conv2dParams& p, const float* x, float* col) {
  p.validate("im2col");
  check_ptrs("im2col", x, "x", col, "col", col, "col");
  const int64_t n = p.C * p.R * p.S * p.P() * p.Q();
  FOVEA_LAUNCH(im2col_kernel, grid_stride_blocks(n, kIm2colBlock), kIm2colBlock, 0, ex.stream, p, x, col);
}

void col2im(const Exec& ex, const Conv2dParams& p, const float* col, float* x) {
  p.validate("col2im");
  check_ptrs("col2im", col, "col", x, "x", x, "x");
  FOVEA_LAUNCH(col2im_kernel, grid_stride_blocks(p.C * p.H * p.W, kIm2colBlock), kIm2colBlock, 0, ex.stream, p, col, x);
}

// Per image n and group g: y[n]_g [Kg, PQ] = w_g [Kg, CgRS] * col_g [CgRS, PQ] (GEMM NN, batched
// over groups), then the bias over the whole batch.
void conv2d_forward_im2col(const Exec& ex, const Conv2dParams& p, const float* x, const float* w, const float* b,
                           float* y) {
  constexpr const char* op = "conv2d_forward_im2col";
  p.validate(op);
  check_ptrs(op, x, "x", w, "w", y, "y");
  float* col = column_buffer(ex, op, p);
  const int64_t PQ = p.P() * p.Q(), Kg = p.K_per_group(), CgRS = p.C_per_group() * p.R * p.S;
  SgemmParams g = sgemm_params(Trans::N, Trans::N, Kg, PQ, CgRS);
  g.batch = p.groups, g.stride_a = Kg * CgRS, g.stride_b = CgRS * PQ, g.stride_c = Kg * PQ;
  for (int64_t n = 0; n < p.N; ++n) {
    im2col(ex, p, x + n * p.C * p.H * p.W, col);
    sgemm_tiled(ex, g, w, col, y + n * p.K * PQ);
  }
  if (b) bias_add(ex, y, b, p.N, p.K, PQ);
}

// Per image: col_g [CgRS, PQ] = w_g^T * dy[n]_g (GEMM TN, batched over groups), then col2im into dx[n].
void conv2d_backward_data_im2col(const Exec& ex, const Conv2dParams& p, const float* dy, const float* w, float* dx) {
  constexpr const char* op = "conv2d_backward_data_im2col";
  p.validate(op);
  check_ptrs(op, dy, "dy", w, "w", dx, "dx");
  float* col = column_buffer(ex, op, p);
  const int64_t PQ = p.P() * p.Q(), Kg = p.K_per_group(), CgRS = p.C_per_group() * p.R * p.S;
  SgemmParams g = sgemm_params(Trans::T, Trans::N, CgRS, PQ, Kg);
  g.batch = p.groups, g.stride_a = Kg * CgRS, g.stride_b = Kg * PQ, g.stride_c = CgRS * PQ;
  for (int64_t n = 0; n < p.N; ++n) {
    sgemm_tiled(ex, g, w, dy + n * p.K * PQ, col);
    col2im(ex, p, col, dx + n * p.C * p.H * p.W);
  }
}

// Per image: dw_g [Kg, CgRS] (+)= dy[n]_g [Kg, PQ] * col_g^T (GEMM NT, batched over groups); the
// first image overwrites (beta = 0), later ones accumulate in image order.
void conv2d_backward_filter_im2col(const Exec& ex, const Conv2dParams& p, const float* x, const float* dy, float* dw) {
  constexpr const char* op = "conv2d_backward_filter_im2col";
  p.validate(op);
  check_ptrs(op, x, "x", dy, "dy", dw, "dw");
  float* col = column_buffer(ex, op, p);
  const int64_t PQ = p.P() * p.Q(), Kg = p.K_per_group(), CgRS = p.C_per_group() * p.R * p.S;
  SgemmParams g = sgemm_params(Trans::N, Trans::T, Kg, CgRS, PQ);
  g.batch = p.groups, g.stride_a = Kg * PQ, g.stride_b = CgRS * PQ, g.stride_c = Kg * CgRS;
  for (int64_t n = 0; n < p.N; ++n) {
    im2col(ex, p, x + n * p.C * p.H * p.W, col);
    g.beta = n == 0 ? 0.0f : 1.0f;
    sgemm_tiled(ex, g, dy + n * p.K * PQ, col, dw);
  }
}

}  // namespace fovea::FOVEA_KERNEL_NS
