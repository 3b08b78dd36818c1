// Shapes and strides (in elements) of tensors.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace petal {

using Shape = std::vector<std::int64_t>;
using Strides = std::vector<std::int64_t>;

std::int64_t shape_numel(const Shape& shape);
// Row-major (C order) strides for a shape.
Strides contiguous_strides(const Shape& shape);
// "[2, 3, 4]"
std::string shape_str(const Shape& shape);
// Maps a possibly negative axis into [0, ndim); throws IndexError naming op.
std::int64_t normalize_axis(std::int64_t axis, std::int64_t ndim, const char* op);
// NumPy broadcasting of two shapes; throws ShapeError naming op.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace petal
