// Losses and metrics with Keras's formulas: each loss against a plain
// double-precision reference loop (odd sizes, batch 1), gradient checks in
// float64, per-sample weights, custom callables; metrics against reference
// counts (AUC against the exact rank-based AUC); regression (MSE) and
// multi-label (BCE, sigmoid outputs) models trained with fit().
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <sstream>

#include "autograd/functions.hpp"
#include "autograd/gradcheck.hpp"
#include "core/error.hpp"
#include "core/random.hpp"
#include "nn/nn.hpp"

using namespace petal;
using namespace petal::nn;

namespace {

constexpr double kEps = 1e-7;

struct Case {
  std::int64_t n, c;
};
// Odd sizes, batch 1, one column.
const Case kCases[] = {{1, 1}, {1, 5}, {3, 1}, {7, 3}, {5, 13}, {16, 4}};

std::vector<double> normals(std::size_t count, Generator& gen, double scale = 1.0) {
  std::vector<double> v(count);
  for (double& x : v) x = scale * gen.normal();
  return v;
}
std::vector<double> uniforms(std::size_t count, Generator& gen, double low, double high) {
  std::vector<double> v(count);
  for (double& x : v) x = low + (high - low) * gen.uniform_double();
  return v;
}
// Rows of a [n, c] matrix that sum to 1 (random positive weights), some zeros when `zeros`.
std::vector<double> distributions(std::int64_t n, std::int64_t c, Generator& gen, bool zeros = false) {
  std::vector<double> v(static_cast<std::size_t>(n * c));
  for (std::int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (std::int64_t j = 0; j < c; ++j) {
      double x = gen.uniform_double() + 0.05;
      if (zeros && c > 1 && gen.uniform_double() < 0.3) x = 0.0;
      v[static_cast<std::size_t>(i * c + j)] = x;
      s += x;
    }
    if (s == 0) v[static_cast<std::size_t>(i * c)] = s = 1.0;
    for (std::int64_t j = 0; j < c; ++j) v[static_cast<std::size_t>(i * c + j)] /= s;
  }
  return v;
}
std::vector<double> bits(std::size_t count, Generator& gen) {
  std::vector<double> v(count);
  for (double& x : v) x = gen.uniform_double() < 0.5 ? 0.0 : 1.0;
  return v;
}

Tensor t64(const std::vector<double>& v, const Shape& shape) { return from_vector(v, shape); }

double clip(double x, double lo, double hi) { return std::min(std::max(x, lo), hi); }

// Reference per-sample losses: the loss of row i from (p[i, :], t[i, :]).
using RowLoss = std::function<double(const double* p, const double* t, std::int64_t c)>;

double reference(const RowLoss& f, const std::vector<double>& p, const std::vector<double>& t, std::int64_t n,
                 std::int64_t c, const std::vector<double>* w = nullptr) {
  double s = 0;
  for (std::int64_t i = 0; i < n; ++i)
    s += (w ? (*w)[static_cast<std::size_t>(i)] : 1.0) * f(p.data() + i * c, t.data() + i * c, c);
  return s / static_cast<double>(n);
}

const RowLoss ref_mse = [](const double* p, const double* t, std::int64_t c) {
  double s = 0;
  for (std::int64_t j = 0; j < c; ++j) s += (p[j] - t[j]) * (p[j] - t[j]);
  return s / static_cast<double>(c);
};
const RowLoss ref_mae = [](const double* p, const double* t, std::int64_t c) {
  double s = 0;
  for (std::int64_t j = 0; j < c; ++j) s += std::abs(p[j] - t[j]);
  return s / static_cast<double>(c);
};
RowLoss ref_huber(double delta) {
  return [delta](const double* p, const double* t, std::int64_t c) {
    double s = 0;
    for (std::int64_t j = 0; j < c; ++j) {
      const double e = std::abs(p[j] - t[j]);
      s += e <= delta ? 0.5 * e * e : delta * e - 0.5 * delta * delta;
    }
    return s / static_cast<double>(c);
  };
}
RowLoss ref_bce(double smoothing) {
  return [smoothing](const double* p, const double* t, std::int64_t c) {
    double s = 0;
    for (std::int64_t j = 0; j < c; ++j) {
      const double q = clip(p[j], kEps, 1 - kEps), y = t[j] * (1 - smoothing) + 0.5 * smoothing;
      s += -(y * std::log(q) + (1 - y) * std::log(1 - q));
    }
    return s / static_cast<double>(c);
  };
}
RowLoss ref_bce_logits(double smoothing) {
  return [smoothing](const double* x, const double* t, std::int64_t c) {
    double s = 0;
    for (std::int64_t j = 0; j < c; ++j) {
      // The textbook form, fine for the moderate logits used here.
      const double q = 1 / (1 + std::exp(-x[j])), y = t[j] * (1 - smoothing) + 0.5 * smoothing;
      s += -(y * std::log(q) + (1 - y) * std::log(1 - q));
    }
    return s / static_cast<double>(c);
  };
}
RowLoss ref_cce(double smoothing, bool logits) {
  return [smoothing, logits](const double* p, const double* t, std::int64_t c) {
    double mx = -1e300, z = 0;
    if (logits) {
      for (std::int64_t j = 0; j < c; ++j) mx = std::max(mx, p[j]);
      for (std::int64_t j = 0; j < c; ++j) z += std::exp(p[j] - mx);
    }
    double s = 0;
    for (std::int64_t j = 0; j < c; ++j) {
      const double y = t[j] * (1 - smoothing) + smoothing / static_cast<double>(c);
      const double log_q = logits ? p[j] - mx - std::log(z) : std::log(clip(p[j], kEps, 1 - kEps));
      s += -y * log_q;
    }
    return s;
  };
}
const RowLoss ref_kld = [](const double* p, const double* t, std::int64_t c) {
  double s = 0;
  for (std::int64_t j = 0; j < c; ++j) {
    const double y = clip(t[j], kEps, 1), q = clip(p[j], kEps, 1);
    s += y * std::log(y / q);
  }
  return s;
};

double value(const ag::Variable& v) {
  CHECK(v.dim() == 0);
  return v.data().item<double>();
}

// Checks loss(output, target) (and with weights) against the reference in
// float64 and float32. tol32: relative tolerance in float32, where 1 - 1e-7
// rounds to 1 - 1.19e-7 (a probability clipped there costs -log(1.19e-7)
// instead of -log(1e-7), as in Keras at float32).
void check_loss(const Loss& loss, const RowLoss& ref, const std::vector<double>& p, const std::vector<double>& t,
                std::int64_t n, std::int64_t c, bool logits, Generator& gen, double tol32 = 1e-5) {
  CAPTURE(loss.name());
  CAPTURE(n);
  CAPTURE(c);
  const double expected = reference(ref, p, t, n, c);
  const Tensor out = t64(p, {n, c}), target = t64(t, {n, c});
  const double got64 = value(loss(ag::Variable(out), target, logits));
  CHECK(got64 == doctest::Approx(expected).epsilon(1e-12));
  const double got32 = value(loss(ag::Variable(out.to(DType::Float32)), target.to(DType::Float32), logits));
  CHECK(got32 == doctest::Approx(expected).epsilon(tol32));
  // Per-sample weights: sum(w l) / N.
  std::vector<double> w = uniforms(static_cast<std::size_t>(n), gen, 0.0, 2.0);
  const double weighted = reference(ref, p, t, n, c, &w);
  CHECK(value(loss(ag::Variable(out), target, t64(w, {n}), logits)) == doctest::Approx(weighted).epsilon(1e-12));
  // Unit weights give the unweighted loss.
  CHECK(value(loss(ag::Variable(out), target, ones({n}, DType::Float64), logits)) ==
        doctest::Approx(expected).epsilon(1e-12));
}

ag::GradcheckResult check_grad(const Loss& loss, const std::vector<double>& p, const Tensor& target, const Shape& shape,
                               bool logits, const Tensor& weight = Tensor()) {
  ag::Variable x(t64(p, shape), true);
  return ag::gradcheck([&](const std::vector<ag::Variable>& in) { return loss(in[0], target, weight, logits); }, {x});
}

}  // namespace

TEST_CASE("regression losses match a double-precision reference loop (MSE, MAE, Huber)") {
  Generator gen(11);
  for (const Case& k : kCases) {
    const auto count = static_cast<std::size_t>(k.n * k.c);
    const std::vector<double> p = normals(count, gen, 2.0), t = normals(count, gen, 2.0);
    check_loss(Loss::mean_squared_error(), ref_mse, p, t, k.n, k.c, false, gen);
    check_loss(Loss::mean_absolute_error(), ref_mae, p, t, k.n, k.c, false, gen);
    check_loss(Loss::huber(), ref_huber(1.0), p, t, k.n, k.c, false, gen);
    check_loss(Loss::huber(0.3), ref_huber(0.3), p, t, k.n, k.c, false, gen);
  }
  // Keras names and defaults.
  CHECK(Loss::parse("mse").kind == LossKind::MeanSquaredError);
  CHECK(Loss::parse("mean_absolute_error").name() == "mean_absolute_error");
  CHECK(Loss::parse("huber").delta == 1.0);
  // A [N] target against a [N, 1] output and a [N] output are one value per sample.
  const Tensor out = from_vector(std::vector<double>{1, 2, 4}, {3, 1});
  const Tensor y = from_vector(std::vector<double>{0, 2, 1});
  CHECK(value(Loss::mean_squared_error()(ag::Variable(out), y)) == doctest::Approx(10.0 / 3));
  CHECK(value(Loss::mean_squared_error()(ag::Variable(out.reshape({3})), y)) == doctest::Approx(10.0 / 3));
  // Rank 3: the last axis averaged, then the rest.
  const std::vector<double> p3 = normals(2 * 3 * 5, gen), t3 = normals(2 * 3 * 5, gen);
  CHECK(value(Loss::mean_absolute_error()(ag::Variable(t64(p3, {2, 3, 5})), t64(t3, {2, 3, 5}))) ==
        doctest::Approx(reference(ref_mae, p3, t3, 2, 15)).epsilon(1e-12));
}

TEST_CASE("binary cross-entropy matches the reference: probabilities (clipped), logits, label smoothing") {
  Generator gen(12);
  for (const Case& k : kCases) {
    const auto count = static_cast<std::size_t>(k.n * k.c);
    std::vector<double> p = uniforms(count, gen, 0.0, 1.0);
    p[0] = 0.0;  // clipped to eps
    if (count > 1) p[1] = 1.0;  // clipped to 1 - eps
    const std::vector<double> t = bits(count, gen), x = normals(count, gen, 3.0);
    // p holds an exact 1: see check_loss on float32.
    check_loss(Loss::binary_crossentropy(), ref_bce(0.0), p, t, k.n, k.c, false, gen, 2e-2);
    check_loss(Loss::binary_crossentropy(false, 0.1), ref_bce(0.1), p, t, k.n, k.c, false, gen, 2e-2);
    check_loss(Loss::binary_crossentropy(true), ref_bce_logits(0.0), x, t, k.n, k.c, true, gen);
    check_loss(Loss::binary_crossentropy(true, 0.2), ref_bce_logits(0.2), x, t, k.n, k.c, true, gen);
    // Soft targets too.
    check_loss(Loss::binary_crossentropy(), ref_bce(0.0), uniforms(count, gen, 0.01, 0.99), uniforms(count, gen, 0, 1),
               k.n, k.c, false, gen);
  }
  // The stable logits form: huge logits give |x| for the wrong label, 0 for the right one.
  const Tensor x = from_vector(std::vector<float>{1000.f, -1000.f, 1000.f, -1000.f}, {2, 2});
  const Tensor y = from_vector(std::vector<float>{0.f, 1.f, 1.f, 0.f}, {2, 2});
  CHECK(value(Loss::binary_crossentropy(true)(ag::Variable(x), y)) == doctest::Approx(500.0));
  // From probabilities a saturated wrong answer costs -log(eps) (Keras's clip).
  const Tensor p = from_vector(std::vector<float>{0.f}, {1, 1});
  CHECK(value(Loss::binary_crossentropy()(ag::Variable(p), ones({1, 1})) ) ==
        doctest::Approx(-std::log(1e-7)).epsilon(1e-4));
  CHECK(Loss::parse("binary_crossentropy").kind == LossKind::BinaryCrossentropy);
}

TEST_CASE("categorical cross-entropies and KL divergence match the reference, with label smoothing") {
  Generator gen(13);
  for (const Case& k : kCases) {
    if (k.c < 2) continue;
    const std::vector<double> p = distributions(k.n, k.c, gen), x = normals(static_cast<std::size_t>(k.n * k.c), gen, 2.0);
    std::vector<double> onehot(static_cast<std::size_t>(k.n * k.c), 0.0);
    std::vector<std::int64_t> labels(static_cast<std::size_t>(k.n));
    for (std::int64_t i = 0; i < k.n; ++i) {
      labels[static_cast<std::size_t>(i)] = static_cast<std::int64_t>(gen.uniform_int(static_cast<std::uint64_t>(k.c)));
      onehot[static_cast<std::size_t>(i * k.c + labels[static_cast<std::size_t>(i)])] = 1.0;
    }
    for (double s : {0.0, 0.1}) {
      check_loss(Loss::categorical_crossentropy(false, s), ref_cce(s, false), p, onehot, k.n, k.c, false, gen);
      check_loss(Loss::categorical_crossentropy(true, s), ref_cce(s, true), x, onehot, k.n, k.c, true, gen);
    }
    // Sparse: the same values as one-hot, also weighted.
    const Tensor idx = from_vector(labels);
    std::vector<double> w = uniforms(static_cast<std::size_t>(k.n), gen, 0, 2);
    for (bool logits : {false, true}) {
      const auto& in = logits ? x : p;
      const Loss sparse = Loss::sparse_categorical_crossentropy(logits);
      CHECK(value(sparse(ag::Variable(t64(in, {k.n, k.c})), idx)) ==
            doctest::Approx(reference(ref_cce(0, logits), in, onehot, k.n, k.c)).epsilon(1e-12));
      CHECK(value(sparse(ag::Variable(t64(in, {k.n, k.c})), idx, t64(w, {k.n}))) ==
            doctest::Approx(reference(ref_cce(0, logits), in, onehot, k.n, k.c, &w)).epsilon(1e-12));
    }
    // KL divergence with zeros in both (clipped to eps).
    const std::vector<double> tz = distributions(k.n, k.c, gen, true), pz = distributions(k.n, k.c, gen, true);
    check_loss(Loss::kl_divergence(), ref_kld, pz, tz, k.n, k.c, false, gen);
  }
  CHECK(Loss::parse("kld").kind == LossKind::KLDivergence);
  CHECK(Loss::parse("kl_divergence").name() == "kl_divergence");
  CHECK_THROWS_AS(Loss::categorical_crossentropy(false, 1.5), ValueError);
}

TEST_CASE("gradients of every loss pass a float64 finite-difference check, weighted too") {
  Generator gen(14);
  const std::int64_t n = 5, c = 3;
  const auto count = static_cast<std::size_t>(n * c);
  // Regression: errors kept away from 0 (MAE's kink) and from +-delta (Huber's).
  std::vector<double> t = normals(count, gen), p(count);
  for (std::size_t i = 0; i < count; ++i) {
    const double mag = i % 2 ? 0.2 + 0.5 * gen.uniform_double() : 1.3 + gen.uniform_double();
    p[i] = t[i] + (gen.uniform_double() < 0.5 ? -mag : mag);
  }
  const Tensor w = t64(uniforms(static_cast<std::size_t>(n), gen, 0.1, 2.0), {n});
  const Tensor tt = t64(t, {n, c});
  for (const Loss& loss : {Loss::mean_squared_error(), Loss::mean_absolute_error(), Loss::huber()}) {
    CAPTURE(loss.name());
    auto r = check_grad(loss, p, tt, {n, c}, false);
    CHECK_MESSAGE(r.ok, r.message);
    r = check_grad(loss, p, tt, {n, c}, false, w);
    CHECK_MESSAGE(r.ok, r.message);
  }
  // Cross-entropies: probabilities inside (eps, 1 - eps), any logits.
  const std::vector<double> probs = uniforms(count, gen, 0.05, 0.95), logits = normals(count, gen, 2.0);
  const Tensor binary = t64(bits(count, gen), {n, c});
  for (const Loss& loss : {Loss::binary_crossentropy(), Loss::binary_crossentropy(false, 0.1)}) {
    auto r = check_grad(loss, probs, binary, {n, c}, false);
    CHECK_MESSAGE(r.ok, r.message);
    r = check_grad(loss, probs, binary, {n, c}, false, w);
    CHECK_MESSAGE(r.ok, r.message);
  }
  for (const Loss& loss : {Loss::binary_crossentropy(true), Loss::binary_crossentropy(true, 0.1)}) {
    auto r = check_grad(loss, logits, binary, {n, c}, true, w);
    CHECK_MESSAGE(r.ok, r.message);
  }
  const std::vector<double> dist = distributions(n, c, gen);
  std::vector<double> onehot(count, 0.0);
  std::vector<std::int64_t> labels;
  for (std::int64_t i = 0; i < n; ++i) {
    labels.push_back(i % c);
    onehot[static_cast<std::size_t>(i * c + i % c)] = 1.0;
  }
  for (bool from_logits : {false, true}) {
    const auto& in = from_logits ? logits : dist;
    for (double s : {0.0, 0.2}) {
      auto r = check_grad(Loss::categorical_crossentropy(from_logits, s), in, t64(onehot, {n, c}), {n, c}, from_logits);
      CHECK_MESSAGE(r.ok, r.message);
      r = check_grad(Loss::categorical_crossentropy(from_logits, s), in, t64(onehot, {n, c}), {n, c}, from_logits, w);
      CHECK_MESSAGE(r.ok, r.message);
    }
    auto r = check_grad(Loss::sparse_categorical_crossentropy(from_logits), in, from_vector(labels), {n, c},
                        from_logits, w);
    CHECK_MESSAGE(r.ok, r.message);
  }
  auto r = check_grad(Loss::kl_divergence(), dist, t64(distributions(n, c, gen), {n, c}), {n, c}, false);
  CHECK_MESSAGE(r.ok, r.message);
  r = check_grad(Loss::kl_divergence(), dist, t64(distributions(n, c, gen), {n, c}), {n, c}, false, w);
  CHECK_MESSAGE(r.ok, r.message);
}

TEST_CASE("a custom callable is a Loss: per-sample results are reduced and weighted, scalars used as they are") {
  Generator gen(15);
  const std::int64_t n = 4, c = 3;
  const std::vector<double> p = normals(12, gen), t = normals(12, gen);
  const Tensor out = t64(p, {n, c}), target = t64(t, {n, c});
  // Per-sample squared error summed over the last axis.
  Loss sse = [](const ag::Variable& o, const Tensor& y) {
    ag::Variable e = ag::sub(o, ag::Variable(y));
    return ag::sum(ag::mul(e, e), {-1});
  };
  CHECK(sse.kind == LossKind::Custom);
  CHECK(sse.name() == "custom");
  const double expected = reference(ref_mse, p, t, n, c) * c;
  CHECK(value(sse(ag::Variable(out), target)) == doctest::Approx(expected).epsilon(1e-12));
  const std::vector<double> w{0.5, 1.0, 0.0, 2.0};
  CHECK(value(sse(ag::Variable(out), target, t64(w, {n}))) ==
        doctest::Approx(reference(ref_mse, p, t, n, c, &w) * c).epsilon(1e-12));
  ag::Variable x(out, true);
  auto r = ag::gradcheck([&](const std::vector<ag::Variable>& in) { return sse(in[0], target); }, {x});
  CHECK_MESSAGE(r.ok, r.message);
  // A scalar result is the loss itself; sample weights then need per-sample values.
  Loss scalar = Loss::custom([](const ag::Variable& o, const Tensor&) { return ag::mean(o); }, "mean_output");
  CHECK(scalar.name() == "mean_output");
  double mean = 0;
  for (double v : p) mean += v / 12;
  CHECK(value(scalar(ag::Variable(out), target)) == doctest::Approx(mean));
  CHECK_THROWS_AS(scalar(ag::Variable(out), target, t64(w, {n})), ValueError);
  // The wrong batch size is a ShapeError.
  Loss bad = [](const ag::Variable& o, const Tensor&) { return ag::sum(o, {0}); };
  CHECK_THROWS_AS(bad(ag::Variable(out), target), ShapeError);
}

TEST_CASE("loss argument errors name the loss") {
  const ag::Variable out(zeros({4, 3}));
  CHECK_THROWS_AS(Loss::mean_squared_error()(out, zeros({4, 2})), ShapeError);
  CHECK_THROWS_AS(Loss::mean_squared_error()(out, zeros({4, 3}, DType::Int64)), DTypeError);
  CHECK_THROWS_AS(Loss::binary_crossentropy()(out, zeros({4, 3}), zeros({3})), ShapeError);
  CHECK_THROWS_AS(Loss::binary_crossentropy()(out, zeros({4, 3}), zeros({4}, DType::Int64)), DTypeError);
  CHECK_THROWS_AS(Loss::huber(0.0), ValueError);
  CHECK_THROWS_AS(Loss::parse("hinge"), ValueError);
  try {
    Loss::kl_divergence()(out, zeros({5, 3}));
    FAIL("no error");
  } catch (const ShapeError& e) {
    CHECK(std::string(e.what()).find("kl_divergence") != std::string::npos);
  }
}

// ---- metrics ----

TEST_CASE("binary accuracy, precision and recall against reference counts, streamed over batches") {
  Generator gen(21);
  BinaryAccuracy acc;
  BinaryAccuracy acc7(0.7);
  Precision precision;
  Recall recall;
  std::int64_t correct = 0, correct7 = 0, total = 0, tp = 0, fp = 0, fn = 0;
  for (std::int64_t n : {1, 7, 12}) {
    const auto count = static_cast<std::size_t>(n * 3);
    const std::vector<double> p = uniforms(count, gen, 0, 1), t = bits(count, gen);
    for (std::size_t i = 0; i < count; ++i) {
      correct += (p[i] > 0.5) == (t[i] == 1.0);
      correct7 += (p[i] > 0.7) == (t[i] == 1.0);
      tp += p[i] > 0.5 && t[i] == 1.0;
      fp += p[i] > 0.5 && t[i] == 0.0;
      fn += p[i] <= 0.5 && t[i] == 1.0;
    }
    total += static_cast<std::int64_t>(count);
    const Tensor out = t64(p, {n, 3}).to(DType::Float32), y = t64(t, {n, 3}).to(DType::Float32);
    acc.update(out, y);
    acc7.update(out, y);
    precision.update(out, y);
    recall.update(out, y);
  }
  CHECK(acc.result() == doctest::Approx(static_cast<double>(correct) / static_cast<double>(total)));
  CHECK(acc7.result() == doctest::Approx(static_cast<double>(correct7) / static_cast<double>(total)));
  CHECK(precision.result() == doctest::Approx(static_cast<double>(tp) / static_cast<double>(tp + fp)));
  CHECK(recall.result() == doctest::Approx(static_cast<double>(tp) / static_cast<double>(tp + fn)));
  // A single sigmoid output with [N] int64 targets; undefined precision is 0.
  BinaryAccuracy one;
  one.update(from_vector(std::vector<float>{0.2f, 0.9f, 0.5f}, {3, 1}), from_vector(std::vector<std::int64_t>{0, 1, 1}));
  CHECK(one.result() == doctest::Approx(2.0 / 3));
  Precision none;
  none.update(zeros({2, 2}), ones({2, 2}));
  CHECK(none.result() == 0.0);
  CHECK_THROWS_AS(acc.update(zeros({2, 2}), zeros({2, 3})), ShapeError);
  acc.reset();
  CHECK(acc.result() == 0.0);
}

TEST_CASE("top-k categorical accuracy (one-hot and sparse) against a reference, ties count as in the top k") {
  Generator gen(22);
  for (std::int64_t k : {1, 2, 5}) {
    TopKCategoricalAccuracy topk(k);
    SparseTopKCategoricalAccuracy sparse(k);
    std::int64_t hits = 0, total = 0;
    for (std::int64_t n : {1, 9}) {
      const std::int64_t c = 10;
      const std::vector<double> p = normals(static_cast<std::size_t>(n * c), gen);
      std::vector<std::int64_t> labels;
      std::vector<float> onehot(static_cast<std::size_t>(n * c), 0.f);
      for (std::int64_t i = 0; i < n; ++i) {
        const auto y = static_cast<std::int64_t>(gen.uniform_int(c));
        labels.push_back(y);
        onehot[static_cast<std::size_t>(i * c + y)] = 1.f;
        // Reference: the rank of the true class by sorting the row.
        std::vector<double> row(p.begin() + i * c, p.begin() + (i + 1) * c);
        std::sort(row.begin(), row.end(), std::greater<>());
        hits += p[static_cast<std::size_t>(i * c + y)] >= row[static_cast<std::size_t>(k - 1)];
      }
      total += n;
      topk.update(t64(p, {n, c}), from_vector(onehot, {n, c}));
      sparse.update(t64(p, {n, c}), from_vector(labels));
    }
    CAPTURE(k);
    CHECK(topk.result() == doctest::Approx(static_cast<double>(hits) / static_cast<double>(total)));
    CHECK(sparse.result() == doctest::Approx(static_cast<double>(hits) / static_cast<double>(total)));
  }
  // Ties straddling the k-th place: all tied classes count (tf.math.in_top_k).
  TopKCategoricalAccuracy top1(1);
  top1.update(from_vector(std::vector<float>{0.4f, 0.4f, 0.2f}, {1, 3}), from_vector(std::vector<std::int64_t>{1}));
  CHECK(top1.result() == 1.0);
  CHECK_THROWS_AS(TopKCategoricalAccuracy(0), ValueError);
}

namespace {

// Exact ROC AUC: the probability that a random positive scores above a
// random negative, ties counted half.
double exact_auc(const std::vector<double>& p, const std::vector<double>& t) {
  double above = 0, pos = 0, neg = 0;
  for (std::size_t i = 0; i < p.size(); ++i) (t[i] != 0 ? pos : neg) += 1;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (t[i] == 0) continue;
    for (std::size_t j = 0; j < p.size(); ++j)
      if (t[j] == 0) above += p[i] > p[j] ? 1.0 : p[i] == p[j] ? 0.5 : 0.0;
  }
  return above / (pos * neg);
}

// Keras's AUC(num_thresholds) by its definition: confusion counts per threshold, trapezoids.
double keras_auc(const std::vector<double>& p, const std::vector<double>& t, int num_thresholds) {
  std::vector<double> th{-1e-7};
  for (int i = 0; i < num_thresholds - 2; ++i) th.push_back((i + 1) * 1.0 / (num_thresholds - 1));
  th.push_back(1 + 1e-7);
  std::vector<double> tpr, fpr;
  for (double h : th) {
    double tp = 0, fp = 0, pos = 0, neg = 0;
    for (std::size_t i = 0; i < p.size(); ++i) {
      (t[i] != 0 ? pos : neg) += 1;
      if (p[i] > h) (t[i] != 0 ? tp : fp) += 1;
    }
    tpr.push_back(tp / pos);
    fpr.push_back(fp / neg);
  }
  double area = 0;
  for (std::size_t j = 0; j + 1 < th.size(); ++j) area += (fpr[j] - fpr[j + 1]) * (tpr[j] + tpr[j + 1]) / 2;
  return area;
}

}  // namespace

TEST_CASE("AUC: Keras's 200 thresholds and trapezoids, close to the exact rank-based AUC") {
  Generator gen(23);
  AUC auc;
  REQUIRE(auc.thresholds().size() == 200);
  CHECK(auc.thresholds()[1] == doctest::Approx(1.0 / 199));
  std::vector<double> all_p, all_t;
  for (std::int64_t n : {1, 333, 700}) {
    std::vector<double> p(static_cast<std::size_t>(n)), t = bits(static_cast<std::size_t>(n), gen);
    // Scores that separate the classes partly: sigmoid(2 * label - 1 + noise).
    for (std::size_t i = 0; i < p.size(); ++i) p[i] = 1 / (1 + std::exp(-(2 * t[i] - 1 + 1.5 * gen.normal())));
    auc.update(t64(p, {n, 1}).to(DType::Float32), t64(t, {n}).to(DType::Float32));
    all_p.insert(all_p.end(), p.begin(), p.end());
    all_t.insert(all_t.end(), t.begin(), t.end());
  }
  // Float32 rounding moves a score across a threshold only when it lies within
  // 6e-8 of one; compare with the definition on the float32 scores.
  std::vector<double> p32;
  for (double v : all_p) p32.push_back(static_cast<double>(static_cast<float>(v)));
  CHECK(auc.result() == doctest::Approx(keras_auc(p32, all_t, 200)).epsilon(1e-12));
  const double exact = exact_auc(all_p, all_t);
  MESSAGE("AUC (200 thresholds) " << auc.result() << ", exact " << exact);
  CHECK(std::abs(auc.result() - exact) < 0.005);
  CHECK(exact > 0.7);
  // Perfect separation: 1; one class only: 0 (Keras's divide_no_nan).
  AUC perfect;
  perfect.update(from_vector(std::vector<float>{0.1f, 0.2f, 0.8f, 0.95f}), from_vector(std::vector<float>{0, 0, 1, 1}));
  CHECK(perfect.result() == doctest::Approx(1.0));
  AUC single;
  single.update(from_vector(std::vector<float>{0.1f, 0.9f}), ones({2}));
  CHECK(single.result() == 0.0);
  // Fewer thresholds: coarser, still Keras's definition.
  AUC coarse(10);
  coarse.update(t64(all_p, {static_cast<std::int64_t>(all_p.size())}), t64(all_t, {static_cast<std::int64_t>(all_t.size())}));
  CHECK(coarse.result() == doctest::Approx(keras_auc(all_p, all_t, 10)).epsilon(1e-12));
}

TEST_CASE("MAE, MSE and Mean metrics; metrics by Keras name") {
  Generator gen(24);
  MeanAbsoluteError mae;
  MeanSquaredError mse;
  double sa = 0, ss = 0;
  std::int64_t count = 0;
  for (std::int64_t n : {1, 5}) {
    const std::vector<double> p = normals(static_cast<std::size_t>(n * 3), gen), t = normals(static_cast<std::size_t>(n * 3), gen);
    for (std::size_t i = 0; i < p.size(); ++i) {
      sa += std::abs(p[i] - t[i]);
      ss += (p[i] - t[i]) * (p[i] - t[i]);
    }
    count += n * 3;
    mae.update(t64(p, {n, 3}), t64(t, {n, 3}));
    mse.update(t64(p, {n, 3}), t64(t, {n, 3}));
  }
  CHECK(mae.result() == doctest::Approx(sa / static_cast<double>(count)).epsilon(1e-12));
  CHECK(mse.result() == doctest::Approx(ss / static_cast<double>(count)).epsilon(1e-12));
  Mean mean;
  mean.update(2.0, 3.0);
  mean.update(4.0);
  CHECK(mean.result() == doctest::Approx(2.5));
  for (const std::string& name : metric_names()) CHECK(make_metric(name) != nullptr);
  CHECK(dynamic_cast<AUC*>(make_metric("auc").get()) != nullptr);
  CHECK(dynamic_cast<MeanSquaredError*>(make_metric("mse").get()) != nullptr);
  CHECK_THROWS_AS(make_metric("f1_score"), ValueError);
}

// ---- training with fit() ----

namespace {

FitOptions quiet(int epochs) {
  FitOptions o;
  o.epochs = epochs;
  o.verbose = Verbosity::Quiet;
  return o;
}

}  // namespace

TEST_CASE("a regression model trains with MSE to under 5% of its starting loss; mae/mse metrics logged") {
  reset_layer_names();
  manual_seed(31);
  Generator gen(31);
  const std::int64_t n = 256;
  std::vector<float> xs, ys;
  for (std::int64_t i = 0; i < n; ++i) {
    const double a = 2 * gen.uniform_double() - 1, b = 2 * gen.uniform_double() - 1;
    xs.push_back(static_cast<float>(a));
    xs.push_back(static_cast<float>(b));
    ys.push_back(static_cast<float>(2 * std::sin(2 * a) + b * b + 1));  // targets away from 0: a large starting loss
  }
  const Tensor x = from_vector(xs, {n, 2}), y = from_vector(ys, {n, 1});
  auto model = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<InputLayer>(Shape{2}), std::make_shared<Dense>(32, "tanh"), std::make_shared<Dense>(1)});
  Trainer trainer(model);
  trainer.compile(std::make_shared<Adam>(0.01), Loss::parse("mse"), {"mae", "mse"});
  TensorBatchSource all(x, y, n);
  const double start = trainer.evaluate(all).at("loss");
  TensorBatchSource data(x, y, 32, /*shuffle=*/true, /*seed=*/2);
  History h = trainer.fit(data, quiet(150));
  const Logs logs = trainer.evaluate(all);
  MESSAGE("MSE " << start << " -> " << logs.at("loss") << " (mae " << logs.at("mae") << ")");
  CHECK(logs.at("loss") < 0.05 * start);
  // The mse metric is the loss; mae agrees with the predictions.
  CHECK(logs.at("mse") == doctest::Approx(logs.at("loss")).epsilon(1e-4));
  MeanAbsoluteError mae;
  mae.update(trainer.predict(x), y);
  CHECK(logs.at("mae") == doctest::Approx(mae.result()).epsilon(1e-5));
  CHECK(h["mae"].size() == 150);
  CHECK(h["mse"].back() < 0.05 * start);
  CHECK(logs.count("accuracy") == 0);
}

TEST_CASE("a multi-label model (sigmoid outputs, BCE) trains to under 0.3; accuracy means binary accuracy") {
  reset_layer_names();
  manual_seed(32);
  Generator gen(32);
  const std::int64_t n = 300, labels = 3;
  std::vector<float> xs, ys;
  for (std::int64_t i = 0; i < n; ++i) {
    double v[4];
    for (double& e : v) e = gen.normal();
    for (double e : v) xs.push_back(static_cast<float>(e));
    ys.push_back(v[0] + v[1] > 0 ? 1.f : 0.f);
    ys.push_back(v[2] * v[3] > 0 ? 1.f : 0.f);
    ys.push_back(v[0] - 0.5 * v[3] > 0.3 ? 1.f : 0.f);
  }
  const Tensor x = from_vector(xs, {n, 4}), y = from_vector(ys, {n, labels});
  auto model = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<InputLayer>(Shape{4}), std::make_shared<Dense>(32, "relu"),
      std::make_shared<Dense>(labels, "sigmoid")});
  Trainer trainer(model);
  trainer.compile(std::make_shared<Adam>(0.01), Loss::parse("binary_crossentropy"),
                  {"accuracy", "binary_accuracy", "precision", "recall", "auc"});
  TensorBatchSource data(x, y, 30, /*shuffle=*/true, /*seed=*/3);
  TensorBatchSource all(x, y, n);
  const double start = trainer.evaluate(all).at("loss");
  std::ostringstream progress;
  FitOptions options = quiet(120);
  options.verbose = Verbosity::Lines;
  options.out = &progress;
  options.validation = &all;
  History h = trainer.fit(data, options);
  // Progress lines and History carry every metric, val_ ones too.
  const std::string text = progress.str();
  for (const char* key : {" - accuracy: ", " - auc: ", " - precision: ", " - recall: ", " - val_auc: ",
                          " - val_binary_accuracy: "})
    CHECK_MESSAGE(text.find(key) != std::string::npos, key);
  CHECK(h["val_auc"].size() == 120);
  const Logs logs = trainer.evaluate(all);
  MESSAGE("BCE " << start << " -> " << logs.at("loss") << ", accuracy " << logs.at("accuracy") << ", auc "
                 << logs.at("auc") << ", precision " << logs.at("precision") << ", recall " << logs.at("recall"));
  CHECK(logs.at("loss") < 0.3);
  // "accuracy" with a binary cross-entropy is Keras's binary accuracy.
  CHECK(logs.at("accuracy") == logs.at("binary_accuracy"));
  const Tensor probs = trainer.predict(x);
  BinaryAccuracy acc;
  Precision precision;
  Recall recall;
  AUC auc;
  for (Metric* m : std::vector<Metric*>{&acc, &precision, &recall, &auc}) m->update(probs, y);
  CHECK(logs.at("accuracy") == doctest::Approx(acc.result()));
  CHECK(logs.at("precision") == doctest::Approx(precision.result()));
  CHECK(logs.at("recall") == doctest::Approx(recall.result()));
  CHECK(logs.at("auc") == doctest::Approx(auc.result()));
  CHECK(logs.at("accuracy") > 0.85);
  CHECK(logs.at("auc") > 0.9);
  for (const char* key : {"loss", "accuracy", "precision", "recall", "auc"}) CHECK(h[key].size() == 120);
}

TEST_CASE("a softmax model with a fused loss gives its metrics probabilities; top-k and auc by name") {
  reset_layer_names();
  manual_seed(33);
  Generator gen(33);
  const std::int64_t n = 90, c = 6;
  std::vector<float> xs;
  std::vector<std::int64_t> ys;
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t y = i % c;
    ys.push_back(y);
    for (std::int64_t j = 0; j < c; ++j) xs.push_back(static_cast<float>((j == y ? 1.0 : 0.0) + 0.8 * gen.normal()));
  }
  const Tensor x = from_vector(xs, {n, c}), labels = from_vector(ys);
  const Tensor y = one_hot(labels, c);
  auto model = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<InputLayer>(Shape{c}), std::make_shared<Dense>(c, "softmax")});
  Trainer trainer(model);
  trainer.compile(std::make_shared<Adam>(0.02), Loss::categorical_crossentropy(false, 0.1),
                  {"accuracy", "top_k_categorical_accuracy", "auc", "mse"});
  TensorBatchSource data(x, y, 16, true, 4);
  trainer.fit(data, quiet(20));
  TensorBatchSource all(x, y, n);
  const Logs logs = trainer.evaluate(all);
  const Tensor probs = trainer.predict(x);
  Accuracy acc;
  TopKCategoricalAccuracy top5;
  AUC auc;
  MeanSquaredError mse;
  for (Metric* m : std::vector<Metric*>{&acc, &top5, &auc, &mse}) m->update(probs, y);
  CHECK(logs.at("accuracy") == doctest::Approx(acc.result()));
  CHECK(logs.at("top_k_categorical_accuracy") == doctest::Approx(top5.result()));
  CHECK(logs.at("auc") == doctest::Approx(auc.result()));
  CHECK(logs.at("mse") == doctest::Approx(mse.result()));
  CHECK(logs.at("top_k_categorical_accuracy") >= logs.at("accuracy"));
  // The label-smoothed loss at the end equals the loss computed directly.
  ag::NoGradGuard no_grad;
  const double direct = Loss::categorical_crossentropy(false, 0.1)(ag::Variable(probs), y).data().item<double>();
  CHECK(logs.at("loss") == doctest::Approx(direct).epsilon(1e-4));
  // Sparse top-k with index targets.
  trainer.compile(std::make_shared<Adam>(0.02), Loss::sparse_categorical_crossentropy(),
                  {"sparse_top_k_categorical_accuracy", "acc"});
  TensorBatchSource sparse(x, labels, n);
  const Logs s = trainer.evaluate(sparse);
  CHECK(s.at("sparse_top_k_categorical_accuracy") == doctest::Approx(top5.result()));
  CHECK(s.at("accuracy") == doctest::Approx(acc.result()));
  CHECK_THROWS_AS(trainer.compile(std::make_shared<Adam>(), Loss::parse("mse"), {"mae", "mean_absolute_error", "mae"}),
                  ValueError);
}

TEST_CASE("sample weights from the source and custom losses in fit") {
  reset_layer_names();
  manual_seed(34);
  const std::int64_t n = 8;
  const Tensor x = normal({n, 3}, 0, 1), y = normal({n, 2}, 0, 1);
  std::vector<float> wv{1, 0, 2, 0.5f, 1, 1, 0, 3};
  const Tensor w = from_vector(wv);
  auto model = std::make_shared<Sequential>(
      std::vector<std::shared_ptr<Module>>{std::make_shared<InputLayer>(Shape{3}), std::make_shared<Dense>(2)});
  Trainer trainer(model);
  trainer.compile(std::make_shared<SGD>(0.0), Loss::mean_squared_error(), {});
  TensorBatchSource weighted(x, y, n);
  weighted.set_sample_weights(w);
  const Tensor out = trainer.predict(x);
  const double expected =
      Loss::mean_squared_error()(ag::Variable(out), y, w).data().item<double>();
  CHECK(trainer.evaluate(weighted).at("loss") == doctest::Approx(expected).epsilon(1e-5));
  CHECK(trainer.evaluate(weighted).at("loss") !=
        doctest::Approx(Loss::mean_squared_error()(ag::Variable(out), y).data().item<double>()));
  CHECK_THROWS_AS(weighted.set_sample_weights(ones({n + 1})), ShapeError);
  // A custom loss (a lambda) trains like a built-in one.
  trainer.compile(std::make_shared<Adam>(0.05),
                  [](const ag::Variable& o, const Tensor& t) {
                    ag::Variable e = ag::sub(o, ag::Variable(t));
                    return ag::mean(ag::mul(e, e), {-1});
                  },
                  {"mse"});
  TensorBatchSource data(x, y, 4);
  History h = trainer.fit(data, quiet(100));
  CHECK(trainer.loss().name() == "custom");
  CHECK(h["loss"].back() < 0.5 * h["loss"].front());
  CHECK(h["loss"].back() == doctest::Approx(h["mse"].back()).epsilon(1e-4));
}
