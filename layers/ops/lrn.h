// Local response normalisation across channels, torch.nn.LocalResponseNorm(size, alpha, beta, k) on
// x [N, C, H, W]: s[c] = k + alpha / size * sum_{c' = c - size/2}^{c + (size-1)/2} x[c']^2 (zero outside
// [0, C)), y = x s^-beta (PyTorch divides alpha by size).
//   reference : cpu_reference/lrn.cpp     kernels : kernels/lrn.cu
#pragma once
#include <cstdint>
#include <string>

#include "core/dispatch.h"
#include "core/hostdevice.h"
#include "core/tensor.h"

namespace fovea {

struct LrnParams {
  int64_t N = 1, C = 1, H = 1, W = 1;
  int64_t size = 5;
  double alpha = 1e-4, beta = 0.75, k = 1.0;
  FOVEA_HD int64_t x_size() const { return N * C * H * W; }
  void validate(const char* op = "lrn") const;
  std::string str() const;
};

namespace ops {

inline constinit DispatchStub<void(const Exec&, const LrnParams&, const float* x, float* y)> lrn_forward_stub{
    "lrn_forward"};
// s recomputed from x; scratch from ex.workspace; dx must not alias x.
inline constinit DispatchStub<void(const Exec&, const LrnParams&, const float* x, const float* dy, float* dx)>
    lrn_backward_stub{"lrn_backward"};

struct Context;
Tensor lrn_forward(Context& ctx, const Tensor& x, const LrnParams& p);
Tensor lrn_backward(Context& ctx, const Tensor& dy, const Tensor& x, const Tensor& y, const LrnParams& p);

}  // namespace ops
}  // namespace fovea
