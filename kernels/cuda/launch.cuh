// Launch helpers of the CUDA kernels (nvcc only).
#pragma once

#include <cstdint>

// for (i over [0, n)) split across the whole grid, 64-bit indices.
#define PETAL_GRID_STRIDE_LOOP(i, n)                                                            \
  for (std::int64_t i = blockIdx.x * std::int64_t{blockDim.x} + threadIdx.x; i < (n);        \
       i += std::int64_t{blockDim.x} * gridDim.x)
