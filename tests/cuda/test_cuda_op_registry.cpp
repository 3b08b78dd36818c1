// Runs every entry of the op-test registry (tests/ops/op_registry.hpp) on the
// GPU: inputs drawn on the host (so the reference sees the same values),
// copied to the device (transposed views stay views there), the op run there,
// and the result compared with the entry's double-precision reference at the
// entry's tolerances. cuda_test_main.cpp skips (77) without a device.
#include <doctest/doctest.h>

#include <string>

#include "tests/ops/op_registry.hpp"

using namespace petal;
using namespace petal::test;

TEST_CASE("every registered op on the GPU matches its reference") {
  const std::size_t runs = for_each_entry(20261208, [](const OpCase& c, DType dtype, Generator& gen) {
    INFO(c.label(dtype), " on cuda:0");
    const std::string problem = check_entry(c, dtype, draw_entry(c, dtype, gen, Device::cuda(0)));
    INFO(problem);
    CHECK(problem.empty());
  });
  MESSAGE(runs, " entries and dtypes run on the GPU");
}
