// Registry entries of the elementwise family: binary ops over every broadcast
// kind, ops with a scalar, unary ops, and the fused backward helpers.
#include <algorithm>
#include <cmath>
#include <tuple>

#include "autograd/functions.hpp"
#include "kernels/ops.hpp"
#include "tests/ops/op_registry.hpp"

namespace petal::test {
namespace {

using Scalar1 = double (*)(double);

ReferenceFn binary_reference(std::function<double(double, double)> f) {
  return [f](const Inputs& in) {
    Reference r;
    r.shape = broadcast_shapes(in[0].shape(), in[1].shape(), "binary_reference");
    r.values = reference_binary(in[0], in[1], r.shape, f);
    return r;
  };
}

ReferenceFn unary_reference(std::function<double(double)> f) {
  return [f](const Inputs& in) {
    Reference r;
    r.shape = in[0].shape();
    r.values = in[0].to_vector<double>();
    for (double& v : r.values) v = f(v);
    return r;
  };
}

// Shape pairs covering every broadcast kind, lengths around the SIMD widths
// (8 and 16 floats) and primes; the last ones are big enough to be split
// over two threads.
const std::vector<std::pair<Shape, Shape>> broadcast_pairs = {
    {{1}, {1}},        {{7}, {7}},         {{8}, {8}},           {{16}, {16}},           {{17}, {17}},
    {{33}, {33}},      {{3, 37}, {3, 37}}, {{5, 19}, {19}},      {{4, 16}, {16}},        {{6, 1}, {1, 13}},
    {{9, 11}, {}},     {{}, {9, 11}},      {{9, 11}, {1}},       {{1, 1, 7}, {3, 1, 7}}, {{2, 1, 5}, {4, 1}},
    {{7, 1}, {7, 23}}, {{23}, {5, 1, 23}}, {{600, 129}, {129}}, {{70001}, {70001}},     {{557, 131}, {557, 1}},
};

const std::vector<Shape> unary_shapes = {{1}, {7}, {8}, {15}, {16}, {17}, {3, 5, 7}, {1031}, {70001}};

void add_binary(std::vector<OpCase>& out, const char* name, Tensor (*op)(const Tensor&, const Tensor&),
                std::function<double(double, double)> f, DifferentiableFn differentiable,
                double divisor_low = -2.0) {
  for (const auto& [sa, sb] : broadcast_pairs) {
    OpCase c;
    c.family = "elementwise";
    c.name = name;
    // Divisors kept away from zero so the relative tolerance stays meaningful.
    c.inputs = {InputSpec{sa}, InputSpec{sb, divisor_low, 2.0}};
    c.forward = [op](const Inputs& in) { return op(in[0], in[1]); };
    c.reference = binary_reference(f);
    c.differentiable = differentiable;
    out.push_back(c);
  }
  // Views: column-major on either side, stride 2, stride 0, and a strided
  // operand with a row broadcast.
  for (const auto& [a, b] : std::vector<std::pair<InputSpec, InputSpec>>{
           {InputSpec({21, 13}).viewed(Layout::Transposed), InputSpec({21, 13}, divisor_low, 2.0)},
           {InputSpec({21, 13}), InputSpec({21, 13}, divisor_low, 2.0).viewed(Layout::Transposed)},
           {InputSpec({13, 10}).viewed(Layout::EveryOther), InputSpec({13, 10}, divisor_low, 2.0)},
           {InputSpec({9, 12}), InputSpec({9, 12}, divisor_low, 2.0).viewed(Layout::EveryOther)},
           {InputSpec({4, 5, 17}).viewed(Layout::Expanded), InputSpec({5, 17}, divisor_low, 2.0)},
           {InputSpec({21, 13}).viewed(Layout::Transposed), InputSpec({13}, divisor_low, 2.0)}}) {
    OpCase c;
    c.family = "elementwise";
    c.name = name;
    c.inputs = {a, b};
    c.forward = [op](const Inputs& in) { return op(in[0], in[1]); };
    c.reference = binary_reference(f);
    c.differentiable = differentiable;
    out.push_back(c);
  }
}

void add_unary(std::vector<OpCase>& out, const char* name, std::function<Tensor(const Tensor&)> op, Scalar1 f,
               DifferentiableFn differentiable, double low = -8.0, double high = 8.0) {
  std::vector<InputSpec> specs;
  for (const Shape& shape : unary_shapes) specs.push_back(InputSpec{shape, low, high});
  specs.push_back(InputSpec({23, 19}, low, high).transposed_view());
  for (const InputSpec& spec : specs) {
    OpCase c;
    c.family = "elementwise";
    c.name = name;
    c.inputs = {spec};
    c.forward = [op](const Inputs& in) { return op(in[0]); };
    c.reference = unary_reference(f);
    c.differentiable = differentiable;
    // exp, log, tanh and sigmoid use polynomial approximations in float32.
    c.rtol_float32 = 1e-5;
    out.push_back(c);
  }
}

void add_scalar_op(std::vector<OpCase>& out, const std::string& name, const std::string& attributes,
                   std::function<Tensor(const Tensor&)> op, std::function<double(double)> f,
                   DifferentiableFn differentiable, double low, double high, double rtol_float32) {
  for (const Shape& shape : unary_shapes) {
    OpCase c;
    c.family = "elementwise";
    c.name = name;
    c.attributes = attributes;
    c.inputs = {InputSpec{shape, low, high}};
    c.forward = [op](const Inputs& in) { return op(in[0]); };
    c.reference = unary_reference(f);
    c.differentiable = differentiable;
    c.rtol_float32 = rtol_float32;
    out.push_back(c);
  }
}

// The fused backward helpers: (grad, saved) -> grad * local derivative.
void add_backward_helper(std::vector<OpCase>& out, const char* name, Tensor (*op)(const Tensor&, const Tensor&),
                         std::function<double(double, double)> f, double saved_low, double saved_high,
                         double rtol_float32 = 2e-6) {
  for (const Shape& shape : {Shape{1}, Shape{16}, Shape{17}, Shape{3, 33}, Shape{70000}}) {
    OpCase c;
    c.family = "elementwise";
    c.name = name;
    c.inputs = {InputSpec{shape}, InputSpec{shape, saved_low, saved_high}};
    c.forward = [op](const Inputs& in) { return op(in[0], in[1]); };
    c.reference = binary_reference(f);
    c.rtol_float32 = rtol_float32;
    out.push_back(c);
  }
  OpCase strided;
  strided.family = "elementwise";
  strided.name = name;
  strided.inputs = {InputSpec({7, 11}).transposed_view(), InputSpec({7, 11}, saved_low, saved_high)};
  strided.forward = [op](const Inputs& in) { return op(in[0], in[1]); };
  strided.reference = binary_reference(f);
  strided.rtol_float32 = rtol_float32;
  out.push_back(strided);
}

}  // namespace

std::vector<OpCase> elementwise_cases() {
  std::vector<OpCase> out;
  add_binary(out, "add", &ops::add, [](double a, double b) { return a + b; },
             [](const std::vector<ag::Variable>& v) { return ag::add(v[0], v[1]); });
  add_binary(out, "sub", &ops::sub, [](double a, double b) { return a - b; },
             [](const std::vector<ag::Variable>& v) { return ag::sub(v[0], v[1]); });
  add_binary(out, "mul", &ops::mul, [](double a, double b) { return a * b; },
             [](const std::vector<ag::Variable>& v) { return ag::mul(v[0], v[1]); });
  add_binary(out, "div", &ops::div, [](double a, double b) { return a / b; },
             [](const std::vector<ag::Variable>& v) { return ag::div(v[0], v[1]); }, 0.5);
  add_binary(out, "maximum", &ops::maximum, [](double a, double b) { return std::max(a, b); },
             [](const std::vector<ag::Variable>& v) { return ag::maximum(v[0], v[1]); });
  add_binary(out, "minimum", &ops::minimum, [](double a, double b) { return std::min(a, b); },
             [](const std::vector<ag::Variable>& v) { return ag::minimum(v[0], v[1]); });

  add_unary(out, "neg", [](const Tensor& t) { return ops::neg(t); }, [](double x) { return -x; },
            [](const std::vector<ag::Variable>& v) { return ag::neg(v[0]); });
  add_unary(out, "exp", [](const Tensor& t) { return ops::exp(t); }, [](double x) { return std::exp(x); },
            [](const std::vector<ag::Variable>& v) { return ag::exp(v[0]); });
  add_unary(out, "log", [](const Tensor& t) { return ops::log(t); }, [](double x) { return std::log(x); },
            [](const std::vector<ag::Variable>& v) { return ag::log(v[0]); }, 1e-3, 8.0);
  add_unary(out, "sqrt", [](const Tensor& t) { return ops::sqrt(t); }, [](double x) { return std::sqrt(x); },
            [](const std::vector<ag::Variable>& v) { return ag::sqrt(v[0]); }, 1e-3, 8.0);
  add_unary(out, "abs", [](const Tensor& t) { return ops::abs(t); }, [](double x) { return std::abs(x); },
            [](const std::vector<ag::Variable>& v) { return ag::abs(v[0]); });
  add_unary(out, "relu", [](const Tensor& t) { return ops::relu(t); }, [](double x) { return std::max(x, 0.0); },
            [](const std::vector<ag::Variable>& v) { return ag::relu(v[0]); });
  add_unary(out, "relu6", [](const Tensor& t) { return ops::relu6(t); },
            [](double x) { return std::min(std::max(x, 0.0), 6.0); },
            [](const std::vector<ag::Variable>& v) { return ag::relu6(v[0]); });
  add_unary(out, "sigmoid", [](const Tensor& t) { return ops::sigmoid(t); },
            [](double x) { return 1.0 / (1.0 + std::exp(-x)); },
            [](const std::vector<ag::Variable>& v) { return ag::sigmoid(v[0]); });
  add_unary(out, "tanh", [](const Tensor& t) { return ops::tanh(t); }, [](double x) { return std::tanh(x); },
            [](const std::vector<ag::Variable>& v) { return ag::tanh(v[0]); });
  add_unary(out, "clamp", [](const Tensor& t) { return ops::clamp(t, -1.5, 2.5); },
            [](double x) { return std::min(std::max(x, -1.5), 2.5); },
            [](const std::vector<ag::Variable>& v) { return ag::clamp(v[0], -1.5, 2.5); }, -4.0, 4.0);
  add_unary(out, "gelu", [](const Tensor& t) { return ops::gelu(t); },
            [](double x) { return 0.5 * x * std::erfc(-x / std::sqrt(2.0)); },
            [](const std::vector<ag::Variable>& v) { return ag::gelu(v[0]); });
  add_unary(out, "silu", [](const Tensor& t) { return ops::silu(t); },
            [](double x) { return x / (1.0 + std::exp(-x)); },
            [](const std::vector<ag::Variable>& v) { return ag::silu(v[0]); });
  add_unary(out, "softplus", [](const Tensor& t) { return ops::softplus(t); },
            [](double x) { return std::log1p(std::exp(-std::abs(x))) + std::max(x, 0.0); },
            [](const std::vector<ag::Variable>& v) { return ag::softplus(v[0]); });
  add_unary(out, "leaky_relu", [](const Tensor& t) { return ops::leaky_relu(t); },
            [](double x) { return x > 0 ? x : 0.2 * x; },
            [](const std::vector<ag::Variable>& v) { return ag::leaky_relu(v[0]); });
  for (double slope : {0.3, -0.5, 1.5}) {
    add_scalar_op(out, "leaky_relu", "negative_slope " + std::to_string(slope),
                  [slope](const Tensor& t) { return ops::leaky_relu(t, slope); },
                  [slope](double x) { return x > 0 ? x : slope * x; },
                  [slope](const std::vector<ag::Variable>& v) { return ag::leaky_relu(v[0], slope); }, -2.0, 2.0, 2e-6);
  }
  // softplus and gelu far out in both tails: exact asymptotes, no overflow.
  for (const auto& [name, op, f] : {std::tuple<const char*, Tensor (*)(const Tensor&), Scalar1>{
                                        "softplus", &ops::softplus,
                                        [](double x) { return std::log1p(std::exp(-std::abs(x))) + std::max(x, 0.0); }},
                                    std::tuple<const char*, Tensor (*)(const Tensor&), Scalar1>{
                                        "gelu", &ops::gelu, [](double x) { return 0.5 * x * std::erfc(-x / std::sqrt(2.0)); }},
                                    std::tuple<const char*, Tensor (*)(const Tensor&), Scalar1>{
                                        "silu", &ops::silu, [](double x) { return x / (1.0 + std::exp(-x)); }}}) {
    OpCase c;
    c.family = "elementwise";
    c.name = name;
    c.attributes = "tails";
    c.inputs = {InputSpec{{64}, -100.0, 100.0}};
    c.forward = [op = op](const Inputs& in) { return op(in[0]); };
    c.reference = unary_reference(f);
    c.rtol_float32 = 1e-5;
    out.push_back(c);
  }
  // pow of two tensors: positive bases (the derivative in the exponent takes
  // log(a)), exponents of either sign, broadcast either way and strided.
  for (const auto& [a, b] : std::vector<std::pair<InputSpec, InputSpec>>{
           {InputSpec({7}, 0.25, 2.25), InputSpec({7})},
           {InputSpec({17}, 0.25, 2.25), InputSpec({17})},
           {InputSpec({3, 37}, 0.25, 2.25), InputSpec({37})},
           {InputSpec({6, 1}, 0.25, 2.25), InputSpec({1, 13})},
           {InputSpec({}, 0.25, 2.25), InputSpec({5, 3})},
           {InputSpec({9, 11}, 0.25, 2.25).viewed(Layout::Transposed), InputSpec({9, 11}).viewed(Layout::EveryOther)},
           {InputSpec({557, 131}, 0.25, 2.25), InputSpec({557, 1})}}) {
    OpCase c;
    c.family = "elementwise";
    c.name = "pow";
    c.inputs = {a, b};
    c.forward = [](const Inputs& in) { return ops::pow(in[0], in[1]); };
    c.reference = binary_reference([](double x, double y) { return std::pow(x, y); });
    c.differentiable = [](const std::vector<ag::Variable>& v) { return ag::pow(v[0], v[1]); };
    c.rtol_float32 = 1e-5;
    out.push_back(c);
  }
  // Saturation: large magnitudes give exact 0, 1 or -1, never NaN.
  struct Saturating {
    const char* name;
    Tensor (*op)(const Tensor&);
    Scalar1 f;
  };
  for (const Saturating& s : {Saturating{"sigmoid", &ops::sigmoid, [](double x) { return 1.0 / (1.0 + std::exp(-x)); }},
                              Saturating{"tanh", &ops::tanh, [](double x) { return std::tanh(x); }},
                              Saturating{"exp", &ops::exp, [](double x) { return std::exp(x); }}}) {
    OpCase c;
    c.family = "elementwise";
    c.name = s.name;
    c.attributes = "saturating";
    c.inputs = {InputSpec{{64}, -100.0, 100.0}};
    c.forward = [op = s.op](const Inputs& in) { return op(in[0]); };
    c.reference = unary_reference(s.f);
    c.rtol_float32 = 1e-5;
    out.push_back(c);
  }

  {
    // e^x is a finite float up to x = 88.7228 (xsimd's exp alone gives inf above 88.3763).
    OpCase c;
    c.family = "elementwise";
    c.name = "exp";
    c.attributes = "near float overflow";
    c.inputs = {InputSpec({64}, 88.0, 88.72)};
    c.dtypes = {DType::Float32};
    c.forward = [](const Inputs& in) { return ops::exp(in[0]); };
    c.reference = unary_reference([](double x) { return std::exp(x); });
    c.rtol_float32 = 1e-5;
    out.push_back(c);
  }

  add_scalar_op(out, "add_scalar", "1.5", [](const Tensor& t) { return ops::add_scalar(t, 1.5); },
                [](double x) { return x + 1.5; },
                [](const std::vector<ag::Variable>& v) { return ag::add_scalar(v[0], 1.5); }, -2.0, 2.0, 2e-6);
  add_scalar_op(out, "mul_scalar", "-3.25", [](const Tensor& t) { return ops::mul_scalar(t, -3.25); },
                [](double x) { return x * -3.25; },
                [](const std::vector<ag::Variable>& v) { return ag::mul_scalar(v[0], -3.25); }, -2.0, 2.0, 2e-6);
  for (double e : {2.0, 0.5, -1.0, 3.0, 1.5}) {
    // Exponents with exact forms (2, 0.5, -1) and the general pow.
    add_scalar_op(out, "pow_scalar", "exponent " + std::to_string(e),
                  [e](const Tensor& t) { return ops::pow_scalar(t, e); }, [e](double x) { return std::pow(x, e); },
                  [e](const std::vector<ag::Variable>& v) { return ag::pow_scalar(v[0], e); }, 0.25, 2.25, 1e-5);
  }
  add_scalar_op(out, "pow_scalar", "exponent 2, negative bases", [](const Tensor& t) { return ops::pow_scalar(t, 2.0); },
                [](double x) { return x * x; },
                [](const std::vector<ag::Variable>& v) { return ag::pow_scalar(v[0], 2.0); }, -2.0, 2.0, 2e-6);

  add_backward_helper(out, "relu_backward", &ops::relu_backward,
                      [](double g, double x) { return x > 0 ? g : 0.0; }, -2.0, 8.0);
  add_backward_helper(out, "relu6_backward", &ops::relu6_backward,
                      [](double g, double x) { return x > 0 && x < 6 ? g : 0.0; }, -2.0, 8.0);
  add_backward_helper(out, "sigmoid_backward", &ops::sigmoid_backward,
                      [](double g, double y) { return g * y * (1 - y); }, 0.0, 1.0);
  add_backward_helper(out, "tanh_backward", &ops::tanh_backward,
                      [](double g, double y) { return g * (1 - y * y); }, -1.0, 1.0);
  add_backward_helper(out, "abs_backward", &ops::abs_backward,
                      [](double g, double x) { return x > 0 ? g : (x < 0 ? -g : 0.0); }, -2.0, 2.0);
  add_backward_helper(out, "gelu_backward", &ops::gelu_backward, [](double g, double x) {
    return g * (0.5 * std::erfc(-x / std::sqrt(2.0)) + x * std::exp(-0.5 * x * x) / std::sqrt(2.0 * M_PI));
  }, -8.0, 8.0, 1e-5);
  add_backward_helper(out, "silu_backward", &ops::silu_backward, [](double g, double x) {
    const double s = 1.0 / (1.0 + std::exp(-x));
    return g * s * (1.0 + x * (1.0 - s));
  }, -8.0, 8.0, 1e-5);
  add_backward_helper(out, "softplus_backward", &ops::softplus_backward,
                      [](double g, double x) { return g / (1.0 + std::exp(-x)); }, -8.0, 8.0, 1e-5);
  return out;
}

}  // namespace petal::test
