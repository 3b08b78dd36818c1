// Run-time instruction-set choice (kernels/cpu/isa.hpp): parsing, the
// available list and switching.
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>

#include "core/error.hpp"
#include "kernels/cpu/isa.hpp"

using namespace petal;
using namespace petal::cpu;

TEST_CASE("parse_isa and isa_name round-trip; unknown names are a ValueError") {
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) CHECK(parse_isa(isa_name(isa)) == isa);
  CHECK(parse_isa("avx512") == Isa::Avx512);
  CHECK(parse_isa("avx2") == Isa::Avx2);
  CHECK(parse_isa("scalar") == Isa::Scalar);
  try {
    parse_isa("sse9");
    FAIL("no ValueError");
  } catch (const ValueError& e) {
    CHECK(std::string(e.what()).find("sse9") != std::string::npos);
  }
  CHECK_THROWS_AS(parse_isa("AVX2"), ValueError);
  CHECK_THROWS_AS(parse_isa(""), ValueError);
}

TEST_CASE("available_isas lists scalar up to the detected ISA") {
  const auto isas = available_isas();
  REQUIRE_FALSE(isas.empty());
  CHECK(isas.front() == Isa::Scalar);
  CHECK(isas.back() == detected_isa());
  CHECK(isas.size() == static_cast<std::size_t>(detected_isa()) + 1);
}

TEST_CASE("the detected ISA never goes past the kernels the build compiled (-Dkernel_isas)") {
  CHECK(static_cast<int>(detected_isa()) <= static_cast<int>(best_built_isa()));
  CHECK(available_isas().back() == detected_isa());
  // An ISA the build left out is refused like one the CPU lacks (its tables
  // are empty: picking it would call null kernels).
  if (static_cast<int>(best_built_isa()) < static_cast<int>(Isa::Avx512)) {
    const Isa saved = active_isa();
    CHECK_THROWS_AS(set_active_isa(Isa::Avx512), ValueError);
    CHECK(active_isa() == saved);
  }
}

TEST_CASE("set_active_isa switches among available ISAs and refuses the others") {
  const Isa saved = active_isa();
  for (Isa isa : available_isas()) {
    set_active_isa(isa);
    CHECK(active_isa() == isa);
    const int picked = select_table(0, 1, 2);
    CHECK(picked == static_cast<int>(isa));
  }
  if (detected_isa() != Isa::Avx512) {
    try {
      set_active_isa(Isa::Avx512);
      FAIL("no ValueError");
    } catch (const ValueError& e) {
      CHECK(std::string(e.what()).find("avx512") != std::string::npos);
    }
    CHECK(active_isa() != Isa::Avx512);
  }
  set_active_isa(saved);
}

TEST_CASE("the start-up choice follows PETAL_ISA when it is set") {
  // The process started with whatever PETAL_ISA the test runner gave it.
  const char* env = std::getenv("PETAL_ISA");
  if (env && *env) {
    CHECK(std::string(isa_name(active_isa())) == env);
  } else {
    CHECK(active_isa() == detected_isa());
  }
}
