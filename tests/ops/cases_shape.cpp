// Registry entries of the shape family: concat along every kind of axis, of
// one to three inputs, sizes 1, 0 and odd, strided views, and every dtype
// (a copy is exact); stack, split, stepped slices, permute, broadcast_to,
// pad and the gradient of a slice.
#include <string>
#include <utility>

#include <functional>

#include "autograd/functions.hpp"
#include "kernels/ops.hpp"
#include "tests/ops/op_registry.hpp"

namespace petal::test {
namespace {

// The inputs joined along axis, in double: for each index before the axis,
// each input's block of the axis and the axes after it in turn.
Reference concat_reference(const Inputs& in, std::int64_t axis) {
  const std::int64_t ndim = in[0].dim();
  const std::int64_t ax = axis < 0 ? axis + ndim : axis;
  Reference r;
  r.shape = in[0].shape();
  r.shape[ax] = 0;
  for (const Tensor& t : in) r.shape[ax] += t.shape()[ax];
  std::int64_t outer = 1;
  for (std::int64_t d = 0; d < ax; ++d) outer *= r.shape[d];
  std::vector<std::vector<double>> values;
  for (const Tensor& t : in) values.push_back(t.to_vector<double>());
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::size_t i = 0; i < in.size(); ++i) {
      const std::int64_t block = outer == 0 ? 0 : static_cast<std::int64_t>(values[i].size()) / outer;
      r.values.insert(r.values.end(), values[i].begin() + o * block, values[i].begin() + (o + 1) * block);
    }
  return r;
}

OpCase concat_case(std::vector<InputSpec> inputs, std::int64_t axis) {
  OpCase c;
  c.family = "shape";
  c.name = "concat";
  c.attributes = "axis " + std::to_string(axis);
  c.inputs = std::move(inputs);
  c.forward = [axis](const Inputs& in) { return ops::concat(in, axis); };
  c.reference = [axis](const Inputs& in) { return concat_reference(in, axis); };
  c.differentiable = [axis](const std::vector<ag::Variable>& v) { return ag::concat(v, axis); };
  c.exact();
  return c;
}

// Every output element read from one input element: out[i] = in[source(i)]
// over the output's C order (-1: the fill value).
Reference gather_reference(const Tensor& in, const Shape& out_shape,
                           const std::function<std::int64_t(const std::vector<std::int64_t>&)>& source,
                           double fill = 0.0) {
  Reference r;
  r.shape = out_shape;
  const std::vector<double> v = in.to_vector<double>();
  std::vector<std::int64_t> index(out_shape.size(), 0);
  for (std::int64_t i = 0; i < shape_numel(out_shape); ++i) {
    std::int64_t rest = i;
    for (std::size_t d = out_shape.size(); d-- > 0;) {
      index[d] = rest % out_shape[d];
      rest /= out_shape[d];
    }
    const std::int64_t src = source(index);
    r.values.push_back(src < 0 ? fill : v[src]);
  }
  return r;
}

// C-order offset of a multi-index in `shape`.
std::int64_t offset_of(const Shape& shape, const std::vector<std::int64_t>& index) {
  std::int64_t off = 0;
  for (std::size_t d = 0; d < shape.size(); ++d) off = off * shape[d] + index[d];
  return off;
}

OpCase shape_case(const char* name, std::string attributes, std::vector<InputSpec> inputs) {
  OpCase c;
  c.family = "shape";
  c.name = name;
  c.attributes = std::move(attributes);
  c.inputs = std::move(inputs);
  c.exact();
  return c;
}

OpCase stack_case(std::vector<InputSpec> inputs, std::int64_t axis) {
  OpCase c = shape_case("stack", "axis " + std::to_string(axis), std::move(inputs));
  c.forward = [axis](const Inputs& in) { return ops::stack(in, axis); };
  c.reference = [axis](const Inputs& in) {
    // stack = concat of the inputs each given a size-1 axis.
    Inputs unsqueezed;
    const std::int64_t ax = axis < 0 ? axis + in[0].dim() + 1 : axis;
    for (const Tensor& t : in) unsqueezed.push_back(t.contiguous().unsqueeze(ax));
    return concat_reference(unsqueezed, ax);
  };
  c.differentiable = [axis](const std::vector<ag::Variable>& v) { return ag::stack(v, axis); };
  return c;
}

// Part `part` of ag::split / ops::split by sizes.
OpCase split_case(InputSpec input, std::vector<std::int64_t> sizes, std::int64_t axis, std::size_t part) {
  std::string attributes = "sizes {";
  for (std::size_t i = 0; i < sizes.size(); ++i) attributes += (i ? ", " : "") + std::to_string(sizes[i]);
  attributes += "} axis " + std::to_string(axis) + ", part " + std::to_string(part);
  OpCase c = shape_case("split", attributes, {std::move(input)});
  std::int64_t begin = 0;
  for (std::size_t i = 0; i < part; ++i) begin += sizes[i];
  const std::int64_t size = sizes[part];
  c.forward = [sizes, axis, part](const Inputs& in) { return ops::split(in[0], sizes, axis)[part]; };
  c.reference = [axis, begin, size](const Inputs& in) {
    const std::int64_t ax = axis < 0 ? axis + in[0].dim() : axis;
    Shape out = in[0].shape();
    out[ax] = size;
    return gather_reference(in[0], out, [&](std::vector<std::int64_t> i) {
      i[ax] += begin;
      return offset_of(in[0].shape(), i);
    });
  };
  c.differentiable = [sizes, axis, part](const std::vector<ag::Variable>& v) { return ag::split(v[0], sizes, axis)[part]; };
  return c;
}

// Elements taken by a slice of an axis of size n (Tensor::slice's rules).
std::pair<std::int64_t, std::int64_t> slice_range(std::int64_t n, std::int64_t start, std::int64_t end, std::int64_t step) {
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::min(std::max<std::int64_t>(start, 0), n);
  end = std::min(std::max(end, start), n);
  return {start, (end - start + step - 1) / step};
}

OpCase slice_case(InputSpec input, std::int64_t axis, std::int64_t start, std::int64_t end, std::int64_t step) {
  OpCase c = shape_case("slice",
                        "axis " + std::to_string(axis) + " [" + std::to_string(start) + ":" + std::to_string(end) +
                            ":" + std::to_string(step) + "]",
                        {std::move(input)});
  c.forward = [=](const Inputs& in) { return in[0].slice(axis, start, end, step).contiguous(); };
  c.reference = [=](const Inputs& in) {
    const std::int64_t ax = axis < 0 ? axis + in[0].dim() : axis;
    const auto [first, count] = slice_range(in[0].shape()[ax], start, end, step);
    Shape out = in[0].shape();
    out[ax] = count;
    return gather_reference(in[0], out, [&, first = first](std::vector<std::int64_t> i) {
      i[ax] = first + i[ax] * step;
      return offset_of(in[0].shape(), i);
    });
  };
  c.differentiable = [=](const std::vector<ag::Variable>& v) { return ag::slice(v[0], axis, start, end, step); };
  return c;
}

// ops::slice_backward: the gradient placed at start, start + step, ... of zeros.
OpCase slice_backward_case(InputSpec grad, Shape input_shape, std::int64_t axis, std::int64_t start, std::int64_t step) {
  OpCase c = shape_case("slice_backward",
                        "into " + shape_str(input_shape) + " axis " + std::to_string(axis) + " from " +
                            std::to_string(start) + " step " + std::to_string(step),
                        {std::move(grad)});
  c.forward = [=](const Inputs& in) { return ops::slice_backward(in[0], input_shape, axis, start, step); };
  c.reference = [=](const Inputs& in) {
    const std::int64_t ax = axis < 0 ? axis + static_cast<std::int64_t>(input_shape.size()) : axis;
    return gather_reference(in[0], input_shape, [&](std::vector<std::int64_t> i) -> std::int64_t {
      const std::int64_t k = i[ax] - start;
      if (k < 0 || k % step != 0 || k / step >= in[0].shape()[ax]) return -1;
      i[ax] = k / step;
      return offset_of(in[0].shape(), i);
    });
  };
  return c;
}

OpCase permute_case(InputSpec input, std::vector<std::int64_t> order) {
  std::string attributes = "order {";
  for (std::size_t i = 0; i < order.size(); ++i) attributes += (i ? ", " : "") + std::to_string(order[i]);
  OpCase c = shape_case("permute", attributes + "}", {std::move(input)});
  c.forward = [order](const Inputs& in) { return in[0].permute(order).contiguous(); };
  c.reference = [order](const Inputs& in) {
    Shape out;
    for (std::int64_t o : order) out.push_back(in[0].shape()[o]);
    return gather_reference(in[0], out, [&](const std::vector<std::int64_t>& i) {
      std::vector<std::int64_t> src(order.size());
      for (std::size_t k = 0; k < order.size(); ++k) src[order[k]] = i[k];
      return offset_of(in[0].shape(), src);
    });
  };
  c.differentiable = [order](const std::vector<ag::Variable>& v) { return ag::permute(v[0], order); };
  return c;
}

OpCase broadcast_to_case(InputSpec input, Shape shape) {
  OpCase c = shape_case("broadcast_to", "to " + shape_str(shape), {std::move(input)});
  c.forward = [shape](const Inputs& in) { return ops::broadcast_to(in[0], shape).contiguous(); };
  c.reference = [shape](const Inputs& in) {
    return gather_reference(in[0], shape, [&](const std::vector<std::int64_t>& i) {
      return broadcast_source_index(in[0].shape(), shape, offset_of(shape, i));
    });
  };
  c.differentiable = [shape](const std::vector<ag::Variable>& v) { return ag::broadcast_to(v[0], shape); };
  return c;
}

OpCase pad_case(InputSpec input, std::vector<std::pair<std::int64_t, std::int64_t>> pads, double value) {
  std::string attributes = "pads {";
  for (std::size_t i = 0; i < pads.size(); ++i)
    attributes += (i ? ", " : "") + std::string("(") + std::to_string(pads[i].first) + ", " +
                  std::to_string(pads[i].second) + ")";
  OpCase c = shape_case("pad", attributes + "} value " + std::to_string(value), {std::move(input)});
  c.forward = [=](const Inputs& in) { return ops::pad(in[0], pads, value); };
  c.reference = [=](const Inputs& in) {
    Shape out = in[0].shape();
    for (std::size_t d = 0; d < pads.size(); ++d) out[d] += pads[d].first + pads[d].second;
    return gather_reference(
        in[0], out,
        [&](std::vector<std::int64_t> i) -> std::int64_t {
          for (std::size_t d = 0; d < pads.size(); ++d) {
            i[d] -= pads[d].first;
            if (i[d] < 0 || i[d] >= in[0].shape()[d]) return -1;
          }
          return offset_of(in[0].shape(), i);
        },
        value);
  };
  c.differentiable = [=](const std::vector<ag::Variable>& v) { return ag::pad(v[0], pads, value); };
  return c;
}

}  // namespace

std::vector<OpCase> shape_cases() {
  using S = InputSpec;
  std::vector<OpCase> out;
  // Axis 0, 1, the last and negative ones; one, two and three inputs.
  out.push_back(concat_case({S({2, 5}), S({3, 5})}, 0));
  out.push_back(concat_case({S({7}), S({1}), S({9})}, 0));
  out.push_back(concat_case({S({3, 4})}, 1));
  out.push_back(concat_case({S({4, 3}), S({4, 1}), S({4, 5})}, 1));
  out.push_back(concat_case({S({2, 3, 4}), S({2, 3, 7})}, 2));
  out.push_back(concat_case({S({3, 7}), S({3, 1})}, -1));
  out.push_back(concat_case({S({2, 3, 4}), S({2, 5, 4}), S({2, 1, 4})}, -2));
  out.push_back(concat_case({S({2, 3, 5}), S({1, 3, 5})}, -3));
  out.push_back(concat_case({S({3, 0}), S({3, 4})}, 1));  // an empty input
  // Strided inputs: column-major, stride 2, stride 0.
  out.push_back(concat_case({S({5, 3}).viewed(Layout::Transposed), S({5, 4})}, 1));
  out.push_back(concat_case({S({5, 3}), S({2, 3}).viewed(Layout::Transposed)}, 0));
  out.push_back(concat_case({S({3, 6}).viewed(Layout::EveryOther), S({4, 6}), S({1, 6}).viewed(Layout::EveryOther)}, 0));
  out.push_back(concat_case({S({2, 3, 5}).viewed(Layout::EveryOther), S({2, 3, 3}).viewed(Layout::Transposed)}, -1));
  out.push_back(concat_case({S({4, 5, 3}).viewed(Layout::Expanded), S({2, 5, 3})}, 0));
  out.push_back(concat_case({S({4, 2, 3}).viewed(Layout::Expanded), S({4, 1, 3})}, 1));
  // Large enough for a thread split elsewhere; beyond gradcheck's bound.
  out.push_back(concat_case({S({129, 33}), S({129, 64}).viewed(Layout::Transposed)}, 1));
  // Integers: a copy of every dtype, not only the floating ones.
  OpCase integers = concat_case({S({3, 4}, 0.0, 200.0), S({3, 5}, 0.0, 200.0).viewed(Layout::Transposed)}, 1);
  integers.dtypes = {DType::Int64, DType::UInt8};
  integers.differentiable = {};
  out.push_back(integers);

  // stack: new first, middle, last and negative axes; one input; views.
  out.push_back(stack_case({S({3, 4}), S({3, 4})}, 0));
  out.push_back(stack_case({S({3, 4}), S({3, 4}), S({3, 4})}, 1));
  out.push_back(stack_case({S({3, 4}), S({3, 4})}, 2));
  out.push_back(stack_case({S({5}), S({5}).viewed(Layout::EveryOther)}, -1));
  out.push_back(stack_case({S({1, 7})}, -3));
  out.push_back(stack_case({S({4, 3}).viewed(Layout::Transposed), S({4, 3}), S({4, 3}).viewed(Layout::Expanded)}, 1));
  OpCase stacked_integers = stack_case({S({2, 3}, 0.0, 100.0), S({2, 3}, 0.0, 100.0)}, 1);
  stacked_integers.dtypes = {DType::Int64, DType::UInt8};
  stacked_integers.differentiable = {};
  out.push_back(stacked_integers);

  // split by sizes (each part an entry), a size-0 part, a strided input.
  for (std::size_t part : {0, 1, 2}) out.push_back(split_case(S({4, 7}), {2, 4, 1}, 1, part));
  for (std::size_t part : {0, 1}) out.push_back(split_case(S({5, 3}), {0, 5}, 0, part));
  for (std::size_t part : {0, 1}) out.push_back(split_case(S({6, 5}).viewed(Layout::Transposed), {3, 3}, 0, part));
  for (std::size_t part : {0, 1}) out.push_back(split_case(S({2, 3, 4}), {1, 3}, -1, part));
  {
    // The integer form: equal sections.
    OpCase c = split_case(S({6, 2}), {2, 2, 2}, 0, 2);
    c.attributes = "3 sections axis 0, part 2";
    c.forward = [](const Inputs& in) { return ops::split(in[0], std::int64_t{3}, 0)[2]; };
    c.differentiable = [](const std::vector<ag::Variable>& v) { return ag::split(v[0], std::int64_t{3}, 0)[2]; };
    out.push_back(c);
  }

  // Slices with steps, negative bounds, bounds beyond the axis, empty results.
  out.push_back(slice_case(S({7, 5}), 0, 1, 6, 2));
  out.push_back(slice_case(S({7, 5}), -1, -4, 5, 3));
  out.push_back(slice_case(S({7, 5}), 1, 0, 100, 1));
  out.push_back(slice_case(S({3, 9, 2}), 1, 2, 9, 4));
  out.push_back(slice_case(S({3, 9, 2}), 1, 5, 5, 1));  // empty
  out.push_back(slice_case(S({8, 6}).viewed(Layout::Transposed), 0, 1, 8, 3));
  out.push_back(slice_case(S({4, 6}).viewed(Layout::EveryOther), 1, 1, 6, 2));
  out.push_back(slice_case(S({1, 11}), 1, -100, 11, 5));
  out.push_back(slice_backward_case(S({3, 2}), {8, 2}, 0, 1, 3));
  out.push_back(slice_backward_case(S({2, 3}).viewed(Layout::Transposed), {2, 9}, -1, 0, 4));
  out.push_back(slice_backward_case(S({4, 0}), {4, 5}, 1, 2, 1));

  // permute: every kind of order, size-1 axes, strided inputs.
  out.push_back(permute_case(S({2, 3, 4}), {2, 0, 1}));
  out.push_back(permute_case(S({2, 3, 4}), {1, 2, 0}));
  out.push_back(permute_case(S({2, 3, 4}), {0, 1, 2}));
  out.push_back(permute_case(S({2, 1, 3, 5}), {3, 1, 0, 2}));
  out.push_back(permute_case(S({5, 4}).viewed(Layout::Transposed), {1, 0}));
  out.push_back(permute_case(S({3, 2, 6}).viewed(Layout::EveryOther), {2, 1, 0}));

  // broadcast_to: new leading axes, size-1 axes, a 0-d input.
  out.push_back(broadcast_to_case(S({3, 1}), {2, 3, 4}));
  out.push_back(broadcast_to_case(S({}), {5}));
  out.push_back(broadcast_to_case(S({1}), {3, 1, 2}));
  out.push_back(broadcast_to_case(S({4}).viewed(Layout::EveryOther), {2, 4}));
  out.push_back(broadcast_to_case(S({2, 3}), {2, 3}));

  // pad: per-axis widths, a fill value, an empty input, strided inputs.
  out.push_back(pad_case(S({3, 4}), {{1, 2}, {0, 3}}, 0.0));
  out.push_back(pad_case(S({3, 4}), {{0, 0}, {2, 1}}, 1.5));
  out.push_back(pad_case(S({2, 3, 2}), {{1, 0}, {0, 0}, {1, 1}}, -2.0));
  out.push_back(pad_case(S({0, 3}), {{1, 1}, {0, 0}}, 0.5));
  out.push_back(pad_case(S({5}), {{0, 0}}, 0.0));
  out.push_back(pad_case(S({4, 3}).viewed(Layout::Transposed), {{2, 0}, {1, 1}}, 0.0));
  OpCase padded_integers = pad_case(S({2, 3}, 0.0, 100.0), {{1, 1}, {1, 0}}, 7.0);
  padded_integers.dtypes = {DType::Int64, DType::UInt8};
  padded_integers.differentiable = {};
  out.push_back(padded_integers);
  return out;
}

}  // namespace petal::test
