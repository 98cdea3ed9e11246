// 2-D convolution kernels (NCHW activations, KCRS weights; PyTorch's conv2d): forward (fprop),
// input gradient (dgrad) and weight gradient (wgrad), each in three versions kept side by side:
//   direct        (kernels/conv2d_direct.cu)        one output element per thread; obviously right.
//   implicit_gemm (kernels/conv2d_implicit_gemm.cu) the im2col matrix is never materialised: block
//                 tiles are gathered from the tensors into shared memory, double buffered, with
//                 8x8 / 4x8 register tiles. The default, used by the layers.
//   im2col_gemm   (kernels/conv2d_im2col.cu)        im2col / col2im + our tiled SGEMM, per image
//                 (the classic Caffe route), for comparison.
// Bias: fused into the forward pass (b may be null); its gradient is conv2d_backward_bias()
// (kernels/linear.h). All versions are deterministic: no float atomics; every sum has a fixed order.
//
// Scratch memory is always the caller's: conv2d_workspace_bytes() says how much a call needs, and
// the launchers take (workspace, workspace_bytes) or a fovea::Workspace&.
#pragma once
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <string_view>

#include "core/error.h"
#include "core/memory.h"
#include "core/op_params.h"
#include "kernels/api.h"
#include "kernels/linear.h"  // conv2d_backward_bias, bias_add

namespace fovea {

enum class ConvAlgo : uint8_t { direct, implicit_gemm, im2col_gemm };
enum class ConvOp : uint8_t { forward, backward_data, backward_filter };

inline const char* conv_algo_name(ConvAlgo a) {
  switch (a) {
    case ConvAlgo::direct: return "direct";
    case ConvAlgo::implicit_gemm: return "implicit_gemm";
    case ConvAlgo::im2col_gemm: return "im2col_gemm";
  }
  return "?";
}
inline ConvAlgo parse_conv_algo(std::string_view s) {
  if (s == "direct") return ConvAlgo::direct;
  if (s == "implicit_gemm") return ConvAlgo::implicit_gemm;
  if (s == "im2col_gemm") return ConvAlgo::im2col_gemm;
  FOVEA_FAIL("conv2d: unknown algorithm '", s, "' (expected direct, implicit_gemm or im2col_gemm)");
}
inline const char* conv_op_name(ConvOp op) {
  switch (op) {
    case ConvOp::forward: return "conv2d_forward";
    case ConvOp::backward_data: return "conv2d_backward_data";
    case ConvOp::backward_filter: return "conv2d_backward_filter";
  }
  return "?";
}

// ---------------------------------------------------------------- implicit-GEMM planning
// Each op is a batch of GEMMs C[M][N] = sum over Kred of A[M][Kred] B[Kred][N]:
//   forward         M = K/groups (out channels)  N = N*P*Q (out pixels)  Kred = C/groups*R*S   per group
//   backward_data   M = C/groups (in channels)   N = N*H*W (in pixels)   Kred = K/groups*R*S   per group
//   backward_filter M = K/groups                 N = C/groups*R*S        Kred = N*P*Q         per group
// A strided backward_data is split further into stride_h*stride_w phases: the input pixels with the
// same (h + pad_h) mod stride_h (and likewise w) receive exactly the filter taps r with
// r*dil_h = (h + pad_h) mod stride_h, so each phase is a GEMM over its own pixels and taps, and no
// work goes to taps that miss the stride grid. conv2d_gemm_shape() gives the largest phase.
struct ConvGemmShape {
  int64_t M, N, Kred;
  int64_t batches;  // independent GEMMs: groups (x phases for backward_data)
};
// Taps of one filter axis that a dgrad phase can receive: the solutions r < R of r*dil = a (mod
// stride) are spaced stride / gcd(dil, stride) apart.
inline int64_t conv2d_dgrad_tap_step(int64_t stride, int64_t dil) {
  return stride / std::gcd(stride, dil);
}
inline ConvGemmShape conv2d_gemm_shape(ConvOp op, const Conv2dParams& p) {
  const int64_t Cg = p.C_per_group(), Kg = p.K_per_group(), RS = p.R * p.S;
  switch (op) {
    case ConvOp::forward: return {Kg, p.N * p.P() * p.Q(), Cg * RS, p.groups};
    case ConvOp::backward_data: {
      const int64_t step_r = conv2d_dgrad_tap_step(p.stride_h, p.dil_h);
      const int64_t step_s = conv2d_dgrad_tap_step(p.stride_w, p.dil_w);
      const int64_t rows = (p.H + p.stride_h - 1) / p.stride_h, cols = (p.W + p.stride_w - 1) / p.stride_w;
      return {Cg, p.N * rows * cols, Kg * ((p.R + step_r - 1) / step_r) * ((p.S + step_s - 1) / step_s),
              p.groups * p.stride_h * p.stride_w};
    }
    case ConvOp::backward_filter: return {Kg, Cg * RS, p.N * p.P() * p.Q(), p.groups};
  }
  return {0, 0, 0, 1};
}
// Elements of the op's output tensor (y, dx or dw).
inline int64_t conv2d_output_size(ConvOp op, const Conv2dParams& p) {
  return op == ConvOp::forward ? p.y_size() : op == ConvOp::backward_data ? p.x_size() : p.w_size();
}

// Block tile (bm x bn of C) and reduction split of an implicit-GEMM launch. With splits > 1 each
// slice of the reduction writes its partial tile to the workspace and a second kernel adds the
// slices in slice order (and the bias): deterministic, no atomics.
struct ConvGemmPlan {
  int bm = 0, bn = 0;  // 0: the launcher chooses with conv2d_igemm_plan()
  int64_t splits = 1;  // requested; normalised by conv2d_igemm_normalize()
};
inline constexpr int kConvGemmBK = 8;  // reduction depth of a shared-memory slab
// The tile shapes the kernels are instantiated for (kernels/conv2d_implicit_gemm.cu).
inline constexpr int kConvGemmTiles[][2] = {{128, 128}, {64, 128}, {32, 128}, {16, 128}, {64, 64}, {32, 64}};
inline bool conv2d_igemm_tile_supported(int bm, int bn) {
  for (const auto& t : kConvGemmTiles)
    if (t[0] == bm && t[1] == bn) return true;
  return false;
}

// Reduction elements per slice: a whole number of slabs; the last slice may be shorter.
inline int64_t conv2d_igemm_split_len(const ConvGemmShape& s, int64_t splits) {
  const int64_t per = (s.Kred + splits - 1) / splits;
  return (per + kConvGemmBK - 1) / kConvGemmBK * kConvGemmBK;
}
// Clamps the split count to what the reduction length and the grid allow, with no empty slice.
inline ConvGemmPlan conv2d_igemm_normalize(ConvOp op, const Conv2dParams& p, ConvGemmPlan plan) {
  const ConvGemmShape s = conv2d_gemm_shape(op, p);
  int64_t splits = plan.splits < 1 ? 1 : plan.splits;
  const int64_t max_z = 65535 / (s.batches > 0 ? s.batches : 1);
  if (splits > max_z) splits = max_z < 1 ? 1 : max_z;
  if (s.Kred <= 0) splits = 1;
  if (splits > 1) {
    const int64_t len = conv2d_igemm_split_len(s, splits);
    splits = (s.Kred + len - 1) / len;
  }
  plan.splits = splits;
  return plan;
}

// The default plan, from the shape alone (so every device runs the same tiles and sums):
// the narrowest tile that covers the GEMM's M (few output channels waste no rows), 64 columns when
// 128 would leave the GPU short of blocks, and split-K while fewer than ~2 blocks per SM of an H100
// (132 SMs) exist and each slice keeps >= 32 slabs. Splits x tiles stays near 264, so split-K
// partials take at most about 264 * 128 * 128 floats (17 MB) of workspace.
inline ConvGemmPlan conv2d_igemm_plan(ConvOp op, const Conv2dParams& p) {
  constexpr int64_t kTargetBlocks = 264, kMinSliceSlabs = 32, kMaxSplits = 64;
  const ConvGemmShape s = conv2d_gemm_shape(op, p);
  ConvGemmPlan plan;
  plan.bm = s.M > 64 ? 128 : s.M > 32 ? 64 : s.M > 16 ? 32 : 16;
  plan.bn = 128;
  auto blocks = [&](int bm, int bn) { return (s.M + bm - 1) / bm * ((s.N + bn - 1) / bn) * s.batches; };
  const bool has_narrow = plan.bm == 64 || plan.bm == 32;
  if (has_narrow) {
    // wgrad's N is C*R*S: prefer 64 when it pads less; otherwise 64 when blocks are scarce.
    const bool less_padding = (s.N + 63) / 64 * 64 < (s.N + 127) / 128 * 128;
    if (blocks(plan.bm, 128) < kTargetBlocks || (op == ConvOp::backward_filter && less_padding)) plan.bn = 64;
  }
  const int64_t b = blocks(plan.bm, plan.bn);
  if (b < kTargetBlocks) {
    int64_t splits = (kTargetBlocks + b - 1) / b;
    const int64_t max_by_len = s.Kred / (kMinSliceSlabs * kConvGemmBK);
    if (splits > max_by_len) splits = max_by_len;
    if (splits > kMaxSplits) splits = kMaxSplits;
    plan.splits = splits < 1 ? 1 : splits;
  }
  return conv2d_igemm_normalize(op, p, plan);
}

// Workspace of an implicit-GEMM launch: one partial output per slice when split.
inline size_t conv2d_igemm_workspace_bytes(ConvOp op, const Conv2dParams& p, const ConvGemmPlan& plan) {
  const ConvGemmPlan n = conv2d_igemm_normalize(op, p, plan);
  return n.splits > 1 ? size_t(n.splits) * size_t(conv2d_output_size(op, p)) * sizeof(float) : 0;
}

// Scratch bytes a conv2d_* call with `algo` needs (0: none; pass nullptr).
inline size_t conv2d_workspace_bytes(ConvAlgo algo, ConvOp op, const Conv2dParams& p) {
  switch (algo) {
    case ConvAlgo::direct: return 0;
    case ConvAlgo::implicit_gemm: return conv2d_igemm_workspace_bytes(op, p, conv2d_igemm_plan(op, p));
    case ConvAlgo::im2col_gemm: return size_t(p.C * p.R * p.S) * size_t(p.P() * p.Q()) * sizeof(float);
  }
  return 0;
}

}  // namespace fovea

// Pointers are device pointers of the device whose build is called; shapes follow Conv2dParams
// (x [N,C,H,W], w [K,C/groups,R,S], b [K], y [N,K,P,Q]). Outputs are overwritten, never accumulated.
#define FOVEA_CONV2D_KERNELS                                                                                           \
  /* ---- dispatch: ConvAlgo picks the version ---- */                                                                 \
  void conv2d_forward(ConvAlgo algo, const Conv2dParams& p, const float* x, const float* w, const float* b, float* y,  \
                      void* workspace, size_t workspace_bytes, StreamHandle stream);                                   \
  void conv2d_backward_data(ConvAlgo algo, const Conv2dParams& p, const float* dy, const float* w, float* dx,          \
                            void* workspace, size_t workspace_bytes, StreamHandle stream);                             \
  void conv2d_backward_filter(ConvAlgo algo, const Conv2dParams& p, const float* x, const float* dy, float* dw,        \
                              void* workspace, size_t workspace_bytes, StreamHandle stream);                           \
  inline void conv2d_forward(ConvAlgo algo, const Conv2dParams& p, const float* x, const float* w, const float* b,     \
                             float* y, Workspace& ws, StreamHandle stream) {                                           \
    const size_t n = conv2d_workspace_bytes(algo, ConvOp::forward, p);                                                 \
    conv2d_forward(algo, p, x, w, b, y, n ? ws.get(n) : nullptr, n, stream);                                           \
  }                                                                                                                    \
  inline void conv2d_backward_data(ConvAlgo algo, const Conv2dParams& p, const float* dy, const float* w, float* dx,   \
                                   Workspace& ws, StreamHandle stream) {                                               \
    const size_t n = conv2d_workspace_bytes(algo, ConvOp::backward_data, p);                                           \
    conv2d_backward_data(algo, p, dy, w, dx, n ? ws.get(n) : nullptr, n, stream);                                      \
  }                                                                                                                    \
  inline void conv2d_backward_filter(ConvAlgo algo, const Conv2dParams& p, const float* x, const float* dy, float* dw, \
                                     Workspace& ws, StreamHandle stream) {                                             \
    const size_t n = conv2d_workspace_bytes(algo, ConvOp::backward_filter, p);                                         \
    conv2d_backward_filter(algo, p, x, dy, dw, n ? ws.get(n) : nullptr, n, stream);                                    \
  }                                                                                                                    \
  /* ---- direct (kernels/conv2d_direct.cu): no workspace ---- */                                                      \
  void conv2d_forward_direct(const Conv2dParams& p, const float* x, const float* w, const float* b, float* y,          \
                             StreamHandle stream);                                                                     \
  void conv2d_backward_data_direct(const Conv2dParams& p, const float* dy, const float* w, float* dx,                  \
                                   StreamHandle stream);                                                               \
  void conv2d_backward_filter_direct(const Conv2dParams& p, const float* x, const float* dy, float* dw,                \
                                     StreamHandle stream);                                                             \
  /* ---- implicit GEMM (kernels/conv2d_implicit_gemm.cu): workspace per conv2d_igemm_workspace_bytes; */              \
  /* plan {} = conv2d_igemm_plan(); tests force other tiles / splits through it. ---- */                               \
  void conv2d_forward_implicit_gemm(const Conv2dParams& p, const float* x, const float* w, const float* b, float* y,   \
                                    void* workspace, size_t workspace_bytes, StreamHandle stream,                      \
                                    const ConvGemmPlan& plan = {});                                                    \
  void conv2d_backward_data_implicit_gemm(const Conv2dParams& p, const float* dy, const float* w, float* dx,           \
                                          void* workspace, size_t workspace_bytes, StreamHandle stream,                \
                                          const ConvGemmPlan& plan = {});                                              \
  void conv2d_backward_filter_implicit_gemm(const Conv2dParams& p, const float* x, const float* dy, float* dw,         \
                                            void* workspace, size_t workspace_bytes, StreamHandle stream,              \
                                            const ConvGemmPlan& plan = {});                                            \
  /* ---- im2col + SGEMM (kernels/conv2d_im2col.cu): workspace = one image's columns ---- */                           \
  /* One image: x [C,H,W] -> col [C*R*S, P*Q] (fovea::ref::im2col's layout); col2im overwrites x. */                   \
  void im2col(const Conv2dParams& p, const float* x, float* col, StreamHandle stream);                                 \
  void col2im(const Conv2dParams& p, const float* col, float* x, StreamHandle stream);                                 \
  void conv2d_forward_im2col(const Conv2dParams& p, const float* x, const float* w, const float* b, float* y,          \
                             void* workspace, size_t workspace_bytes, StreamHandle stream);                            \
  void conv2d_backward_data_im2col(const Conv2dParams& p, const float* dy, const float* w, float* dx, void* workspace, \
                                   size_t workspace_bytes, StreamHandle stream);                                       \
  void conv2d_backward_filter_im2col(const Conv2dParams& p, const float* x, const float* dy, float* dw,                \
                                     void* workspace, size_t workspace_bytes, StreamHandle stream);

FOVEA_DECLARE_KERNELS(FOVEA_CONV2D_KERNELS)
