// The gradient checker itself: it passes correct gradients, catches wrong or
// missing ones, and leaves its inputs alone.
#include <doctest/doctest.h>

#include <string>

#include "grad_test_helpers.hpp"
#include "kernels/ops.hpp"

using namespace petal;
using namespace petal::ag;
using namespace petal::ag::testing;

namespace {

// x^2 recorded with a caller-supplied backward, to plant mistakes.
Variable square_with(const Variable& x, BackwardFn backward) {
  return make_op_result(ops::mul(x.data(), x.data()), "square", {x}, std::move(backward));
}

}  // namespace

TEST_CASE("gradcheck accepts a correct gradient") {
  const Fn square = [](const std::vector<Variable>& in) {
    const Tensor x = in[0].data();
    return square_with(in[0], [x](const Tensor& g) { return std::vector<Tensor>{ops::mul_scalar(ops::mul(g, x), 2.0)}; });
  };
  const GradcheckResult result = gradcheck(square, {random_input({3, 4})});
  INFO(result.message);
  CHECK(result.ok);
  CHECK(result.max_abs_error < 1e-7);
  CHECK(result.message.empty());
}

TEST_CASE("gradcheck catches a deliberately wrong gradient") {
  const Fn wrong_square = [](const std::vector<Variable>& in) {
    const Tensor x = in[0].data();
    // d(x^2)/dx is 2x; this claims x.
    return square_with(in[0], [x](const Tensor& g) { return std::vector<Tensor>{ops::mul(g, x)}; });
  };
  const GradcheckResult result = gradcheck(wrong_square, {random_input({2, 3})});
  CHECK_FALSE(result.ok);
  CHECK(result.max_abs_error > 1e-2);
  CHECK(result.message.find("input 0") != std::string::npos);
  CHECK(result.message.find("numerical") != std::string::npos);
}

TEST_CASE("gradcheck catches an error in a single element and a missing gradient") {
  SUBCASE("one element off") {
    const Fn off_by_one_element = [](const std::vector<Variable>& in) {
      const Tensor x = in[0].data();
      return square_with(in[0], [x](const Tensor& g) {
        Tensor grad = ops::mul_scalar(ops::mul(g, x), 2.0);
        grad.data<double>()[4] += 0.05;  // well above rtol 1e-3 of an O(1) value
        return std::vector<Tensor>{grad};
      });
    };
    const GradcheckResult result = gradcheck(off_by_one_element, {random_input({7})});
    CHECK_FALSE(result.ok);
    CHECK(result.message.find("element 4") != std::string::npos);
  }
  SUBCASE("gradient missing for the second input") {
    const Fn drops_b = [](const std::vector<Variable>& in) {
      const Tensor a = in[0].data(), b = in[1].data();
      return make_op_result(ops::mul(a, b), "mul_without_b", {in[0], in[1]},
                            [b](const Tensor& g) { return std::vector<Tensor>{ops::mul(g, b), Tensor()}; });
    };
    const GradcheckResult result = gradcheck(drops_b, {random_input({2, 2}), random_input({2, 2})});
    CHECK_FALSE(result.ok);
    CHECK(result.message.find("input 1") != std::string::npos);
  }
}

TEST_CASE("gradcheck treats inputs without requires_grad as constants") {
  const Fn product = [](const std::vector<Variable>& in) { return in[0] * in[1]; };
  CHECK_GRADIENTS(product, {random_input({3}), random_input({3}, /*requires_grad=*/false)});
}

TEST_CASE("gradcheck leaves the caller's variables untouched") {
  Variable x = random_input({4});
  const std::vector<double> before = x.data().to_vector<double>();
  const Fn cube = [](const std::vector<Variable>& in) { return in[0] * in[0] * in[0]; };
  CHECK_GRADIENTS(cube, {x});
  CHECK_FALSE(x.has_grad());
  CHECK(x.data().to_vector<double>() == before);
}

TEST_CASE("gradcheck refuses float32") {
  const Fn identity = [](const std::vector<Variable>& in) { return mul_scalar(in[0], 1.0); };
  CHECK_THROWS_AS(gradcheck(identity, {Variable(ones({2}), true)}), DTypeError);
  const Fn to_float32 = [](const std::vector<Variable>&) { return Variable(ones({2}), false); };
  CHECK_THROWS_AS(gradcheck(to_float32, {random_input({2})}), DTypeError);
}

TEST_CASE("gradcheck refuses to run with grad mode off") {
  const Fn identity = [](const std::vector<Variable>& in) { return mul_scalar(in[0], 1.0); };
  NoGradGuard no_grad;
  CHECK_THROWS_AS(gradcheck(identity, {random_input({2})}), AutogradError);
}
