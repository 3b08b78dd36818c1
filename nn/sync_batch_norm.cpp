#include "nn/sync_batch_norm.hpp"

#include <vector>

#include "core/error.hpp"
#include "kernels/ops.hpp"
#include "kernels/ops_conv.hpp"

namespace petal::nn {
namespace {

ops::Axes leading_axes(std::int64_t dim) {
  ops::Axes axes;
  for (std::int64_t a = 0; a + 1 < dim; ++a) axes.push_back(a);
  return axes;
}

Tensor channel_vector(const std::vector<double>& values, std::size_t begin, std::size_t count, double divisor,
                      const Tensor& like) {
  std::vector<double> out(count);
  for (std::size_t c = 0; c < count; ++c) out[c] = values[begin + c] / divisor;
  return from_vector(out).to(like.dtype()).to(like.device());
}

}  // namespace

ag::Variable sync_batch_norm(const ag::Variable& x, const ag::Variable& gamma, const ag::Variable& beta,
                             Tensor& moving_mean, Tensor& moving_variance, double momentum, double epsilon,
                             const std::shared_ptr<ReplicaContext>& replicas) {
  const char* op = "sync_batch_norm";
  PETAL_CHECK(x.defined() && gamma.defined() && beta.defined(), ValueError, op, ": undefined operand");
  PETAL_CHECK(replicas != nullptr, ValueError, op, ": needs a replica context");
  PETAL_CHECK(x.dim() >= 1 && x.size(-1) == gamma.numel(), ShapeError, op, ": input ", shape_str(x.shape()),
              " does not end in the ", gamma.numel(), " channels of gamma");
  const Tensor& xd = x.data();
  const auto channels = static_cast<std::size_t>(x.size(-1));
  const ops::Axes axes = leading_axes(x.dim());

  // The global mean: per-channel sums and the sample count, summed across replicas.
  std::vector<double> sums = ops::sum(xd, axes).to_vector<double>();
  sums.push_back(static_cast<double>(xd.numel() / x.size(-1)));
  replicas->sum(sums);
  const double count = sums[channels];
  PETAL_CHECK(count > 0, ValueError, op, ": the replicas' batches are all empty");
  const Tensor mean = channel_vector(sums, 0, channels, count, xd);
  // The global biased variance: squared deviations from the global mean.
  const Tensor centred = ops::sub(xd, mean);
  std::vector<double> squares = ops::sum(ops::mul(centred, centred), axes).to_vector<double>();
  replicas->sum(squares);
  const Tensor variance = channel_vector(squares, 0, channels, count, xd);

  const ops::FoldedBatchNorm folded = ops::fold_batch_norm(gamma.data(), beta.data(), mean, variance, epsilon);
  Tensor y = ops::channel_affine(xd, folded.scale, folded.shift, false);
  ops::update_moving_statistics(moving_mean, moving_variance, mean, variance, static_cast<std::int64_t>(count),
                                momentum);
  // x_hat = (x - mean) / sigma is the affine map with gamma 1 and beta 0.
  const ops::FoldedBatchNorm unit =
      ops::fold_batch_norm(ones({x.size(-1)}, xd.dtype(), xd.device()), zeros({x.size(-1)}, xd.dtype(), xd.device()),
                           mean, variance, epsilon);
  return ag::make_op_result(
      y, op, {x, gamma, beta},
      [xd, gamma_scale = ops::mul(gamma.data(), unit.scale), unit, axes, channels, count,
       replicas](const Tensor& grad) -> std::vector<Tensor> {
        const Tensor x_hat = ops::channel_affine(xd, unit.scale, unit.shift, false);
        const Tensor sum_g = ops::sum(grad, axes);
        const Tensor sum_gx = ops::sum(ops::mul(grad, x_hat), axes);
        // mean(g) and mean(g * x_hat) over the global batch, g = s * dL_r/dy.
        const double s = replicas->gradient_scale();
        std::vector<double> both = sum_g.to_vector<double>();
        const std::vector<double> gx = sum_gx.to_vector<double>();
        both.insert(both.end(), gx.begin(), gx.end());
        for (double& v : both) v *= s;
        replicas->sum(both);
        // dx = gamma / sigma * (g - mean(g) - x_hat * mean(g x_hat)) / s
        //    = gamma / sigma * (dL_r/dy + x_hat * (-mean(g x_hat) / s) + (-mean(g) / s)).
        const Tensor slope = channel_vector(both, channels, channels, -count * s, xd);
        const Tensor offset = channel_vector(both, 0, channels, -count * s, xd);
        const Tensor dx = ops::mul(ops::add(grad, ops::channel_affine(x_hat, slope, offset, false)), gamma_scale);
        return {dx, sum_gx, sum_g};
      });
}

}  // namespace petal::nn
