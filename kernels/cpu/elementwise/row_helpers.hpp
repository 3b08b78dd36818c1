// Vector helpers shared by the per-ISA sources of this folder (include only
// from an isa_kernel_sources file). A row's ragged tail goes through the same
// vector code via a padded buffer, so the tail is computed exactly like the
// body and padding lanes hold a value that is neutral for the reduction.
#pragma once

#include <cstdint>
#include <limits>

#include "kernels/cpu/simd.hpp"

namespace petal::cpu::PETAL_ISA_NS {

using VecF = Vec<float>;
inline constexpr std::int64_t kFloatLanes = static_cast<std::int64_t>(kLanes<float>);

// Loads p[0..n) (0 < n < lanes) and fills the remaining lanes with `pad`;
// masked loads and stores never touch memory past p[n - 1]. Short rows
// (softmax over a few classes, bias add over 24 channels) are mostly tail, so
// the tail is worth a masked instruction rather than a copy loop.
#if defined(PETAL_ISA_AVX512)
inline __mmask16 tail_mask(std::int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }
inline VecF load_partial(const float* p, std::int64_t n, float pad) {
  return VecF(_mm512_mask_loadu_ps(_mm512_set1_ps(pad), tail_mask(n), p));
}
inline void store_partial(float* p, const VecF& v, std::int64_t n) {
  _mm512_mask_storeu_ps(p, tail_mask(n), static_cast<__m512>(v));
}
#elif defined(PETAL_ISA_AVX2)
inline __m256i tail_mask(std::int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
inline VecF load_partial(const float* p, std::int64_t n, float pad) {
  const __m256i mask = tail_mask(n);
  return VecF(_mm256_blendv_ps(_mm256_set1_ps(pad), _mm256_maskload_ps(p, mask), _mm256_castsi256_ps(mask)));
}
inline void store_partial(float* p, const VecF& v, std::int64_t n) {
  _mm256_maskstore_ps(p, tail_mask(n), static_cast<__m256>(v));
}
#else
// One lane: there is never a tail.
inline VecF load_partial(const float* p, std::int64_t n, float pad) { return VecF(n > 0 ? *p : pad); }
inline void store_partial(float* p, const VecF& v, std::int64_t n) {
  if (n > 0) *p = v.v;
}
#endif

inline float row_sum_impl(const float* x, std::int64_t n) {
  // Four accumulators hide the add latency; the order is fixed, so the result
  // is the same on every call and thread count.
  VecF acc0(0.0f), acc1(0.0f), acc2(0.0f), acc3(0.0f);
  std::int64_t i = 0;
  for (; i + 4 * kFloatLanes <= n; i += 4 * kFloatLanes) {
    acc0 += vload(x + i);
    acc1 += vload(x + i + kFloatLanes);
    acc2 += vload(x + i + 2 * kFloatLanes);
    acc3 += vload(x + i + 3 * kFloatLanes);
  }
  for (; i + kFloatLanes <= n; i += kFloatLanes) acc0 += vload(x + i);
  if (i < n) acc1 += load_partial(x + i, n - i, 0.0f);
  return vreduce_add((acc0 + acc1) + (acc2 + acc3));
}

inline float row_max_impl(const float* x, std::int64_t n) {
  const float lowest = -std::numeric_limits<float>::infinity();
  VecF acc0(lowest), acc1(lowest);
  std::int64_t i = 0;
  // vmax(x, acc) is x > acc ? x : acc, so NaN elements are skipped exactly as
  // in the scalar loops of kernels/ops_reduce.cpp.
  for (; i + 2 * kFloatLanes <= n; i += 2 * kFloatLanes) {
    acc0 = vmax(vload(x + i), acc0);
    acc1 = vmax(vload(x + i + kFloatLanes), acc1);
  }
  for (; i + kFloatLanes <= n; i += kFloatLanes) acc0 = vmax(vload(x + i), acc0);
  if (i < n) acc1 = vmax(load_partial(x + i, n - i, lowest), acc1);
  return vreduce_max(vmax(acc0, acc1));
}

}  // namespace petal::cpu::PETAL_ISA_NS
