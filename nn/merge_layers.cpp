#include "nn/merge_layers.hpp"

#include "autograd/functions.hpp"
#include "core/error.hpp"

namespace petal::nn {

namespace {
std::string shapes_list(const std::vector<Shape>& shapes) {
  std::string out;
  for (std::size_t i = 0; i < shapes.size(); ++i) out += (i ? ", " : "") + keras_shape_str(shapes[i]);
  return out;
}
// op(op(xs[0], xs[1]), xs[2]) ...: the elementwise merges of several inputs.
ag::Variable fold(const std::vector<ag::Variable>& xs, ag::Variable (*op)(const ag::Variable&, const ag::Variable&)) {
  ag::Variable y = op(xs[0], xs[1]);
  for (std::size_t i = 2; i < xs.size(); ++i) y = op(y, xs[i]);
  return y;
}
}  // namespace

Merge::Merge(std::string type_name, std::string_view base_name, std::string name, bool exactly_two)
    : Module(std::move(type_name), base_name, std::move(name)), exactly_two_(exactly_two) {}

std::vector<Shape> Merge::build_multi(const std::vector<Shape>& shapes) {
  if (exactly_two_)
    PETAL_CHECK(shapes.size() == 2, ValueError, type_name(), " \"", name(), "\" takes exactly two inputs, got ",
                shapes.size());
  else
    PETAL_CHECK(shapes.size() >= 2, ValueError, type_name(), " \"", name(), "\" takes two inputs or more, got ",
                shapes.size());
  for (const Shape& s : shapes)
    PETAL_CHECK(s == shapes[0], ShapeError, type_name(), " \"", name(), "\": inputs must have one shape, got ",
                shapes_list(shapes));
  return {shapes[0]};
}

std::vector<ag::Variable> Merge::forward_multi(const std::vector<ag::Variable>& inputs) { return {merge(inputs)}; }

Add::Add(std::string name) : Merge("Add", "add", std::move(name)) {}
ag::Variable Add::merge(const std::vector<ag::Variable>& xs) { return fold(xs, &ag::add); }

Subtract::Subtract(std::string name) : Merge("Subtract", "subtract", std::move(name), true) {}
ag::Variable Subtract::merge(const std::vector<ag::Variable>& xs) { return ag::sub(xs[0], xs[1]); }

Multiply::Multiply(std::string name) : Merge("Multiply", "multiply", std::move(name)) {}
ag::Variable Multiply::merge(const std::vector<ag::Variable>& xs) { return fold(xs, &ag::mul); }

Average::Average(std::string name) : Merge("Average", "average", std::move(name)) {}
ag::Variable Average::merge(const std::vector<ag::Variable>& xs) {
  return ag::mul_scalar(fold(xs, &ag::add), 1.0 / static_cast<double>(xs.size()));
}

Maximum::Maximum(std::string name) : Merge("Maximum", "maximum", std::move(name)) {}
ag::Variable Maximum::merge(const std::vector<ag::Variable>& xs) { return fold(xs, &ag::maximum); }

Minimum::Minimum(std::string name) : Merge("Minimum", "minimum", std::move(name)) {}
ag::Variable Minimum::merge(const std::vector<ag::Variable>& xs) { return fold(xs, &ag::minimum); }

Concatenate::Concatenate(std::int64_t axis, std::string name)
    : Module("Concatenate", "concatenate", std::move(name)), axis_(axis) {}

std::vector<Shape> Concatenate::build_multi(const std::vector<Shape>& shapes) {
  PETAL_CHECK(shapes.size() >= 2, ValueError, "Concatenate \"", name(), "\" takes two inputs or more, got ",
              shapes.size());
  const auto rank = static_cast<std::int64_t>(shapes[0].size()) + 1;  // with the batch axis
  const std::int64_t axis = axis_ < 0 ? axis_ + rank : axis_;
  PETAL_CHECK(axis >= 1 && axis < rank, ValueError, "Concatenate \"", name(), "\": axis ", axis_,
              " is not a non-batch axis of inputs ", keras_shape_str(shapes[0]));
  Shape out = shapes[0];
  const auto k = static_cast<std::size_t>(axis - 1);
  out[k] = 0;
  for (const Shape& s : shapes) {
    bool compatible = s.size() == shapes[0].size();
    for (std::size_t d = 0; compatible && d < s.size(); ++d) compatible = d == k || s[d] == shapes[0][d];
    PETAL_CHECK(compatible, ShapeError, "Concatenate \"", name(), "\": inputs must match except along axis ", axis_,
                ", got ", shapes_list(shapes));
    out[k] += s[k];
  }
  batched_axis_ = axis;
  return {out};
}

std::vector<ag::Variable> Concatenate::forward_multi(const std::vector<ag::Variable>& inputs) {
  return {ag::concat(inputs, batched_axis_)};
}

}  // namespace petal::nn
