// Every CUDA op against the CPU op on random shapes: broadcasting, strided
// views, batch 1, odd sizes; float32 and float64.
#include <doctest/doctest.h>

#include "core/tensor.hpp"
#include "kernels/ops.hpp"
#include "tests/cuda/cuda_test_support.hpp"

using namespace petal;
using petal::test::kCuda;
