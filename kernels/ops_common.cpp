// Argument checks and the backend switch shared by every Tensor-level op.
#include "kernels/ops_common.hpp"

namespace petal::ops::detail {

std::string shapes_str(std::initializer_list<const Tensor*> tensors) {
  std::string out;
  std::size_t i = 0;
  for (const Tensor* t : tensors) {
    if (i > 0) out += i + 1 == tensors.size() ? " and " : ", ";
    out += t->defined() ? shape_str(t->shape()) : std::string("<undefined>");
    ++i;
  }
  return out;
}

void check_defined(const char* op, std::initializer_list<const Tensor*> tensors) {
  std::size_t i = 0;
  for (const Tensor* t : tensors) {
    PETAL_CHECK(t->defined(), ValueError, op, ": operand ", i, " is an undefined tensor (operands: ",
                shapes_str(tensors), ")");
    ++i;
  }
}

void check_floating(const char* op, const Tensor& t) {
  PETAL_CHECK(is_floating(t.dtype()), DTypeError, op, ": expected a float32 or float64 tensor, got ",
              dtype_name(t.dtype()), " of shape ", shape_str(t.shape()));
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  PETAL_CHECK(a.dtype() == b.dtype(), DTypeError, op, ": dtypes do not match: ", dtype_name(a.dtype()), " ",
              shape_str(a.shape()), " vs ", dtype_name(b.dtype()), " ", shape_str(b.shape()));
}

void check_same_shape(const char* op, const Tensor& a, const Tensor& b) {
  PETAL_CHECK(a.shape() == b.shape(), ShapeError, op, ": shapes ", shape_str(a.shape()), " and ",
              shape_str(b.shape()), " must be equal");
}

void check_floating_operands(const char* op, std::initializer_list<const Tensor*> tensors) {
  check_defined(op, tensors);
  const Tensor* first = *tensors.begin();
  for (const Tensor* t : tensors) {
    check_floating(op, *t);
    check_same_dtype(op, *first, *t);
  }
}

Backend select_backend(const char* op, std::initializer_list<const Tensor*> tensors) {
  const Device device = (*tensors.begin())->device();
  for (const Tensor* t : tensors)
    PETAL_CHECK(t->device() == device, DeviceError, op, ": tensors are on different devices (", device.str(),
                " and ", t->device().str(), "; shapes ", shapes_str(tensors), ")");
  switch (device.type) {
    case DeviceType::CPU: return Backend::Cpu;
    case DeviceType::CUDA: break;
  }
  throw DeviceError(str_cat(op, ": CUDA backend not available (tensors on ", device.str(), ", shapes ",
                            shapes_str(tensors), ")"));
}

Strides broadcast_strides(const Tensor& t, const Shape& shape) {
  const std::size_t lead = shape.size() - t.shape().size();
  Strides out(shape.size(), 0);
  for (std::size_t i = 0; i < t.shape().size(); ++i)
    out[lead + i] = t.shape()[i] == shape[lead + i] ? t.strides()[i] : 0;
  return out;
}

}  // namespace petal::ops::detail
