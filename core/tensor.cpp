#include "core/tensor.h"

namespace fovea {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::float32: return 4;
    case DType::int32: return 4;
    case DType::int64: return 8;
    case DType::uint8: return 1;
    case DType::float16: return 2;
    case DType::bfloat16: return 2;
    case DType::float64: return 8;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::float32: return "float32";
    case DType::int32: return "int32";
    case DType::int64: return "int64";
    case DType::uint8: return "uint8";
    case DType::float16: return "float16";
    case DType::bfloat16: return "bfloat16";
    case DType::float64: return "float64";
  }
  return "?";
}

Shape::Shape(std::initializer_list<int64_t> dims) : Shape(std::vector<int64_t>(dims)) {}

Shape::Shape(const std::vector<int64_t>& dims) {
  FOVEA_CHECK(int(dims.size()) <= kMaxDims, "shape with ", dims.size(), " dimensions: at most ", kMaxDims);
  ndim_ = int(dims.size());
  for (int i = 0; i < ndim_; ++i) {
    FOVEA_CHECK(dims[i] >= -1, "shape dimension ", i, " is ", dims[i]);
    dims_[i] = dims[i];
  }
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < ndim_; ++i) n *= dims_[i];
  return n;
}

int64_t Shape::stride(int i) const {
  int64_t s = 1;
  for (int j = ndim_ - 1; j > i; --j) s *= dims_[j];
  return s;
}

bool Shape::operator==(const Shape& o) const {
  if (ndim_ != o.ndim_) return false;
  for (int i = 0; i < ndim_; ++i)
    if (dims_[i] != o.dims_[i]) return false;
  return true;
}

std::string Shape::str() const {
  std::string s = "[";
  for (int i = 0; i < ndim_; ++i) s += (i ? ", " : "") + std::to_string(dims_[i]);
  return s + "]";
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int i = 0; i < shape.ndim(); ++i)
    FOVEA_CHECK(shape[i] >= 0, "Tensor::empty: negative dimension in shape ", shape.str());
  Tensor t;
  t.shape_ = shape;
  t.dtype_ = dtype;
  t.device_ = device;
  t.storage_ = std::make_shared<Buffer>(size_t(shape.numel()) * dtype_size(dtype), device);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device, StreamHandle stream) {
  Tensor t = empty(shape, dtype, device);
  t.fill_zero(stream);
  return t;
}

int64_t Tensor::size(int i) const {
  const int d = i < 0 ? i + ndim() : i;
  FOVEA_CHECK(d >= 0 && d < ndim(), "tensor ", str(), ": no dimension ", i);
  return shape_[d];
}

std::string Tensor::str() const {
  return cat(dtype_name(dtype_), shape_.str(), " on ", device_.str());
}

void* Tensor::raw_data() const {
  if (!storage_ || !storage_->data()) return nullptr;
  return static_cast<char*>(storage_->data()) + offset_;
}

Tensor Tensor::reshape(const Shape& shape) const {
  Shape s = shape;
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < s.ndim(); ++i) {
    if (s[i] == -1) {
      FOVEA_CHECK(infer < 0, "reshape of ", str(), " to ", shape.str(), ": more than one -1");
      infer = i;
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) {
    FOVEA_CHECK(known > 0 && numel() % known == 0, "reshape of ", str(), " to ", shape.str(), ": sizes do not divide");
    s[infer] = numel() / known;
  }
  FOVEA_CHECK(s.numel() == numel(), "reshape of ", str(), " to ", shape.str(), ": ", numel(), " elements vs ",
              s.numel());
  Tensor t = *this;
  t.shape_ = s;
  return t;
}

Tensor Tensor::narrow(int64_t start, int64_t length) const {
  FOVEA_CHECK(ndim() >= 1 && start >= 0 && length >= 0 && start + length <= shape_[0], "narrow(", start, ", ", length,
              ") of ", str());
  Tensor t = *this;
  t.shape_[0] = length;
  t.offset_ = offset_ + size_t(start * shape_.stride(0)) * dtype_size(dtype_);
  return t;
}

Tensor Tensor::to(Device device, StreamHandle stream) const {
  Tensor t = empty(shape_, dtype_, device);
  t.copy_from(*this, stream);
  return t;
}

Tensor Tensor::upload(Device device, StreamHandle stream) const {
  FOVEA_CHECK(device_ == kCPU, "Tensor::upload: the source must be a cpu tensor, got ", str());
  Tensor t = empty(shape_, dtype_, device);
  upload_bytes(t.raw_data(), device, raw_data(), nbytes(), stream);
  return t;
}

void Tensor::copy_from(const Tensor& src, StreamHandle stream) {
  FOVEA_CHECK(src.shape_ == shape_ && src.dtype_ == dtype_, "copy_from: destination ", str(), " vs source ", src.str());
  copy_bytes(raw_data(), device_, src.raw_data(), src.device_, nbytes(), stream);
}

void Tensor::fill_zero(StreamHandle stream) {
  fill_bytes(raw_data(), device_, 0, nbytes(), stream);
}

}  // namespace fovea
