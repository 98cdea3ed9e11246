#include "cpu_reference/conv2d.h"
#include "layers/ops/conv2d.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu_reference/common.h"
#include "cpu_reference/gemm.h"

namespace fovea::ref {
namespace {

using detail::check_ptr;

// Output columns q whose input column q*stride + offset lies in [0, W): [lo, hi).
struct Range {
  int64_t lo, hi;
};
Range valid_range(int64_t offset, int64_t stride, int64_t W, int64_t Q) {
  const int64_t lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  const int64_t hi = W - 1 - offset < 0 ? 0 : (W - 1 - offset) / stride + 1;
  const int64_t l = std::min(lo, Q);
  return {l, std::max(l, std::min(hi, Q))};
}

// 1x1, stride 1, no padding: the im2col matrix of an image is the image itself.
bool is_pointwise(const Conv2dParams& p) {
  return p.R == 1 && p.S == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_h == 0 && p.pad_w == 0;
}

void check_conv(const char* op, const Conv2dParams& p) {
  p.validate(op);
  FOVEA_CHECK(p.P() > 0 && p.Q() > 0, op, ": empty output ", p.P(), "x", p.Q(), " (", p.str(), ")");
}

// Number of partial weight gradients (each sums a fixed range of images; they are added in order at
// the end). It depends only on the shapes, so the bits of dw do not depend on the thread count or
// the schedule. 16 chunks balance well on a busy machine; very large filters get fewer (memory).
int64_t wgrad_chunks(const Conv2dParams& p) {
  constexpr int64_t kMaxChunks = 16, kMaxBytes = int64_t(64) << 20;
  const int64_t by_memory = std::max<int64_t>(1, kMaxBytes / (p.w_size() * int64_t(sizeof(float))));
  return std::min({p.N, kMaxChunks, by_memory});
}

// im2col into a matrix whose rows are ld floats apart (ld >= P*Q: several images side by side).
void im2col_ld(const Conv2dParams& p, const float* x, float* col, int64_t ld) {
  const int64_t P = p.P(), Q = p.Q();
  for (int64_t c = 0; c < p.C; ++c) {
    const float* xc = x + c * p.H * p.W;
    for (int64_t r = 0; r < p.R; ++r) {
      for (int64_t s = 0; s < p.S; ++s) {
        float* row = col + ((c * p.R + r) * p.S + s) * ld;
        const int64_t w_off = s * p.dil_w - p.pad_w;
        const Range qr = valid_range(w_off, p.stride_w, p.W, Q);
        for (int64_t oh = 0; oh < P; ++oh) {
          float* out = row + oh * Q;
          const int64_t h = oh * p.stride_h - p.pad_h + r * p.dil_h;
          if (h < 0 || h >= p.H) {
            std::fill(out, out + Q, 0.0f);
            continue;
          }
          const float* in = xc + h * p.W + w_off;
          std::fill(out, out + qr.lo, 0.0f);
          if (p.stride_w == 1) {
            std::memcpy(out + qr.lo, in + qr.lo, size_t(qr.hi - qr.lo) * sizeof(float));
          } else {
            for (int64_t q = qr.lo; q < qr.hi; ++q) out[q] = in[q * p.stride_w];
          }
          std::fill(out + qr.hi, out + Q, 0.0f);
        }
      }
    }
  }
}

// Images per weight-gradient GEMM. The GEMM's inner dimension is P*Q per image: small maps (8x8
// or 16x16) put several images side by side so that it reaches ~512, while the im2col block stays
// small enough for the cache (large maps: one image, which measured fastest). Depends only on the shapes.
int64_t wgrad_sub_batch(const Conv2dParams& p) {
  constexpr int64_t kMinInner = 512, kMaxImages = 8, kMaxFloats = int64_t(1) << 20;
  const int64_t PQ = p.P() * p.Q();
  int64_t sub = std::clamp<int64_t>((kMinInner + PQ - 1) / PQ, 1, kMaxImages);
  while (sub > 1 && (p.C * p.R * p.S + p.K) * PQ * sub > kMaxFloats) --sub;
  return sub;
}

}  // namespace

void im2col(const Conv2dParams& p, const float* x, float* col) {
  const char* op = "im2col";
  check_conv(op, p);
  check_ptr(op, "x", x), check_ptr(op, "col", col);
  im2col_ld(p, x, col, p.P() * p.Q());
}

void col2im(const Conv2dParams& p, const float* col, float* x) {
  const char* op = "col2im";
  check_conv(op, p);
  check_ptr(op, "col", col), check_ptr(op, "x", x);
  const int64_t P = p.P(), Q = p.Q();
  std::fill(x, x + p.C * p.H * p.W, 0.0f);
  for (int64_t c = 0; c < p.C; ++c) {
    float* xc = x + c * p.H * p.W;
    for (int64_t r = 0; r < p.R; ++r) {
      for (int64_t s = 0; s < p.S; ++s) {
        const float* row = col + ((c * p.R + r) * p.S + s) * P * Q;
        const int64_t w_off = s * p.dil_w - p.pad_w;
        const Range qr = valid_range(w_off, p.stride_w, p.W, Q);
        for (int64_t oh = 0; oh < P; ++oh) {
          const int64_t h = oh * p.stride_h - p.pad_h + r * p.dil_h;
          if (h < 0 || h >= p.H) continue;
          const float* in = row + oh * Q;
          float* out = xc + h * p.W + w_off;
          if (p.stride_w == 1) {
            for (int64_t q = qr.lo; q < qr.hi; ++q) out[q] += in[q];
          } else {
            for (int64_t q = qr.lo; q < qr.hi; ++q) out[q * p.stride_w] += in[q];
          }
        }
      }
    }
  }
}

void conv2d_forward(const Conv2dParams& p, const float* x, const float* w, const float* b, float* y) {
  const char* op = "conv2d_forward";
  check_conv(op, p);
  check_ptr(op, "x", x), check_ptr(op, "w", w), check_ptr(op, "y", y);
  detail::blas_init();
  const int64_t G = p.groups, Cg = p.C / G, Kg = p.K / G, PQ = p.P() * p.Q(), HW = p.H * p.W;
  const int64_t crs_g = Cg * p.R * p.S;
  const bool pointwise = is_pointwise(p);
  const bool over_images = p.N >= detail::max_threads() && detail::max_threads() > 1;

  auto image = [&](int64_t n) {
    const float* xn = x + n * p.C * HW;
    const float* col = xn;
    if (!pointwise) {
      float* buf = detail::scratch(0, size_t(p.C * p.R * p.S * PQ));
      im2col(p, xn, buf);
      col = buf;
    }
    float* yn = y + n * p.K * PQ;
    for (int64_t g = 0; g < G; ++g) {
      const float* A = w + g * Kg * crs_g;
      const float* B = col + g * crs_g * PQ;
      float* C = yn + g * Kg * PQ;
      if (over_images)
        detail::sgemm(false, false, Kg, PQ, crs_g, 1.0f, A, crs_g, B, PQ, 0.0f, C, PQ);
      else
        detail::parallel_sgemm(false, false, Kg, PQ, crs_g, 1.0f, A, crs_g, B, PQ, 0.0f, C, PQ);
    }
    if (b) {
      for (int64_t k = 0; k < p.K; ++k) {
        float* yk = yn + k * PQ;
        const float bk = b[k];
        for (int64_t i = 0; i < PQ; ++i) yk[i] += bk;
      }
    }
  };
  if (over_images) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t n = 0; n < p.N; ++n) image(n);
  } else {
    for (int64_t n = 0; n < p.N; ++n) image(n);
  }
}

void conv2d_backward_data(const Conv2dParams& p, const float* dy, const float* w, float* dx) {
  const char* op = "conv2d_backward_data";
  check_conv(op, p);
  check_ptr(op, "dy", dy), check_ptr(op, "w", w), check_ptr(op, "dx", dx);
  detail::blas_init();
  const int64_t G = p.groups, Cg = p.C / G, Kg = p.K / G, PQ = p.P() * p.Q(), HW = p.H * p.W;
  const int64_t crs_g = Cg * p.R * p.S;
  const bool pointwise = is_pointwise(p);
  const bool over_images = p.N >= detail::max_threads() && detail::max_threads() > 1;

  auto image = [&](int64_t n) {
    float* dxn = dx + n * p.C * HW;
    float* dcol = pointwise ? dxn : detail::scratch(0, size_t(p.C * p.R * p.S * PQ));
    const float* dyn = dy + n * p.K * PQ;
    for (int64_t g = 0; g < G; ++g) {
      // dcol_g [crs_g, PQ] = w_g^T [crs_g, Kg] * dy_g [Kg, PQ]
      const float* A = w + g * Kg * crs_g;
      const float* B = dyn + g * Kg * PQ;
      float* C = dcol + g * crs_g * PQ;
      if (over_images)
        detail::sgemm(true, false, crs_g, PQ, Kg, 1.0f, A, crs_g, B, PQ, 0.0f, C, PQ);
      else
        detail::parallel_sgemm(true, false, crs_g, PQ, Kg, 1.0f, A, crs_g, B, PQ, 0.0f, C, PQ);
    }
    if (!pointwise) col2im(p, dcol, dxn);
  };
  if (over_images) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t n = 0; n < p.N; ++n) image(n);
  } else {
    for (int64_t n = 0; n < p.N; ++n) image(n);
  }
}

void conv2d_backward_filter(const Conv2dParams& p, const float* x, const float* dy, float* dw) {
  const char* op = "conv2d_backward_filter";
  check_conv(op, p);
  check_ptr(op, "x", x), check_ptr(op, "dy", dy), check_ptr(op, "dw", dw);
  detail::blas_init();
  const int64_t G = p.groups, Cg = p.C / G, Kg = p.K / G, PQ = p.P() * p.Q(), HW = p.H * p.W;
  const int64_t crs_g = Cg * p.R * p.S, wsize = p.w_size();
  const bool pointwise = is_pointwise(p);
  const int64_t chunks = wgrad_chunks(p), sub = wgrad_sub_batch(p);
  const bool parallel = chunks > 1 && detail::max_threads() > 1;

  // Partial sums per chunk of images, summed in chunk order at the end.
  float* partial = chunks == 1 ? dw : detail::scratch(1, size_t(chunks * wsize));
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
  for (int64_t c = 0; c < chunks; ++c) {
    float* part = partial + (chunks == 1 ? 0 : c * wsize);
    const int64_t n0 = c * p.N / chunks, n1 = (c + 1) * p.N / chunks;
    for (int64_t n = n0; n < n1; n += sub) {
      // Images n .. n + nb side by side: col [C*R*S, nb*PQ], dy [K, nb*PQ].
      const int64_t nb = std::min(sub, n1 - n), ld = nb * PQ;
      const float* col = x + n * p.C * HW;  // pointwise, one image: the image is its im2col
      const float* dyc = dy + n * p.K * PQ;
      if (nb > 1 || !pointwise) {
        float* buf = detail::scratch(0, size_t(p.C * p.R * p.S * ld));
        for (int64_t i = 0; i < nb; ++i) {
          const float* xi = x + (n + i) * p.C * HW;
          if (pointwise) {
            for (int64_t ch = 0; ch < p.C; ++ch) std::memcpy(buf + ch * ld + i * PQ, xi + ch * HW, PQ * sizeof(float));
          } else {
            im2col_ld(p, xi, buf + i * PQ, ld);
          }
        }
        col = buf;
      }
      if (nb > 1) {
        float* buf = detail::scratch(3, size_t(p.K * ld));
        for (int64_t i = 0; i < nb; ++i)
          for (int64_t k = 0; k < p.K; ++k)
            std::memcpy(buf + k * ld + i * PQ, dy + ((n + i) * p.K + k) * PQ, PQ * sizeof(float));
        dyc = buf;
      }
      const float beta = n == n0 ? 0.0f : 1.0f;
      for (int64_t g = 0; g < G; ++g) {
        // dw_g [Kg, crs_g] += dy_g [Kg, nb*PQ] * col_g^T [nb*PQ, crs_g]
        const float* A = dyc + g * Kg * ld;
        const float* B = col + g * crs_g * ld;
        float* C = part + g * Kg * crs_g;
        if (parallel)
          detail::sgemm(false, true, Kg, crs_g, ld, 1.0f, A, ld, B, ld, beta, C, crs_g);
        else
          detail::parallel_sgemm(false, true, Kg, crs_g, ld, 1.0f, A, ld, B, ld, beta, C, crs_g);
      }
    }
  }
  if (chunks > 1) {
#pragma omp parallel for schedule(dynamic, detail::kChunk) if (wsize >= detail::kParallelGrain)
    for (int64_t i = 0; i < wsize; ++i) {
      float s = partial[i];
      for (int64_t c = 1; c < chunks; ++c) s += partial[c * wsize + i];
      dw[i] = s;
    }
  }
}

void conv2d_backward_bias(const Conv2dParams& p, const float* dy, float* db) {
  const char* op = "conv2d_backward_bias";
  check_conv(op, p);
  check_ptr(op, "dy", dy), check_ptr(op, "db", db);
  const int64_t PQ = p.P() * p.Q();
#pragma omp parallel for schedule(dynamic, 1) if (p.N * p.K * PQ >= detail::kParallelGrain)
  for (int64_t k = 0; k < p.K; ++k) {
    double s = 0.0;
    for (int64_t n = 0; n < p.N; ++n) s += detail::sum_double(dy + (n * p.K + k) * PQ, PQ);
    db[k] = float(s);
  }
}

// ------------------------------------------------------------------ tensor-core precisions
namespace {
std::vector<float> rounded(Precision prec, const float* x, int64_t n, bool as_output = false) {
  std::vector<float> v(static_cast<size_t>(n));
  if (as_output)
    round_outputs(prec, x, n, v.data());
  else
    round_operands(prec, x, n, v.data());
  return v;
}
}  // namespace

void conv2d_forward(const Conv2dParams& p, Precision prec, const float* x, const float* w, const float* b, float* y) {
  if (prec == Precision::fp32) return conv2d_forward(p, x, w, b, y);
  const char* op = "conv2d_forward";
  check_conv(op, p);
  check_ptr(op, "x", x), check_ptr(op, "w", w), check_ptr(op, "y", y);
  const std::vector<float> xr = rounded(prec, x, p.x_size()), wr = rounded(prec, w, p.w_size());
  const std::vector<float> br = b ? rounded(prec, b, p.K, true) : std::vector<float>();
  conv2d_forward(p, xr.data(), wr.data(), b ? br.data() : nullptr, y);
  round_outputs(prec, y, p.y_size(), y);
}

void conv2d_backward_data(const Conv2dParams& p, Precision prec, const float* dy, const float* w, float* dx) {
  if (prec == Precision::fp32) return conv2d_backward_data(p, dy, w, dx);
  const char* op = "conv2d_backward_data";
  check_conv(op, p);
  check_ptr(op, "dy", dy), check_ptr(op, "w", w), check_ptr(op, "dx", dx);
  const std::vector<float> dyr = rounded(prec, dy, p.y_size()), wr = rounded(prec, w, p.w_size());
  conv2d_backward_data(p, dyr.data(), wr.data(), dx);
  round_outputs(prec, dx, p.x_size(), dx);
}

void conv2d_backward_filter(const Conv2dParams& p, Precision prec, const float* x, const float* dy, float* dw) {
  if (prec == Precision::fp32) return conv2d_backward_filter(p, x, dy, dw);
  const char* op = "conv2d_backward_filter";
  check_conv(op, p);
  check_ptr(op, "x", x), check_ptr(op, "dy", dy), check_ptr(op, "dw", dw);
  const std::vector<float> xr = rounded(prec, x, p.x_size()), dyr = rounded(prec, dy, p.y_size());
  conv2d_backward_filter(p, xr.data(), dyr.data(), dw);
  round_outputs(prec, dw, p.w_size(), dw);
}

// ---- the cpu slots of layers/ops/conv2d.h's dispatch stubs

namespace {

// The reference has one algorithm: ConvConfig is for our kernels.
const bool registered =
    ops::conv2d_forward_stub.define(
        Slot::cpu, [](const Exec&, const ConvConfig&, const Conv2dParams& p, const float* x, const float* w,
                      const float* b, float* y) { conv2d_forward(p, x, w, b, y); }) &&
    ops::conv2d_backward_data_stub.define(
        Slot::cpu, [](const Exec&, const ConvConfig&, const Conv2dParams& p, const float* dy, const float* w,
                      float* dx) { conv2d_backward_data(p, dy, w, dx); }) &&
    ops::conv2d_backward_filter_stub.define(
        Slot::cpu, [](const Exec&, const ConvConfig&, const Conv2dParams& p, const float* x, const float* dy,
                      float* dw) { conv2d_backward_filter(p, x, dy, dw); }) &&
    ops::conv2d_backward_bias_stub.define(Slot::cpu, [](const Exec&, const Conv2dParams& p, const float* dy,
                                                        float* db) { conv2d_backward_bias(p, dy, db); }) &&
    ops::im2col_stub.define(
        Slot::cpu, [](const Exec&, const Conv2dParams& p, const float* x, float* col) { im2col(p, x, col); }) &&
    ops::col2im_stub.define(
        Slot::cpu, [](const Exec&, const Conv2dParams& p, const float* col, float* x) { col2im(p, col, x); }) &&
    ops::conv2d_forward_precision_stub.define(
        Slot::cpu, [](const Exec&, Precision prec, const Conv2dParams& p, const float* x, const float* w,
                      const float* b, float* y) { conv2d_forward(p, prec, x, w, b, y); }) &&
    ops::conv2d_backward_data_precision_stub.define(
        Slot::cpu, [](const Exec&, Precision prec, const Conv2dParams& p, const float* dy, const float* w,
                      float* dx) { conv2d_backward_data(p, prec, dy, w, dx); }) &&
    ops::conv2d_backward_filter_precision_stub.define(
        Slot::cpu, [](const Exec&, Precision prec, const Conv2dParams& p, const float* x, const float* dy, float* dw) {
          conv2d_backward_filter(p, prec, x, dy, dw);
        });

}  // namespace

}  // namespace fovea::ref
