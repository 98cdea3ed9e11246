// 2-D convolution in our kernels: the implicit-GEMM view of fprop, dgrad and wgrad, the tile plan and the
// scratch each version needs. Host code (tests, benchmarks) uses these to force tiles and size workspaces; the
// kernels themselves are reached through ops::conv2d_*_stub (layers/ops/conv2d.h), whose ConvConfig picks one
// of three versions kept side by side:
//   direct        (kernels/conv2d_direct.cu)       one output element per thread; obviously right.
//   implicit_gemm (kernels/conv2d_igemm_*.cu)      the im2col matrix is never materialised: block tiles are
//                 gathered from the tensors into shared memory, double buffered, with 8x8 / 4x8 register
//                 tiles. The default, used by the layers.
//   im2col_gemm   (kernels/conv2d_im2col.cu)       im2col / col2im + our tiled SGEMM, per image (the classic
//                 Caffe route), for comparison.
// Bias: fused into the forward pass (b may be null); its gradient is conv2d_backward_bias_stub. All versions
// are deterministic: no float atomics; every sum has a fixed order.
#pragma once
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <string_view>

#include "core/error.h"
#include "core/memory.h"
#include "layers/ops/conv2d.h"

namespace fovea {

// The multiply-adds of a convolution, x2: the same for its forward pass and both gradients (note_flop, for the
// emulator's cost model).
inline double conv_flop(const Conv2dParams& p) {
  return 2.0 * double(p.N) * double(p.K) * double(p.P()) * double(p.Q()) * double(p.C_per_group()) * double(p.R) *
         double(p.S);
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

// Block tile and reduction split of an implicit-GEMM launch (ConvGemmPlan, layers/ops/conv2d.h). With splits > 1
// each slice of the reduction writes its partial tile to the workspace and a second kernel adds the slices in
// slice order (and the bias): deterministic, no atomics.
inline constexpr int kConvGemmBK = 8;  // reduction depth of a shared-memory slab
// The tile shapes the kernels are instantiated for (kernels/conv2d_igemm_*.cu).
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

// dgrad's copy of the weights in the layout its GEMM reads (kernels/conv2d_igemm_dgrad.cu): K*C/g*R*S floats;
// none for R*S == 1, whose weights already have that layout.
inline size_t conv2d_igemm_dgrad_weight_copy_bytes(const Conv2dParams& p) {
  return p.R * p.S > 1 ? size_t(p.w_size()) * sizeof(float) : 0;
}
// Split-K partials of an implicit-GEMM launch: one partial output per slice when split.
inline size_t conv2d_igemm_partials_bytes(ConvOp op, const Conv2dParams& p, const ConvGemmPlan& plan) {
  const ConvGemmPlan n = conv2d_igemm_normalize(op, p, plan);
  return n.splits > 1 ? size_t(n.splits) * size_t(conv2d_output_size(op, p)) * sizeof(float) : 0;
}
// Workspace of an implicit-GEMM launch: the partials, then (dgrad) the weight copy.
inline size_t conv2d_igemm_workspace_bytes(ConvOp op, const Conv2dParams& p, const ConvGemmPlan& plan) {
  return conv2d_igemm_partials_bytes(op, p, plan) +
         (op == ConvOp::backward_data ? conv2d_igemm_dgrad_weight_copy_bytes(p) : 0);
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
