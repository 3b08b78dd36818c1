// PETAL_HD marks functions that run on the host and, under nvcc, on the
// device too: the per-element bodies of the CUDA kernels live in plain
// headers so that g++ tests can run them on the CPU.
#pragma once

#if defined(__CUDACC__)
#define PETAL_HD __host__ __device__
#else
#define PETAL_HD
#endif

#define PETAL_HD_INLINE PETAL_HD inline
