// Helpers of the GPU tests: random shapes and tensors, strided views on the
// device, and "the CUDA op gives what the CPU op gives" comparisons.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/random.hpp"
#include "core/tensor.hpp"

namespace petal::test {

inline const Device kCuda = Device::cuda(0);

// A shape of `rank` axes with sizes in [1, max_size] (odd sizes included).
inline Shape random_shape(Generator& gen, int rank, std::int64_t max_size = 9) {
  Shape shape(rank);
  for (auto& s : shape) s = 1 + static_cast<std::int64_t>(gen.next_u64() % static_cast<std::uint64_t>(max_size));
  return shape;
}

// `shape` with random axes set to 1 and a random number of leading axes
// dropped: an operand that broadcasts to `shape`.
inline Shape broadcastable_to(const Shape& shape, Generator& gen) {
  Shape out;
  const std::size_t drop = gen.next_u64() % (shape.size() + 1);
  for (std::size_t d = drop; d < shape.size(); ++d) out.push_back(gen.next_u64() % 3 == 0 ? 1 : shape[d]);
  return out;
}

inline Tensor random_tensor(const Shape& shape, Generator& gen, DType dtype = DType::Float32, double low = -2.0,
                            double high = 2.0) {
  return uniform(shape, low, high, gen, dtype);
}

// A non-contiguous view of `shape` on both devices with the same values:
// the transpose of a tensor of the reversed shape (axes reversed back).
struct StridedPair {
  Tensor cpu, cuda;
};
inline StridedPair strided_pair(const Shape& shape, Generator& gen, DType dtype = DType::Float32) {
  Shape reversed(shape.rbegin(), shape.rend());
  const Tensor base = random_tensor(reversed, gen, dtype);
  std::vector<std::int64_t> order(shape.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::int64_t>(order.size() - 1 - i);
  return {base.permute(order), base.to(kCuda).permute(order)};
}

// Same shape, dtype, device kind, and every element within atol + rtol*|cpu|.
inline void check_matches(const Tensor& cuda_result, const Tensor& cpu_result, double rtol = 1e-5,
                          double atol = 1e-6) {
  REQUIRE(cuda_result.defined());
  CHECK(cuda_result.device() == kCuda);
  REQUIRE(shape_str(cuda_result.shape()) == shape_str(cpu_result.shape()));
  REQUIRE(cuda_result.dtype() == cpu_result.dtype());
  const std::vector<double> got = cuda_result.to(Device::cpu()).to_vector<double>();
  const std::vector<double> want = cpu_result.to_vector<double>();
  for (std::size_t i = 0; i < got.size(); ++i) {
    const bool both_nan = std::isnan(got[i]) && std::isnan(want[i]);
    const bool same_inf = std::isinf(want[i]) && got[i] == want[i];
    if (!both_nan && !same_inf && !(std::abs(got[i] - want[i]) <= atol + rtol * std::abs(want[i]))) {
      FAIL_CHECK("element ", i, " of ", shape_str(cpu_result.shape()), ": CUDA ", got[i], " vs CPU ", want[i]);
      return;
    }
  }
}

// Tolerances by dtype: float32 kernels may round differently (FMA,
// reduction order); float64 must agree closely.
inline double rtol_for(DType dtype) { return dtype == DType::Float64 ? 1e-12 : 2e-5; }
inline double atol_for(DType dtype) { return dtype == DType::Float64 ? 1e-12 : 2e-6; }

}  // namespace petal::test
