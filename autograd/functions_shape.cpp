// Differentiable reductions and shape changes.
#include <algorithm>
#include <set>
#include <utility>

#include "autograd/function_helpers.hpp"
#include "autograd/functions.hpp"

namespace petal::ag {

namespace {

// The reduced shape with the reduced axes kept as size 1 (all axes when empty).
Shape keepdim_shape(const Shape& shape, const Axes& axes, const char* op) {
  const auto ndim = static_cast<std::int64_t>(shape.size());
  Shape out = shape;
  if (axes.empty()) {
    for (auto& size : out) size = 1;
    return out;
  }
  std::set<std::int64_t> seen;
  for (std::int64_t axis : axes) {
    const std::int64_t a = normalize_axis(axis, ndim, op);
    PETAL_CHECK(seen.insert(a).second, IndexError, op, ": axis ", axis, " repeated for a tensor of shape ",
                shape_str(shape));
    out[a] = 1;
  }
  return out;
}

// Gradient of a reduction: spreads g (reduced shape) back over the input.
Tensor spread(const Tensor& g, const Shape& kept, const Shape& input_shape) {
  return g.reshape(kept).expand(input_shape).contiguous();
}

// Gradient of max (sign 1) or min (sign -1) over the axes flagged in `kept`
// (size 1 there): g goes to the first extreme element of each reduced group,
// in C order, as argmax picks it (NaN skipped as in the forward). The
// reduced axes are moved last and flattened, so one argmax finds it.
Tensor first_extreme_grad(const Tensor& x, const Tensor& g, const Shape& kept, double sign) {
  std::vector<std::int64_t> order, inverse(x.shape().size());
  Shape permuted;
  std::int64_t k_count = 1, r_count = 1;
  for (int pass = 0; pass < 2; ++pass)
    for (std::size_t d = 0; d < x.shape().size(); ++d) {
      const bool reduced = kept[d] == 1 && x.shape()[d] != 1;  // size-1 axes count as kept
      if ((pass == 1) != reduced) continue;
      inverse[d] = static_cast<std::int64_t>(order.size());
      order.push_back(static_cast<std::int64_t>(d));
      permuted.push_back(x.shape()[d]);
      (pass == 0 ? k_count : r_count) *= x.shape()[d];
    }
  Tensor scores = x.permute(order).reshape({k_count, r_count});
  if (sign < 0) scores = ops::neg(scores);
  const Tensor mask = ops::one_hot(ops::argmax(scores, 1), r_count, x.dtype());
  const Tensor grad = ops::mul(mask, g.reshape({k_count, 1}));
  return grad.reshape(permuted).permute(inverse).contiguous();
}

Variable extreme(const Variable& a, const Axes& axes, bool keepdim, const char* op, double sign) {
  detail::check_defined(a, op);
  Tensor out = sign > 0 ? ops::max(a.data(), axes, keepdim) : ops::min(a.data(), axes, keepdim);
  const Shape kept = keepdim_shape(a.shape(), axes, op);
  return make_op_result(out, op, {a}, [x = a.data(), kept, sign](const Tensor& g) {
    return std::vector<Tensor>{first_extreme_grad(x, g, kept, sign)};
  });
}

}  // namespace

Variable max(const Variable& a, const Axes& axes, bool keepdim) { return extreme(a, axes, keepdim, "max", 1.0); }

Variable min(const Variable& a, const Axes& axes, bool keepdim) { return extreme(a, axes, keepdim, "min", -1.0); }

Variable variance(const Variable& a, const Axes& axes, bool keepdim) {
  detail::check_defined(a, "variance");
  keepdim_shape(a.shape(), axes, "variance");  // axis errors name this op
  const Variable deviation = sub(a, mean(a, axes, true));
  return mean(mul(deviation, deviation), axes, keepdim);
}

Variable sum(const Variable& a, const Axes& axes, bool keepdim) {
  detail::check_defined(a, "sum");
  const Shape kept = keepdim_shape(a.shape(), axes, "sum");
  return make_op_result(ops::sum(a.data(), axes, keepdim), "sum", {a},
                        [kept, input_shape = a.shape()](const Tensor& g) {
                          return std::vector<Tensor>{spread(g, kept, input_shape)};
                        });
}

Variable mean(const Variable& a, const Axes& axes, bool keepdim) {
  detail::check_defined(a, "mean");
  const Shape kept = keepdim_shape(a.shape(), axes, "mean");
  const std::int64_t reduced_count = shape_numel(kept) == 0 ? 0 : a.numel() / shape_numel(kept);
  const double scale = reduced_count == 0 ? 0.0 : 1.0 / static_cast<double>(reduced_count);
  return make_op_result(ops::mean(a.data(), axes, keepdim), "mean", {a},
                        [kept, input_shape = a.shape(), scale](const Tensor& g) {
                          return std::vector<Tensor>{spread(ops::mul_scalar(g, scale), kept, input_shape)};
                        });
}

Variable reshape(const Variable& a, const Shape& shape) {
  detail::check_defined(a, "reshape");
  return make_op_result(a.data().reshape(shape), "reshape", {a}, [input_shape = a.shape()](const Tensor& g) {
    return std::vector<Tensor>{g.reshape(input_shape)};
  });
}

Variable flatten(const Variable& a, std::int64_t start_axis) {
  detail::check_defined(a, "flatten");
  return make_op_result(a.data().flatten(start_axis), "flatten", {a}, [input_shape = a.shape()](const Tensor& g) {
    return std::vector<Tensor>{g.reshape(input_shape)};
  });
}

Variable transpose(const Variable& a, std::int64_t axis_a, std::int64_t axis_b) {
  detail::check_defined(a, "transpose");
  return make_op_result(a.data().transpose(axis_a, axis_b), "transpose", {a},
                        [axis_a, axis_b](const Tensor& g) { return std::vector<Tensor>{g.transpose(axis_a, axis_b)}; });
}

Variable stack(const std::vector<Variable>& xs, std::int64_t axis) {
  std::vector<Tensor> data;
  data.reserve(xs.size());
  for (const Variable& x : xs) {
    detail::check_defined(x, "stack");
    data.push_back(x.data());
  }
  Tensor out = ops::stack(data, axis);  // checks the shapes and the axis
  const std::int64_t ax = axis < 0 ? axis + out.dim() : axis;
  std::vector<bool> needed;
  for (const Variable& x : xs) needed.push_back(detail::needs_grad(x));
  return make_op_result(out, "stack", xs, [ax, needed](const Tensor& g) {
    std::vector<Tensor> grads;
    for (std::size_t i = 0; i < needed.size(); ++i)
      grads.push_back(needed[i] ? g.select(ax, static_cast<std::int64_t>(i)).contiguous() : Tensor());
    return grads;
  });
}

Variable slice(const Variable& a, std::int64_t axis, std::int64_t start, std::int64_t end, std::int64_t step) {
  detail::check_defined(a, "slice");
  Tensor out = a.data().slice(axis, start, end, step);  // checks the axis and the step
  // The first element taken, as Tensor::slice places it.
  const std::int64_t ax = normalize_axis(axis, a.dim(), "slice");
  const std::int64_t n = a.shape()[ax];
  const std::int64_t first = std::clamp<std::int64_t>(start < 0 ? start + n : start, 0, n);
  return make_op_result(out, "slice", {a}, [input_shape = a.shape(), ax, first, step](const Tensor& g) {
    return std::vector<Tensor>{ops::slice_backward(g, input_shape, ax, first, step)};
  });
}

std::vector<Variable> split(const Variable& a, const std::vector<std::int64_t>& sizes, std::int64_t axis) {
  detail::check_defined(a, "split");
  ops::split(a.data(), sizes, axis);  // checks the sizes and the axis
  std::vector<Variable> parts;
  std::int64_t begin = 0;
  for (std::int64_t size : sizes) {
    parts.push_back(slice(a, axis, begin, begin + size));
    begin += size;
  }
  return parts;
}

std::vector<Variable> split(const Variable& a, std::int64_t sections, std::int64_t axis) {
  detail::check_defined(a, "split");
  const std::vector<Tensor> parts = ops::split(a.data(), sections, axis);  // checks that it divides
  std::vector<std::int64_t> sizes;
  const std::int64_t ax = axis < 0 ? axis + a.dim() : axis;
  for (const Tensor& p : parts) sizes.push_back(p.shape()[ax]);
  return split(a, sizes, axis);
}

Variable permute(const Variable& a, const std::vector<std::int64_t>& order) {
  detail::check_defined(a, "permute");
  Tensor out = a.data().permute(order);  // checks the order
  std::vector<std::int64_t> inverse(order.size());
  for (std::size_t i = 0; i < order.size(); ++i) inverse[normalize_axis(order[i], a.dim(), "permute")] = static_cast<std::int64_t>(i);
  return make_op_result(out, "permute", {a},
                        [inverse](const Tensor& g) { return std::vector<Tensor>{g.permute(inverse)}; });
}

Variable broadcast_to(const Variable& a, const Shape& shape) {
  detail::check_defined(a, "broadcast_to");
  return make_op_result(ops::broadcast_to(a.data(), shape), "broadcast_to", {a},
                        [input_shape = a.shape()](const Tensor& g) {
                          return std::vector<Tensor>{detail::reduce_to(g, input_shape)};
                        });
}

Variable pad(const Variable& a, const std::vector<std::pair<std::int64_t, std::int64_t>>& pads, double value) {
  detail::check_defined(a, "pad");
  return make_op_result(ops::pad(a.data(), pads, value), "pad", {a}, [pads, input_shape = a.shape()](const Tensor& g) {
    Tensor inner = g;
    for (std::size_t d = 0; d < pads.size(); ++d)
      inner = inner.slice(static_cast<std::int64_t>(d), pads[d].first, pads[d].first + input_shape[d]);
    return std::vector<Tensor>{inner.contiguous()};
  });
}

Variable concat(const std::vector<Variable>& xs, std::int64_t axis) {
  std::vector<Tensor> data;
  data.reserve(xs.size());
  for (const Variable& x : xs) {
    detail::check_defined(x, "concat");
    data.push_back(x.data());
  }
  Tensor out = ops::concat(data, axis);  // checks the shapes and the axis
  const std::int64_t ax = axis < 0 ? axis + out.dim() : axis;
  // Each input's rows [begin, end) along the axis; begin is -1 when it needs no gradient.
  std::vector<std::pair<std::int64_t, std::int64_t>> ranges;
  std::int64_t begin = 0;
  for (const Variable& x : xs) {
    const std::int64_t end = begin + x.shape()[ax];
    ranges.emplace_back(detail::needs_grad(x) ? begin : -1, end);
    begin = end;
  }
  return make_op_result(out, "concat", xs, [ax, ranges](const Tensor& g) {
    std::vector<Tensor> grads;
    grads.reserve(ranges.size());
    for (const auto& [b, e] : ranges) grads.push_back(b < 0 ? Tensor() : g.slice(ax, b, e).contiguous());
    return grads;
  });
}

}  // namespace petal::ag
