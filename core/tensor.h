// Tensor: a shape (up to 5-D, contiguous row-major, i.e. NCHW for images), a dtype, a device, and a
// shared reference to device memory. Views (reshape, narrow) share memory; copies between devices
// are explicit (to(), copy_from(), to_vector()): nothing moves between host and GPU behind your back, and
// copies and fills run on the stream they are given or the current stream (core/stream.h).
#pragma once
#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/error.h"
#include "core/memory.h"

namespace fovea {

enum class DType : uint8_t { float32, int32, int64, uint8, float16, bfloat16, float64 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);

template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::float32;
}
template <>
constexpr DType dtype_of<int32_t>() {
  return DType::int32;
}
template <>
constexpr DType dtype_of<int64_t>() {
  return DType::int64;
}
template <>
constexpr DType dtype_of<uint8_t>() {
  return DType::uint8;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::float64;
}

class Shape {
 public:
  static constexpr int kMaxDims = 5;
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  explicit Shape(const std::vector<int64_t>& dims);

  int ndim() const { return ndim_; }
  int64_t operator[](int i) const { return dims_[i]; }
  int64_t& operator[](int i) { return dims_[i]; }
  int64_t numel() const;
  std::vector<int64_t> vec() const { return {dims_.begin(), dims_.begin() + ndim_}; }
  // Row-major strides in elements: NCHW for a 4-D image batch.
  int64_t stride(int i) const;
  bool operator==(const Shape& o) const;
  std::string str() const;  // "[64, 3, 32, 32]"

 private:
  std::array<int64_t, kMaxDims> dims_{};
  int ndim_ = 0;
};

class Tensor {
 public:
  Tensor() = default;
  static Tensor empty(const Shape& shape, DType dtype = DType::float32, Device device = kCPU);
  static Tensor zeros(const Shape& shape, DType dtype = DType::float32, Device device = kCPU,
                      StreamHandle stream = current_stream());
  // Copies host values into a new tensor on `device`.
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape, Device device = kCPU,
                            StreamHandle stream = current_stream()) {
    FOVEA_CHECK(int64_t(values.size()) == shape.numel(), "Tensor::from_vector: ", values.size(), " values for shape ",
                shape.str());
    Tensor t = empty(shape, dtype_of<T>(), device);
    copy_bytes(t.raw_data(), device, values.data(), kCPU, values.size() * sizeof(T), stream);
    return t;
  }

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return shape_.ndim(); }
  int64_t size(int i) const;  // negative i counts from the end
  int64_t numel() const { return shape_.numel(); }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  std::string str() const;  // "float32[64, 3, 32, 32] on emu"

  void* raw_data() const;
  template <typename T>
  T* data() const {
    FOVEA_CHECK(dtype_ == dtype_of<T>(), "tensor ", str(), " accessed as ", dtype_name(dtype_of<T>()));
    return static_cast<T*>(raw_data());
  }

  // Views (no copy). reshape accepts one -1.
  Tensor reshape(const Shape& shape) const;
  Tensor narrow(int64_t start, int64_t length) const;  // rows [start, start+length) of dim 0

  // Explicit copies, in the order of `stream` (default: the thread's current stream, core/stream.h). A copy
  // between the host and a device returns when it is complete; device to device is only enqueued.
  Tensor to(Device device, StreamHandle stream = current_stream()) const;     // a copy, even on the same device
  void copy_from(const Tensor& src, StreamHandle stream = current_stream());  // same shape and dtype
  // A host tensor's copy on `device` that does not wait for the device (core/memory.h: upload_bytes): this
  // tensor may change as soon as the call returns. For the batches of a training loop.
  Tensor upload(Device device, StreamHandle stream = current_stream()) const;
  template <typename T>
  std::vector<T> to_vector(StreamHandle stream = current_stream()) const {  // device -> host copy
    std::vector<T> out(static_cast<size_t>(numel()));
    copy_bytes(out.data(), kCPU, data<T>(), device_, nbytes(), stream);
    return out;
  }
  void fill_zero(StreamHandle stream = current_stream());  // byte fill, any device; enqueued
  // Tensors on the same buffer and byte range (views of one another or the same object).
  bool same_memory(const Tensor& o) const { return storage_ == o.storage_ && offset_ == o.offset_; }

 private:
  std::shared_ptr<Buffer> storage_;
  size_t offset_ = 0;  // bytes
  Shape shape_;
  DType dtype_ = DType::float32;
  Device device_{};
};

}  // namespace fovea
