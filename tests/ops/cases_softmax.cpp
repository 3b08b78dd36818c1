// Registry entries of the softmax family over the last axis: softmax,
// log_softmax, their backward helpers, and the fused softmax cross-entropy
// with class-index and probability targets.
#include <cmath>
#include <limits>
#include <string>

#include "autograd/functions.hpp"
#include "kernels/ops.hpp"
#include "tests/ops/op_registry.hpp"

namespace petal::test {

// Max-shifted, so logits like +-1000 stay finite.
std::vector<double> reference_log_softmax(const Tensor& a) {
  const std::vector<double> v = a.to_vector<double>();
  const std::int64_t n = a.shape().back();
  std::vector<double> out(v.size());
  for (std::size_t r = 0; r < v.size(); r += n) {
    double m = -std::numeric_limits<double>::infinity(), s = 0;
    for (std::int64_t i = 0; i < n; ++i) m = std::max(m, v[r + i]);
    for (std::int64_t i = 0; i < n; ++i) s += std::exp(v[r + i] - m);
    for (std::int64_t i = 0; i < n; ++i) out[r + i] = v[r + i] - m - std::log(s);
  }
  return out;
}

namespace {

const std::vector<Shape> row_shapes = {{1},     {1, 1},    {3, 7},  {4, 8},     {2, 16},  {5, 17},
                                       {2, 3, 33}, {1, 1000}, {97, 5}, {700, 104}, {2, 1001}};

OpCase softmax_case(const char* name, InputSpec input) {
  OpCase c;
  c.family = "softmax";
  c.name = name;
  c.inputs = {input};
  c.rtol_float32 = 1e-5;
  return c;
}

// Cross-entropy per row against a target probability of each class.
Reference cross_entropy_reference(const Tensor& logits, const std::vector<double>& target_probs) {
  const std::int64_t n = logits.shape()[0], classes = logits.shape()[1];
  const std::vector<double> log_p = reference_log_softmax(logits);
  Reference r;
  r.shape = {n};
  for (std::int64_t row = 0; row < n; ++row) {
    double loss = 0;
    for (std::int64_t i = 0; i < classes; ++i) loss -= target_probs[row * classes + i] * log_p[row * classes + i];
    r.values.push_back(loss);
  }
  return r;
}

}  // namespace

std::vector<OpCase> softmax_cases() {
  std::vector<OpCase> out;
  std::vector<InputSpec> inputs;
  for (const Shape& shape : row_shapes) inputs.push_back(InputSpec{shape, -5.0, 5.0});
  inputs.push_back(InputSpec({6, 9}, -5.0, 5.0).transposed_view());  // read through strides
  inputs.push_back(InputSpec{{2, 4}, -1000.0, 1000.0});      // stable for logits like +-1000

  for (const InputSpec& input : inputs) {
    OpCase soft = softmax_case("softmax", input);
    soft.forward = [](const Inputs& in) { return ops::softmax(in[0]); };
    soft.reference = [](const Inputs& in) {
      Reference r{in[0].shape(), reference_log_softmax(in[0]), {}};
      for (double& v : r.values) v = std::exp(v);
      return r;
    };
    soft.differentiable = [](const std::vector<ag::Variable>& v) { return ag::softmax(v[0]); };
    out.push_back(soft);

    OpCase log_soft = softmax_case("log_softmax", input);
    log_soft.forward = [](const Inputs& in) { return ops::log_softmax(in[0]); };
    log_soft.reference = [](const Inputs& in) { return Reference{in[0].shape(), reference_log_softmax(in[0]), {}}; };
    log_soft.differentiable = [](const std::vector<ag::Variable>& v) { return ag::log_softmax(v[0]); };
    // Large logits: log_softmax ~ -2000 carries float32 rounding of that size.
    log_soft.atol_float32 = input.high > 100 ? 1e-4 : 1e-6;
    out.push_back(log_soft);
  }

  // Backward helpers, fed the forward results of x (input 1) and a gradient.
  for (const Shape& shape : row_shapes) {
    OpCase soft = softmax_case("softmax_backward", InputSpec{shape});
    soft.inputs.push_back(InputSpec{shape, -3.0, 3.0});
    soft.forward = [](const Inputs& in) { return ops::softmax_backward(in[0], ops::softmax(in[1])); };
    soft.reference = [](const Inputs& in) {
      const std::vector<double> g = in[0].to_vector<double>();
      std::vector<double> y = reference_log_softmax(in[1]);
      for (double& v : y) v = std::exp(v);
      const std::int64_t n = in[0].shape().back();
      Reference r{in[0].shape(), std::vector<double>(g.size()), {}};
      for (std::size_t row = 0; row < g.size(); row += n) {
        double dot = 0;
        for (std::int64_t i = 0; i < n; ++i) dot += g[row + i] * y[row + i];
        for (std::int64_t i = 0; i < n; ++i) r.values[row + i] = y[row + i] * (g[row + i] - dot);
      }
      return r;
    };
    soft.rtol_float32 = 1e-4;
    soft.atol_float32 = 1e-6;
    out.push_back(soft);

    OpCase log_soft = softmax_case("log_softmax_backward", InputSpec{shape});
    log_soft.inputs.push_back(InputSpec{shape, -3.0, 3.0});
    log_soft.forward = [](const Inputs& in) { return ops::log_softmax_backward(in[0], ops::log_softmax(in[1])); };
    log_soft.reference = [](const Inputs& in) {
      const std::vector<double> g = in[0].to_vector<double>(), log_y = reference_log_softmax(in[1]);
      const std::int64_t n = in[0].shape().back();
      Reference r{in[0].shape(), std::vector<double>(g.size()), {}};
      for (std::size_t row = 0; row < g.size(); row += n) {
        double sum_g = 0;
        for (std::int64_t i = 0; i < n; ++i) sum_g += g[row + i];
        for (std::int64_t i = 0; i < n; ++i) r.values[row + i] = g[row + i] - std::exp(log_y[row + i]) * sum_g;
      }
      return r;
    };
    log_soft.rtol_float32 = 1e-4;
    log_soft.atol_float32 = 1e-5;
    out.push_back(log_soft);
  }

  // Fused cross-entropy, its probabilities and its backward, with class
  // indices (int64), one-hot rows and soft targets (rows of a softmax of input 1).
  enum class Target { Indices, OneHot, Soft };
  // Each row's probability of every class under a target kind.
  auto target_probs = [](Target kind, const Tensor& logits, const Tensor& target) {
    const std::int64_t rows = logits.shape()[0], k = logits.shape()[1];
    if (kind == Target::Soft) {
      std::vector<double> p = reference_log_softmax(target);
      for (double& v : p) v = std::exp(v);
      return p;
    }
    const std::vector<double> labels = target.to_vector<double>();
    std::vector<double> onehot(rows * k, 0.0);
    for (std::int64_t r = 0; r < rows; ++r) onehot[r * k + static_cast<std::int64_t>(labels[r])] = 1.0;
    return onehot;
  };
  // The target tensor the op takes for the drawn input.
  auto op_target = [](Target kind, const Tensor& logits, const Tensor& drawn) {
    if (kind == Target::Soft) return ops::softmax(drawn);
    if (kind == Target::Indices) return drawn;
    const std::int64_t rows = logits.shape()[0], k = logits.shape()[1];
    const std::vector<double> labels = drawn.to_vector<double>();
    std::vector<double> onehot(rows * k, 0.0);
    for (std::int64_t r = 0; r < rows; ++r) onehot[r * k + static_cast<std::int64_t>(labels[r])] = 1.0;
    return from_vector(onehot, {rows, k}).to(logits.dtype()).to(logits.device());
  };
  std::vector<InputSpec> logits_specs;
  for (const Shape& shape : {Shape{1, 1}, Shape{1, 5}, Shape{3, 7}, Shape{4, 16}, Shape{6, 17}, Shape{130, 5},
                             Shape{131, 1000}, Shape{2, 1001}})
    logits_specs.push_back(InputSpec(shape, -4.0, 4.0));
  logits_specs.push_back(InputSpec({5, 7}, -4.0, 4.0).viewed(Layout::Transposed));
  for (const InputSpec& logits : logits_specs) {
    const std::int64_t n = logits.shape[0], classes = logits.shape[1];
    for (Target kind : {Target::Indices, Target::OneHot, Target::Soft}) {
      const InputSpec target = kind == Target::Soft
                                   ? InputSpec(logits.shape).constant()
                                   : InputSpec({n}, 0.0, static_cast<double>(classes)).of_dtype(DType::Int64).constant();
      const std::string what = kind == Target::Indices ? "class indices" : kind == Target::OneHot ? "one-hot" : "soft targets";

      OpCase loss = softmax_case("softmax_cross_entropy", logits);
      loss.attributes = what;
      loss.inputs.push_back(target);
      loss.forward = [kind, op_target](const Inputs& in) {
        return ops::softmax_cross_entropy(in[0], op_target(kind, in[0], in[1]));
      };
      loss.reference = [kind, target_probs](const Inputs& in) {
        return cross_entropy_reference(in[0], target_probs(kind, in[0], in[1]));
      };
      // autograd's form is the batch mean; gradcheck passes the drawn inputs as float64.
      loss.differentiable = [kind, op_target](const std::vector<ag::Variable>& v) {
        const Tensor drawn = kind == Target::Soft ? v[1].data() : v[1].data().to(DType::Int64);
        return ag::softmax_cross_entropy(v[0], op_target(kind, v[0].data(), drawn));
      };
      loss.atol_float32 = 1e-6;
      out.push_back(loss);

      // The probabilities the fused op hands to the backward pass.
      OpCase probs = softmax_case("softmax_cross_entropy", logits);
      probs.attributes = what + ", probs";
      probs.inputs.push_back(target);
      probs.forward = [kind, op_target](const Inputs& in) {
        Tensor p;
        ops::softmax_cross_entropy(in[0], op_target(kind, in[0], in[1]), &p);
        return p;
      };
      probs.reference = [](const Inputs& in) {
        Reference r{in[0].shape(), reference_log_softmax(in[0]), {}};
        for (double& v : r.values) v = std::exp(v);
        return r;
      };
      out.push_back(probs);

      // d(loss)/d(logits) for a gradient of each row's loss (input 2).
      OpCase backward = softmax_case("softmax_cross_entropy_backward", logits);
      backward.attributes = what;
      backward.inputs.push_back(target);
      backward.inputs.push_back(InputSpec({n}));
      backward.forward = [kind, op_target](const Inputs& in) {
        const Tensor t = op_target(kind, in[0], in[1]);
        Tensor p;
        ops::softmax_cross_entropy(in[0], t, &p);
        return ops::softmax_cross_entropy_backward(in[2], p, t);
      };
      backward.reference = [kind, target_probs](const Inputs& in) {
        const std::int64_t rows = in[0].shape()[0], k = in[0].shape()[1];
        const std::vector<double> t = target_probs(kind, in[0], in[1]), g = in[2].to_vector<double>();
        std::vector<double> p = reference_log_softmax(in[0]);
        Reference r{in[0].shape(), std::vector<double>(p.size()), {}};
        for (std::int64_t row = 0; row < rows; ++row)
          for (std::int64_t i = 0; i < k; ++i)
            r.values[row * k + i] = g[row] * (std::exp(p[row * k + i]) - t[row * k + i]);
        return r;
      };
      backward.atol_float32 = 1e-6;
      out.push_back(backward);
    }
  }
  return out;
}

}  // namespace petal::test
