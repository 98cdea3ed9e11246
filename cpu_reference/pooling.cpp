#include "cpu_reference/pooling.h"
#include "layers/ops/pooling.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "cpu_reference/common.h"

namespace fovea::ref {
namespace {

using detail::check_ptr;

void check_pool(const char* op, const Pool2dParams& p) {
  p.validate(op);
  FOVEA_CHECK(p.P() > 0 && p.Q() > 0, op, ": empty output ", p.P(), "x", p.Q(), " (", p.str(), ")");
}

// Max of the window rows [h0, h0 + hn) x columns [w0, w0 + wn) of plane xp, and in *arg the flat
// index of the maximum. PyTorch's rule: start from the first real pixel (padding never wins), take
// v when v > best or v is NaN, so the first maximum in scan order wins and a NaN sticks.
inline float window_max_exact(const float* xp, int64_t W, int64_t h0, int64_t hn, int64_t w0, int64_t wn,
                              int64_t* arg) {
  float best = -std::numeric_limits<float>::infinity();
  int64_t at_best = h0 * W + w0;
  for (int64_t i = 0; i < hn; ++i)
    for (int64_t j = 0; j < wn; ++j) {
      const int64_t at = (h0 + i) * W + w0 + j;
      if (xp[at] > best || std::isnan(xp[at])) best = xp[at], at_best = at;
    }
  *arg = at_best;
  return best;
}

// The same without NaN in the window, written so that it compiles to selects (the comparisons are
// unpredictable: branches cost several times more); a NaN sends the window to the exact version.
// KH/KW > 0 fix the window size at compile time so that the loops unroll.
template <int KH, int KW>
[[gnu::always_inline]] inline float window_max(const float* xp, int64_t W, int64_t h0, int64_t hn, int64_t w0,
                                               int64_t wn, int64_t* arg) {
  if constexpr (KH > 0) hn = KH;
  if constexpr (KW > 0) wn = KW;
  float best = -std::numeric_limits<float>::infinity();
  int64_t at_best = h0 * W + w0;
  bool nan = false;
  for (int64_t i = 0; i < hn; ++i) {
    const int64_t row = (h0 + i) * W + w0;
    for (int64_t j = 0; j < wn; ++j) {
      const float v = xp[row + j];
      const int64_t take = v > best;
      nan |= v != v;
      at_best += (row + j - at_best) & -take;  // arithmetic select: GCC emits a branch for '?:' here
      best = v > best ? v : best;              // maxss
    }
  }
  if (nan) [[unlikely]]
    return window_max_exact(xp, W, h0, hn, w0, wn, arg);
  *arg = at_best;
  return best;
}

// Pool2dParams copied to locals so that the compiler keeps them in registers (stores through the
// int64 index pointer could otherwise alias the params).
struct Geometry {
  int64_t H, W, P, Q, kh, kw, sh, sw, ph, pw;
  explicit Geometry(const Pool2dParams& p)
      : H(p.H),
        W(p.W),
        P(p.P()),
        Q(p.Q()),
        kh(p.kernel_h),
        kw(p.kernel_w),
        sh(p.stride_h),
        sw(p.stride_w),
        ph(p.pad_h),
        pw(p.pad_w) {}
};

// One (n, c) plane; KH/KW > 0 fix the window size at compile time for unclipped windows.
template <int KH, int KW, typename Index>
void maxpool_plane(const Geometry g, const float* xp, float* yp, Index* ip) {
  for (int64_t oh = 0; oh < g.P; ++oh) {
    const int64_t hs = oh * g.sh - g.ph;
    const int64_t h0 = std::max<int64_t>(hs, 0), h1 = std::min<int64_t>(hs + g.kh, g.H);
    for (int64_t ow = 0; ow < g.Q; ++ow) {
      const int64_t ws = ow * g.sw - g.pw;
      const int64_t w0 = std::max<int64_t>(ws, 0), w1 = std::min<int64_t>(ws + g.kw, g.W);
      const bool full = KH > 0 && h0 == hs && w0 == ws && h1 - h0 == KH && w1 - w0 == KW;
      int64_t arg;
      // Two calls so that the unclipped one has constant trip counts and unrolls.
      const float best = full ? window_max<KH, KW>(xp, g.W, h0, KH, w0, KW, &arg)
                              : window_max<0, 0>(xp, g.W, h0, h1 - h0, w0, w1 - w0, &arg);
      yp[oh * g.Q + ow] = best;
      if (ip) ip[oh * g.Q + ow] = Index(arg);
    }
  }
}

template <typename Index>
void maxpool_forward(const char* op, const Pool2dParams& p, const float* x, float* y, Index* idx) {
  check_pool(op, p);
  check_ptr(op, "x", x), check_ptr(op, "y", y);
  const Geometry g(p);
  const int64_t HW = p.H * p.W, PQ = g.P * g.Q, planes = p.N * p.C;
  FOVEA_CHECK(!idx || HW - 1 <= int64_t(std::numeric_limits<Index>::max()), op, ": H*W=", HW,
              " does not fit the index type");
  auto plane = &maxpool_plane<0, 0, Index>;
  if (p.kernel_h == 2 && p.kernel_w == 2) plane = &maxpool_plane<2, 2, Index>;
  if (p.kernel_h == 3 && p.kernel_w == 3) plane = &maxpool_plane<3, 3, Index>;
#pragma omp parallel for schedule(dynamic, detail::chunk_items(HW)) if (planes * PQ >= detail::kParallelGrain / 4)
  for (int64_t nc = 0; nc < planes; ++nc) plane(g, x + nc * HW, y + nc * PQ, idx ? idx + nc * PQ : nullptr);
}

template <typename Index>
void maxpool_backward(const char* op, const Pool2dParams& p, const float* dy, const Index* idx, float* dx) {
  check_pool(op, p);
  check_ptr(op, "dy", dy), check_ptr(op, "idx", idx), check_ptr(op, "dx", dx);
  const int64_t PQ = p.P() * p.Q(), HW = p.H * p.W, planes = p.N * p.C;
  // Validate every index first so that a bad one leaves dx untouched and is reported once.
  for (int64_t i = 0; i < planes * PQ; ++i)
    FOVEA_CHECK(idx[i] >= 0 && int64_t(idx[i]) < HW, op, ": argument 'idx'[", i, "]=", int64_t(idx[i]),
                " is outside the input plane of ", HW, " pixels (", p.str(), ")");
#pragma omp parallel for schedule(dynamic, detail::chunk_items(HW)) if (planes * HW >= detail::kParallelGrain)
  for (int64_t nc = 0; nc < planes; ++nc) {
    float* dxp = dx + nc * HW;
    std::fill(dxp, dxp + HW, 0.0f);
    const float* dyp = dy + nc * PQ;
    const Index* ip = idx + nc * PQ;
    for (int64_t i = 0; i < PQ; ++i) dxp[ip[i]] += dyp[i];
  }
}

// PyTorch's avg_pool2d window bounds and divisor.
struct AvgWindow {
  int64_t h0, h1, w0, w1;
  double div;
};
AvgWindow avg_window(const Pool2dParams& p, int64_t oh, int64_t ow) {
  int64_t h0 = oh * p.stride_h - p.pad_h, w0 = ow * p.stride_w - p.pad_w;
  int64_t h1 = std::min(h0 + p.kernel_h, p.H + p.pad_h), w1 = std::min(w0 + p.kernel_w, p.W + p.pad_w);
  const int64_t padded = (h1 - h0) * (w1 - w0);
  h0 = std::max<int64_t>(h0, 0), w0 = std::max<int64_t>(w0, 0);
  h1 = std::min(h1, p.H), w1 = std::min(w1, p.W);
  const int64_t div = p.count_include_pad ? padded : (h1 - h0) * (w1 - w0);
  return {h0, h1, w0, w1, double(div)};
}

}  // namespace

void maxpool2d_forward(const Pool2dParams& p, const float* x, float* y, int64_t* idx) {
  maxpool_forward("maxpool2d_forward", p, x, y, idx);
}
void maxpool2d_forward(const Pool2dParams& p, const float* x, float* y, int32_t* idx) {
  maxpool_forward("maxpool2d_forward", p, x, y, idx);
}
void maxpool2d_backward(const Pool2dParams& p, const float* dy, const int64_t* idx, float* dx) {
  maxpool_backward("maxpool2d_backward", p, dy, idx, dx);
}
void maxpool2d_backward(const Pool2dParams& p, const float* dy, const int32_t* idx, float* dx) {
  maxpool_backward("maxpool2d_backward", p, dy, idx, dx);
}

void avgpool2d_forward(const Pool2dParams& p, const float* x, float* y) {
  const char* op = "avgpool2d_forward";
  check_pool(op, p);
  check_ptr(op, "x", x), check_ptr(op, "y", y);
  const int64_t P = p.P(), Q = p.Q(), HW = p.H * p.W, planes = p.N * p.C;
#pragma omp parallel for schedule(dynamic, detail::chunk_items(HW)) if (planes * P * Q >= detail::kParallelGrain)
  for (int64_t nc = 0; nc < planes; ++nc) {
    const float* xp = x + nc * HW;
    for (int64_t oh = 0; oh < P; ++oh)
      for (int64_t ow = 0; ow < Q; ++ow) {
        const AvgWindow a = avg_window(p, oh, ow);
        double s = 0.0;
        for (int64_t h = a.h0; h < a.h1; ++h)
          for (int64_t w = a.w0; w < a.w1; ++w) s += xp[h * p.W + w];
        y[(nc * P + oh) * Q + ow] = float(s / a.div);
      }
  }
}

void avgpool2d_backward(const Pool2dParams& p, const float* dy, float* dx) {
  const char* op = "avgpool2d_backward";
  check_pool(op, p);
  check_ptr(op, "dy", dy), check_ptr(op, "dx", dx);
  const int64_t P = p.P(), Q = p.Q(), HW = p.H * p.W, planes = p.N * p.C;
#pragma omp parallel for schedule(dynamic, detail::chunk_items(HW)) if (planes * HW >= detail::kParallelGrain)
  for (int64_t nc = 0; nc < planes; ++nc) {
    float* dxp = dx + nc * HW;
    std::fill(dxp, dxp + HW, 0.0f);
    for (int64_t oh = 0; oh < P; ++oh)
      for (int64_t ow = 0; ow < Q; ++ow) {
        const AvgWindow a = avg_window(p, oh, ow);
        const float g = float(double(dy[(nc * P + oh) * Q + ow]) / a.div);
        for (int64_t h = a.h0; h < a.h1; ++h)
          for (int64_t w = a.w0; w < a.w1; ++w) dxp[h * p.W + w] += g;
      }
  }
}

namespace {
void check_global(const char* op, int64_t N, int64_t C, int64_t H, int64_t W) {
  FOVEA_CHECK(N > 0 && C > 0 && H > 0 && W > 0, op, ": arguments N, C, H, W must be > 0, got ", N, ",", C, ",", H, ",",
              W);
}
}  // namespace

void global_avgpool_forward(int64_t N, int64_t C, int64_t H, int64_t W, const float* x, float* y) {
  const char* op = "global_avgpool_forward";
  check_global(op, N, C, H, W);
  check_ptr(op, "x", x), check_ptr(op, "y", y);
  const int64_t HW = H * W;
#pragma omp parallel for schedule(dynamic, detail::chunk_items(HW)) if (N * C * HW >= detail::kParallelGrain)
  for (int64_t nc = 0; nc < N * C; ++nc) y[nc] = float(detail::sum_double(x + nc * HW, HW) / double(HW));
}

void global_avgpool_backward(int64_t N, int64_t C, int64_t H, int64_t W, const float* dy, float* dx) {
  const char* op = "global_avgpool_backward";
  check_global(op, N, C, H, W);
  check_ptr(op, "dy", dy), check_ptr(op, "dx", dx);
  const int64_t HW = H * W;
#pragma omp parallel for schedule(dynamic, detail::chunk_items(HW)) if (N * C * HW >= detail::kParallelGrain)
  for (int64_t nc = 0; nc < N * C; ++nc) {
    const float g = float(double(dy[nc]) / double(HW));
    std::fill(dx + nc * HW, dx + (nc + 1) * HW, g);
  }
}

void adaptive_avgpool2d_forward(const AdaptivePool2dParams& p, const float* x, float* y) {
  const char* op = "adaptive_avgpool2d_forward";
  p.validate(op);
  check_ptr(op, "x", x), check_ptr(op, "y", y);
  using B = AdaptivePool2dParams;
#pragma omp parallel for schedule(static) if (p.N * p.C * p.H * p.W >= detail::kParallelGrain)
  for (int64_t nc = 0; nc < p.N * p.C; ++nc) {
    const float* plane = x + nc * p.H * p.W;
    for (int64_t i = 0; i < p.OH; ++i)
      for (int64_t j = 0; j < p.OW; ++j) {
        const int64_t h0 = B::start(i, p.H, p.OH), h1 = B::end(i, p.H, p.OH);
        const int64_t w0 = B::start(j, p.W, p.OW), w1 = B::end(j, p.W, p.OW);
        double s = 0;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) s += plane[h * p.W + w];
        y[(nc * p.OH + i) * p.OW + j] = float(s / double((h1 - h0) * (w1 - w0)));
      }
  }
}

void adaptive_avgpool2d_backward(const AdaptivePool2dParams& p, const float* dy, float* dx) {
  const char* op = "adaptive_avgpool2d_backward";
  p.validate(op);
  check_ptr(op, "dy", dy), check_ptr(op, "dx", dx);
  using B = AdaptivePool2dParams;
#pragma omp parallel for schedule(static) if (p.N * p.C * p.H * p.W >= detail::kParallelGrain)
  for (int64_t nc = 0; nc < p.N * p.C; ++nc) {
    float* plane = dx + nc * p.H * p.W;
    std::fill(plane, plane + p.H * p.W, 0.0f);
    for (int64_t i = 0; i < p.OH; ++i)
      for (int64_t j = 0; j < p.OW; ++j) {
        const int64_t h0 = B::start(i, p.H, p.OH), h1 = B::end(i, p.H, p.OH);
        const int64_t w0 = B::start(j, p.W, p.OW), w1 = B::end(j, p.W, p.OW);
        const float g = float(double(dy[(nc * p.OH + i) * p.OW + j]) / double((h1 - h0) * (w1 - w0)));
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) plane[h * p.W + w] += g;
      }
  }
}

// ---- the cpu slots of layers/ops/pooling.h's dispatch stubs

namespace {

const bool registered =
    ops::maxpool2d_forward_stub.define(Slot::cpu, [](const Exec&, const Pool2dParams& p, const float* x, float* y,
                                                     int32_t* idx) { maxpool2d_forward(p, x, y, idx); }) &&
    ops::maxpool2d_backward_stub.define(
        Slot::cpu, [](const Exec&, const Pool2dParams& p, const float*, const float*, const int32_t* idx,
                      const float* dy, float* dx) { maxpool2d_backward(p, dy, idx, dx); }) &&
    ops::avgpool2d_forward_stub.define(
        Slot::cpu, [](const Exec&, const Pool2dParams& p, const float* x, float* y) { avgpool2d_forward(p, x, y); }) &&
    ops::avgpool2d_backward_stub.define(Slot::cpu, [](const Exec&, const Pool2dParams& p, const float* dy,
                                                      float* dx) { avgpool2d_backward(p, dy, dx); }) &&
    ops::global_avgpool_forward_stub.define(Slot::cpu,
                                            [](const Exec&, int64_t N, int64_t C, int64_t H, int64_t W, const float* x,
                                               float* y) { global_avgpool_forward(N, C, H, W, x, y); }) &&
    ops::global_avgpool_backward_stub.define(
        Slot::cpu, [](const Exec&, int64_t N, int64_t C, int64_t H, int64_t W, const float* dy,
                      float* dx) { global_avgpool_backward(N, C, H, W, dy, dx); }) &&
    ops::adaptive_avgpool2d_forward_stub.define(Slot::cpu,
                                                [](const Exec&, const AdaptivePool2dParams& p, const float* x,
                                                   float* y) { adaptive_avgpool2d_forward(p, x, y); }) &&
    ops::adaptive_avgpool2d_backward_stub.define(
        Slot::cpu, [](const Exec&, const AdaptivePool2dParams& p, const float* dy, float* dx) {
          adaptive_avgpool2d_backward(p, dy, dx);
        });

}  // namespace

}  // namespace fovea::ref
