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
  Generator gen(20261208);
  std::size_t runs = 0;
  for (const OpCase& c : all_op_cases()) {
    for (DType dtype : c.dtypes) {
      const Generator::State drawn = gen.state();
      const Inputs host = make_inputs(c, dtype, gen);
      const Reference expected = c.reference(host);
      gen.set_state(drawn);
      const Inputs device = make_inputs(c, dtype, gen, Device::cuda(0));
      INFO(c.label(dtype), " on cuda:0");
      const Tensor out = c.forward(device);
      CHECK(out.device() == Device::cuda(0));
      CHECK(out.dtype() == c.output_dtype.value_or(dtype));
      const std::string mismatch =
          compare_with_reference(out.to(Device::cpu()), expected, c.rtol(dtype), c.atol(dtype));
      INFO(mismatch);
      CHECK(mismatch.empty());
      ++runs;
    }
  }
  MESSAGE(runs, " entries run on the GPU");
}
