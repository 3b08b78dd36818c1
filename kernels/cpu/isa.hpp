// Run-time choice of instruction set for every CPU kernel. At start-up cpuid
// picks AVX-512, AVX2 or the scalar path; PETAL_ISA=avx512|avx2|scalar forces
// one (tests switch with set_active_isa()).
#pragma once

#include <vector>

namespace petal::cpu {

enum class Isa { Scalar = 0, Avx2 = 1, Avx512 = 2 };

const char* isa_name(Isa isa);
// The best instruction set this CPU (and OS) supports, among those this
// build compiled kernels for (-Dkernel_isas; all three by default).
Isa detected_isa();
// The best instruction set this build compiled kernels for.
Isa best_built_isa();
// Every instruction set this CPU can run, scalar first.
std::vector<Isa> available_isas();
// The one kernels use now: PETAL_ISA if set (and supported), else detected_isa().
Isa active_isa();
// Throws petal::ValueError when the CPU (or this build) cannot run it.
void set_active_isa(Isa isa);
// Parses "avx512", "avx2", "scalar"; throws petal::ValueError otherwise.
Isa parse_isa(const char* name);

// Picks one of three per-ISA kernel tables by the active ISA:
//   const GemmTable& t = select_table(gemm_scalar, gemm_avx2, gemm_avx512);
template <class Table>
const Table& select_table(const Table& scalar, const Table& avx2, const Table& avx512) {
  switch (active_isa()) {
    case Isa::Avx512: return avx512;
    case Isa::Avx2: return avx2;
    default: return scalar;
  }
}

}  // namespace petal::cpu
