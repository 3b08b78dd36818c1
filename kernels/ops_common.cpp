// Argument checks and the backend switch shared by every Tensor-level op.
#include "kernels/ops_common.hpp"

#include <cstdint>

#include "kernels/cuda/cuda_runtime_api.hpp"

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

void check_floating(const char* op, const Tensor& t, const char* what) {
  t.check_defined(op);
  PETAL_CHECK(is_floating(t.dtype()), DTypeError, op, ": ", what, " must be float32 or float64, got ",
              dtype_name(t.dtype()));
}

void check_same_dtype(const char* op, const Tensor& input, const Tensor& t, const char* what) {
  PETAL_CHECK(input.dtype() == t.dtype(), DTypeError, op, ": ", what, " is ", dtype_name(t.dtype()),
              " but the input is ", dtype_name(input.dtype()));
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
  if (device.type == DeviceType::CPU) return Backend::Cpu;
  if (!cuda::built_with_cuda())
    throw DeviceError(str_cat(op, ": CUDA backend not available (built without CUDA; tensors on ", device.str(),
                              ", shapes ", shapes_str(tensors), ")"));
  cuda::ensure_registered();
  const int count = cuda::device_count();
  PETAL_CHECK(count > 0, DeviceError, op, ": CUDA backend not available (no CUDA device; tensors on ", device.str(),
              ", shapes ", shapes_str(tensors), ")");
  PETAL_CHECK(device.index >= 0 && device.index < count, DeviceError, op, ": ", device.str(), " does not exist (",
              count, " CUDA devices; shapes ", shapes_str(tensors), ")");
  return Backend::Cuda;
}

Backend select_backend_of_defined(const char* op, std::initializer_list<const Tensor*> tensors) {
  const Tensor* first = nullptr;
  for (const Tensor* t : tensors) {
    if (!t->defined()) continue;
    if (!first) first = t;
    PETAL_CHECK(t->device() == first->device(), DeviceError, op, ": tensors are on different devices (",
                first->device().str(), " and ", t->device().str(), "; shapes ", shape_str(first->shape()), " and ",
                shape_str(t->shape()), ")");
  }
  return first ? select_backend(op, {first}) : Backend::Cpu;
}

namespace {

// Copies the strided `src` into contiguous `dst` (same shape, elements of
// type E) tile by tile over the two innermost loop axes.
template <class E>
void tiled_copy(const E* src, E* dst, const Shape& shape, const Strides& src_strides) {
  const StridedLoop<2> loop = make_strided_loop<2>(shape, {contiguous_strides(shape), src_strides});
  const std::int64_t nd = static_cast<std::int64_t>(loop.shape.size());
  if (nd < 2) {
    const std::int64_t n = loop.shape[0], s = loop.inner_stride(1);
    for (std::int64_t i = 0; i < n; ++i) dst[i] = src[i * s];
    return;
  }
  constexpr std::int64_t kTile = 32;
  const std::int64_t rows = loop.shape[nd - 2], cols = loop.shape[nd - 1];
  const std::int64_t dst_row = loop.strides[0][nd - 2];  // the dst column stride is 1
  const std::int64_t src_row = loop.strides[1][nd - 2], src_col = loop.strides[1][nd - 1];
  const std::int64_t bands = (rows + kTile - 1) / kTile;
  const std::int64_t outer = shape_numel(loop.shape) / (rows * cols);
  parallel_for(0, outer * bands, std::max<std::int64_t>(1, kParallelGrain / (kTile * cols)),
               [&](std::int64_t lo, std::int64_t hi) {
                 for (std::int64_t task = lo; task < hi; ++task) {
                   // Offsets of the outer index over the axes before the tiled two.
                   std::int64_t rest = task / bands, dst_base = 0, src_base = 0;
                   for (std::int64_t d = nd - 3; d >= 0; --d) {
                     const std::int64_t idx = rest % loop.shape[d];
                     rest /= loop.shape[d];
                     dst_base += idx * loop.strides[0][d];
                     src_base += idx * loop.strides[1][d];
                   }
                   const std::int64_t row_lo = (task % bands) * kTile, row_hi = std::min(rows, row_lo + kTile);
                   for (std::int64_t col_lo = 0; col_lo < cols; col_lo += kTile) {
                     const std::int64_t col_hi = std::min(cols, col_lo + kTile);
                     for (std::int64_t r = row_lo; r < row_hi; ++r) {
                       E* d = dst + dst_base + r * dst_row;
                       const E* s = src + src_base + r * src_row;
                       for (std::int64_t c = col_lo; c < col_hi; ++c) d[c] = s[c * src_col];
                     }
                   }
                 }
               });
}

}  // namespace

Tensor contiguous_tiled(const Tensor& t) {
  if (t.is_contiguous() || !t.device().is_cpu()) return t.contiguous();
  Tensor out = Tensor::empty(t.shape(), t.dtype());
  if (out.numel() == 0) return out;
  // Elements move as raw bits of their size.
  const void* src = t.raw_data();
  switch (t.itemsize()) {
    case 8:
      tiled_copy(static_cast<const std::uint64_t*>(src), static_cast<std::uint64_t*>(out.raw_data()), t.shape(),
                 t.strides());
      break;
    case 4:
      tiled_copy(static_cast<const std::uint32_t*>(src), static_cast<std::uint32_t*>(out.raw_data()), t.shape(),
                 t.strides());
      break;
    default:
      return t.contiguous();
  }
  return out;
}

Tensor unit_stride_inner(const Tensor& t) {
  const StridedLoop<1> loop = make_strided_loop<1>(t.shape(), {t.strides()});
  const std::int64_t inner = loop.inner_stride(0);
  return inner == 0 || inner == 1 ? t : contiguous_tiled(t);
}

}  // namespace petal::ops::detail
