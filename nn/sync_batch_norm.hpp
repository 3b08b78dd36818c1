// Batch normalization with statistics over the global batch of data-parallel
// training (Keras's BatchNormalization(synchronized=True), PyTorch's
// SyncBatchNorm): the mean and variance of each channel are those of every
// replica's samples together, as one process with the whole global batch
// would compute them, and the backward pass differentiates through them.
//
// Forward: two sums across replicas of C (+1) values: the per-channel sums
// and count (the mean), then the sums of squared deviations from that mean
// (the biased variance; two passes, no cancellation). Backward: one sum of
// 2C values. With replica r's share s_r = n_r / N of the global batch (its
// gradient scale) and g = s_r * dL_r/dy, the gradient of the global loss is
// gamma / sigma * (g - mean(g) - x_hat * mean(g * x_hat)) with means over
// all N samples; replica r returns it divided by s_r, since data-parallel
// training scales each replica's gradients by s_r before summing them.
#pragma once

#include <memory>

#include "autograd/variable.hpp"
#include "nn/replica_context.hpp"

namespace petal::nn {

// Training-mode batch normalization of x [..., C] (no activation); updates
// the moving statistics with the global batch's. Every replica must call it
// at the same point (each call is a collective of `replicas`).
ag::Variable sync_batch_norm(const ag::Variable& x, const ag::Variable& gamma, const ag::Variable& beta,
                             Tensor& moving_mean, Tensor& moving_variance, double momentum, double epsilon,
                             const std::shared_ptr<ReplicaContext>& replicas);

}  // namespace petal::nn
