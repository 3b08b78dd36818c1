// The reduction family (sum, max, argmax), defined once for every backend:
// the op enum, the identity and the combine step (host and device). The CPU
// ops (kernels/ops_reduce.cpp and the row kernels' scalar tails) and the
// CUDA kernels (kernels/cuda/reduce.cu, softmax.cu) fold with these; max and
// argmax skip NaN (a NaN never compares greater), argmax keeps the first of
// equal maxima. The accumulator type is the backend's choice (the CUDA sums
// accumulate in double).
#pragma once

#include <cstdint>
#include <limits>

#include "kernels/portable/host_device.hpp"

namespace petal::kernels {

enum class ReduceOp : int { Sum, Max };

template <ReduceOp kOp, class Acc>
PETAL_HD_INLINE Acc reduce_identity() {
  if constexpr (kOp == ReduceOp::Max) return -std::numeric_limits<Acc>::infinity();
  else return Acc(0);
}

// acc folded with the next element v, in this order (sums are not
// associative in floating point: keep acc on the left).
template <ReduceOp kOp, class Acc>
PETAL_HD_INLINE Acc reduce_combine(Acc acc, Acc v) {
  if constexpr (kOp == ReduceOp::Max) return v > acc ? v : acc;
  else return acc + v;
}

// One step of the argmax scan along an axis: element j with value v.
template <class T>
PETAL_HD_INLINE void argmax_step(T& best, std::int64_t& index, T v, std::int64_t j) {
  if (j == 0 || v > best || best != best) {
    best = v;
    index = j;
  }
}

}  // namespace petal::kernels
