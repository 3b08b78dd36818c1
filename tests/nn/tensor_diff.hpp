// Comparing a tensor with a reference in the nn tests.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "core/tensor.hpp"

namespace petal::test {

// The largest |a - b| over the elements (float32 tensors of the same size).
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  const auto va = a.contiguous().to_vector<float>(), vb = b.contiguous().to_vector<float>();
  REQUIRE(va.size() == vb.size());
  double worst = 0;
  for (std::size_t i = 0; i < va.size(); ++i) worst = std::max(worst, std::abs(double(va[i]) - double(vb[i])));
  return worst;
}

}  // namespace petal::test
