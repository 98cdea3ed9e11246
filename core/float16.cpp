#include "core/float16.h"

namespace fovea {

Tensor to_float32(const Tensor& t, const std::string& what) {
  FOVEA_CHECK(t.defined(), "to_float32: ", what, " is undefined");
  FOVEA_CHECK(t.device().is_host_memory(), "to_float32: ", what, " ", t.str(), " is on a GPU");
  if (t.dtype() == DType::float32) return t;
  FOVEA_CHECK(t.dtype() == DType::float16 || t.dtype() == DType::bfloat16, "to_float32: ", what, " is ",
              dtype_name(t.dtype()), ", not a floating-point tensor (float16, bfloat16, float32)");
  Tensor out = Tensor::empty(t.shape(), DType::float32, kCPU);
  const auto* src = static_cast<const uint16_t*>(t.raw_data());
  float* dst = out.data<float>();
  const int64_t n = t.numel();
  if (t.dtype() == DType::float16)
    for (int64_t i = 0; i < n; ++i) dst[i] = half_to_float(src[i]);
  else
    for (int64_t i = 0; i < n; ++i) dst[i] = bfloat16_to_float(src[i]);
  return out;
}

}  // namespace fovea
