#include "layers/ops/context.h"

namespace fovea::ops {

Context::Context(Device d, Backend b) : device(d), backend(b), workspace(std::make_shared<Workspace>(d)) {
  // A library backend on a device it does not run on, or one this program cannot load, is an error here already.
  check_backend("context", Exec{d, b});
}

void check_tensor(const Context& ctx, const char* op, const char* arg, const Tensor& t, DType dtype) {
  FOVEA_CHECK(t.defined(), op, ": argument '", arg, "' is missing");
  FOVEA_CHECK(t.device() == ctx.device, op, ": argument '", arg, "' is on ", t.device().str(), " but the op runs on ",
              ctx.device.str(), " (copy it explicitly with .to())");
  FOVEA_CHECK(t.dtype() == dtype, op, ": argument '", arg, "' must be ", dtype_name(dtype), ", got ", t.str());
}

void check_same_shape(const char* op, const char* a, const Tensor& x, const char* b, const Tensor& y) {
  FOVEA_CHECK(x.shape() == y.shape(), op, ": '", a, "' has shape ", x.shape().str(), " but '", b, "' has shape ",
              y.shape().str());
}

Tensor empty_like(const Context& ctx, const Shape& s, DType t) {
  return Tensor::empty(s, t, ctx.device);
}

}  // namespace fovea::ops
