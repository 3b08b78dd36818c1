// petal::Tensor: a strided view (shape, strides in elements, offset) over a
// shared Storage, with a dtype and a device. Views (reshape of contiguous data,
// transpose, permute, slice) share storage; contiguous()/clone() copy.
// Math on tensors lives in kernels/ops.hpp; gradients in autograd/.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "core/device.hpp"
#include "core/dtype.hpp"
#include "core/error.hpp"
#include "core/random.hpp"
#include "core/shape.hpp"
#include "core/storage.hpp"

namespace petal {

class Tensor {
 public:
  Tensor() = default;  // undefined tensor (defined() == false)

  // Uninitialised memory from the device's caching allocator.
  static Tensor empty(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
  // Uninitialised host memory from the pinned allocator (input batches).
  static Tensor empty_pinned(const Shape& shape, DType dtype = DType::Float32);
  // Wraps existing storage (no copy).
  Tensor(std::shared_ptr<Storage> storage, Shape shape, Strides strides, std::int64_t offset, DType dtype);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const Strides& strides() const { return strides_; }
  std::int64_t offset() const { return offset_; }
  std::int64_t dim() const { return static_cast<std::int64_t>(shape_.size()); }
  // Size along an axis; negative axes count from the end.
  std::int64_t size(std::int64_t axis) const;
  std::int64_t numel() const { return shape_numel(shape_); }
  DType dtype() const { return dtype_; }
  Device device() const;
  std::size_t itemsize() const { return dtype_size(dtype_); }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * itemsize(); }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return storage_; }

  // Pointer to the first element; throws DTypeError when T does not match.
  template <class T> T* data() const {
    check_dtype(dtype_of_v<std::remove_const_t<T>>, "data<T>()");
    return static_cast<T*>(raw_data());
  }
  void* raw_data() const;

  // ---- views and copies ----
  // Same elements in a new shape; one dimension may be -1. A view when the
  // tensor is contiguous, otherwise a copy.
  Tensor reshape(Shape shape) const;
  // Like reshape but never copies: throws ShapeError on non-contiguous tensors.
  Tensor view(Shape shape) const;
  Tensor flatten(std::int64_t start_axis = 0, std::int64_t end_axis = -1) const;
  Tensor transpose(std::int64_t axis_a, std::int64_t axis_b) const;
  Tensor permute(const std::vector<std::int64_t>& order) const;
  // Elements [start, end) along axis with a step (> 0); negative start/end
  // count from the end.
  Tensor slice(std::int64_t axis, std::int64_t start, std::int64_t end, std::int64_t step = 1) const;
  // Removes `axis` by picking one index (a view).
  Tensor select(std::int64_t axis, std::int64_t index) const;
  Tensor unsqueeze(std::int64_t axis) const;
  Tensor squeeze(std::int64_t axis) const;
  // A broadcast view (stride 0 on expanded axes).
  Tensor expand(const Shape& shape) const;

  Tensor contiguous() const;  // this if already contiguous
  Tensor clone() const;       // always a fresh contiguous copy
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;

  // In place: copies src (same shape, any dtype, any strides) into this.
  Tensor& copy_(const Tensor& src);
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }

  // The single element as T (converted). Throws unless numel() == 1.
  template <class T> T item() const;
  // All elements in C order, converted to T.
  template <class T> std::vector<T> to_vector() const;

  // "Tensor(float32, [2, 3], cpu) [[1, 2, 3], [4, 5, 6]]" (long tensors elided).
  std::string str() const;

  // Throws DTypeError naming op when the dtype differs.
  void check_dtype(DType expected, const char* op) const;
  // Throws ValueError naming op when the tensor is undefined.
  void check_defined(const char* op) const;

 private:
  std::shared_ptr<Storage> storage_;
  Shape shape_;
  Strides strides_;
  std::int64_t offset_ = 0;
  DType dtype_ = DType::Float32;
};

std::ostream& operator<<(std::ostream& out, const Tensor& t);

// ---- factories ----
Tensor zeros(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
Tensor ones(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
Tensor full(const Shape& shape, double value, DType dtype = DType::Float32, Device device = Device::cpu());
// [start, start+step, ...) below end.
Tensor arange(double start, double end, double step = 1.0, DType dtype = DType::Float32);
Tensor arange(std::int64_t n, DType dtype = DType::Int64);
// Copies values (C order) into a new tensor of the given shape (numel must match).
template <class T> Tensor from_vector(const std::vector<T>& values, const Shape& shape);
template <class T> Tensor from_vector(const std::vector<T>& values) {
  return from_vector(values, Shape{static_cast<std::int64_t>(values.size())});
}
// Uniform in [low, high) / normal(mean, stddev), float32 or float64.
Tensor uniform(const Shape& shape, double low, double high, Generator& gen = default_generator(),
               DType dtype = DType::Float32);
Tensor normal(const Shape& shape, double mean, double stddev, Generator& gen = default_generator(),
              DType dtype = DType::Float32);

// ---- template definitions ----
template <class T> Tensor from_vector(const std::vector<T>& values, const Shape& shape) {
  PETAL_CHECK(static_cast<std::int64_t>(values.size()) == shape_numel(shape), ShapeError,
              "from_vector: ", values.size(), " values do not fill shape ", shape_str(shape));
  Tensor t = Tensor::empty(shape, dtype_of_v<T>);
  T* out = t.data<T>();
  for (std::size_t i = 0; i < values.size(); ++i) out[i] = values[i];
  return t;
}

template <class T> std::vector<T> Tensor::to_vector() const {
  check_defined("to_vector");
  Tensor c = (device().is_cpu() ? *this : to(Device::cpu())).to(dtype_of_v<T>).contiguous();
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}

template <class T> T Tensor::item() const {
  PETAL_CHECK(numel() == 1, ShapeError, "item: tensor of shape ", shape_str(shape_),
              " has ", numel(), " elements, expected 1");
  return to_vector<T>()[0];
}

}  // namespace petal
