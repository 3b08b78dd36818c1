// Semantics of the tape: leaves, accumulation, backward seeds, no_grad,
// freeing the graph, detach, and deep graphs.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "autograd/functions.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/variable.hpp"
#include "core/allocator.hpp"
#include "core/tensor.hpp"
#include "kernels/ops.hpp"

using namespace petal;
using namespace petal::ag;

namespace {

Variable leaf(const std::vector<double>& values, bool requires_grad = true) {
  return Variable(from_vector(values), requires_grad);
}

std::vector<double> grad_of(const Variable& v) {
  REQUIRE(v.has_grad());
  return v.grad().to_vector<double>();
}

// Scalar sum of all elements, built only from elementwise ops and a seeded
// backward so these tests do not depend on the reduction kernels.
void backward_sum(const Variable& y, bool retain_graph = false) {
  y.backward(ones(y.shape(), y.dtype()), retain_graph);
}

}  // namespace

TEST_CASE("leaves and op results") {
  Variable x = leaf({1.0, 2.0});
  Variable c = leaf({3.0, 4.0}, false);
  CHECK(x.is_leaf());
  CHECK(x.requires_grad());
  CHECK(x.grad_fn() == nullptr);
  CHECK_FALSE(x.has_grad());

  Variable y = x * c;
  CHECK_FALSE(y.is_leaf());
  CHECK(y.requires_grad());
  REQUIRE(y.grad_fn() != nullptr);
  CHECK(y.grad_fn()->op() == "mul");
  CHECK(y.grad_fn()->inputs().size() == 2);

  // Nothing requires a gradient: no node is recorded.
  Variable z = c * c;
  CHECK(z.is_leaf());
  CHECK_FALSE(z.requires_grad());

  CHECK_THROWS_AS(y.set_requires_grad(false), AutogradError);
  CHECK_THROWS_AS(Variable(from_vector<std::int64_t>({1, 2}), true), DTypeError);
  Variable undefined;
  CHECK_FALSE(undefined.defined());
  CHECK_THROWS_AS(undefined.data(), ValueError);
}

TEST_CASE("a graph with skip connections across different depths (every node waits for all its consumers)") {
  // Like residual blocks: h feeds ops 1, 2 and 3 levels further on.
  const auto block = [](const std::vector<Variable>& in) {
    const Variable h = tanh(in[0] * in[1]);
    const Variable a = sigmoid(h);
    const Variable b = exp(mul_scalar(a, 0.5)) + h;
    const Variable c = tanh(b) * h + a;
    return c / (h * h + 1.0);
  };
  Generator gen(5);
  const Variable x(normal({3, 4}, 0.0, 1.0, gen, DType::Float64), true);
  const Variable w(normal({4}, 0.0, 1.0, gen, DType::Float64), true);
  const GradcheckResult result = gradcheck(block, {x, w});
  INFO(result.message);
  CHECK(result.ok);
}

TEST_CASE("a variable used twice receives the sum of both gradients") {
  Variable x = leaf({1.0, -2.0, 3.0});
  SUBCASE("x * x + x") {
    backward_sum(x * x + x);
    CHECK(grad_of(x) == std::vector<double>{3.0, -3.0, 7.0});
  }
  SUBCASE("x + x (one op hands the same gradient tensor to both inputs)") {
    backward_sum(x + x);
    CHECK(grad_of(x) == std::vector<double>{2.0, 2.0, 2.0});
  }
  SUBCASE("two paths through an intermediate") {
    Variable h = mul_scalar(x, 2.0);
    backward_sum(h * h + exp(mul_scalar(h, 0.0)));  // d/dx 4x^2 = 8x; the exp term is constant 1
    CHECK(grad_of(x) == std::vector<double>{8.0, -16.0, 24.0});
  }
}

TEST_CASE("gradients of two inputs sharing one gradient tensor do not alias") {
  Variable a = leaf({1.0, 2.0});
  Variable b = leaf({3.0, 4.0});
  backward_sum(a + b);
  REQUIRE(a.has_grad());
  REQUIRE(b.has_grad());
  // An optimizer scaling one gradient in place must not touch the other.
  Tensor grad_a = a.grad();
  ops::mul_scalar_(grad_a, 10.0);
  CHECK(grad_of(a) == std::vector<double>{10.0, 10.0});
  CHECK(grad_of(b) == std::vector<double>{1.0, 1.0});
}

TEST_CASE("gradients accumulate across backward calls until zero_grad") {
  Variable x = leaf({1.0, 2.0});
  backward_sum(x * x);
  CHECK(grad_of(x) == std::vector<double>{2.0, 4.0});
  backward_sum(x * x);
  CHECK(grad_of(x) == std::vector<double>{4.0, 8.0});
  x.zero_grad();
  CHECK_FALSE(x.has_grad());
  backward_sum(mul_scalar(x, 3.0));
  CHECK(grad_of(x) == std::vector<double>{3.0, 3.0});
}

TEST_CASE("backward from a scalar seeds 1; a non-scalar needs an explicit seed") {
  Variable x = leaf({2.0});
  Variable y = x * x * x;
  y.backward();
  CHECK(grad_of(x) == std::vector<double>{12.0});

  Variable v = leaf({1.0, 2.0, 3.0});
  Variable w = v * v;
  CHECK_THROWS_AS(w.backward(), AutogradError);
  CHECK_THROWS_AS(w.backward(ones({2}, DType::Float64)), ShapeError);
  w.backward(from_vector<double>({1.0, 0.5, -1.0}));
  CHECK(grad_of(v) == std::vector<double>{2.0, 2.0, -6.0});

  // The seed may come in another floating dtype; it is converted.
  Variable f = leaf({1.0, 2.0});
  (f * f).backward(from_vector<float>({1.0f, 1.0f}));
  CHECK(grad_of(f) == std::vector<double>{2.0, 4.0});
}

TEST_CASE("backward on a variable that needs no gradient throws") {
  Variable c = leaf({1.0}, false);
  CHECK_THROWS_AS(c.backward(), AutogradError);
  CHECK_THROWS_AS((c * c).backward(), AutogradError);
}

TEST_CASE("backward on a leaf accumulates the seed into its own gradient") {
  Variable x = leaf({5.0});
  x.backward();
  x.backward();
  CHECK(grad_of(x) == std::vector<double>{2.0});
}

TEST_CASE("intermediate variables keep no gradient") {
  Variable x = leaf({1.0, 2.0});
  Variable h = mul_scalar(x, 3.0);
  backward_sum(h * h);
  CHECK(x.has_grad());
  CHECK_FALSE(h.has_grad());
}

TEST_CASE("retain_grad keeps an intermediate gradient for debugging") {
  Variable x = leaf({1.0, 2.0});
  Variable h = mul_scalar(x, 3.0);
  h.retain_grad();
  Variable y = h * h;
  y.retain_grad();
  backward_sum(y);
  CHECK(grad_of(y) == std::vector<double>{1.0, 1.0});
  CHECK(grad_of(h) == std::vector<double>{6.0, 12.0});
  CHECK(grad_of(x) == std::vector<double>{18.0, 36.0});
  x.retain_grad();  // a leaf keeps its gradient anyway
  CHECK(x.is_leaf());
}

TEST_CASE("backward frees the graph: a second backward throws naming the op") {
  Variable x = leaf({1.0, 2.0});
  Variable y = exp(x);
  backward_sum(y);
  REQUIRE(y.grad_fn() != nullptr);
  CHECK(y.grad_fn()->released());
  CHECK(y.grad_fn()->inputs().empty());
  try {
    backward_sum(y);
    FAIL("second backward through a freed graph did not throw");
  } catch (const AutogradError& e) {
    CHECK(std::string(e.what()).find("'exp'") != std::string::npos);
  }
  // Nothing was accumulated by the failed call.
  CHECK(grad_of(x) == y.data().to_vector<double>());
}

TEST_CASE("a second backward through a shared, freed subgraph throws before touching any gradient") {
  Variable x = leaf({1.0, 2.0});
  Variable w = leaf({3.0, 4.0});
  Variable shared = tanh(x);
  Variable first = shared * w;
  Variable second = mul_scalar(shared, 2.0) + w;
  backward_sum(first);
  const std::vector<double> grad_w = grad_of(w);
  CHECK_THROWS_AS(backward_sum(second), AutogradError);
  CHECK(grad_of(w) == grad_w);
}

TEST_CASE("retain_graph keeps the graph for another backward") {
  Variable x = leaf({1.0, 2.0});
  Variable y = x * x;
  backward_sum(y, /*retain_graph=*/true);
  CHECK_FALSE(y.grad_fn()->released());
  backward_sum(y);
  CHECK(grad_of(x) == std::vector<double>{4.0, 8.0});
  CHECK(y.grad_fn()->released());
}

TEST_CASE("backward releases the tensors an op saved") {
  Tensor constant = from_vector<double>({3.0, 4.0});
  const long before = constant.storage().use_count();
  Variable x = leaf({1.0, 2.0});
  Variable y = x * Variable(constant);  // mul saves the constant for x's gradient
  CHECK(constant.storage().use_count() > before);
  backward_sum(y);
  CHECK(constant.storage().use_count() == before);
  CHECK(grad_of(x) == std::vector<double>{3.0, 4.0});
}

TEST_CASE("backward frees activations and gradient buffers as it goes") {
  constexpr int kDepth = 24;
  const Shape shape{64, 256};
  Variable x(normal(shape, 0.0, 1.0), true);
  const std::size_t baseline = cpu_allocator().stats().in_use_bytes;
  const std::size_t one_tensor = [&] {
    Tensor probe = Tensor::empty(shape);
    return cpu_allocator().stats().in_use_bytes - baseline;
  }();
  REQUIRE(one_tensor > 0);

  // The first op's backward runs last; it records what is still allocated then.
  std::size_t in_use_at_last_node = 0;
  Variable loss;
  {
    Variable h = make_op_result(x.data(), "probe", {x}, [&](const Tensor& g) {
      in_use_at_last_node = cpu_allocator().stats().in_use_bytes;
      return std::vector<Tensor>{g};
    });
    for (int i = 0; i < kDepth; ++i) h = tanh(h);
    loss = sum(h);
  }
  const AllocatorStats after_forward = cpu_allocator().stats();
  // The graph holds every activation until backward.
  CHECK(after_forward.in_use_bytes - baseline >= kDepth * one_tensor);

  loss.backward();
  const AllocatorStats after_backward = cpu_allocator().stats();
  // Backward needs a few buffers at a time, not one per op...
  CHECK(after_backward.peak_bytes <= after_forward.peak_bytes + 4 * one_tensor);
  CHECK(in_use_at_last_node - baseline <= 4 * one_tensor);
  // ...and leaves only the loss and x's gradient behind.
  CHECK(after_backward.in_use_bytes - baseline <= one_tensor + 4096);
  CHECK(x.grad().shape() == shape);
}

TEST_CASE("no_grad records nothing, nests, and is per thread") {
  Variable x = leaf({1.0, 2.0});
  CHECK(grad_enabled());
  {
    NoGradGuard outer;
    CHECK_FALSE(grad_enabled());
    Variable y = x * x;
    CHECK(y.is_leaf());
    CHECK_FALSE(y.requires_grad());
    CHECK(y.data().to_vector<double>() == std::vector<double>{1.0, 4.0});
    {
      NoGradGuard inner;
      CHECK_FALSE(grad_enabled());
    }
    CHECK_FALSE(grad_enabled());
    bool other_thread_enabled = false;
    std::thread([&] { other_thread_enabled = grad_enabled(); }).join();
    CHECK(other_thread_enabled);
  }
  CHECK(grad_enabled());
  CHECK_FALSE((x * x).is_leaf());
}

TEST_CASE("detach shares the data but cuts the tape") {
  Variable x = leaf({1.0, 2.0, 3.0});
  Variable d = x.detach();
  CHECK(d.is_leaf());
  CHECK_FALSE(d.requires_grad());
  CHECK(d.data().storage() == x.data().storage());
  // Only the first factor carries a gradient: d/dx (x * const) = const.
  backward_sum(x * mul_scalar(x, 1.0).detach());
  CHECK(grad_of(x) == std::vector<double>{1.0, 2.0, 3.0});
}

TEST_CASE("a backward function returning the wrong shape is reported with the op") {
  Variable x = leaf({1.0, 2.0});
  Variable y = make_op_result(x.data().clone(), "broken_identity", {x},
                              [](const Tensor& g) { return std::vector<Tensor>{ones({3}, DType::Float64)}; });
  try {
    backward_sum(y);
    FAIL("shape mismatch not detected");
  } catch (const AutogradError& e) {
    CHECK(std::string(e.what()).find("broken_identity") != std::string::npos);
  }
}

TEST_CASE("undefined inputs (an absent bias) get no gradient") {
  Variable x = leaf({1.0, 2.0});
  Variable absent;
  Variable y = make_op_result(x.data().clone(), "identity_with_optional", {x, absent}, [](const Tensor& g) {
    return std::vector<Tensor>{g, Tensor()};
  });
  backward_sum(y);
  CHECK(grad_of(x) == std::vector<double>{1.0, 1.0});
}

TEST_CASE("deep chains run backward and are destroyed without recursion") {
  constexpr int kDepth = 50000;
  Variable x = leaf({0.5});
  SUBCASE("backward") {
    Variable y = x;
    for (int i = 0; i < kDepth; ++i) y = add_scalar(y, 1.0);
    y.backward();
    CHECK(grad_of(x) == std::vector<double>{1.0});
  }
  SUBCASE("destroyed without backward") {
    {
      Variable y = x;
      for (int i = 0; i < kDepth; ++i) y = add_scalar(y, 1.0);
      CHECK(y.data().item<double>() == doctest::Approx(0.5 + kDepth));
    }
    CHECK(x.requires_grad());
  }
}

TEST_CASE("a leaf's grad-ready hook fires once, when its gradient is complete, before the pass ends") {
  // y = sum(w2 * tanh(w1 * x) + w1): w1 gets two contributions (one through
  // the deeper path, which completes last); w2's gradient is ready first.
  Variable x = leaf({0.5, -1.0});
  Variable w1 = leaf({1.5, 2.0}), w2 = leaf({-0.5, 0.25});
  std::vector<std::string> order;
  std::vector<double> w1_seen;
  w1.set_grad_ready_hook([&] {
    order.push_back("w1");
    w1_seen = grad_of(w1);  // the complete gradient, both contributions added
  });
  w2.set_grad_ready_hook([&] { order.push_back("w2"); });
  Variable h = tanh(w1 * x);
  backward_sum(w2 * h + w1);
  CHECK(order == std::vector<std::string>{"w2", "w1"});
  CHECK(w1_seen == grad_of(w1));
  const double t0 = std::tanh(1.5 * 0.5), t1 = std::tanh(2.0 * -1.0);
  CHECK(w1_seen[0] == doctest::Approx(-0.5 * (1 - t0 * t0) * 0.5 + 1.0));
  CHECK(w1_seen[1] == doctest::Approx(0.25 * (1 - t1 * t1) * -1.0 + 1.0));
  // Removed hooks do not fire; hooks are for leaves only.
  w1.set_grad_ready_hook({});
  w2.set_grad_ready_hook({});
  order.clear();
  backward_sum(w2 * tanh(w1 * x));
  CHECK(order.empty());
  CHECK_THROWS_AS(h.set_grad_ready_hook([] {}), AutogradError);
  // A leaf the graph does not reach is not reported.
  Variable unused = leaf({1.0});
  bool fired = false;
  unused.set_grad_ready_hook([&] { fired = true; });
  backward_sum(w2 * x);
  CHECK_FALSE(fired);
  unused.set_grad_ready_hook({});
}
