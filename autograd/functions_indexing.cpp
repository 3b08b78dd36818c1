// Differentiable indexing: take along an axis, embedding lookup and where.
// The index and mask arguments are constants (no gradient).
#include "autograd/function_helpers.hpp"
#include "autograd/functions.hpp"

namespace petal::ag {

Variable take(const Variable& a, const Tensor& indices, std::int64_t axis) {
  detail::check_defined(a, "take");
  return make_op_result(ops::take(a.data(), indices, axis), "take", {a},
                        [indices, axis, input_shape = a.shape()](const Tensor& g) {
                          return std::vector<Tensor>{ops::take_backward(g, indices, axis, input_shape)};
                        });
}

Variable embedding(const Variable& table, const Tensor& ids) {
  detail::check_defined(table, "embedding");
  return make_op_result(ops::embedding(table.data(), ids), "embedding", {table},
                        [ids, input_shape = table.shape()](const Tensor& g) {
                          return std::vector<Tensor>{ops::take_backward(g, ids, 0, input_shape)};
                        });
}

Variable where(const Tensor& mask, const Variable& a, const Variable& b) {
  detail::check_defined(a, "where");
  detail::check_defined(b, "where");
  return make_op_result(ops::where(mask, a.data(), b.data()), "where", {a, b},
                        [mask, a_shape = a.shape(), b_shape = b.shape(), need_a = detail::needs_grad(a),
                         need_b = detail::needs_grad(b)](const Tensor& g) {
                          const Tensor zero = zeros({}, g.dtype(), g.device());
                          return std::vector<Tensor>{
                              need_a ? detail::reduce_to(ops::where(mask, g, zero), a_shape) : Tensor(),
                              need_b ? detail::reduce_to(ops::where(mask, zero, g), b_shape) : Tensor()};
                        });
}

}  // namespace petal::ag
