// Shape ops that copy: concat. A copy works for every dtype, so these take
// float32, float64, int64 and uint8 alike.
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

}  // namespace petal::ops
