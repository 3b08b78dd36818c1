// Shape ops: concat, stack, split, pad, broadcast_to and the gradient of a
// stepped slice. A copy works for every dtype, so these take float32,
// float64, int64 and uint8 alike. Off the CPU they are built from copies into
// contiguous destinations (concat, Tensor::copy_), so every device that has
// copies has them.
#include <sstream>

#include "kernels/ops.hpp"
#include "kernels/ops_common.hpp"

namespace petal::ops {

namespace {

std::string shapes_of(const std::vector<Tensor>& tensors) {
  std::ostringstream out;
  for (std::size_t i = 0; i < tensors.size(); ++i)
    out << (i ? ", " : "") << (tensors[i].defined() ? shape_str(tensors[i].shape()) : std::string("undefined"));
  return out.str();
}

}  // namespace

Tensor concat(const std::vector<Tensor>& tensors, std::int64_t axis) {
  PETAL_CHECK(!tensors.empty(), ValueError, "concat: needs at least one tensor (axis ", axis, ")");
  for (std::size_t i = 0; i < tensors.size(); ++i)
    PETAL_CHECK(tensors[i].defined(), ValueError, "concat: tensor ", i, " is undefined (axis ", axis, "; shapes ",
                shapes_of(tensors), ")");
  const Tensor& first = tensors.front();
  const std::int64_t ndim = first.dim();
  PETAL_CHECK(ndim > 0 && axis >= -ndim && axis < ndim, IndexError, "concat: axis ", axis,
              " is out of range for tensors with ", ndim, " dimensions (shapes ", shapes_of(tensors), ")");
  const std::int64_t ax = axis < 0 ? axis + ndim : axis;

  Shape out_shape = first.shape();
  out_shape[ax] = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    PETAL_CHECK(t.dtype() == first.dtype(), DTypeError, "concat: tensor ", i, " is ", dtype_name(t.dtype()),
                " but tensor 0 is ", dtype_name(first.dtype()), " (axis ", axis, "; shapes ", shapes_of(tensors), ")");
    PETAL_CHECK(t.device() == first.device(), DeviceError, "concat: tensors are on different devices (",
                first.device().str(), " and ", t.device().str(), "; axis ", axis, "; shapes ", shapes_of(tensors),
                ")");
    bool same = t.dim() == ndim;
    for (std::int64_t d = 0; same && d < ndim; ++d) same = d == ax || t.shape()[d] == first.shape()[d];
    PETAL_CHECK(same, ShapeError, "concat: tensor ", i, " of shape ", shape_str(t.shape()),
                " does not match tensor 0 except along axis ", axis, " (shapes ", shapes_of(tensors), ")");
    out_shape[ax] += t.shape()[ax];
  }
  const Device device = first.device();
  // Names the op in the "CUDA backend not available" errors of builds without it.
  const detail::Backend backend = detail::select_backend("concat", {&first});

  if (backend == detail::Backend::Cpu) {
    // Tensor::copy_ writes strided destinations on the CPU: each input goes
    // straight into its slice of the output.
    Tensor out = Tensor::empty(out_shape, first.dtype(), device);
    std::int64_t begin = 0;
    for (const Tensor& t : tensors) {
      const std::int64_t end = begin + t.shape()[ax];
      if (end > begin) out.slice(ax, begin, end).copy_(t);
      begin = end;
    }
    return out;
  }

  // Other devices copy only into contiguous destinations: build the result
  // with the concat axis outermost, where each input's rows [begin, end) are
  // one contiguous block, then move the axis back. copy_ gathers a strided
  // source on its own device (the backend's strided_copy).
  std::vector<std::int64_t> to_front{ax}, back(static_cast<std::size_t>(ndim));
  for (std::int64_t d = 0; d < ndim; ++d)
    if (d != ax) to_front.push_back(d);
  Shape front_shape(static_cast<std::size_t>(ndim));
  for (std::int64_t d = 0; d < ndim; ++d) {
    front_shape[d] = out_shape[to_front[d]];
    back[to_front[d]] = d;
  }
  Tensor front = Tensor::empty(front_shape, first.dtype(), device);
  std::int64_t begin = 0;
  for (const Tensor& t : tensors) {
    const std::int64_t end = begin + t.shape()[ax];
    if (end > begin) front.slice(0, begin, end).copy_(t.permute(to_front));
    begin = end;
  }
  return ax == 0 ? front : front.permute(back).contiguous();
}

Tensor stack(const std::vector<Tensor>& tensors, std::int64_t axis) {
  PETAL_CHECK(!tensors.empty(), ValueError, "stack: needs at least one tensor (axis ", axis, ")");
  for (std::size_t i = 0; i < tensors.size(); ++i)
    PETAL_CHECK(tensors[i].defined(), ValueError, "stack: tensor ", i, " is undefined (axis ", axis, "; shapes ",
                shapes_of(tensors), ")");
  const std::int64_t ndim = tensors.front().dim();
  PETAL_CHECK(axis >= -(ndim + 1) && axis <= ndim, IndexError, "stack: axis ", axis,
              " is out of range for stacking tensors with ", ndim, " dimensions (shapes ", shapes_of(tensors), ")");
  const std::int64_t ax = axis < 0 ? axis + ndim + 1 : axis;
  std::vector<Tensor> expanded;
  expanded.reserve(tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    PETAL_CHECK(tensors[i].shape() == tensors.front().shape(), ShapeError, "stack: tensor ", i, " of shape ",
                shape_str(tensors[i].shape()), " differs from tensor 0 (shapes ", shapes_of(tensors), ")");
    expanded.push_back(tensors[i].unsqueeze(ax));
  }
  return concat(expanded, ax);
}

std::vector<Tensor> split(const Tensor& a, const std::vector<std::int64_t>& sizes, std::int64_t axis) {
  PETAL_CHECK(a.defined(), ValueError, "split: undefined tensor");
  PETAL_CHECK(a.dim() > 0 && axis >= -a.dim() && axis < a.dim(), IndexError, "split: axis ", axis,
              " is out of range for a tensor of shape ", shape_str(a.shape()));
  const std::int64_t ax = axis < 0 ? axis + a.dim() : axis;
  std::int64_t total = 0;
  for (std::int64_t size : sizes) {
    PETAL_CHECK(size >= 0, ValueError, "split: negative size ", size, " (tensor of shape ", shape_str(a.shape()), ")");
    total += size;
  }
  PETAL_CHECK(total == a.shape()[ax], ValueError, "split: sizes summing to ", total, " do not cover axis ", axis,
              " of size ", a.shape()[ax], " (tensor of shape ", shape_str(a.shape()), ")");
  std::vector<Tensor> parts;
  std::int64_t begin = 0;
  for (std::int64_t size : sizes) {
    parts.push_back(a.slice(ax, begin, begin + size));
    begin += size;
  }
  return parts;
}

std::vector<Tensor> split(const Tensor& a, std::int64_t sections, std::int64_t axis) {
  PETAL_CHECK(a.defined(), ValueError, "split: undefined tensor");
  PETAL_CHECK(a.dim() > 0 && axis >= -a.dim() && axis < a.dim(), IndexError, "split: axis ", axis,
              " is out of range for a tensor of shape ", shape_str(a.shape()));
  const std::int64_t n = a.shape()[axis < 0 ? axis + a.dim() : axis];
  PETAL_CHECK(sections > 0 && n % sections == 0, ValueError, "split: axis ", axis, " of size ", n,
              " does not divide into ", sections, " equal sections (tensor of shape ", shape_str(a.shape()), ")");
  return split(a, std::vector<std::int64_t>(static_cast<std::size_t>(sections), n / sections), axis);
}

Tensor pad(const Tensor& a, const std::vector<std::pair<std::int64_t, std::int64_t>>& pads, double value) {
  PETAL_CHECK(a.defined(), ValueError, "pad: undefined tensor");
  PETAL_CHECK(static_cast<std::int64_t>(pads.size()) == a.dim(), ValueError, "pad: ", pads.size(),
              " (before, after) pairs for a tensor of shape ", shape_str(a.shape()), " (one per axis)");
  Shape out_shape = a.shape();
  for (std::size_t d = 0; d < pads.size(); ++d) {
    PETAL_CHECK(pads[d].first >= 0 && pads[d].second >= 0, ValueError, "pad: negative padding (", pads[d].first, ", ",
                pads[d].second, ") on axis ", d, " (tensor of shape ", shape_str(a.shape()), ")");
    out_shape[d] += pads[d].first + pads[d].second;
  }
  if (a.device().is_cpu()) {
    Tensor out = full(out_shape, value, a.dtype());
    Tensor inner = out;
    for (std::size_t d = 0; d < pads.size(); ++d)
      inner = inner.slice(static_cast<std::int64_t>(d), pads[d].first, pads[d].first + a.shape()[d]);
    if (a.numel() > 0) inner.copy_(a);
    return out;
  }
  return detail::pad_by_concat(a, pads, value);
}

namespace detail {

Tensor pad_by_concat(const Tensor& a, const std::vector<std::pair<std::int64_t, std::int64_t>>& pads, double value) {
  // Constant blocks joined on each padded axis in turn.
  Tensor out = a;
  for (std::size_t d = 0; d < pads.size(); ++d) {
    if (pads[d].first == 0 && pads[d].second == 0) continue;
    std::vector<Tensor> parts;
    for (std::int64_t width : {pads[d].first, std::int64_t{-1}, pads[d].second}) {
      if (width < 0) {
        parts.push_back(out);
        continue;
      }
      Shape block = out.shape();
      block[d] = width;
      parts.push_back(Tensor::empty(block, a.dtype(), a.device()).fill_(value));
    }
    out = concat(parts, static_cast<std::int64_t>(d));
  }
  return out.contiguous();
}

Tensor slice_backward_by_pad(const Tensor& grad, const Shape& input_shape, std::int64_t ax, std::int64_t start,
                             std::int64_t step) {
  // Each element followed by step - 1 zeros (a new axis padded and merged),
  // cropped to fit, then padded to the input's extent.
  const std::int64_t n = input_shape[ax], len = grad.shape()[ax];
  Tensor spread = grad;
  if (step > 1 && len > 0) {
    Shape with_axis = grad.shape();
    with_axis.insert(with_axis.begin() + ax + 1, 1);
    std::vector<std::pair<std::int64_t, std::int64_t>> widen(with_axis.size(), {0, 0});
    widen[ax + 1] = {0, step - 1};
    Shape merged = grad.shape();
    merged[ax] = len * step;
    spread = pad_by_concat(grad.reshape(with_axis), widen, 0.0).reshape(merged).slice(ax, 0, (len - 1) * step + 1);
  }
  std::vector<std::pair<std::int64_t, std::int64_t>> pads(input_shape.size(), {0, 0});
  pads[ax] = {start, n - start - spread.shape()[ax]};
  return pad_by_concat(spread, pads, 0.0);
}

}  // namespace detail

Tensor broadcast_to(const Tensor& a, const Shape& shape) {
  PETAL_CHECK(a.defined(), ValueError, "broadcast_to: undefined tensor");
  bool ok = shape.size() >= a.shape().size();
  for (std::size_t i = 0; ok && i < a.shape().size(); ++i) {
    const std::int64_t have = a.shape()[i], want = shape[shape.size() - a.shape().size() + i];
    ok = have == want || have == 1;
  }
  for (std::int64_t d : shape) ok = ok && d >= 0;
  PETAL_CHECK(ok, ShapeError, "broadcast_to: cannot broadcast ", shape_str(a.shape()), " to ", shape_str(shape));
  return a.expand(shape);
}

Tensor slice_backward(const Tensor& grad, const Shape& input_shape, std::int64_t axis, std::int64_t start,
                      std::int64_t step) {
  const char* op = "slice_backward";
  PETAL_CHECK(grad.defined(), ValueError, op, ": undefined gradient");
  PETAL_CHECK(grad.dim() == static_cast<std::int64_t>(input_shape.size()), ShapeError, op, ": gradient of shape ",
              shape_str(grad.shape()), " for an input of shape ", shape_str(input_shape));
  const std::int64_t ax = normalize_axis(axis, grad.dim(), op);
  const std::int64_t n = input_shape[ax], len = grad.shape()[ax];
  PETAL_CHECK(step > 0 && start >= 0 && (len == 0 || start + (len - 1) * step < n), ValueError, op, ": ", len,
              " elements from ", start, " with step ", step, " do not fit axis ", axis, " of ", shape_str(input_shape));
  if (grad.device().is_cpu()) {
    Tensor out = zeros(input_shape, grad.dtype());
    if (grad.numel() > 0) out.slice(ax, start, start + (len - 1) * step + 1, step).copy_(grad);
    return out;
  }
  return detail::slice_backward_by_pad(grad, input_shape, ax, start, step);
}

}  // namespace petal::ops
