// Registry entries of the shape family: concat along every kind of axis, of
// one to three inputs, sizes 1, 0 and odd, strided views, and every dtype
// (a copy is exact).
#include <string>

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
  return out;
}

}  // namespace petal::test
