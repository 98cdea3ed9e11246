// Pooling kernels; the emu/cuda slots of layers/ops/pooling.h (semantics there).
//
// Index arithmetic: every kernel is instantiated for 32-bit (I = int32_t, chosen whenever the tensors have
// fewer than 2^30 elements) and 64-bit index math. 64-bit integer division costs ~4x the 32-bit one on the
// GPU, and these kernels do a few divisions per element: with 32-bit math they stay memory-bound.

#include "kernels/common.cuh"
#include "kernels/reduce.cuh"
#include "layers/ops/pooling.h"

namespace fovea::FOVEA_KERNEL_NS {
namespace {

constexpr int kPoolBlock = 256;
constexpr int64_t kIndex32Limit = int64_t(1) << 30;  // with a grid stride <= 2^20, int32 never overflows

// Pool2dParams in the kernel's index type.
template <typename I>
struct PoolGeom {
  I H, W, P, Q, kh, kw, sh, sw, ph, pw;
  bool include_pad;
};
template <typename I>
PoolGeom<I> pool_geom(const Pool2dParams& p) {
  return {I(p.H),        I(p.W),        I(p.P()),   I(p.Q()),   I(p.kernel_h),      I(p.kernel_w),
          I(p.stride_h), I(p.stride_w), I(p.pad_h), I(p.pad_w), p.count_include_pad};
}

// Flat index o -> (plane, row, column) for planes of rows x cols.
template <typename I>
struct PlanePos {
  I plane, r, c;
};
template <typename I>
__device__ inline PlanePos<I> plane_pos(I o, I rows, I cols) {
  const I t = o / cols;
  return {t / rows, t - (t / rows) * rows, o - t * cols};
}

// PyTorch's avg_pool2d window for output (oh, ow): clamped bounds and the divisor.
template <typename I>
struct AvgWin {
  I h0, h1, w0, w1;
  float div;
};
template <typename I>
__device__ inline AvgWin<I> avg_window(const PoolGeom<I>& g, I oh, I ow) {
  I h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
  I h1 = h0 + g.kh < g.H + g.ph ? h0 + g.kh : g.H + g.ph;
  I w1 = w0 + g.kw < g.W + g.pw ? w0 + g.kw : g.W + g.pw;
  const I padded = (h1 - h0) * (w1 - w0);
  h0 = h0 > 0 ? h0 : 0, w0 = w0 > 0 ? w0 : 0;
  h1 = h1 < g.H ? h1 : g.H, w1 = w1 < g.W ? w1 : g.W;
  return {h0, h1, w0, w1, float(g.include_pad ? padded : (h1 - h0) * (w1 - w0))};
}

// Outputs along one axis whose windows cover input coordinate i: [first, last).
template <typename I>
struct Range {
  I first, last;
};
template <typename I>
__device__ inline Range<I> covering(I i, I pad, I k, I stride, I outputs) {
  const I ip = i + pad;
  const I first = ip < k ? 0 : (ip - k) / stride + 1;
  const I last = ip / stride + 1;
  return {first, last < outputs ? last : outputs};
}

template <typename I>
__device__ inline I grid_start() {
  return I(blockIdx.x) * I(blockDim.x) + I(threadIdx.x);
}
template <typename I>
__device__ inline I grid_stride() {
  return I(gridDim.x) * I(blockDim.x);
}

// Max pooling forward, one thread per output (grid-stride). Per output: kh*kw loads (neighbouring windows
// share them through L1/L2), one float and one index store, kh*kw compares. Memory-bound: the design limit
// is HBM bandwidth on x (read ~once) plus y and idx (at 3.35 TB/s a 64x64x112x112 input takes ~0.06 ms).
template <typename I, typename Index>
__global__ void maxpool2d_forward_kernel(PoolGeom<I> g, const float* __restrict__ x, float* __restrict__ y,
                                         Index* __restrict__ idx, I total) {
  for (I o = grid_start<I>(); o < total; o += grid_stride<I>()) {
    const PlanePos<I> pos = plane_pos(o, g.P, g.Q);
    const I hs = pos.r * g.sh - g.ph, ws = pos.c * g.sw - g.pw;
    const I h0 = hs > 0 ? hs : 0, w0 = ws > 0 ? ws : 0;
    const I h1 = hs + g.kh < g.H ? hs + g.kh : g.H, w1 = ws + g.kw < g.W ? ws + g.kw : g.W;
    const float* plane = x + int64_t(pos.plane) * g.H * g.W;
    float best = -INFINITY;
    I arg = h0 * g.W + w0;  // PyTorch starts from the first real pixel of the window
    for (I h = h0; h < h1; ++h)
      for (I w = w0; w < w1; ++w) {
        const float v = plane[h * g.W + w];
        if (v > best || v != v) best = v, arg = h * g.W + w;  // strict '>': the first maximum wins; NaN wins
      }
    y[o] = best;
    if (idx) idx[o] = Index(arg);
  }
}

// Max pooling backward as a gather, one thread per input element: it visits the (at most
// ceil(kh/sh) x ceil(kw/sw)) windows covering it in ascending output order and adds dy where the window's
// argmax is this element, exactly the order of the reference's scatter, with no atomics. Per element:
// that many idx + dy loads (cached; each is read by the kh*kw/(sh*sw) inputs of its window), one store.
template <typename I, typename Index>
__global__ void maxpool2d_backward_kernel(PoolGeom<I> g, const float* __restrict__ dy, const Index* __restrict__ idx,
                                          float* __restrict__ dx, I total) {
  for (I i = grid_start<I>(); i < total; i += grid_stride<I>()) {
    const PlanePos<I> pos = plane_pos(i, g.H, g.W);
    const Range<I> rh = covering(pos.r, g.ph, g.kh, g.sh, g.P), rw = covering(pos.c, g.pw, g.kw, g.sw, g.Q);
    const I self = pos.r * g.W + pos.c;
    const int64_t base = int64_t(pos.plane) * g.P * g.Q;
    float acc = 0.0f;
    for (I oh = rh.first; oh < rh.last; ++oh)
      for (I ow = rw.first; ow < rw.last; ++ow) {
        const int64_t o = base + oh * g.Q + ow;
        if (int64_t(idx[o]) == int64_t(self)) acc += dy[o];
      }
    dx[i] = acc;
  }
}

// Average pooling forward, one thread per output: kh*kw loads (cached as above), kh*kw adds and a divide.
// HBM-bound like max pooling.
template <typename I>
__global__ void avgpool2d_forward_kernel(PoolGeom<I> g, const float* __restrict__ x, float* __restrict__ y, I total) {
  for (I o = grid_start<I>(); o < total; o += grid_stride<I>()) {
    const PlanePos<I> pos = plane_pos(o, g.P, g.Q);
    const AvgWin<I> a = avg_window(g, pos.r, pos.c);
    const float* plane = x + int64_t(pos.plane) * g.H * g.W;
    float s = 0.0f;
    for (I h = a.h0; h < a.h1; ++h)
      for (I w = a.w0; w < a.w1; ++w) s += plane[h * g.W + w];
    y[o] = s / a.div;
  }
}

// Average pooling backward as a gather: each input element adds dy / divisor of every window covering it,
// in ascending output order (no atomics): the reference's scatter order. Per element: ~(kh/sh)*(kw/sw) dy
// loads (cached) and divides, one store.
template <typename I>
__global__ void avgpool2d_backward_kernel(PoolGeom<I> g, const float* __restrict__ dy, float* __restrict__ dx,
                                          I total) {
  for (I i = grid_start<I>(); i < total; i += grid_stride<I>()) {
    const PlanePos<I> pos = plane_pos(i, g.H, g.W);
    const Range<I> rh = covering(pos.r, g.ph, g.kh, g.sh, g.P), rw = covering(pos.c, g.pw, g.kw, g.sw, g.Q);
    const float* gp = dy + int64_t(pos.plane) * g.P * g.Q;
    float acc = 0.0f;
    for (I oh = rh.first; oh < rh.last; ++oh)
      for (I ow = rw.first; ow < rw.last; ++ow) acc += gp[oh * g.Q + ow] / avg_window(g, oh, ow).div;
    dx[i] = acc;
  }
}

// Global average pooling forward: a warp per (n, c) plane; lanes stride the plane (coalesced), then a
// fixed-order warp sum. HBM-bound: 4*HW bytes read per 4 bytes written.
__global__ void global_avgpool_forward_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t planes,
                                              int64_t HW) {
  const int lane = threadIdx.x % kWarpSize;
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x / kWarpSize);
  for (int64_t r = int64_t(blockIdx.x) * (blockDim.x / kWarpSize) + threadIdx.x / kWarpSize; r < planes; r += warps) {
    const float* row = x + r * HW;
    float s = 0.0f;
    for (int64_t j = lane; j < HW; j += kWarpSize) s += row[j];
    s = warp_sum(s);
    if (lane == 0) y[r] = s / float(HW);
  }
}

// Global average pooling backward: dx = dy[plane] / HW broadcast; 4 bytes written per element, HBM-bound.
template <typename I>
__global__ void global_avgpool_backward_kernel(const float* __restrict__ dy, float* __restrict__ dx, I total, I HW) {
  const float div = float(HW);
  for (I i = grid_start<I>(); i < total; i += grid_stride<I>()) dx[i] = dy[i / HW] / div;
}

// Adaptive average pooling forward: a thread per output, the bin summed row by row in float (PyTorch's
// order); backward: a thread per INPUT pixel gathering dy / size from the few bins that hold it (bins
// are monotone, so they start at floor(h * OH / H)): no atomics, deterministic. HBM-bound like avgpool.
template <typename I>
__global__ void adaptive_avgpool2d_forward_kernel(AdaptivePool2dParams p, const float* __restrict__ x,
                                                  float* __restrict__ y, I total) {
  using B = AdaptivePool2dParams;
  for (I o = grid_start<I>(); o < total; o += grid_stride<I>()) {
    const I j = o % I(p.OW), i = (o / I(p.OW)) % I(p.OH), nc = o / (I(p.OW) * I(p.OH));
    const I h0 = I(B::start(i, p.H, p.OH)), h1 = I(B::end(i, p.H, p.OH));
    const I w0 = I(B::start(j, p.W, p.OW)), w1 = I(B::end(j, p.W, p.OW));
    const float* plane = x + nc * I(p.H) * I(p.W);
    float s = 0.0f;
    for (I h = h0; h < h1; ++h)
      for (I w = w0; w < w1; ++w) s += plane[h * I(p.W) + w];
    y[o] = s / float((h1 - h0) * (w1 - w0));
  }
}

template <typename I>
__global__ void adaptive_avgpool2d_backward_kernel(AdaptivePool2dParams p, const float* __restrict__ dy,
                                                   float* __restrict__ dx, I total) {
  using B = AdaptivePool2dParams;
  for (I t = grid_start<I>(); t < total; t += grid_stride<I>()) {
    const I w = t % I(p.W), h = (t / I(p.W)) % I(p.H), nc = t / (I(p.W) * I(p.H));
    const float* g = dy + nc * I(p.OH) * I(p.OW);
    float acc = 0.0f;
    for (I i = I(int64_t(h) * p.OH / p.H); i < I(p.OH) && I(B::start(i, p.H, p.OH)) <= h; ++i) {
      const I h0 = I(B::start(i, p.H, p.OH)), h1 = I(B::end(i, p.H, p.OH));
      if (h >= h1) continue;
      for (I j = I(int64_t(w) * p.OW / p.W); j < I(p.OW) && I(B::start(j, p.W, p.OW)) <= w; ++j) {
        const I w0 = I(B::start(j, p.W, p.OW)), w1 = I(B::end(j, p.W, p.OW));
        if (w >= w1) continue;
        acc += g[i * I(p.OW) + j] / float((h1 - h0) * (w1 - w0));
      }
    }
    dx[t] = acc;
  }
}

void check_pool(const char* op, const Pool2dParams& p) {
  p.validate(op);
  FOVEA_CHECK(p.P() > 0 && p.Q() > 0, op, ": empty output ", p.P(), "x", p.Q(), " (", p.str(), ")");
}
void check_ptrs(const char* op, const void* a, const char* an, const void* b, const char* bn) {
  check_ptr(op, an, a), check_ptr(op, bn, b);
}
bool use_index32(const Pool2dParams& p) {
  return p.x_size() < kIndex32Limit && p.y_size() < kIndex32Limit;
}
dim3 pool_grid(int64_t total) {
  return dim3(grid_stride_blocks(total, kPoolBlock, 4096));
}

template <typename Index>
void maxpool_forward(const Exec& ex, const Pool2dParams& p, const float* x, float* y, Index* idx) {
  const char* op = "maxpool2d_forward";
  check_pool(op, p);
  check_ptrs(op, x, "x", y, "y");
  const int64_t total = p.y_size();
  if (use_index32(p))
    launch<maxpool2d_forward_kernel<int32_t, Index>>(op, pool_grid(total), dim3(kPoolBlock), 0, ex.stream,
                                                     pool_geom<int32_t>(p), x, y, idx, int32_t(total));
  else
    launch<maxpool2d_forward_kernel<int64_t, Index>>(op, pool_grid(total), dim3(kPoolBlock), 0, ex.stream,
                                                     pool_geom<int64_t>(p), x, y, idx, total);
}

template <typename Index>
void maxpool_backward(const Exec& ex, const Pool2dParams& p, const float* dy, const Index* idx, float* dx) {
  const char* op = "maxpool2d_backward";
  check_pool(op, p);
  check_ptrs(op, dy, "dy", dx, "dx");
  check_ptr(op, "idx", idx);
  const int64_t total = p.x_size();
  if (use_index32(p))
    launch<maxpool2d_backward_kernel<int32_t, Index>>(op, pool_grid(total), dim3(kPoolBlock), 0, ex.stream,
                                                      pool_geom<int32_t>(p), dy, idx, dx, int32_t(total));
  else
    launch<maxpool2d_backward_kernel<int64_t, Index>>(op, pool_grid(total), dim3(kPoolBlock), 0, ex.stream,
                                                      pool_geom<int64_t>(p), dy, idx, dx, total);
}

void check_global(const char* op, int64_t N, int64_t C, int64_t H, int64_t W, const void* a, const char* an,
                  const void* b, const char* bn) {
  FOVEA_CHECK(N > 0 && C > 0 && H > 0 && W > 0, op, ": arguments N, C, H, W must be > 0, got ", N, ",", C, ",", H, ",",
              W);
  check_ptrs(op, a, an, b, bn);
}

}  // namespace

void maxpool2d_forward(const Exec& ex, const Pool2dParams& p, const float* x, float* y, int32_t* idx) {
  FOVEA_CHECK(p.H * p.W - 1 <= int64_t(INT32_MAX), "maxpool2d_forward: H*W=", p.H * p.W, " does not fit int32 indices");
  maxpool_forward(ex, p, x, y, idx);
}
// Our backward reads the indices; x and y are for implementations without them (cuDNN).
void maxpool2d_backward(const Exec& ex, const Pool2dParams& p, const float* /*x*/, const float* /*y*/,
                        const int32_t* idx, const float* dy, float* dx) {
  maxpool_backward(ex, p, dy, idx, dx);
}

void avgpool2d_forward(const Exec& ex, const Pool2dParams& p, const float* x, float* y) {
  const char* op = "avgpool2d_forward";
  check_pool(op, p);
  check_ptrs(op, x, "x", y, "y");
  const int64_t total = p.y_size();
  if (use_index32(p))
    launch<avgpool2d_forward_kernel<int32_t>>(op, pool_grid(total), dim3(kPoolBlock), 0, ex.stream,
                                              pool_geom<int32_t>(p), x, y, int32_t(total));
  else
    launch<avgpool2d_forward_kernel<int64_t>>(op, pool_grid(total), dim3(kPoolBlock), 0, ex.stream,
                                              pool_geom<int64_t>(p), x, y, total);
}

void avgpool2d_backward(const Exec& ex, const Pool2dParams& p, const float* dy, float* dx) {
  const char* op = "avgpool2d_backward";
  check_pool(op, p);
  check_ptrs(op, dy, "dy", dx, "dx");
  const int64_t total = p.x_size();
  if (use_index32(p))
    launch<avgpool2d_backward_kernel<int32_t>>(op, pool_grid(total), dim3(kPoolBlock), 0, ex.stream,
                                               pool_geom<int32_t>(p), dy, dx, int32_t(total));
  else
    launch<avgpool2d_backward_kernel<int64_t>>(op, pool_grid(total), dim3(kPoolBlock), 0, ex.stream,
                                               pool_geom<int64_t>(p), dy, dx, total);
}

void global_avgpool_forward(const Exec& ex, int64_t N, int64_t C, int64_t H, int64_t W, const float* x, float* y) {
  const char* op = "global_avgpool_forward";
  check_global(op, N, C, H, W, x, "x", y, "y");
  const int64_t planes = N * C, warps_per_block = kPoolBlock / kWarpSize;
  launch<global_avgpool_forward_kernel>(op, dim3(grid_stride_blocks(planes, int(warps_per_block), 4096)),
                                        dim3(kPoolBlock), 0, ex.stream, x, y, planes, H * W);
}

void global_avgpool_backward(const Exec& ex, int64_t N, int64_t C, int64_t H, int64_t W, const float* dy, float* dx) {
  const char* op = "global_avgpool_backward";
  check_global(op, N, C, H, W, dy, "dy", dx, "dx");
  const int64_t total = N * C * H * W;
  if (total < kIndex32Limit)
    launch<global_avgpool_backward_kernel<int32_t>>(op, pool_grid(total), dim3(kPoolBlock), 0, ex.stream, dy, dx,
                                                    int32_t(total), int32_t(H * W));
  else
    launch<global_avgpool_backward_kernel<int64_t>>(op, pool_grid(total), dim3(kPoolBlock), 0, ex.stream, dy, dx, total,
                                                    H * W);
}

void adaptive_avgpool2d_forward(const Exec& ex, const AdaptivePool2dParams& p, const float* x, float* y) {
  const char* op = "adaptive_avgpool2d_forward";
  p.validate(op);
  check_ptrs(op, x, "x", y, "y");
  const int64_t total = p.N * p.C * p.OH * p.OW;
  if (total < kIndex32Limit && p.N * p.C * p.H * p.W < kIndex32Limit)
    launch<adaptive_avgpool2d_forward_kernel<int32_t>>(op, pool_grid(total), dim3(kPoolBlock), 0, ex.stream, p, x, y,
                                                       int32_t(total));
  else
    launch<adaptive_avgpool2d_forward_kernel<int64_t>>(op, pool_grid(total), dim3(kPoolBlock), 0, ex.stream, p, x, y,
                                                       total);
}

void adaptive_avgpool2d_backward(const Exec& ex, const AdaptivePool2dParams& p, const float* dy, float* dx) {
  const char* op = "adaptive_avgpool2d_backward";
  p.validate(op);
  check_ptrs(op, dy, "dy", dx, "dx");
  const int64_t total = p.N * p.C * p.H * p.W;
  if (total < kIndex32Limit && p.N * p.C * p.OH * p.OW < kIndex32Limit)
    launch<adaptive_avgpool2d_backward_kernel<int32_t>>(op, pool_grid(total), dim3(kPoolBlock), 0, ex.stream, p, dy, dx,
                                                        int32_t(total));
  else
    launch<adaptive_avgpool2d_backward_kernel<int64_t>>(op, pool_grid(total), dim3(kPoolBlock), 0, ex.stream, p, dy, dx,
                                                        total);
}

const bool registered = ops::maxpool2d_forward_stub.define(kThisSlot, maxpool2d_forward) &&
                        ops::maxpool2d_backward_stub.define(kThisSlot, maxpool2d_backward) &&
                        ops::avgpool2d_forward_stub.define(kThisSlot, avgpool2d_forward) &&
                        ops::avgpool2d_backward_stub.define(kThisSlot, avgpool2d_backward) &&
                        ops::global_avgpool_forward_stub.define(kThisSlot, global_avgpool_forward) &&
                        ops::global_avgpool_backward_stub.define(kThisSlot, global_avgpool_backward) &&
                        ops::adaptive_avgpool2d_forward_stub.define(kThisSlot, adaptive_avgpool2d_forward) &&
                        ops::adaptive_avgpool2d_backward_stub.define(kThisSlot, adaptive_avgpool2d_backward);

}  // namespace fovea::FOVEA_KERNEL_NS
