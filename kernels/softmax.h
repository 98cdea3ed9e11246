// Row softmax, log-softmax and fused softmax + cross-entropy over x [N, C] (kernels/softmax.cu), semantics of
// cpu_reference/softmax.h (PyTorch's dim=1, int64 labels, label_smoothing, mean reduction). Numerically
// stable: the row maximum is subtracted (online max/sum merge). Two versions of every kernel, chosen by
// `algo`: a warp per row holding the row in registers (C <= 1024, what `automatic` picks there) and a block
// per row for any C (what `automatic` picks above 1024). Both are deterministic and tested.
#pragma once
#include <cstdint>

#include "kernels/api.h"

namespace fovea {
enum class RowAlgo { automatic, warp_per_row, block_per_row };
inline constexpr int64_t kWarpPerRowMaxC = 1024;  // warp_per_row takes C up to this (32 registers per lane)
}  // namespace fovea

#define FOVEA_SOFTMAX_KERNELS                                                                                          \
  void softmax_forward(int64_t N, int64_t C, const float* x, float* y, StreamHandle stream,                            \
                       RowAlgo algo = RowAlgo::automatic);                                                             \
  /* dx = y * (dy - sum_c dy * y), y the forward output. */                                                            \
  void softmax_backward(int64_t N, int64_t C, const float* y, const float* dy, float* dx, StreamHandle stream,         \
                        RowAlgo algo = RowAlgo::automatic);                                                            \
  void log_softmax_forward(int64_t N, int64_t C, const float* x, float* y, StreamHandle stream,                        \
                           RowAlgo algo = RowAlgo::automatic);                                                         \
  /* dx = dy - exp(y) * sum_c dy, y the forward output. */                                                             \
  void log_softmax_backward(int64_t N, int64_t C, const float* y, const float* dy, float* dx, StreamHandle stream,     \
                            RowAlgo algo = RowAlgo::automatic);                                                        \
  /* row_loss[n] = -sum_c q[n][c] log_softmax(logits)[n][c], q = (1 - eps) onehot(label) + eps / C; loss[0]            \
     (a device scalar, may be nullptr) = mean over rows, summed in a fixed order. row_loss [N] is required.            \
     A label outside [0, C) makes its row (and the mean) NaN: the kernel cannot throw, the reference does. */          \
  void cross_entropy_forward(const CrossEntropyParams& p, const float* logits, const int64_t* labels, float* row_loss, \
                             float* loss, StreamHandle stream, RowAlgo algo = RowAlgo::automatic);                     \
  /* dlogits = dloss * (softmax(logits) - q) / N (overwritten): the fused softmax + loss gradient. */                  \
  void cross_entropy_backward(const CrossEntropyParams& p, const float* logits, const int64_t* labels, float dloss,    \
                              float* dlogits, StreamHandle stream, RowAlgo algo = RowAlgo::automatic);

FOVEA_DECLARE_KERNELS(FOVEA_SOFTMAX_KERNELS)
