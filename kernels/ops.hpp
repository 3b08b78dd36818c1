// Tensor-level operations: the dispatch table between autograd/nn and the
// kernels. Each function checks its arguments (shapes, dtypes, devices) and
// throws a petal::Error naming the op and the shapes, then calls the CPU
// kernel for the active ISA (or, later, the CUDA kernel) by the tensors'
// device. Kernels never throw.
//
// Floating ops accept float32 and float64 (float64 exists for gradient
// checks); both operands of a binary op must have the same dtype and device.
// Results are new contiguous tensors; inputs may be strided views.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "core/tensor.hpp"

namespace petal::ops {

using Axes = std::vector<std::int64_t>;

// ---- elementwise binary, NumPy broadcasting ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
// a^b elementwise through pow (NaN for a negative base and a fractional exponent).
Tensor pow(const Tensor& a, const Tensor& b);
// a + alpha * b, in place on a (a's shape must be the broadcast shape).
void add_(Tensor& a, const Tensor& b, double alpha = 1.0);

// ---- with a scalar ----
Tensor add_scalar(const Tensor& a, double s);
Tensor mul_scalar(const Tensor& a, double s);
Tensor pow_scalar(const Tensor& a, double exponent);
void mul_scalar_(Tensor& a, double s);

// ---- elementwise unary ----
Tensor neg(const Tensor& a);
Tensor exp(const Tensor& a);
Tensor log(const Tensor& a);
Tensor sqrt(const Tensor& a);
Tensor abs(const Tensor& a);
Tensor relu(const Tensor& a);
Tensor relu6(const Tensor& a);
Tensor sigmoid(const Tensor& a);
Tensor tanh(const Tensor& a);
Tensor clamp(const Tensor& a, double low, double high);
// GELU, exact form: x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)) (Keras gelu with
// approximate=False, PyTorch's default).
Tensor gelu(const Tensor& a);
// SiLU (swish): x sigmoid(x).
Tensor silu(const Tensor& a);
// softplus: log(1 + e^x), computed as log1p(e^-|x|) + max(x, 0).
Tensor softplus(const Tensor& a);
// x for x > 0, negative_slope * x elsewhere. The default 0.2 is keras.ops.leaky_relu's
// (the keras.layers.LeakyReLU layer defaults to 0.3; PyTorch to 0.01).
Tensor leaky_relu(const Tensor& a, double negative_slope = 0.2);
// In place (clipping gradients by value); a must not be a broadcast view.
void clamp_(Tensor& a, double low, double high);

// ---- fused backward helpers (one pass, no temporaries) ----
Tensor relu_backward(const Tensor& grad, const Tensor& x);     // grad * (x > 0)
Tensor relu6_backward(const Tensor& grad, const Tensor& x);    // grad * (0 < x < 6)
Tensor sigmoid_backward(const Tensor& grad, const Tensor& y);  // grad * y * (1 - y), y = sigmoid(x)
Tensor tanh_backward(const Tensor& grad, const Tensor& y);     // grad * (1 - y^2), y = tanh(x)
Tensor abs_backward(const Tensor& grad, const Tensor& x);      // grad * sign(x), 0 at x = 0
Tensor gelu_backward(const Tensor& grad, const Tensor& x);     // grad * (Phi(x) + x phi(x))
Tensor silu_backward(const Tensor& grad, const Tensor& x);     // grad * s (1 + x (1 - s)), s = sigmoid(x)
Tensor softplus_backward(const Tensor& grad, const Tensor& x); // grad * sigmoid(x)

// ---- reductions (empty axes = all axes; max and argmax skip NaN) ----
Tensor sum(const Tensor& a, const Axes& axes = {}, bool keepdim = false);
Tensor mean(const Tensor& a, const Axes& axes = {}, bool keepdim = false);
Tensor max(const Tensor& a, const Axes& axes = {}, bool keepdim = false);
Tensor min(const Tensor& a, const Axes& axes = {}, bool keepdim = false);  // -max(-a)
// Biased variance (divides by the count, like NumPy's and keras.ops.var's
// default): mean((a - mean(a))^2) over the axes, in two passes.
Tensor variance(const Tensor& a, const Axes& axes = {}, bool keepdim = false);
// Index of the largest value along one axis (int64, axis removed).
Tensor argmax(const Tensor& a, std::int64_t axis);
// Sums a broadcast result back to `shape` (the gradient of broadcasting).
Tensor sum_to(const Tensor& a, const Shape& shape);

// ---- softmax family, over the last axis ----
Tensor softmax(const Tensor& a);
Tensor log_softmax(const Tensor& a);
Tensor softmax_backward(const Tensor& grad, const Tensor& y);          // y = softmax(x)
Tensor log_softmax_backward(const Tensor& grad, const Tensor& log_y);  // log_y = log_softmax(x)

// Fused, numerically stable softmax + cross-entropy over rows of logits [N, C].
// target: float [N, C] (one-hot or probabilities, same dtype as logits) or
// int64 [N] class indices (each in [0, C), else IndexError). Returns the loss
// per row [N]; when probs is not null it receives softmax(logits) [N, C] for
// the backward pass.
Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& target, Tensor* probs = nullptr);
// d(loss)/d(logits) = grad_loss[n] * (probs - onehot(target)), [N, C].
Tensor softmax_cross_entropy_backward(const Tensor& grad_loss, const Tensor& probs, const Tensor& target);

// ---- matrix product ----
// op(a) @ op(b), where op transposes the last two axes when the flag is set.
// 2-D @ 2-D is one product; operands of more axes are batches of matrices
// whose batch axes (all but the last two) broadcast as in NumPy's matmul:
// [B, M, K] @ [K, N] -> [B, M, N], [1, M, K] @ [B, K, N] -> [B, M, N],
// [A, 1, M, K] @ [B, K, N] -> [A, B, M, N]. Both operands need at least 2 axes.
Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a = false, bool transpose_b = false);

// ---- shape ops that copy (kernels/ops_shape.cpp; any dtype) ----
// The tensors joined along `axis` (negative counts from the end): at least
// one, all of one dtype, device and rank, with equal sizes except along axis
// (ValueError, DTypeError, DeviceError, ShapeError; IndexError for an axis out
// of range). The result is a new contiguous tensor.
Tensor concat(const std::vector<Tensor>& tensors, std::int64_t axis);
// The tensors (at least one, all of one shape, dtype and device) joined along
// a new axis in [-(rank + 1), rank]: [2, 3] x 4 stacked on axis 1 is [2, 4, 3].
Tensor stack(const std::vector<Tensor>& tensors, std::int64_t axis);
// Views of consecutive parts along axis: of the given sizes (non-negative,
// summing to the axis's size), or `sections` equal parts (NumPy's and
// keras.ops.split's integer form; ValueError unless it divides the axis).
// Beware split(a, {3}, axis): a braced single number picks the sections
// overload; spell one size as std::vector<std::int64_t>{3}.
std::vector<Tensor> split(const Tensor& a, const std::vector<std::int64_t>& sizes, std::int64_t axis);
std::vector<Tensor> split(const Tensor& a, std::int64_t sections, std::int64_t axis);
// Constant padding: pads[d] = (before, after) elements of `value` on axis d,
// one pair per axis, none negative.
Tensor pad(const Tensor& a, const std::vector<std::pair<std::int64_t, std::int64_t>>& pads, double value = 0.0);
// A broadcast view of a (NumPy rules: leading axes added, size-1 axes
// repeated with stride 0); ShapeError when a does not broadcast to shape.
Tensor broadcast_to(const Tensor& a, const Shape& shape);
// The gradient of a.slice(axis, start, end, step) (start already within the
// axis): grad at start, start + step, ... of zeros of input_shape.
Tensor slice_backward(const Tensor& grad, const Shape& input_shape, std::int64_t axis, std::int64_t start,
                      std::int64_t step);

// ---- indexing (kernels/ops_indexing.cpp) ----
// indices (int64, any shape) -> [..., depth] of `dtype`, 1 where the last
// index equals the index, 0 elsewhere. IndexError naming the index and its
// position for one outside [0, depth). On a non-CPU device the indices are
// read on the host and the result copied to their device.
Tensor one_hot(const Tensor& indices, std::int64_t depth, DType dtype = DType::Float32);
// NumPy's take along an axis: a.shape[:axis] + indices.shape + a.shape[axis+1:],
// any dtype; int64 indices in [-n, n) (negative count from the end), else
// IndexError naming the index and its position. CPU only for now.
Tensor take(const Tensor& a, const Tensor& indices, std::int64_t axis);
// Rows of table [V, D] at int64 ids of any shape -> [..., D]; ids in [0, V).
Tensor embedding(const Tensor& table, const Tensor& ids);
// The gradient of take (and embedding, axis 0): zeros of input_shape with
// each slice of grad added at its index; repeated indices accumulate, in
// index order. The result is dense (the whole table for an embedding).
Tensor take_backward(const Tensor& grad, const Tensor& indices, std::int64_t axis, const Shape& input_shape);
// a where mask is nonzero, b elsewhere, all three broadcast together (NumPy
// rules). mask of any dtype (uint8/bool-like, or float 0/1); a and b of one
// dtype, the result's. CPU only for now.
Tensor where(const Tensor& mask, const Tensor& a, const Tensor& b);

// ---- optimizer updates (in place, one fused pass; kernels/ops_optimizer.cpp) ----
// SGD, Adam, RMSprop, Adagrad.
// param, grad and the state tensors are float32 of one shape on one device;
// param and state must be contiguous. The arithmetic is float32 in the Keras
// forms nn/optimizers.cpp uses. When weight_decay > 0 the parameter is first
// scaled by float(1 - lr * weight_decay).
//
// SGD: momentum == 0: param -= lr * grad (momentum_buf unused, may be
// undefined); else buf = momentum * buf - lr * grad, then
// param += nesterov ? momentum * buf - lr * grad : buf.
void sgd_update_(Tensor& param, const Tensor& grad, Tensor& momentum_buf, double lr, double momentum,
                 bool nesterov, double weight_decay = 0.0);
// Adam with Keras's epsilon-hat: step counts from 1, lr_t = lr * sqrt(1 -
// beta2^step) / (1 - beta1^step) (in double), m += (grad - m) * (1 - beta1),
// v += (grad^2 - v) * (1 - beta2), param -= lr_t * m / (sqrt(v) + epsilon).
void adam_update_(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, double lr, double beta1, double beta2,
                  double epsilon, std::int64_t step, double weight_decay = 0.0);
// RMSprop as Keras 3 has it: velocity = rho * velocity + (1 - rho) * grad^2;
// centered: average_grad = rho * average_grad + (1 - rho) * grad and
// denominator = velocity - average_grad^2 + epsilon, else velocity + epsilon;
// increment = lr * grad / sqrt(denominator); momentum != 0: momentum_buf =
// momentum * momentum_buf + increment, param -= momentum_buf; else param -=
// increment. momentum_buf is unused (may be undefined) when momentum == 0,
// average_grad unless centered. rho and momentum in [0, 1], epsilon > 0.
void rmsprop_update_(Tensor& param, const Tensor& grad, Tensor& velocity, Tensor& momentum_buf, Tensor& average_grad,
                     double lr, double rho, double momentum, double epsilon, bool centered, double weight_decay = 0.0);
// Adagrad as Keras 3 has it: accumulator += grad^2; param -= lr * grad /
// sqrt(accumulator + epsilon) (the accumulator starts at Keras's
// initial_accumulator_value, set by the caller). epsilon >= 0.
void adagrad_update_(Tensor& param, const Tensor& grad, Tensor& accumulator, double lr, double epsilon,
                     double weight_decay = 0.0);
// Sum of the squares of every element, accumulated in double (clipnorm).
double squared_norm(const Tensor& a);

}  // namespace petal::ops
