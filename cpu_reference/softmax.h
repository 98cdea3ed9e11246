// Softmax, log-softmax over dim 1 of x [N, C], and torch.nn.functional.cross_entropy (int64 labels,
// mean reduction, label_smoothing). All numerically stable (max subtracted, double accumulation).
#pragma once
#include <cstdint>

#include "layers/ops/softmax.h"

namespace fovea::ref {

void softmax_forward(int64_t N, int64_t C, const float* x, float* y);
// dx = y * (dy - sum_c dy * y), y the forward output.
void softmax_backward(int64_t N, int64_t C, const float* y, const float* dy, float* dx);

void log_softmax_forward(int64_t N, int64_t C, const float* x, float* y);
// dx = dy - exp(y) * sum_c dy, y the forward output.
void log_softmax_backward(int64_t N, int64_t C, const float* y, const float* dy, float* dx);

// loss = mean over n of -sum_c q[n][c] * log_softmax(logits)[n][c] with q = (1 - eps) * onehot(label) + eps / C
// (eps = label_smoothing), which is exactly PyTorch's formula. Labels outside [0, C) throw (PyTorch's
// ignore_index is not supported).
float cross_entropy_forward(const CrossEntropyParams& p, const float* logits, const int64_t* labels);
// dlogits = dloss * (softmax(logits) - q) / N (overwritten): the fused softmax + loss gradient.
void cross_entropy_backward(const CrossEntropyParams& p, const float* logits, const int64_t* labels, float dloss,
                            float* dlogits);

}  // namespace fovea::ref
