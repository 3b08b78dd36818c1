// Keras's merge layers, which take several tensors of one shape and give one:
// Add, Subtract (exactly two), Multiply, Average, Maximum, Minimum, and
// Concatenate (equal shapes except along its axis). Called on a vector of
// symbolic tensors in a functional model, or of Variables eagerly:
//
//   auto sum = nn::layer<Add>()({x, shortcut});
//   auto both = nn::layer<Concatenate>()({left, right});  // last axis
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nn/module.hpp"

namespace petal::nn {

// What the elementwise merges share: two inputs or more (Subtract: two) of
// one shape; the output has that shape.
class Merge : public Module {
 protected:
  Merge(std::string type_name, std::string_view base_name, std::string name, bool exactly_two = false);
  std::vector<Shape> build_multi(const std::vector<Shape>& input_shapes) override;
  std::vector<ag::Variable> forward_multi(const std::vector<ag::Variable>& inputs) override;
  virtual ag::Variable merge(const std::vector<ag::Variable>& inputs) = 0;

 private:
  bool exactly_two_;
};

class Add : public Merge {
 public:
  explicit Add(std::string name = "");

 protected:
  ag::Variable merge(const std::vector<ag::Variable>& inputs) override;
};

// inputs[0] - inputs[1].
class Subtract : public Merge {
 public:
  explicit Subtract(std::string name = "");

 protected:
  ag::Variable merge(const std::vector<ag::Variable>& inputs) override;
};

class Multiply : public Merge {
 public:
  explicit Multiply(std::string name = "");

 protected:
  ag::Variable merge(const std::vector<ag::Variable>& inputs) override;
};

class Average : public Merge {
 public:
  explicit Average(std::string name = "");

 protected:
  ag::Variable merge(const std::vector<ag::Variable>& inputs) override;
};

// Elementwise maximum; where inputs tie, the gradient goes to the first.
class Maximum : public Merge {
 public:
  explicit Maximum(std::string name = "");

 protected:
  ag::Variable merge(const std::vector<ag::Variable>& inputs) override;
};

// Elementwise minimum; where inputs tie, the gradient goes to the first.
class Minimum : public Merge {
 public:
  explicit Minimum(std::string name = "");

 protected:
  ag::Variable merge(const std::vector<ag::Variable>& inputs) override;
};

// Joins two inputs or more along `axis`, counted as Keras does on the
// batched shape (-1: the last axis; the batch axis 0 is refused).
class Concatenate : public Module {
 public:
  explicit Concatenate(std::int64_t axis = -1, std::string name = "");
  std::int64_t axis() const { return axis_; }

 protected:
  std::vector<Shape> build_multi(const std::vector<Shape>& input_shapes) override;
  std::vector<ag::Variable> forward_multi(const std::vector<ag::Variable>& inputs) override;

 private:
  std::int64_t axis_;
  std::int64_t batched_axis_ = 0;  // axis_ resolved against the inputs' rank, batch included
};

}  // namespace petal::nn
