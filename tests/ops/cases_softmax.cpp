// Registry entries of the softmax family over the last axis: softmax,
// log_softmax, their backward helpers, and the fused softmax cross-entropy
// with class-index and probability targets.
#include <cmath>
#include <limits>

#include "autograd/functions.hpp"
#include "kernels/ops.hpp"
#include "tests/ops/op_registry.hpp"

namespace petal::test {
namespace {

// log_softmax of every row of the last axis, in double (max-shifted).
std::vector<double> log_softmax_rows(const Tensor& a) {
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
  const std::vector<double> log_p = log_softmax_rows(logits);
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
      Reference r{in[0].shape(), log_softmax_rows(in[0]), {}};
      for (double& v : r.values) v = std::exp(v);
      return r;
    };
    soft.differentiable = [](const std::vector<ag::Variable>& v) { return ag::softmax(v[0]); };
    out.push_back(soft);

    OpCase log_soft = softmax_case("log_softmax", input);
    log_soft.forward = [](const Inputs& in) { return ops::log_softmax(in[0]); };
    log_soft.reference = [](const Inputs& in) { return Reference{in[0].shape(), log_softmax_rows(in[0]), {}}; };
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
      std::vector<double> y = log_softmax_rows(in[1]);
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
      const std::vector<double> g = in[0].to_vector<double>(), log_y = log_softmax_rows(in[1]);
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

  // Fused cross-entropy: class indices (int64) and soft targets (rows of a softmax).
  for (const Shape& shape : {Shape{1, 1}, Shape{1, 5}, Shape{3, 7}, Shape{4, 16}, Shape{6, 17}, Shape{130, 5},
                             Shape{131, 1000}, Shape{2, 1001}}) {
    const std::int64_t n = shape[0], classes = shape[1];
    OpCase hard = softmax_case("softmax_cross_entropy", InputSpec{shape, -4.0, 4.0});
    hard.attributes = "class indices";
    hard.inputs.push_back(InputSpec({n}, 0.0, static_cast<double>(classes)).of_dtype(DType::Int64).constant());
    hard.forward = [](const Inputs& in) { return ops::softmax_cross_entropy(in[0], in[1]); };
    hard.reference = [](const Inputs& in) {
      const std::int64_t rows = in[0].shape()[0], k = in[0].shape()[1];
      const std::vector<double> labels = in[1].to_vector<double>();
      std::vector<double> onehot(rows * k, 0.0);
      for (std::int64_t r = 0; r < rows; ++r) onehot[r * k + static_cast<std::int64_t>(labels[r])] = 1.0;
      return cross_entropy_reference(in[0], onehot);
    };
    // autograd's form is the batch mean; gradcheck passes the labels as float64.
    hard.differentiable = [](const std::vector<ag::Variable>& v) {
      return ag::softmax_cross_entropy(v[0], v[1].data().to(DType::Int64));
    };
    hard.atol_float32 = 1e-6;
    out.push_back(hard);

    OpCase soft = softmax_case("softmax_cross_entropy", InputSpec{shape, -4.0, 4.0});
    soft.attributes = "soft targets";
    soft.inputs.push_back(InputSpec(shape).constant());
    soft.forward = [](const Inputs& in) { return ops::softmax_cross_entropy(in[0], ops::softmax(in[1])); };
    soft.reference = [](const Inputs& in) {
      std::vector<double> target = log_softmax_rows(in[1]);
      for (double& v : target) v = std::exp(v);
      return cross_entropy_reference(in[0], target);
    };
    soft.differentiable = [](const std::vector<ag::Variable>& v) {
      return ag::softmax_cross_entropy(v[0], ops::softmax(v[1].data()));
    };
    soft.atol_float32 = 1e-6;
    out.push_back(soft);
  }
  return out;
}

}  // namespace petal::test
