// The CUDA kernels behind kernels/ops.hpp (plain C++, no CUDA types). The
// ops_*.cpp dispatchers check arguments (shapes, dtypes, one device) and then
// call these for CUDA tensors; each returns a new contiguous tensor on the
// operands' device. float32 and float64 are supported throughout.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.hpp"
#include "kernels/cuda/optimizer_body.hpp"
#include "kernels/portable/elementwise_ops.hpp"
#include "kernels/portable/reduce_ops.hpp"

namespace petal::cuda_ops {

// ---- elementwise (broadcast shape already checked; inputs may be strided) ----
// The ops and their formulas: kernels/portable/elementwise_ops.hpp.
Tensor binary(kernels::BinaryOp op, const Tensor& a, const Tensor& b, const Shape& out_shape);
Tensor unary(kernels::UnaryOp op, const Tensor& a);
// x * scale + shift (add_scalar, mul_scalar).
Tensor affine(const Tensor& a, double scale, double shift);
Tensor pow_scalar(const Tensor& a, double exponent);
Tensor clamp(const Tensor& a, double low, double high);
// In place: a += alpha * b (b broadcast to a), a *= s, a = clamp(a).
void add_(Tensor& a, const Tensor& b, double alpha);
void mul_scalar_(Tensor& a, double s);
void clamp_(Tensor& a, double low, double high);

// ---- reductions ----
// Sum or max over the flagged axes into the keepdim shape.
Tensor reduce(kernels::ReduceOp op, const Tensor& a, const std::vector<bool>& reduced_axes);
Tensor argmax(const Tensor& a, std::int64_t axis);
// Sum of squares in double (gradient clipping).
double squared_norm(const Tensor& a);

// ---- softmax family over the last axis ----
Tensor softmax(const Tensor& a);
Tensor log_softmax(const Tensor& a);
Tensor softmax_backward(const Tensor& grad, const Tensor& y);
Tensor log_softmax_backward(const Tensor& grad, const Tensor& log_y);
// logits [N, C]; target float [N, C] or int64 [N]: labels outside [0, C) are
// detected on the device and throw IndexError naming the row and the label.
Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& target, Tensor* probs);
Tensor softmax_cross_entropy_backward(const Tensor& grad_loss, const Tensor& probs, const Tensor& target);

// ---- matrix product (cublasGemmEx; TF32 when cuda::set_tf32_enabled) ----
Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b);

// ---- optimizer updates (float32, contiguous, same numel; in place) ----
// momentum_buf is unused (may be undefined) without momentum.
void sgd_update_(Tensor& param, const Tensor& grad, Tensor& momentum_buf, const cuda::SgdParams& params);
void adam_update_(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const cuda::AdamParams& params);
// momentum_buf is unused without momentum, average_grad unless centered.
void rmsprop_update_(Tensor& param, const Tensor& grad, Tensor& velocity, Tensor& momentum_buf, Tensor& average_grad,
                     const cuda::RmspropParams& params);
void adagrad_update_(Tensor& param, const Tensor& grad, Tensor& accumulator, const cuda::AdagradParams& params);

}  // namespace petal::cuda_ops
