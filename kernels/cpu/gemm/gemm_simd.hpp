// The few vector operations the sgemm micro-kernel needs, for the ISA this
// translation unit is compiled for (include only from an isa_kernel_sources
// file). It talks to xsimd directly rather than through kernels/cpu/simd.hpp,
// whose reductions need xsimd >= 9, while Debian ships 8.1; the namespace
// naming (PETAL_ISA_NS) is the same.
#pragma once

#include <cstddef>

#if defined(PETAL_ISA_AVX512) || defined(PETAL_ISA_AVX2)
// GCC 12 flags _mm512_undefined_* inside its own intrinsics headers once they
// are inlined into xsimd's batch operations: a known false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <xsimd/xsimd.hpp>
#endif

#if defined(PETAL_ISA_AVX512)
#define PETAL_ISA_NS isa_avx512
#elif defined(PETAL_ISA_AVX2)
#define PETAL_ISA_NS isa_avx2
#elif defined(PETAL_ISA_SCALAR)
#define PETAL_ISA_NS isa_scalar
#else
#error "gemm_simd.hpp is only for per-ISA kernel sources (PETAL_ISA_* must be defined)"
#endif

namespace petal::cpu::PETAL_ISA_NS::gemm {

#if defined(PETAL_ISA_AVX512) || defined(PETAL_ISA_AVX2)
#if defined(PETAL_ISA_AVX512)
using VecF = xsimd::batch<float, xsimd::avx512bw>;
#else
using VecF = xsimd::batch<float, xsimd::fma3<xsimd::avx2>>;
#endif
inline VecF load(const float* p) { return VecF::load_unaligned(p); }
inline void store(float* p, const VecF& v) { v.store_unaligned(p); }
inline VecF broadcast(float x) { return VecF(x); }
inline VecF fma(const VecF& a, const VecF& b, const VecF& c) { return xsimd::fma(a, b, c); }
inline constexpr std::size_t kLanes = VecF::size;
#else
// One lane: the scalar build runs the same tiled code on plain floats.
struct VecF {
  float v;
  friend VecF operator+(VecF a, VecF b) { return VecF{a.v + b.v}; }
  friend VecF operator*(VecF a, VecF b) { return VecF{a.v * b.v}; }
};
inline VecF load(const float* p) { return VecF{*p}; }
inline void store(float* p, const VecF& v) { *p = v.v; }
inline VecF broadcast(float x) { return VecF{x}; }
inline VecF fma(const VecF& a, const VecF& b, const VecF& c) { return VecF{a.v * b.v + c.v}; }
inline constexpr std::size_t kLanes = 1;
#endif

}  // namespace petal::cpu::PETAL_ISA_NS::gemm
