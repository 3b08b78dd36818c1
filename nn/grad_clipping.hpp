// Gradient clipping by the total norm over many parameters, like PyTorch's
// torch.nn.utils.clip_grad_norm_ (error_if_nonfinite=False):
//
//   total = norm of the concatenation of every gradient (2-norm or max |g|)
//   if total > max_norm: every g *= max_norm / (total + 1e-6), in place
//   return total (before clipping)
//
// Use it between backward() and an optimizer's step(): it rewrites the
// parameters' .grad tensors. (The optimizers' global_clipnorm option does the
// same clipping on private copies inside step(), in Keras's form, without the
// 1e-6.) The arithmetic is kernels/ops.hpp's, so gradients may live on any
// device (several devices in one call too).
#pragma once

#include <vector>

#include "autograd/variable.hpp"

namespace petal::nn {

// Clips the gradients of `parameters` to a total norm of at most max_norm and
// returns their total norm before clipping.
//
// - Parameters without a gradient (and undefined variables) are skipped; a
//   variable listed twice counts once. With no gradient at all the result is 0.
// - norm_type: 2.0 (Euclidean, accumulated in double) or
//   std::numeric_limits<double>::infinity() (the largest |g|); anything else is
//   a ValueError.
// - max_norm must be positive (an infinite max_norm never clips); zero,
//   negative or NaN is a ValueError naming the value.
// - A non-finite total (a NaN or infinite gradient element, or a sum of
//   squares beyond double's range) is returned as it is and the gradients are
//   left unchanged: check the result when that matters.
// - Gradients are float32 or float64 and must not be broadcast views
//   (stride 0): they are scaled in place (float32 ones by float(scale)).
double clip_grad_norm(const std::vector<ag::Variable>& parameters, double max_norm, double norm_type = 2.0);

}  // namespace petal::nn
