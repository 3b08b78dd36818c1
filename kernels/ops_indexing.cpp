// Indexing ops: one_hot. Indices are int64; one outside its range is an
// IndexError naming the op, the index and its position.
#include <cstring>

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

}  // namespace

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
