// Indexing ops: one_hot, take/embedding with the scatter-add of their
// gradient, and where. Indices are int64; one outside its range is an
// IndexError naming the op, the index and its position. take, take_backward
// and where run on the CPU only for now: a tensor on another device is a
// DeviceError ("<op>: not implemented on cuda yet").
#include <cstring>
#include <type_traits>

#include "kernels/ops.hpp"
#include "kernels/ops_common.hpp"

namespace petal::ops {

namespace {

// C-order position of flat element i of `shape`, as "[i0, i1, ...]".
std::string position_str(const Shape& shape, std::int64_t flat) {
  std::vector<std::int64_t> index(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    index[d] = shape[d] == 0 ? 0 : flat % shape[d];
    flat = shape[d] == 0 ? 0 : flat / shape[d];
  }
  std::string out = "[";
  for (std::size_t d = 0; d < index.size(); ++d) out += (d ? ", " : "") + std::to_string(index[d]);
  return out + "]";
}

void check_indices(const char* op, const Tensor& indices) {
  PETAL_CHECK(indices.defined(), ValueError, op, ": undefined indices");
  PETAL_CHECK(indices.dtype() == DType::Int64, DTypeError, op, ": indices must be int64, got ",
              dtype_name(indices.dtype()), " ", shape_str(indices.shape()));
}

void check_cpu(const char* op, std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors)
    PETAL_CHECK(t->device().is_cpu(), DeviceError, op, ": not implemented on ",
                t->device().is_cuda() ? std::string("cuda") : t->device().str(), " yet (tensor of shape ",
                shape_str(t->shape()), " on ", t->device().str(), ")");
}

// The indices as a vector, each checked against an axis of size n (negative
// ones count from the end when allow_negative) and made non-negative.
std::vector<std::int64_t> checked_indices(const char* op, const Tensor& indices, std::int64_t n,
                                          bool allow_negative, const Tensor& a, std::int64_t axis) {
  std::vector<std::int64_t> values = indices.to_vector<std::int64_t>();
  for (std::size_t i = 0; i < values.size(); ++i) {
    std::int64_t v = values[i];
    if (allow_negative && v < 0) v += n;
    PETAL_CHECK(v >= 0 && v < n, IndexError, op, ": index ", values[i], " at ",
                position_str(indices.shape(), static_cast<std::int64_t>(i)), " of the indices ",
                shape_str(indices.shape()), " is out of range for axis ", axis, " of size ", n, " (shape ",
                shape_str(a.shape()), ")");
    values[i] = v;
  }
  return values;
}

// a.shape[:axis] + indices.shape + a.shape[axis + 1:].
Shape take_shape(const Shape& a, const Shape& indices, std::int64_t ax) {
  Shape out(a.begin(), a.begin() + ax);
  out.insert(out.end(), indices.begin(), indices.end());
  out.insert(out.end(), a.begin() + ax + 1, a.end());
  return out;
}

std::int64_t take_axis(const char* op, const Tensor& a, const Tensor& indices, std::int64_t axis) {
  PETAL_CHECK(a.defined(), ValueError, op, ": undefined tensor");
  check_indices(op, indices);
  PETAL_CHECK(a.dim() > 0 && axis >= -a.dim() && axis < a.dim(), IndexError, op, ": axis ", axis,
              " is out of range for a tensor of shape ", shape_str(a.shape()));
  check_cpu(op, {&a, &indices});
  return axis < 0 ? axis + a.dim() : axis;
}

Tensor take_impl(const char* op, const Tensor& a, const Tensor& indices, std::int64_t axis, bool allow_negative) {
  const std::int64_t ax = take_axis(op, a, indices, axis);
  const std::int64_t n = a.shape()[ax];
  const std::vector<std::int64_t> idx = checked_indices(op, indices, n, allow_negative, a, axis);
  Tensor out = Tensor::empty(take_shape(a.shape(), indices.shape(), ax), a.dtype());
  if (out.numel() == 0) return out;
  std::int64_t outer = 1, inner = 1;
  for (std::int64_t d = 0; d < ax; ++d) outer *= a.shape()[d];
  for (std::int64_t d = ax + 1; d < a.dim(); ++d) inner *= a.shape()[d];
  const Tensor c = detail::contiguous_tiled(a);
  const auto* src = static_cast<const unsigned char*>(c.raw_data());
  auto* dst = static_cast<unsigned char*>(out.raw_data());
  const std::size_t row = static_cast<std::size_t>(inner) * a.itemsize();
  const std::int64_t count = static_cast<std::int64_t>(idx.size());
  parallel_for(0, outer * count, std::max<std::int64_t>(1, detail::kParallelGrain / inner),
               [&](std::int64_t lo, std::int64_t hi) {
                 for (std::int64_t r = lo; r < hi; ++r) {
                   const std::int64_t o = r / count, j = r % count;
                   std::memcpy(dst + r * row, src + (o * n + idx[j]) * row, row);
                 }
               });
  return out;
}

}  // namespace

Tensor take(const Tensor& a, const Tensor& indices, std::int64_t axis) {
  return take_impl("take", a, indices, axis, true);
}

Tensor embedding(const Tensor& table, const Tensor& ids) {
  PETAL_CHECK(table.defined() && table.dim() == 2, ShapeError, "embedding: the table must be 2-D [vocabulary, dim], got ",
              table.defined() ? shape_str(table.shape()) : std::string("undefined"));
  return take_impl("embedding", table, ids, 0, false);
}

Tensor take_backward(const Tensor& grad, const Tensor& indices, std::int64_t axis, const Shape& input_shape) {
  const char* op = "take_backward";
  PETAL_CHECK(grad.defined(), ValueError, op, ": undefined gradient");
  detail::check_floating(op, grad);
  const std::int64_t nd = static_cast<std::int64_t>(input_shape.size());
  PETAL_CHECK(nd > 0 && axis >= -nd && axis < nd, IndexError, op, ": axis ", axis,
              " is out of range for an input of shape ", shape_str(input_shape));
  const std::int64_t ax = axis < 0 ? axis + nd : axis;
  check_indices(op, indices);
  check_cpu(op, {&grad, &indices});
  PETAL_CHECK(grad.shape() == take_shape(input_shape, indices.shape(), ax), ShapeError, op, ": gradient of shape ",
              shape_str(grad.shape()), " does not match indices ", shape_str(indices.shape()), " taken on axis ", axis,
              " of ", shape_str(input_shape));
  const std::int64_t n = input_shape[ax];
  std::vector<std::int64_t> idx = indices.to_vector<std::int64_t>();
  for (std::size_t i = 0; i < idx.size(); ++i) {
    const std::int64_t given = idx[i];
    if (idx[i] < 0) idx[i] += n;
    PETAL_CHECK(idx[i] >= 0 && idx[i] < n, IndexError, op, ": index ", given, " at ",
                position_str(indices.shape(), static_cast<std::int64_t>(i)), " is out of range for axis ", axis,
                " of size ", n, " (shape ", shape_str(input_shape), ")");
  }
  Tensor out = zeros(input_shape, grad.dtype());
  if (grad.numel() == 0) return out;
  std::int64_t outer = 1, inner = 1;
  for (std::int64_t d = 0; d < ax; ++d) outer *= input_shape[d];
  for (std::int64_t d = ax + 1; d < nd; ++d) inner *= input_shape[d];
  const Tensor g = detail::contiguous_tiled(grad);
  const std::int64_t count = static_cast<std::int64_t>(idx.size());
  dispatch_dtype(grad.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_floating_point_v<T>) {
      const T* pg = g.data<T>();
      T* po = out.data<T>();
      // Each outer index owns its block of the output; within it the
      // indices add in order, so duplicates accumulate deterministically.
      parallel_for(0, outer, std::max<std::int64_t>(1, detail::kParallelGrain / std::max<std::int64_t>(1, count * inner)),
                   [&](std::int64_t lo, std::int64_t hi) {
                     for (std::int64_t o = lo; o < hi; ++o)
                       for (std::int64_t j = 0; j < count; ++j) {
                         T* dst = po + (o * n + idx[j]) * inner;
                         const T* src = pg + (o * count + j) * inner;
                         for (std::int64_t i = 0; i < inner; ++i) dst[i] += src[i];
                       }
                   });
    }
  });
  return out;
}

Tensor where(const Tensor& mask, const Tensor& a, const Tensor& b) {
  const char* op = "where";
  detail::check_defined(op, {&mask, &a, &b});
  PETAL_CHECK(a.dtype() == b.dtype(), DTypeError, op, ": a is ", dtype_name(a.dtype()), " but b is ",
              dtype_name(b.dtype()), " (shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()), ")");
  check_cpu(op, {&mask, &a, &b});
  const Shape shape = broadcast_shapes(broadcast_shapes(mask.shape(), a.shape(), op), b.shape(), op);
  Tensor out = Tensor::empty(shape, a.dtype());
  if (out.numel() == 0) return out;
  const auto loop = detail::make_strided_loop<4>(
      shape, {out.strides(), detail::broadcast_strides(mask, shape), detail::broadcast_strides(a, shape),
              detail::broadcast_strides(b, shape)});
  dispatch_dtype(mask.dtype(), [&](auto mask_tag) {
    using M = decltype(mask_tag);
    dispatch_dtype(a.dtype(), [&](auto tag) {
      using T = decltype(tag);
      T* po = out.data<T>();
      const M* pm = mask.data<M>();
      const T* pa = a.data<T>();
      const T* pb = b.data<T>();
      const std::int64_t so = loop.inner_stride(0), sm = loop.inner_stride(1), sa = loop.inner_stride(2),
                         sb = loop.inner_stride(3);
      detail::for_each_run<4>(loop, detail::kParallelGrain, [&](const std::array<std::int64_t, 4>& off, std::int64_t n) {
        for (std::int64_t i = 0; i < n; ++i)
          po[off[0] + i * so] = pm[off[1] + i * sm] != M(0) ? pa[off[2] + i * sa] : pb[off[3] + i * sb];
      });
    });
  });
  return out;
}

Tensor one_hot(const Tensor& indices, std::int64_t depth, DType dtype) {
  const char* op = "one_hot";
  check_indices(op, indices);
  PETAL_CHECK(depth >= 0, ValueError, op, ": depth ", depth, " is negative (indices ", shape_str(indices.shape()), ")");
  PETAL_CHECK(dtype == DType::Float32 || dtype == DType::Float64, DTypeError, op,
              ": the result must be float32 or float64, got ", dtype_name(dtype));
  const std::vector<std::int64_t> values = indices.to_vector<std::int64_t>();  // reads any device
  Shape shape = indices.shape();
  shape.push_back(depth);
  Tensor out = Tensor::empty(shape, dtype);
  out.zero_();
  for (std::size_t i = 0; i < values.size(); ++i) {
    const std::int64_t v = values[i];
    PETAL_CHECK(v >= 0 && v < depth, IndexError, op, ": index ", v, " at ",
                position_str(indices.shape(), static_cast<std::int64_t>(i)), " is out of range [0, ", depth,
                ") (indices ", shape_str(indices.shape()), ")");
    const std::int64_t at = static_cast<std::int64_t>(i) * depth + v;
    if (dtype == DType::Float32)
      out.data<float>()[at] = 1.0f;
    else
      out.data<double>()[at] = 1.0;
  }
  return indices.device().is_cpu() ? out : out.to(indices.device());
}

}  // namespace petal::ops
