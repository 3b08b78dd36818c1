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
  std::size_t cpu_only = 0;
  const std::size_t runs = for_each_entry(20261208, [&](const OpCase& c, DType dtype, Generator& gen) {
    INFO(c.label(dtype), " on cuda:0");
    const DrawnEntry drawn = draw_entry(c, dtype, gen, Device::cuda(0));
    if (c.cpu_only) {
      // No device kernel yet: the op must say so rather than compute.
      CHECK_THROWS_AS(c.forward(drawn.inputs), DeviceError);
      ++cpu_only;
      return;
    }
    const std::string problem = check_entry(c, dtype, drawn);
    INFO(problem);
    CHECK(problem.empty());
  });
  MESSAGE(runs, " entries and dtypes run on the GPU (", cpu_only, " of them CPU-only ops checked for a DeviceError)");
}
