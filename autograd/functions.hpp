// Differentiable operations on Variables. Each forwards to kernels/ops.hpp and
// records its backward on the tape. Broadcasting ops reduce gradients back to
// each input's shape. Argument errors (shapes, axes, dtypes) are the kernels'
// petal::Errors naming the op; an undefined Variable argument is a ValueError.
// Each op saves only what its backward needs, and only for inputs that
// require a gradient (activations save their output, not their input).
// Implemented in functions_arithmetic.cpp, functions_unary.cpp,
// functions_shape.cpp and functions_softmax.cpp.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "autograd/variable.hpp"

namespace petal::ag {

using Axes = std::vector<std::int64_t>;

Variable add(const Variable& a, const Variable& b);
Variable sub(const Variable& a, const Variable& b);
Variable mul(const Variable& a, const Variable& b);
Variable div(const Variable& a, const Variable& b);
Variable neg(const Variable& a);
Variable add_scalar(const Variable& a, double s);
Variable mul_scalar(const Variable& a, double s);
Variable pow_scalar(const Variable& a, double exponent);
// Elementwise larger/smaller of a and b (NumPy broadcasting). Where they tie
// the gradient goes to a (like TensorFlow); elsewhere to the chosen input.
Variable maximum(const Variable& a, const Variable& b);
Variable minimum(const Variable& a, const Variable& b);
// a^b elementwise (NumPy broadcasting); d/db = a^b log(a) is NaN for a < 0.
Variable pow(const Variable& a, const Variable& b);

// 2-D, or batches of matrices with broadcast batch axes (see ops::matmul);
// each gradient is summed over the batch axes its operand was broadcast on.
Variable matmul(const Variable& a, const Variable& b);

Variable relu(const Variable& a);
Variable relu6(const Variable& a);
Variable sigmoid(const Variable& a);
Variable tanh(const Variable& a);
Variable exp(const Variable& a);
Variable log(const Variable& a);
Variable sqrt(const Variable& a);
Variable abs(const Variable& a);  // gradient sign(x), 0 at 0
// Activations of kernels/ops.hpp (gelu is the exact erf form; leaky_relu's
// default slope 0.2 is keras.ops.leaky_relu's, the LeakyReLU layer's is 0.3).
Variable gelu(const Variable& a);
Variable silu(const Variable& a);
Variable softplus(const Variable& a);
Variable leaky_relu(const Variable& a, double negative_slope = 0.2);
// min(max(x, low), high); the gradient is 1 for low <= x <= high, 0 outside.
Variable clamp(const Variable& a, double low, double high);

// Empty axes = all axes (a 0-d result unless keepdim); negative axes count
// from the end; a repeated axis is an IndexError.
Variable sum(const Variable& a, const Axes& axes = {}, bool keepdim = false);
Variable mean(const Variable& a, const Axes& axes = {}, bool keepdim = false);
// Largest/smallest over the axes; the gradient goes to the first extreme
// element of each group in C order (as ops::argmax picks it), none to ties.
Variable max(const Variable& a, const Axes& axes = {}, bool keepdim = false);
Variable min(const Variable& a, const Axes& axes = {}, bool keepdim = false);
// Biased variance (NumPy's and keras.ops.var's default), mean((a - mean(a))^2).
Variable variance(const Variable& a, const Axes& axes = {}, bool keepdim = false);

// Shape ops return views sharing the input's storage where the tensor layout
// allows (like Tensor::reshape/transpose), copies otherwise.
Variable reshape(const Variable& a, const Shape& shape);  // one size may be -1
Variable flatten(const Variable& a, std::int64_t start_axis = 1);  // keeps axes before start_axis
Variable transpose(const Variable& a, std::int64_t axis_a, std::int64_t axis_b);
// Joins xs along axis (a copy; see ops::concat for the rules); each input's
// gradient is its slice of the output's gradient.
Variable concat(const std::vector<Variable>& xs, std::int64_t axis);
// Joins xs along a new axis (see ops::stack); input i's gradient is index i
// of the output's gradient along that axis.
Variable stack(const std::vector<Variable>& xs, std::int64_t axis);
// Elements [start, end) with a step (> 0) along axis, as Tensor::slice (a
// view; negative start/end count from the end, both clamped to the axis).
// The gradient is the output's gradient placed into zeros.
Variable slice(const Variable& a, std::int64_t axis, std::int64_t start, std::int64_t end, std::int64_t step = 1);
// Consecutive parts along axis (see ops::split), each a slice of a: a part's
// gradient flows back into its range only.
std::vector<Variable> split(const Variable& a, const std::vector<std::int64_t>& sizes, std::int64_t axis);
std::vector<Variable> split(const Variable& a, std::int64_t sections, std::int64_t axis);
// Axes reordered (a view): output axis i is input axis order[i].
Variable permute(const Variable& a, const std::vector<std::int64_t>& order);
// A broadcast view (NumPy rules); the gradient sums over the broadcast axes.
Variable broadcast_to(const Variable& a, const Shape& shape);
// Constant padding, (before, after) per axis (see ops::pad); the gradient is
// the inner block of the output's gradient.
Variable pad(const Variable& a, const std::vector<std::pair<std::int64_t, std::int64_t>>& pads, double value = 0.0);

// Indexing (functions_indexing.cpp; CPU only for now, like the ops). Index
// and mask tensors are constants.
// NumPy take along an axis (see ops::take); the gradient scatter-adds into
// zeros of a's shape, repeated indices accumulating.
Variable take(const Variable& a, const Tensor& indices, std::int64_t axis);
// table [V, D] at int64 ids [...] -> [..., D]. The gradient is dense: a full
// [V, D] tensor with the rows of the looked-up ids (accumulated) and zeros
// elsewhere, not a sparse row update.
Variable embedding(const Variable& table, const Tensor& ids);
// a where mask is nonzero, b elsewhere (broadcast together; see ops::where):
// the gradient goes to a where the mask is set, to b elsewhere.
Variable where(const Tensor& mask, const Variable& a, const Variable& b);

Variable softmax(const Variable& a);      // last axis
Variable log_softmax(const Variable& a);  // last axis

// Mean over the batch of softmax cross-entropy from logits [N, C]; target is a
// constant: float one-hot/probabilities [N, C] (converted to the logits' dtype)
// or int64 class indices [N] (IndexError outside [0, C)). Returns a 0-d scalar.
Variable softmax_cross_entropy(const Variable& logits, const Tensor& target);
// Mean cross-entropy from probabilities [N, C] (already softmaxed), clipped
// like Keras (epsilon 1e-7) so log(0) never happens: -mean_n sum_c t log(clip(p)).
// Clipped elements get no gradient. Targets as for softmax_cross_entropy.
// Unlike Keras, rows are not renormalised to sum 1 first: for softmax outputs
// that is the same loss and the same gradient with respect to the logits.
Variable cross_entropy_from_probs(const Variable& probs, const Tensor& target);

// Operators for readable model code.
inline Variable operator+(const Variable& a, const Variable& b) { return add(a, b); }
inline Variable operator-(const Variable& a, const Variable& b) { return sub(a, b); }
inline Variable operator*(const Variable& a, const Variable& b) { return mul(a, b); }
inline Variable operator/(const Variable& a, const Variable& b) { return div(a, b); }
inline Variable operator-(const Variable& a) { return neg(a); }
inline Variable operator+(const Variable& a, double s) { return add_scalar(a, s); }
inline Variable operator+(double s, const Variable& a) { return add_scalar(a, s); }
inline Variable operator-(const Variable& a, double s) { return add_scalar(a, -s); }
inline Variable operator-(double s, const Variable& a) { return add_scalar(neg(a), s); }
inline Variable operator*(const Variable& a, double s) { return mul_scalar(a, s); }
inline Variable operator*(double s, const Variable& a) { return mul_scalar(a, s); }
inline Variable operator/(const Variable& a, double s) { return mul_scalar(a, 1.0 / s); }

}  // namespace petal::ag
