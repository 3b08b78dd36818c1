// Helpers shared by the tests of kernels/ops: run a check under every ISA and
// thread count, random tensors, double-precision reference loops over
// broadcast shapes, and tolerant comparisons.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "core/tensor.hpp"
#include "core/thread_pool.hpp"
#include "kernels/cpu/isa.hpp"
#include "tests/kernels/isas_under_test.hpp"

namespace petal::test {

// Runs body() once per (ISA under test: isas_under_test.hpp) x (1, 2 threads), restoring the
// active ISA and the thread count afterwards (also when body throws).
inline void for_each_isa_and_threads(const std::function<void()>& body) {
  const cpu::Isa saved_isa = cpu::active_isa();
  const int saved_threads = num_threads();
  struct Restore {
    cpu::Isa isa;
    int threads;
    ~Restore() {
      cpu::set_active_isa(isa);
      set_num_threads(threads);
    }
  } restore{saved_isa, saved_threads};
  for (cpu::Isa isa : test::isas_under_test()) {
    for (int threads : {1, 2}) {
      cpu::set_active_isa(isa);
      set_num_threads(threads);
      INFO("isa ", std::string(cpu::isa_name(isa)), ", threads ", threads);
      body();
    }
  }
}

inline Tensor random_tensor(const Shape& shape, Generator& gen, DType dtype = DType::Float32, double low = -2.0,
                            double high = 2.0) {
  return uniform(shape, low, high, gen, dtype);
}

// Element (C order) of a tensor of `shape` read at the broadcast multi-index
// of flat output position `flat` in `out_shape`.
inline std::int64_t broadcast_source_index(const Shape& shape, const Shape& out_shape, std::int64_t flat) {
  std::int64_t src = 0, src_stride = 1;
  const std::int64_t lead = static_cast<std::int64_t>(out_shape.size() - shape.size());
  for (std::int64_t d = static_cast<std::int64_t>(out_shape.size()) - 1; d >= 0; --d) {
    const std::int64_t i = flat % out_shape[d];
    flat /= out_shape[d];
    if (d >= lead) {
      const std::int64_t size = shape[d - lead];
      if (size != 1) src += i * src_stride;
      src_stride *= size;
    }
  }
  return src;
}

// Reference binary op in double over NumPy broadcasting.
inline std::vector<double> reference_binary(const Tensor& a, const Tensor& b, const Shape& out_shape,
                                            const std::function<double(double, double)>& f) {
  const std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>();
  std::vector<double> out(shape_numel(out_shape));
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(out.size()); ++i)
    out[i] = f(va[broadcast_source_index(a.shape(), out_shape, i)], vb[broadcast_source_index(b.shape(), out_shape, i)]);
  return out;
}

// Every element within atol + rtol * |expected|; reports the first mismatch.
inline void check_close(const Tensor& actual, const std::vector<double>& expected, double rtol, double atol) {
  const std::vector<double> got = actual.to_vector<double>();
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double tol = atol + rtol * std::abs(expected[i]);
    // A float32 result overflows to infinity where the double reference does not.
    const bool float_overflow = actual.dtype() == DType::Float32 &&
                                std::abs(expected[i]) > std::numeric_limits<float>::max() &&
                                got[i] == std::copysign(std::numeric_limits<double>::infinity(), expected[i]);
    const bool ok = std::abs(got[i] - expected[i]) <= tol || float_overflow ||
                    (std::isnan(expected[i]) && std::isnan(got[i])) ||
                    (std::isinf(expected[i]) && got[i] == expected[i]);
    if (!ok) {
      INFO("element ", i, " of shape ", shape_str(actual.shape()), ": got ", got[i], ", expected ", expected[i]);
      CHECK(ok);
      return;
    }
  }
}

// Checks that fn throws ErrorType with a message containing every fragment.
template <class ErrorType, class Fn>
void check_error(Fn&& fn, const std::vector<std::string>& fragments) {
  bool thrown = false;
  try {
    fn();
  } catch (const ErrorType& e) {
    thrown = true;
    const std::string what = e.what();
    for (const std::string& fragment : fragments) {
      INFO("message: ", what, " | expected fragment: ", fragment);
      CHECK(what.find(fragment) != std::string::npos);
    }
  } catch (const std::exception& e) {
    INFO("wrong exception type, message: ", e.what());
    CHECK(false);
    return;
  }
  CHECK(thrown);
}

}  // namespace petal::test
