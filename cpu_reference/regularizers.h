// Weight penalties and constraints. Each penalty returns its value (double) and, when grad is not
// null, ADDS its gradient to grad [n] (so it composes with the loss gradient already there).
#pragma once
#include <cstdint>

namespace fovea::ref {

// lambda * sum |w|; grad += lambda * sign(w) (sign(0) = 0, the subgradient PyTorch's abs uses).
double l1_penalty(int64_t n, const float* w, double lambda, float* grad);
// lambda / 2 * sum w^2; grad += lambda * w (the same update as SGD's weight_decay = lambda).
double l2_penalty(int64_t n, const float* w, double lambda, float* grad);
// Elastic net: l1 * sum |w| + l2 / 2 * sum w^2; grad += l1 * sign(w) + l2 * w.
double elastic_net_penalty(int64_t n, const float* w, double l1, double l2, float* grad);

// Max-norm constraint on w [rows, cols] (one row per output unit): every row whose L2 norm exceeds
// max_norm is scaled by max_norm / (norm + 1e-7), as torch.renorm(w, p=2, dim=0, maxnorm=max_norm).
// For conv weights [K, C, R, S] use rows = K, cols = C*R*S.
void max_norm_constraint(int64_t rows, int64_t cols, float* w, double max_norm);

}  // namespace fovea::ref
