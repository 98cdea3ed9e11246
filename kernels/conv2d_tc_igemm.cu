// Implicit-GEMM tensor-core convolutions (design and cost model: kernels/conv2d_tc_igemm.cuh): the NHWC
// kernel-level stubs of kernels/conv2d_tc.h (fprop, dgrad, wgrad), and the op-level conv2d_*_precision_stub
// (layers/ops/conv2d.h) on the op's FP32 NCHW tensors:
//   every precision: the operands (x, dy: NCHW; w: KCRS) are transposed into NHWC and KRSC copies in the workspace,
//   narrowed to the type on the way (BF16/FP16: rounded to nearest even; TF32: kept FP32, the kernel rounds by
//   cvt.rna); the kernel writes its output in NHWC (KRSC) in the type, rounded once (the forward with the bias
//   added first); the output is transposed back and widened. Cost beyond the kernel: memory-bound passes that read each
//   FP32 operand once and write it in the type (2 or 4 bytes), and read and write y once more; the reads of the
//   transposes are strided (coalesced writes). Models kept in 16-bit NHWC tensors call the kernel-level stubs and pay
//   none of it.
#include <algorithm>
#include <type_traits>
#include "kernels/conv2d_tc.h"
#include "kernels/conv2d_tc_igemm.cuh"

#include "kernels/reduce.cuh"  // workspace_array

namespace fovea::FOVEA_KERNEL_NS {
namespace {

using tcg::Bf16, tcg::Fp16, tcg::Tf32;

// dst[n][j][c] = src[n][c][j] in P's storage type (NCHW -> NHWC with j = h W + w; KCRS -> KRSC with n = k).
template <class P>
__global__ void to_channels_last(const float* __restrict__ src, typename P::Raw* __restrict__ dst, int64_t N, int64_t C,
                                 int64_t J) {
  const int64_t n_all = N * C * J;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n_all; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = i / (J * C), rem = i - n * J * C, j = rem / C, c = rem - j * C;
    dst[i] = P::from_float(src[(n * C + c) * J + j]);
  }
}

// dst[n][c][j] = src[n][j][c] widened to FP32.
template <class P>
__global__ void from_channels_last(const typename P::Raw* __restrict__ src, float* __restrict__ dst, int64_t N,
                                   int64_t C, int64_t J) {
  const int64_t n_all = N * C * J;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n_all; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = i / (C * J), rem = i - n * C * J, c = rem / J, j = rem - c * J;
    dst[i] = P::to_float(src[(n * J + j) * C + c]);
  }
}

unsigned grid_for(int64_t n) {
  const int64_t blocks = (n + 255) / 256;
  return unsigned(blocks < 4096 ? (blocks > 0 ? blocks : 1) : 4096);
}

// Bytes rounded up to 16 (every piece of a workspace starts 16-byte aligned).
int64_t aligned_bytes(int64_t bytes) {
  return (bytes + 15) / 16 * 16;
}

// dgrad's B rows (k-contiguous per input channel), per stride phase (ah, aw) (tcg::dgrad_phase_axis: the taps r with
// r dil_h mod stride_h = ah, s with s dil_w mod stride_w = aw), the phases one after another (ah, then aw): phase
// (ah, aw) at G Cg Kg (before_h(ah) S + taps_h(ah) before_w(aw)) elements (tcg::dgrad_taps_before), its rows
// [g][c][jr][js][k] = w[g Kg + k][r0 + step_h jr][s0 + step_w js][c]. Unit stride: one phase, wt[g][c][r][s][k].
template <class Raw>
__global__ void filter_for_dgrad(const Raw* __restrict__ w, Raw* __restrict__ wt, int64_t G, int64_t Kg, int R, int S,
                                 int64_t Cg, int sh, int sw, int dh, int dw) {
  const int64_t n_all = G * Kg * R * S * Cg;
  const int step_h = sh / tcg::gcd_int(sh, dh), step_w = sw / tcg::gcd_int(sw, dw);
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n_all; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = i % Cg, rsk = i / Cg, gk = rsk / (R * S), g = gk / Kg, k = gk - g * Kg;
    const int rs = int(rsk - gk * R * S), r = rs / S, s = rs - r * S;
    const int ah = r * dh % sh, aw = s * dw % sw;
    const int taps_h = (R - 1 - r % step_h) / step_h + 1, taps_w = (S - 1 - s % step_w) / step_w + 1;
    const int64_t phase =
        G * Cg * Kg *
        (int64_t(tcg::dgrad_taps_before(ah, R, sh, dh)) * S + int64_t(taps_h) * tcg::dgrad_taps_before(aw, S, sw, dw));
    wt[phase + (((g * Cg + c) * taps_h + r / step_h) * taps_w + s / step_w) * Kg + k] = w[i];
  }
}

// dx (NHWC) from dy (NPQK) and w (KRSC); ws: the rearranged filter (w_size elements, 16-byte aligned); partial: the
// split-K partials (ops::conv2d_tc_igemm_partial_floats floats; may be null where that is 0).
template <class P>
void launch_conv_dgrad(const char* op, const Conv2dParams& p, const typename P::Raw* dy, const typename P::Raw* w,
                       typename P::Raw* dx, typename P::Raw* ws, float* partial, StreamHandle stream) {
  const tcg::ConvArgs c = tcg::conv_args<tcg::Pass::dgrad>(op, p);
  check_ptr(op, "dy", dy), check_ptr(op, "w", w), check_ptr(op, "dx", dx);
  if (p.x_size() == 0) return;
  if (p.w_size())
    FOVEA_LAUNCH(filter_for_dgrad<typename P::Raw>, grid_for(p.w_size()), 256, 0, stream, w, ws, p.groups,
                 p.K_per_group(), c.R, c.S, p.C_per_group(), c.stride_h, c.stride_w, c.dil_h, c.dil_w);
  const int splits = int(ops::conv2d_tc_igemm_splits(ConvOp::backward_data, tcg::precision_of<P>(), p));
  // One GEMM per stride phase (kernels/conv2d_tc_igemm.cuh): the phase's dx pixels by its taps only, a dgrad at unit
  // stride over dy; at unit stride the one phase is the whole dgrad.
  const int sh = c.stride_h, sw = c.stride_w;
  for (int ah = 0; ah < sh; ++ah)
    for (int aw = 0; aw < sw; ++aw) {
      const tcg::DgradPhaseAxis ph = tcg::dgrad_phase_axis(ah, c.pad_h, sh, c.dil_h, c.R, c.OH);
      const tcg::DgradPhaseAxis pw = tcg::dgrad_phase_axis(aw, c.pad_w, sw, c.dil_w, c.S, c.OW);
      tcg::ConvArgs q = c;
      // A phase no tap reaches keeps R, S >= 1 (a plan may divide by them) with an empty reduction: it writes zeros.
      q.OH = ph.count, q.OW = pw.count, q.R = std::max(ph.taps, 1), q.S = std::max(pw.taps, 1);
      q.stride_h = q.stride_w = 1, q.pad_h = ph.base, q.pad_w = pw.base, q.dil_h = ph.dstep, q.dil_w = pw.dstep;
      q.M = int(p.N) * q.OH * q.OW, q.Kred = ph.taps * pw.taps * q.Tg;
      const tcg::OutRows rows{ph.x0, pw.x0, sh, sw, c.OH, c.OW, c.M};
      const int64_t off = p.groups * p.C_per_group() * p.K_per_group() *
                          (int64_t(tcg::dgrad_taps_before(ah, c.R, sh, c.dil_h)) * c.S +
                           int64_t(ph.taps) * tcg::dgrad_taps_before(aw, c.S, sw, c.dil_w));
      const double flops = sh * sw == 1 ? p.flops() : 2.0 * q.M * q.cols * q.Kred * double(p.groups);
      tcg::launch_conv_igemm_parts<P, tcg::Pass::dgrad>(op, q, rows, int(p.groups), splits, dy, ws + off, nullptr, dx,
                                                        partial, flops, stream);
    }
  if (splits > 1) tcg::launch_conv_split_reduce<P>(splits, c.M, c.ldo, partial, nullptr, dx, stream);
}

template <class K>
void set_wgrad_smem(const char* op, K* kernel, int bytes) {
  const cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  FOVEA_CHECK(err == cudaSuccess, op, ": cudaFuncSetAttribute(MaxDynamicSharedMemorySize, ", bytes,
              ") failed: ", cudaGetErrorString(err),
              " (the device needs >= 96 KiB of shared memory per block: sm_80+)");
}

// dw (KRSC) from x (NHWC) and dy (NPQK); partial: conv2d_tc_wgrad_splits x w_size floats.
template <class P>
void launch_conv_wgrad(const char* op, Precision prec, const Conv2dParams& p, const typename P::Raw* x,
                       const typename P::Raw* dy, typename P::Raw* dw, float* partial, StreamHandle stream) {
  using M = tcg::Ms<P>;
  const tcg::ConvArgs c = tcg::conv_args<tcg::Pass::fprop>(op, p);
  check_ptr(op, "x", x), check_ptr(op, "dy", dy), check_ptr(op, "dw", dw);
  const int64_t n = p.w_size();
  if (n == 0) return;
  const int splits = int(ops::conv2d_tc_wgrad_splits(prec, p));
  const int ktiles = (c.M + M::kBK - 1) / M::kBK, per = (ktiles + splits - 1) / splits;
  FOVEA_CHECK(int64_t(p.groups) * splits <= 65535, op, ": groups x splits = ", p.groups * splits,
              " is above the grid's 65535");
  const dim3 grid(unsigned((c.Kred + M::kTile - 1) / M::kTile), unsigned((c.cols + M::kTile - 1) / M::kTile),
                  unsigned(p.groups * splits));
  // The fast path where it applies (kernels/conv2d_tc_igemm.cuh); TF32 and odd channel counts take the element path.
  note_flop(p.flops());
  if constexpr (sizeof(typename P::Raw) == 2) {
    if (tcg::conv2d_tc_wgrad_fast<P>(c, x, dy)) {
      set_wgrad_smem(op, tcg::conv2d_tc_wgrad_kernel<P, true>, M::kSmemBytes);
      FOVEA_LAUNCH((tcg::conv2d_tc_wgrad_kernel<P, true>), grid, M::kThreads, M::kSmemBytes, stream, c, splits, per, x,
                   dy, partial);
      FOVEA_LAUNCH(tcg::split_k_reduce<P>, grid_for(n), 256, 0, stream, partial, splits, n, 1, n, n, n, 1.0f, 0.0f,
                   nullptr, dw);
      return;
    }
  }
  set_wgrad_smem(op, tcg::conv2d_tc_wgrad_kernel<P, false>, M::kSmemBytes);
  FOVEA_LAUNCH((tcg::conv2d_tc_wgrad_kernel<P, false>), grid, M::kThreads, M::kSmemBytes, stream, c, splits, per, x, dy,
               partial);
  FOVEA_LAUNCH(tcg::split_k_reduce<P>, grid_for(n), 256, 0, stream, partial, splits, n, 1, n, n, n, 1.0f, 0.0f, nullptr,
               dw);
}

template <class T>
auto raw(T* p) {
  if constexpr (std::is_const_v<T>)
    return reinterpret_cast<const uint16_t*>(p);
  else
    return reinterpret_cast<uint16_t*>(p);
}

// Carves 16-byte aligned pieces of `bytes` each from one workspace.
struct Carve {
  unsigned char* at;
  template <class T>
  T* take(int64_t count) {
    T* r = reinterpret_cast<T*>(at);
    at += aligned_bytes(count * int64_t(sizeof(T)));
    return r;
  }
};

// fprop's split-K partials from ex's workspace, or null where it does not split (no workspace needed).
template <class P>
float* fprop_workspace(const Exec& ex, const Conv2dParams& p, const char* op) {
  p.validate(op);
  const int64_t n = ops::conv2d_tc_igemm_partial_floats(ConvOp::forward, tcg::precision_of<P>(), p);
  return n ? workspace_array<float>(ex, n, op) : nullptr;
}
void conv2d_tc_fprop_nhwc_tf32(const Exec& ex, const Conv2dParams& p, const float* x, const float* w, const float* b,
                               float* y) {
  constexpr const char* op = "conv2d_tc_fprop_nhwc_tf32";
  tcg::launch_conv_fprop<Tf32>(op, p, x, w, b, y, fprop_workspace<Tf32>(ex, p, op), ex.stream);
}
void conv2d_tc_fprop_nhwc_bf16(const Exec& ex, const Conv2dParams& p, const BFloat16* x, const BFloat16* w,
                               const float* b, BFloat16* y) {
  constexpr const char* op = "conv2d_tc_fprop_nhwc_bf16";
  tcg::launch_conv_fprop<Bf16>(op, p, raw(x), raw(w), b, raw(y), fprop_workspace<Bf16>(ex, p, op), ex.stream);
}
void conv2d_tc_fprop_nhwc_fp16(const Exec& ex, const Conv2dParams& p, const Half* x, const Half* w, const float* b,
                               Half* y) {
  constexpr const char* op = "conv2d_tc_fprop_nhwc_fp16";
  tcg::launch_conv_fprop<Fp16>(op, p, raw(x), raw(w), b, raw(y), fprop_workspace<Fp16>(ex, p, op), ex.stream);
}

// dgrad's workspace (ops::conv2d_tc_workspace_bytes): the rearranged filter, then the split-K partials if it splits.
template <class P>
void conv_dgrad_in_workspace(const char* op, const Exec& ex, const Conv2dParams& p, const typename P::Raw* dy,
                             const typename P::Raw* w, typename P::Raw* dx) {
  p.validate(op);
  const int64_t partial_n = ops::conv2d_tc_igemm_partial_floats(ConvOp::backward_data, tcg::precision_of<P>(), p);
  Carve ws{workspace_array<unsigned char>(
      ex, std::max<int64_t>(ops::conv2d_tc_workspace_bytes(ConvOp::backward_data, tcg::precision_of<P>(), p), 1), op)};
  typename P::Raw* wt = ws.take<typename P::Raw>(p.w_size());
  float* partial = partial_n ? ws.take<float>(partial_n) : nullptr;
  launch_conv_dgrad<P>(op, p, dy, w, dx, wt, partial, ex.stream);
}
void conv2d_tc_dgrad_nhwc_tf32(const Exec& ex, const Conv2dParams& p, const float* dy, const float* w, float* dx) {
  conv_dgrad_in_workspace<Tf32>("conv2d_tc_dgrad_nhwc_tf32", ex, p, dy, w, dx);
}
void conv2d_tc_dgrad_nhwc_bf16(const Exec& ex, const Conv2dParams& p, const BFloat16* dy, const BFloat16* w,
                               BFloat16* dx) {
  conv_dgrad_in_workspace<Bf16>("conv2d_tc_dgrad_nhwc_bf16", ex, p, raw(dy), raw(w), raw(dx));
}
void conv2d_tc_dgrad_nhwc_fp16(const Exec& ex, const Conv2dParams& p, const Half* dy, const Half* w, Half* dx) {
  conv_dgrad_in_workspace<Fp16>("conv2d_tc_dgrad_nhwc_fp16", ex, p, raw(dy), raw(w), raw(dx));
}

float* wgrad_workspace(const Exec& ex, Precision prec, const Conv2dParams& p, const char* op) {
  p.validate(op);
  return workspace_array<float>(ex, std::max<int64_t>(ops::conv2d_tc_wgrad_splits(prec, p) * p.w_size(), 1), op);
}
void conv2d_tc_wgrad_nhwc_tf32(const Exec& ex, const Conv2dParams& p, const float* x, const float* dy, float* dw) {
  constexpr const char* op = "conv2d_tc_wgrad_nhwc_tf32";
  launch_conv_wgrad<Tf32>(op, Precision::tf32, p, x, dy, dw, wgrad_workspace(ex, Precision::tf32, p, op), ex.stream);
}
void conv2d_tc_wgrad_nhwc_bf16(const Exec& ex, const Conv2dParams& p, const BFloat16* x, const BFloat16* dy,
                               BFloat16* dw) {
  constexpr const char* op = "conv2d_tc_wgrad_nhwc_bf16";
  launch_conv_wgrad<Bf16>(op, Precision::bf16, p, raw(x), raw(dy), raw(dw), wgrad_workspace(ex, Precision::bf16, p, op),
                          ex.stream);
}
void conv2d_tc_wgrad_nhwc_fp16(const Exec& ex, const Conv2dParams& p, const Half* x, const Half* dy, Half* dw) {
  constexpr const char* op = "conv2d_tc_wgrad_nhwc_fp16";
  launch_conv_wgrad<Fp16>(op, Precision::fp16, p, raw(x), raw(dy), raw(dw), wgrad_workspace(ex, Precision::fp16, p, op),
                          ex.stream);
}

// ---- the op-level stubs: FP32 NCHW tensors through NHWC copies in the type (see the top of this file)

// Calls f(P{}) for the precision's operations.
template <class F>
void at_precision(Precision prec, const char* op, const F& f) {
  FOVEA_CHECK(prec == Precision::tf32 || prec == Precision::bf16 || prec == Precision::fp16, op, ": precision ",
              precision_name(prec), " is not a tensor-core precision");
  if (prec == Precision::tf32)
    f(Tf32{});
  else if (prec == Precision::bf16)
    f(Bf16{});
  else
    f(Fp16{});
}

void conv2d_forward_tc_igemm(const Exec& ex, Precision prec, const Conv2dParams& p, const float* x, const float* w,
                             const float* b, float* y) {
  constexpr const char* op = "conv2d_forward_precision";
  p.validate(op);
  check_ptr(op, "x", x), check_ptr(op, "w", w), check_ptr(op, "y", y);
  const int64_t x_n = p.x_size(), w_n = p.w_size(), y_n = p.y_size();
  at_precision(prec, op, [&]<class P>(P) {
    using Raw = typename P::Raw;
    if (y_n == 0) return;
    const int64_t e = sizeof(Raw), partial_n = ops::conv2d_tc_igemm_partial_floats(ConvOp::forward, prec, p);
    Carve ws{workspace_array<unsigned char>(
        ex, aligned_bytes(x_n * e) + aligned_bytes(w_n * e) + aligned_bytes(y_n * e) + aligned_bytes(partial_n * 4),
        op)};
    Raw *xt = ws.take<Raw>(x_n), *wt = ws.take<Raw>(w_n), *yt = ws.take<Raw>(y_n);
    float* partial = partial_n ? ws.take<float>(partial_n) : nullptr;
    if (x_n) FOVEA_LAUNCH(to_channels_last<P>, grid_for(x_n), 256, 0, ex.stream, x, xt, p.N, p.C, p.H * p.W);
    if (w_n)
      FOVEA_LAUNCH(to_channels_last<P>, grid_for(w_n), 256, 0, ex.stream, w, wt, p.K, p.C_per_group(), p.R * p.S);
    tcg::launch_conv_fprop<P>(op, p, xt, wt, b, yt, partial, ex.stream);
    FOVEA_LAUNCH(from_channels_last<P>, grid_for(y_n), 256, 0, ex.stream, yt, y, p.N, p.K, p.P() * p.Q());
  });
}

void conv2d_backward_data_tc_igemm(const Exec& ex, Precision prec, const Conv2dParams& p, const float* dy,
                                   const float* w, float* dx) {
  constexpr const char* op = "conv2d_backward_data_precision";
  p.validate(op);
  check_ptr(op, "dy", dy), check_ptr(op, "w", w), check_ptr(op, "dx", dx);
  const int64_t x_n = p.x_size(), w_n = p.w_size(), y_n = p.y_size();
  at_precision(prec, op, [&]<class P>(P) {
    using Raw = typename P::Raw;
    if (x_n == 0) return;
    const int64_t e = sizeof(Raw), partial_n = ops::conv2d_tc_igemm_partial_floats(ConvOp::backward_data, prec, p);
    Carve ws{workspace_array<unsigned char>(
        ex, aligned_bytes(y_n * e) + 2 * aligned_bytes(w_n * e) + aligned_bytes(x_n * e) + aligned_bytes(partial_n * 4),
        op)};
    Raw *dyt = ws.take<Raw>(y_n), *wt = ws.take<Raw>(w_n), *wd = ws.take<Raw>(w_n), *dxt = ws.take<Raw>(x_n);
    float* partial = partial_n ? ws.take<float>(partial_n) : nullptr;
    if (y_n) FOVEA_LAUNCH(to_channels_last<P>, grid_for(y_n), 256, 0, ex.stream, dy, dyt, p.N, p.K, p.P() * p.Q());
    if (w_n)
      FOVEA_LAUNCH(to_channels_last<P>, grid_for(w_n), 256, 0, ex.stream, w, wt, p.K, p.C_per_group(), p.R * p.S);
    launch_conv_dgrad<P>(op, p, dyt, wt, dxt, wd, partial, ex.stream);
    FOVEA_LAUNCH(from_channels_last<P>, grid_for(x_n), 256, 0, ex.stream, dxt, dx, p.N, p.C, p.H * p.W);
  });
}

void conv2d_backward_filter_tc_igemm(const Exec& ex, Precision prec, const Conv2dParams& p, const float* x,
                                     const float* dy, float* dw) {
  constexpr const char* op = "conv2d_backward_filter_precision";
  p.validate(op);
  check_ptr(op, "x", x), check_ptr(op, "dy", dy), check_ptr(op, "dw", dw);
  const int64_t x_n = p.x_size(), w_n = p.w_size(), y_n = p.y_size();
  at_precision(prec, op, [&]<class P>(P) {
    using Raw = typename P::Raw;
    if (w_n == 0) return;
    const int64_t e = sizeof(Raw), splits = ops::conv2d_tc_wgrad_splits(prec, p);
    Carve ws{workspace_array<unsigned char>(
        ex, aligned_bytes(x_n * e) + aligned_bytes(y_n * e) + aligned_bytes(w_n * e) + aligned_bytes(splits * w_n * 4),
        op)};
    Raw *xt = ws.take<Raw>(x_n), *dyt = ws.take<Raw>(y_n), *dwt = ws.take<Raw>(w_n);
    float* partial = ws.take<float>(splits * w_n);
    if (x_n) FOVEA_LAUNCH(to_channels_last<P>, grid_for(x_n), 256, 0, ex.stream, x, xt, p.N, p.C, p.H * p.W);
    if (y_n) FOVEA_LAUNCH(to_channels_last<P>, grid_for(y_n), 256, 0, ex.stream, dy, dyt, p.N, p.K, p.P() * p.Q());
    launch_conv_wgrad<P>(op, prec, p, xt, dyt, dwt, partial, ex.stream);
    // KRSC -> KCRS: [K][R S][Cg] -> [K][Cg][R S]
    FOVEA_LAUNCH(from_channels_last<P>, grid_for(w_n), 256, 0, ex.stream, dwt, dw, p.K, p.C_per_group(), p.R * p.S);
  });
}

[[maybe_unused]] const bool registered =
    ops::conv2d_tc_fprop_nhwc_tf32_stub.define(kThisSlot, &conv2d_tc_fprop_nhwc_tf32) &&
    ops::conv2d_tc_fprop_nhwc_bf16_stub.define(kThisSlot, &conv2d_tc_fprop_nhwc_bf16) &&
    ops::conv2d_tc_fprop_nhwc_fp16_stub.define(kThisSlot, &conv2d_tc_fprop_nhwc_fp16) &&
    ops::conv2d_tc_dgrad_nhwc_tf32_stub.define(kThisSlot, &conv2d_tc_dgrad_nhwc_tf32) &&
    ops::conv2d_tc_dgrad_nhwc_bf16_stub.define(kThisSlot, &conv2d_tc_dgrad_nhwc_bf16) &&
    ops::conv2d_tc_dgrad_nhwc_fp16_stub.define(kThisSlot, &conv2d_tc_dgrad_nhwc_fp16) &&
    ops::conv2d_tc_wgrad_nhwc_tf32_stub.define(kThisSlot, &conv2d_tc_wgrad_nhwc_tf32) &&
    ops::conv2d_tc_wgrad_nhwc_bf16_stub.define(kThisSlot, &conv2d_tc_wgrad_nhwc_bf16) &&
    ops::conv2d_tc_wgrad_nhwc_fp16_stub.define(kThisSlot, &conv2d_tc_wgrad_nhwc_fp16) &&
    ops::conv2d_forward_precision_stub.define(kThisSlot, &conv2d_forward_tc_igemm) &&
    ops::conv2d_backward_data_precision_stub.define(kThisSlot, &conv2d_backward_data_tc_igemm) &&
    ops::conv2d_backward_filter_precision_stub.define(kThisSlot, &conv2d_backward_filter_tc_igemm);

}  // namespace
}  // namespace fovea::FOVEA_KERNEL_NS
