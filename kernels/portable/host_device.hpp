// PETAL_HD marks functions that run on the host and, under nvcc, on the
// device too. The per-element formulas in this folder use it so that one
// definition serves the CPU ops, the CUDA kernels and g++-compiled tests.
#pragma once

#if defined(__CUDACC__)
#define PETAL_HD __host__ __device__
#else
#define PETAL_HD
#endif

#define PETAL_HD_INLINE PETAL_HD inline
