// The few vector operations the sgemm micro-kernel needs, as short names over
// kernels/cpu/simd.hpp (include only from an isa_kernel_sources file).
#pragma once

#include <cstddef>

#include "kernels/cpu/simd.hpp"

namespace petal::cpu::PETAL_ISA_NS::gemm {

using VecF = Vec<float>;
inline VecF load(const float* p) { return vload(p); }
inline void store(float* p, const VecF& v) { vstore(p, v); }
inline void stream(float* p, const VecF& v) { vstream(p, v); }
inline VecF broadcast(float x) { return vbroadcast(x); }
inline VecF fma(const VecF& a, const VecF& b, const VecF& c) { return vfma(a, b, c); }
inline constexpr std::size_t kVecLanes = VecF::size;

}  // namespace petal::cpu::PETAL_ISA_NS::gemm
