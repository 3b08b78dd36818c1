// The instruction sets a kernel test covers in this process.
//
// meson registers each kernel suite once per instruction set
// (kernels_NAME_avx512, kernels_NAME_avx2, kernels_NAME_scalar, with
// PETAL_ISA set): each of those runs checks its own ISA only, so no run
// repeats another's work (the suites' ISA loops used to cover every ISA in
// each of three runs). Run by hand without PETAL_ISA, a suite covers every
// ISA this CPU has.
#pragma once

#include <cstdlib>
#include <vector>

#include "kernels/cpu/isa.hpp"

namespace petal::test {

inline std::vector<cpu::Isa> isas_under_test() {
  if (const char* forced = std::getenv("PETAL_ISA"); forced != nullptr && *forced != '\0')
    return {cpu::parse_isa(forced)};
  return cpu::available_isas();
}

}  // namespace petal::test
