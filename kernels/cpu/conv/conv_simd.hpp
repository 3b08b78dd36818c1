// Includes kernels/cpu/simd.hpp for the per-ISA sources of this folder.
// simd.hpp calls xsimd::reduce_add / reduce_max, which appeared in xsimd 9;
// Debian's 8.1 has only hadd, so until simd.hpp is fixed this supplies both
// (the same definitions as kernels/cpu/elementwise/row_helpers.hpp, declared
// before simd.hpp so its non-dependent calls resolve).
#pragma once

#include <cstddef>

#if defined(PETAL_ISA_AVX512) || defined(PETAL_ISA_AVX2)
// GCC 12 flags _mm512_undefined_* inside its own intrinsics headers once they
// are inlined into xsimd's batch operations: a known false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <xsimd/xsimd.hpp>
#include <xsimd/config/xsimd_config.hpp>
#if XSIMD_VERSION_MAJOR < 9
namespace xsimd {
template <class T, class A>
inline T reduce_add(const batch<T, A>& x) {
  return hadd(x);
}
template <class T, class A>
inline T reduce_max(const batch<T, A>& x) {
  alignas(64) T lanes[batch<T, A>::size];
  x.store_aligned(lanes);
  T m = lanes[0];
  for (std::size_t i = 1; i < batch<T, A>::size; ++i) m = lanes[i] > m ? lanes[i] : m;
  return m;
}
}  // namespace xsimd
#endif
#endif

#include "kernels/cpu/simd.hpp"
