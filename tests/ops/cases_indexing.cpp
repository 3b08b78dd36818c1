// Registry entries of the indexing family: take along every kind of axis
// (negative and repeated indices, strided inputs, integer dtypes), embedding
// lookups, where with uint8 and float masks broadcast every way, and one_hot.
// Index inputs are constants: gradcheck hands them over as float64 holding
// whole numbers, and the differentiable forms convert them back.
#include <string>

#include "autograd/functions.hpp"
#include "kernels/ops.hpp"
#include "tests/ops/op_registry.hpp"

namespace petal::test {
namespace {

Tensor as_indices(const Tensor& t) { return t.to(DType::Int64); }

// NumPy take: out[pre, j..., post] = a[pre, idx[j...], post].
Reference take_reference(const Tensor& a, const Tensor& indices, std::int64_t axis) {
  const std::int64_t ax = axis < 0 ? axis + a.dim() : axis;
  const std::int64_t n = a.shape()[ax];
  std::int64_t outer = 1, inner = 1;
  for (std::int64_t d = 0; d < ax; ++d) outer *= a.shape()[d];
  for (std::int64_t d = ax + 1; d < a.dim(); ++d) inner *= a.shape()[d];
  Reference r;
  r.shape.assign(a.shape().begin(), a.shape().begin() + ax);
  r.shape.insert(r.shape.end(), indices.shape().begin(), indices.shape().end());
  r.shape.insert(r.shape.end(), a.shape().begin() + ax + 1, a.shape().end());
  const std::vector<double> v = a.to_vector<double>();
  const std::vector<double> idx = indices.to_vector<double>();
  for (std::int64_t o = 0; o < outer; ++o)
    for (double j : idx) {
      const std::int64_t k = j < 0 ? static_cast<std::int64_t>(j) + n : static_cast<std::int64_t>(j);
      for (std::int64_t i = 0; i < inner; ++i) r.values.push_back(v[(o * n + k) * inner + i]);
    }
  return r;
}

OpCase take_case(InputSpec a, Shape indices, std::int64_t axis, std::int64_t n, bool negative = true) {
  OpCase c;
  c.family = "indexing";
  c.name = "take";
  c.attributes = "axis " + std::to_string(axis) + " indices " + shape_str(indices);
  c.inputs = {std::move(a),
              InputSpec(std::move(indices), negative ? -static_cast<double>(n) : 0.0, static_cast<double>(n))
                  .of_dtype(DType::Int64)
                  .constant()};
  c.forward = [axis](const Inputs& in) { return ops::take(in[0], in[1], axis); };
  c.reference = [axis](const Inputs& in) { return take_reference(in[0], in[1], axis); };
  c.differentiable = [axis](const std::vector<ag::Variable>& v) {
    return ag::take(v[0], as_indices(v[1].data()), axis);
  };
  c.exact();
  c.cpu_only = true;
  return c;
}

OpCase embedding_case(Shape table, Shape ids) {
  OpCase c;
  c.family = "indexing";
  c.name = "embedding";
  c.attributes = "ids " + shape_str(ids);
  const double vocabulary = static_cast<double>(table[0]);
  c.inputs = {InputSpec(std::move(table)), InputSpec(std::move(ids), 0.0, vocabulary).of_dtype(DType::Int64).constant()};
  c.forward = [](const Inputs& in) { return ops::embedding(in[0], in[1]); };
  c.reference = [](const Inputs& in) { return take_reference(in[0], in[1], 0); };
  c.differentiable = [](const std::vector<ag::Variable>& v) { return ag::embedding(v[0], as_indices(v[1].data())); };
  c.exact();
  c.cpu_only = true;
  return c;
}

// mask drawn as 0/1 integers; float_mask hands it to the op in the entry's dtype.
OpCase where_case(Shape mask, InputSpec a, InputSpec b, bool float_mask) {
  OpCase c;
  c.family = "indexing";
  c.name = "where";
  c.attributes = float_mask ? "float mask" : "uint8 mask";
  c.inputs = {InputSpec(std::move(mask), 0.0, 2.0).of_dtype(DType::UInt8).constant(), std::move(a), std::move(b)};
  c.forward = [float_mask](const Inputs& in) {
    return ops::where(float_mask ? in[0].to(in[1].dtype()) : in[0], in[1], in[2]);
  };
  c.reference = [](const Inputs& in) {
    Reference r;
    r.shape = broadcast_shapes(broadcast_shapes(in[0].shape(), in[1].shape(), "where"), in[2].shape(), "where");
    const std::vector<double> m = in[0].to_vector<double>(), va = in[1].to_vector<double>(),
                              vb = in[2].to_vector<double>();
    for (std::int64_t i = 0; i < shape_numel(r.shape); ++i)
      r.values.push_back(m[broadcast_source_index(in[0].shape(), r.shape, i)] != 0.0
                             ? va[broadcast_source_index(in[1].shape(), r.shape, i)]
                             : vb[broadcast_source_index(in[2].shape(), r.shape, i)]);
    return r;
  };
  // gradcheck passes the mask as float64 0/1: a float mask.
  c.differentiable = [](const std::vector<ag::Variable>& v) { return ag::where(v[0].data(), v[1], v[2]); };
  c.exact();
  c.cpu_only = true;
  return c;
}

}  // namespace

std::vector<OpCase> indexing_cases() {
  using S = InputSpec;
  std::vector<OpCase> out;
  // take: first, middle, last and negative axes; 0-d, 1-d and 2-d indices
  // (negative ones included, repeats likely); views; integer dtypes.
  out.push_back(take_case(S({5, 4}), {3}, 0, 5));
  out.push_back(take_case(S({5, 4}), {2, 3}, 1, 4, false));
  out.push_back(take_case(S({3, 6, 2}), {9}, 1, 6));
  out.push_back(take_case(S({3, 6, 2}), {}, -1, 2));
  out.push_back(take_case(S({2, 3, 7}), {4, 2}, -1, 7));
  out.push_back(take_case(S({1, 5}), {8}, 1, 5));
  out.push_back(take_case(S({6, 5}).viewed(Layout::Transposed), {4}, 0, 6));
  out.push_back(take_case(S({4, 5}).viewed(Layout::EveryOther), {3}, 1, 5));
  out.push_back(take_case(S({4, 3, 5}).viewed(Layout::Expanded), {2}, 0, 4));
  out.push_back(take_case(S({3, 4}), {0}, 0, 3));  // no indices
  out.push_back(take_case(S({300, 65}), {257}, 0, 300));
  OpCase taken_integers = take_case(S({4, 6}, 0.0, 200.0), {5}, 1, 6);
  taken_integers.dtypes = {DType::Int64, DType::UInt8};
  taken_integers.differentiable = {};
  out.push_back(taken_integers);

  // embedding: ids of rank 0, 1 and 2, a vocabulary of one, a wide table.
  out.push_back(embedding_case({7, 3}, {2, 4}));
  out.push_back(embedding_case({7, 3}, {5}));
  out.push_back(embedding_case({7, 3}, {}));
  out.push_back(embedding_case({1, 4}, {3}));
  out.push_back(embedding_case({50, 33}, {6, 7}));

  // where: the same shape, each operand broadcast, strided operands.
  for (bool float_mask : {false, true}) {
    out.push_back(where_case({3, 4}, S({3, 4}), S({3, 4}), float_mask));
    out.push_back(where_case({4}, S({3, 1}), S({}), float_mask));
    out.push_back(where_case({2, 1, 5}, S({3, 5}), S({2, 3, 1}), float_mask));
    out.push_back(where_case({7, 6}, S({7, 6}).viewed(Layout::Transposed), S({7, 6}).viewed(Layout::EveryOther),
                             float_mask));
  }
  out.push_back(where_case({129, 65}, S({129, 65}), S({65}), false));

  // one_hot of indices of rank 1 and 2.
  for (const Shape& shape : {Shape{5}, Shape{2, 3}, Shape{0}}) {
    OpCase c;
    c.family = "indexing";
    c.name = "one_hot";
    c.attributes = "depth 4";
    c.inputs = {InputSpec(shape, 0.0, 4.0).of_dtype(DType::Int64).constant()};
    c.dtypes = {DType::Float32};
    c.forward = [](const Inputs& in) { return ops::one_hot(in[0], 4); };
    c.reference = [](const Inputs& in) {
      Reference r;
      r.shape = in[0].shape();
      r.shape.push_back(4);
      for (double v : in[0].to_vector<double>())
        for (int k = 0; k < 4; ++k) r.values.push_back(k == static_cast<int>(v) ? 1.0 : 0.0);
      return r;
    };
    c.exact();
    out.push_back(c);
  }
  return out;
}

}  // namespace petal::test
