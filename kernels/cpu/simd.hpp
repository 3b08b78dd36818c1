// Included only by kernel sources compiled once per instruction set (the
// `isa_kernel_sources` of kernels/meson.build). It defines, for the ISA being
// compiled:
//   PETAL_ISA_NS       a namespace unique to this ISA; put every kernel in
//                      petal::cpu::PETAL_ISA_NS so the three copies never
//                      collide at link time;
//   Vec<T>             xsimd::batch<T, arch> (or a one-lane scalar stand-in)
//                      with load/store/broadcast and the arithmetic below.
// Kernels write one template body against Vec<T>; the scalar build gets a
// plain loop out of the same source.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#if defined(PETAL_ISA_AVX512) || defined(PETAL_ISA_AVX2)
// GCC 12 flags _mm512_undefined_* inside its own intrinsics headers once they
// are inlined into xsimd's batch operations: a known false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#include <xsimd/xsimd.hpp>
#endif

#if defined(PETAL_ISA_AVX512)
#define PETAL_ISA_NS isa_avx512
#elif defined(PETAL_ISA_AVX2)
#define PETAL_ISA_NS isa_avx2
#elif defined(PETAL_ISA_SCALAR)
#define PETAL_ISA_NS isa_scalar
#else
#error "kernels/cpu/simd.hpp is only for per-ISA kernel sources (PETAL_ISA_* must be defined)"
#endif

namespace petal::cpu::PETAL_ISA_NS {

#if defined(PETAL_ISA_AVX512) || defined(PETAL_ISA_AVX2)
#if defined(PETAL_ISA_AVX512)
using Arch = xsimd::avx512bw;
#else
using Arch = xsimd::fma3<xsimd::avx2>;
#endif
template <class T> using Vec = xsimd::batch<T, Arch>;

template <class T> inline Vec<T> vload(const T* p) { return Vec<T>::load_unaligned(p); }
template <class T> inline void vstore(T* p, const Vec<T>& v) { v.store_unaligned(p); }
template <class T> inline Vec<T> vbroadcast(T x) { return Vec<T>(x); }
// One rounding, always. xsimd 8.1 has no AVX-512 fma: its generic x * y + z
// is fused only where the compiler contracts it (GCC does at -O2, not at
// -O1), which made results depend on the optimisation level.
template <class T> inline Vec<T> vfma(const Vec<T>& a, const Vec<T>& b, const Vec<T>& c) {
#if defined(PETAL_ISA_AVX512)
  if constexpr (std::is_same_v<T, float>) {
    return _mm512_fmadd_ps(a, b, c);
  } else if constexpr (std::is_same_v<T, double>) {
    return _mm512_fmadd_pd(a, b, c);
  } else {
    return xsimd::fma(a, b, c);
  }
#else
  return xsimd::fma(a, b, c);
#endif
}
// The scalar twin of vfma, for the tails of vector loops: fused exactly where
// vfma is (the scalar ISA has no FMA, so neither is).
inline float sfma(float a, float b, float c) { return std::fma(a, b, c); }
template <class T> inline Vec<T> vmax(const Vec<T>& a, const Vec<T>& b) { return xsimd::max(a, b); }
template <class T> inline Vec<T> vmin(const Vec<T>& a, const Vec<T>& b) { return xsimd::min(a, b); }
// xsimd 8's float exp returns inf above Cephes's maxlog (88.3763) although
// e^x is a finite float up to x = 88.7228: those (rare) lanes take
// 2 * e^(x - ln 2), with ln 2 split in two so that x - ln2_hi is exact.
template <class T> inline Vec<T> vexp(const Vec<T>& a) {
  Vec<T> y = xsimd::exp(a);
  if constexpr (std::is_same_v<T, float>) {
    const auto near_overflow = a > Vec<T>(88.3762626647949f);
    if (xsimd::any(near_overflow)) {
      const Vec<T> shifted = (a - Vec<T>(0.693359375f)) + Vec<T>(2.12194440e-4f);
      y = xsimd::select(near_overflow, xsimd::exp(shifted) * Vec<T>(2.0f), y);
    }
  }
  return y;
}
template <class T> inline Vec<T> vlog(const Vec<T>& a) { return xsimd::log(a); }
template <class T> inline Vec<T> vtanh(const Vec<T>& a) { return xsimd::tanh(a); }
template <class T> inline Vec<T> vsqrt(const Vec<T>& a) { return xsimd::sqrt(a); }
template <class T> inline Vec<T> vabs(const Vec<T>& a) { return xsimd::abs(a); }
template <class T> inline Vec<T> verfc(const Vec<T>& a) { return xsimd::erfc(a); }
template <class T> inline Vec<T> vlog1p(const Vec<T>& a) { return xsimd::log1p(a); }
template <class T> inline Vec<T> vpow(const Vec<T>& a, const Vec<T>& b) { return xsimd::pow(a, b); }
// Debian's xsimd 8.1 has hadd but not reduce_add/reduce_max (xsimd 9).
template <class T> inline T vreduce_add(const Vec<T>& a) { return xsimd::hadd(a); }
template <class T> inline T vreduce_max(const Vec<T>& a) {
  alignas(64) T lanes[Vec<T>::size];
  a.store_aligned(lanes);
  T m = lanes[0];
  for (std::size_t i = 1; i < Vec<T>::size; ++i) m = lanes[i] > m ? lanes[i] : m;
  return m;
}
// Lanes where mask(a > b) is set take x, others y.
template <class T> inline Vec<T> vselect_gt(const Vec<T>& a, const Vec<T>& b, const Vec<T>& x, const Vec<T>& y) {
  return xsimd::select(a > b, x, y);
}
// A non-temporal store when p is vector-aligned (an ordinary one otherwise):
// it skips the read-for-ownership of the destination line and leaves the
// caches alone, which saves a third of the memory traffic of a kernel that
// writes an output far larger than the caches. The stores are weakly
// ordered: call vstream_fence() before the written memory is handed to
// another thread.
inline void vstream(float* p, const Vec<float>& v) {
  if ((reinterpret_cast<std::uintptr_t>(p) & (sizeof(Vec<float>) - 1)) != 0) {
    v.store_unaligned(p);
    return;
  }
#if defined(PETAL_ISA_AVX512)
  _mm512_stream_ps(p, v);
#else
  _mm256_stream_ps(p, v);
#endif
}
// vstream for a pointer the caller knows is vector-aligned.
inline void vstream_aligned(float* p, const Vec<float>& v) {
#if defined(PETAL_ISA_AVX512)
  _mm512_stream_ps(p, v);
#else
  _mm256_stream_ps(p, v);
#endif
}
inline void vstream_fence() { _mm_sfence(); }
#else
// One-lane stand-in with the subset of xsimd::batch the kernels use.
template <class T> struct Vec {
  static constexpr std::size_t size = 1;
  T v;
  Vec() = default;
  Vec(T x) : v(x) {}
  friend Vec operator+(Vec a, Vec b) { return Vec(a.v + b.v); }
  friend Vec operator-(Vec a, Vec b) { return Vec(a.v - b.v); }
  friend Vec operator*(Vec a, Vec b) { return Vec(a.v * b.v); }
  friend Vec operator/(Vec a, Vec b) { return Vec(a.v / b.v); }
  friend Vec operator-(Vec a) { return Vec(-a.v); }
  Vec& operator+=(Vec b) { v += b.v; return *this; }
  Vec& operator-=(Vec b) { v -= b.v; return *this; }
  Vec& operator*=(Vec b) { v *= b.v; return *this; }
  Vec& operator/=(Vec b) { v /= b.v; return *this; }
};
template <class T> inline Vec<T> vload(const T* p) { return Vec<T>(*p); }
template <class T> inline void vstore(T* p, const Vec<T>& v) { *p = v.v; }
template <class T> inline Vec<T> vbroadcast(T x) { return Vec<T>(x); }
template <class T> inline Vec<T> vfma(const Vec<T>& a, const Vec<T>& b, const Vec<T>& c) { return Vec<T>(a.v * b.v + c.v); }
inline float sfma(float a, float b, float c) { return a * b + c; }
template <class T> inline Vec<T> vmax(const Vec<T>& a, const Vec<T>& b) { return Vec<T>(a.v > b.v ? a.v : b.v); }
template <class T> inline Vec<T> vmin(const Vec<T>& a, const Vec<T>& b) { return Vec<T>(a.v < b.v ? a.v : b.v); }
template <class T> inline Vec<T> vexp(const Vec<T>& a) { return Vec<T>(std::exp(a.v)); }
template <class T> inline Vec<T> vlog(const Vec<T>& a) { return Vec<T>(std::log(a.v)); }
template <class T> inline Vec<T> vtanh(const Vec<T>& a) { return Vec<T>(std::tanh(a.v)); }
template <class T> inline Vec<T> vsqrt(const Vec<T>& a) { return Vec<T>(std::sqrt(a.v)); }
template <class T> inline Vec<T> vabs(const Vec<T>& a) { return Vec<T>(std::abs(a.v)); }
template <class T> inline Vec<T> verfc(const Vec<T>& a) { return Vec<T>(std::erfc(a.v)); }
template <class T> inline Vec<T> vlog1p(const Vec<T>& a) { return Vec<T>(std::log1p(a.v)); }
template <class T> inline Vec<T> vpow(const Vec<T>& a, const Vec<T>& b) { return Vec<T>(std::pow(a.v, b.v)); }
template <class T> inline T vreduce_add(const Vec<T>& a) { return a.v; }
template <class T> inline T vreduce_max(const Vec<T>& a) { return a.v; }
template <class T> inline Vec<T> vselect_gt(const Vec<T>& a, const Vec<T>& b, const Vec<T>& x, const Vec<T>& y) {
  return a.v > b.v ? x : y;
}
inline void vstream(float* p, const Vec<float>& v) { *p = v.v; }
inline void vstream_aligned(float* p, const Vec<float>& v) { *p = v.v; }
inline void vstream_fence() {}
#endif

template <class T> inline constexpr std::size_t kLanes = Vec<T>::size;

}  // namespace petal::cpu::PETAL_ISA_NS
