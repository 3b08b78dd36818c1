// The cross-entropy losses: gradients through gradcheck (softmax and
// log_softmax are gradchecked by the op registry, tests/ops), and loss values
// against hand-written formulas.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "grad_test_helpers.hpp"

using namespace petal;
using namespace petal::ag;
using namespace petal::ag::testing;

namespace {

// Row r's class is (step * r + offset) % classes: rows differ, every index is valid.
std::vector<std::int64_t> stepped_labels(std::int64_t rows, std::int64_t classes, std::int64_t step,
                                         std::int64_t offset) {
  std::vector<std::int64_t> labels;
  for (std::int64_t r = 0; r < rows; ++r) labels.push_back((step * r + offset) % classes);
  return labels;
}

Tensor class_indices(const std::vector<std::int64_t>& labels) { return from_vector(labels); }

Tensor one_hot_rows(const std::vector<std::int64_t>& labels, std::int64_t classes) {
  std::vector<double> values(labels.size() * static_cast<std::size_t>(classes), 0.0);
  for (std::size_t r = 0; r < labels.size(); ++r) values[r * classes + labels[r]] = 1.0;
  return from_vector(values, {static_cast<std::int64_t>(labels.size()), classes});
}

// Each row sums to 1, no element near 0 or 1 (the clipping bounds).
Tensor soft_labels(std::int64_t rows, std::int64_t classes) {
  Tensor t = uniform({rows, classes}, 0.1, 1.0, test_generator(), DType::Float64);
  std::vector<double> v = t.to_vector<double>();
  for (std::int64_t r = 0; r < rows; ++r) {
    double total = 0.0;
    for (std::int64_t c = 0; c < classes; ++c) total += v[r * classes + c];
    for (std::int64_t c = 0; c < classes; ++c) v[r * classes + c] /= total;
  }
  return from_vector(v, {rows, classes});
}

}  // namespace

TEST_CASE("softmax_cross_entropy with class indices and with one-hot or soft targets") {
  for (const std::int64_t rows : {1, 5}) {
    CAPTURE(rows);
    const std::int64_t classes = 7;
    const std::vector<std::int64_t> labels = stepped_labels(rows, classes, 3, 2);
    const Tensor indices = class_indices(labels);
    const Tensor one_hot = one_hot_rows(labels, classes);
    const Tensor soft = soft_labels(rows, classes);
    const Fn with_indices = [&](const std::vector<Variable>& in) { return softmax_cross_entropy(in[0], indices); };
    const Fn with_one_hot = [&](const std::vector<Variable>& in) { return softmax_cross_entropy(in[0], one_hot); };
    const Fn with_soft = [&](const std::vector<Variable>& in) { return softmax_cross_entropy(in[0], soft); };
    CHECK_GRADIENTS(with_indices, {random_input({rows, classes})});
    CHECK_GRADIENTS(with_one_hot, {random_input({rows, classes})});
    CHECK_GRADIENTS(with_soft, {random_input({rows, classes})});

    // The fused loss equals -mean(log_softmax[target]), and both target forms agree.
    Variable logits = random_input({rows, classes});
    const double fused = softmax_cross_entropy(logits, indices).data().item<double>();
    const std::vector<double> log_p = log_softmax(logits).data().to_vector<double>();
    double expected = 0.0;
    for (std::int64_t r = 0; r < rows; ++r) expected -= log_p[r * classes + labels[r]];
    expected /= static_cast<double>(rows);
    CHECK(fused == doctest::Approx(expected).epsilon(1e-12));
    CHECK(softmax_cross_entropy(logits, one_hot).data().item<double>() == doctest::Approx(expected).epsilon(1e-12));
  }
}

TEST_CASE("softmax_cross_entropy: the loss is a scalar, float targets follow the logits' dtype, bad targets throw") {
  Variable logits(normal({3, 4}, 0.0, 1.0, test_generator(), DType::Float32), true);
  const Tensor one_hot64 = one_hot_rows({0, 3, 1}, 4);
  Variable loss = softmax_cross_entropy(logits, one_hot64);
  CHECK(loss.numel() == 1);
  CHECK(loss.dtype() == DType::Float32);
  loss.backward();
  CHECK(logits.grad().shape() == Shape{3, 4});
  CHECK_THROWS_AS(softmax_cross_entropy(logits, class_indices({0, 4, 1})), IndexError);
  CHECK_THROWS_AS(softmax_cross_entropy(logits, class_indices({0, 1})), ShapeError);
  CHECK_THROWS_AS(softmax_cross_entropy(random_input({3}), class_indices({0, 1, 2})), ShapeError);
}

TEST_CASE("cross_entropy_from_probs, after a softmax and on probabilities directly") {
  for (const std::int64_t rows : {1, 4}) {
    CAPTURE(rows);
    const std::int64_t classes = 5;
    const std::vector<std::int64_t> labels = stepped_labels(rows, classes, 2, 1);
    const Tensor indices = class_indices(labels);
    const Tensor soft = soft_labels(rows, classes);
    const Fn after_softmax = [&](const std::vector<Variable>& in) {
      return cross_entropy_from_probs(softmax(in[0]), indices);
    };
    const Fn on_probs = [&](const std::vector<Variable>& in) { return cross_entropy_from_probs(in[0], soft); };
    CHECK_GRADIENTS(after_softmax, {random_input({rows, classes})});
    CHECK_GRADIENTS(on_probs, {uniform_input({rows, classes}, 0.05, 0.95)});

    // Through a softmax it is the same loss as the fused one.
    Variable logits = random_input({rows, classes});
    CHECK(cross_entropy_from_probs(softmax(logits), indices).data().item<double>() ==
          doctest::Approx(softmax_cross_entropy(logits, indices).data().item<double>()).epsilon(1e-12));
  }
}

TEST_CASE("cross_entropy_from_probs clips like Keras: log(0) never happens, clipped elements get no gradient") {
  const double eps = 1e-7;
  Variable probs(from_vector<double>({0.0, 1.0, 0.25, 0.75}, {2, 2}), true);
  Variable loss = cross_entropy_from_probs(probs, class_indices({0, 1}));
  // Row 0 picks a probability of 0 (clipped to eps), row 1 one of 0.75.
  const double expected = (-std::log(eps) - std::log(0.75)) / 2.0;
  CHECK(loss.data().item<double>() == doctest::Approx(expected).epsilon(1e-12));
  loss.backward();
  const std::vector<double> grad = probs.grad().to_vector<double>();
  CHECK(grad[0] == 0.0);  // clipped from below
  CHECK(grad[1] == 0.0);  // target 0 and clipped from above
  CHECK(grad[2] == 0.0);  // target 0
  CHECK(grad[3] == doctest::Approx(-1.0 / (2.0 * 0.75)));
  CHECK(std::isfinite(loss.data().item<double>()));
  CHECK_THROWS_AS(cross_entropy_from_probs(probs, class_indices({0, 2})), IndexError);
  CHECK_THROWS_AS(cross_entropy_from_probs(probs, ones({2, 3}, DType::Float64)), ShapeError);
}
