#include "nn/grad_clipping.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <unordered_set>

#include "core/error.hpp"
#include "kernels/ops.hpp"

namespace petal::nn {

namespace {

// The largest |g| of one gradient; NaN when it holds a NaN (ops::max skips
// NaN, so a NaN is found through the sum of squares, which keeps it).
double max_abs(const Tensor& g) {
  if (g.numel() == 0) return 0.0;
  const double m = ops::max(ops::abs(g)).item<double>();
  if (std::isnan(ops::squared_norm(g))) return std::numeric_limits<double>::quiet_NaN();
  return m;
}

}  // namespace

double clip_grad_norm(const std::vector<ag::Variable>& parameters, double max_norm, double norm_type) {
  const char* op = "clip_grad_norm";
  PETAL_CHECK(max_norm > 0.0, ValueError, op, ": max_norm must be positive, got ", max_norm);
  const bool inf_norm = norm_type == std::numeric_limits<double>::infinity();
  PETAL_CHECK(norm_type == 2.0 || inf_norm, ValueError, op, ": norm_type must be 2 or infinity, got ", norm_type);

  std::vector<Tensor> grads;
  std::unordered_set<const ag::VariableImpl*> seen;
  for (const ag::Variable& p : parameters) {
    if (!p.defined() || !p.has_grad() || !seen.insert(p.impl().get()).second) continue;
    grads.push_back(p.grad());
  }

  double total = 0.0;
  if (inf_norm) {
    for (const Tensor& g : grads) {
      const double m = max_abs(g);
      if (std::isnan(m)) {
        total = m;
        break;
      }
      total = std::max(total, m);
    }
  } else {
    for (const Tensor& g : grads) total += ops::squared_norm(g);
    total = std::sqrt(total);
  }

  if (std::isfinite(total) && total > max_norm) {
    // Refuse a gradient that cannot be scaled in place before scaling any.
    for (const Tensor& g : grads)
      for (std::int64_t d = 0; d < g.dim(); ++d)
        PETAL_CHECK(g.shape()[d] <= 1 || g.strides()[d] != 0, ValueError, op, ": a gradient of shape ",
                    shape_str(g.shape()), " is a broadcast view (stride 0 on axis ", d, "); set a copy");
    const double scale = max_norm / (total + 1e-6);
    // p.grad() hands out the stored tensor: scaling a copy of the handle
    // scales the gradient itself.
    for (Tensor& g : grads) ops::mul_scalar_(g, scale);
  }
  return total;
}

}  // namespace petal::nn
