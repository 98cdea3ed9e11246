// Direct convolution: one output element per thread, a loop over its receptive field. Simple and
// obviously right; 64-bit indices, so any tensor size the grid allows.
//
// Per output: 2 * C/groups * R * S FLOPs and as many 4-byte loads of x and w (reused only through
// L1/L2), so these kernels are bound by cache bandwidth at a few TFLOP/s on an H100, an order of
// magnitude under the FP32 peak; they exist as the readable baseline.
#include "kernels/common.cuh"
#include "kernels/conv2d_variants.cuh"

namespace fovea::FOVEA_KERNEL_NS {

namespace {

constexpr int kDirectBlock = 256;

// y[n][k][p][q] = b[k] + sum over (c, r, s) of x[n][g*Cg + c][p*sh - ph + r*dh][q*sw - pw + s*dw] * w[k][c][r][s].
__global__ void conv2d_fprop_direct_kernel(Conv2dParams p, const float* __restrict__ x, const float* __restrict__ w,
                                           const float* __restrict__ b, float* __restrict__ y) {
  const int64_t P = p.P(), Q = p.Q(), Cg = p.C_per_group(), Kg = p.K_per_group();
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= p.N * p.K * P * Q) return;
  const int64_t q = idx % Q, pp = (idx / Q) % P, k = (idx / (P * Q)) % p.K, n = idx / (P * Q * p.K);
  const int64_t g = k / Kg;
  float acc = 0.0f;
  for (int64_t c = 0; c < Cg; ++c) {
    const float* xc = x + ((n * p.C + g * Cg + c) * p.H) * p.W;
    const float* wc = w + (k * Cg + c) * p.R * p.S;
    for (int64_t r = 0; r < p.R; ++r) {
      const int64_t h = pp * p.stride_h - p.pad_h + r * p.dil_h;
      if (h < 0 || h >= p.H) continue;
      for (int64_t s = 0; s < p.S; ++s) {
        const int64_t wi = q * p.stride_w - p.pad_w + s * p.dil_w;
        if (wi < 0 || wi >= p.W) continue;
        acc += xc[h * p.W + wi] * wc[r * p.S + s];
      }
    }
  }
  y[idx] = b ? acc + b[k] : acc;
}

// dx[n][c][h][w] = sum over (k in c's group, r, s) of dy[n][k][p][q] * w[k][c - g*Cg][r][s], where
// h = p*sh - ph + r*dh (and likewise w): only taps with an integral, in-range (p, q) contribute.
__global__ void conv2d_dgrad_direct_kernel(Conv2dParams p, const float* __restrict__ dy, const float* __restrict__ w,
                                           float* __restrict__ dx) {
  const int64_t P = p.P(), Q = p.Q(), Cg = p.C_per_group(), Kg = p.K_per_group();
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= p.x_size()) return;
  const int64_t wi = idx % p.W, h = (idx / p.W) % p.H, c = (idx / (p.H * p.W)) % p.C, n = idx / (p.H * p.W * p.C);
  const int64_t g = c / Cg, cg = c - g * Cg;
  float acc = 0.0f;
  for (int64_t kk = 0; kk < Kg; ++kk) {
    const int64_t k = g * Kg + kk;
    const float* dyk = dy + (n * p.K + k) * P * Q;
    const float* wk = w + (k * Cg + cg) * p.R * p.S;
    for (int64_t r = 0; r < p.R; ++r) {
      const int64_t th = h + p.pad_h - r * p.dil_h;
      if (th < 0 || th % p.stride_h != 0 || th / p.stride_h >= P) continue;
      for (int64_t s = 0; s < p.S; ++s) {
        const int64_t tw = wi + p.pad_w - s * p.dil_w;
        if (tw < 0 || tw % p.stride_w != 0 || tw / p.stride_w >= Q) continue;
        acc += dyk[(th / p.stride_h) * Q + tw / p.stride_w] * wk[r * p.S + s];
      }
    }
  }
  dx[idx] = acc;
}

// dw[k][c][r][s] = sum over (n, p, q) of dy[n][k][p][q] * x[n][g*Cg + c][p*sh - ph + r*dh][q*sw - pw + s*dw],
// summed in (n, p, q) order by one thread: deterministic.
__global__ void conv2d_wgrad_direct_kernel(Conv2dParams p, const float* __restrict__ x, const float* __restrict__ dy,
                                           float* __restrict__ dw) {
  const int64_t P = p.P(), Q = p.Q(), Cg = p.C_per_group(), Kg = p.K_per_group();
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= p.w_size()) return;
  const int64_t s = idx % p.S, r = (idx / p.S) % p.R, c = (idx / (p.R * p.S)) % Cg, k = idx / (p.R * p.S * Cg);
  const int64_t g = k / Kg;
  float acc = 0.0f;
  for (int64_t n = 0; n < p.N; ++n) {
    const float* dyk = dy + (n * p.K + k) * P * Q;
    const float* xc = x + (n * p.C + g * Cg + c) * p.H * p.W;
    for (int64_t pp = 0; pp < P; ++pp) {
      const int64_t h = pp * p.stride_h - p.pad_h + r * p.dil_h;
      if (h < 0 || h >= p.H) continue;
      for (int64_t q = 0; q < Q; ++q) {
        const int64_t wi = q * p.stride_w - p.pad_w + s * p.dil_w;
        if (wi < 0 || wi >= p.W) continue;
        acc += dyk[pp * Q + q] * xc[h * p.W + wi];
      }
    }
  }
  dw[idx] = acc;
}

void check_direct(const char* op, const Conv2dParams& p, const void* in1, const char* name1, const void* in2,
                  const char* name2, const void* out, const char* name_out) {
  p.validate(op);
  check_ptr(op, name1, in1), check_ptr(op, name2, in2), check_ptr(op, name_out, out);
}

unsigned direct_grid(const char* op, int64_t n) {
  const int64_t blocks = (n + kDirectBlock - 1) / kDirectBlock;
  FOVEA_CHECK(blocks <= 0x7fffffff, op, ": ", n, " outputs exceed the grid limit of the direct kernel");
  return unsigned(blocks);
}

}  // namespace

void conv2d_forward_direct(const Exec& ex, const Conv2dParams& p, const float* x, const float* w, const float* b,
                           float* y) {
  check_direct("conv2d_forward_direct", p, x, "x", w, "w", y, "y");
  note_flop(conv_flop(p));
  FOVEA_LAUNCH(conv2d_fprop_direct_kernel, direct_grid("conv2d_forward_direct", p.y_size()), kDirectBlock, 0, ex.stream,
               p, x, w, b, y);
}

void conv2d_backward_data_direct(const Exec& ex, const Conv2dParams& p, const float* dy, const float* w, float* dx) {
  check_direct("conv2d_backward_data_direct", p, dy, "dy", w, "w", dx, "dx");
  note_flop(conv_flop(p));
  FOVEA_LAUNCH(conv2d_dgrad_direct_kernel, direct_grid("conv2d_backward_data_direct", p.x_size()), kDirectBlock, 0,
               ex.stream, p, dy, w, dx);
}

void conv2d_backward_filter_direct(const Exec& ex, const Conv2dParams& p, const float* x, const float* dy, float* dw) {
  check_direct("conv2d_backward_filter_direct", p, x, "x", dy, "dy", dw, "dw");
  note_flop(conv_flop(p));
  FOVEA_LAUNCH(conv2d_wgrad_direct_kernel, direct_grid("conv2d_backward_filter_direct", p.w_size()), kDirectBlock, 0,
               ex.stream, p, x, dy, dw);
}

}  // namespace fovea::FOVEA_KERNEL_NS
