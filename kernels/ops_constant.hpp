// Tensors declared constant for a while: GEMMs that read one as their B
// operand pack it once and reuse the packed copy (see
// kernels/cpu/gemm/constant_operands.hpp). nn::ConstantWeights declares a
// model's weights this way for inference.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/tensor.hpp"

namespace petal::ops {

// While alive, declares `t`'s elements constant (and keeps them alive).
// Only a contiguous CPU tensor is declared; any other is kept but not
// declared (nothing is packed from it, so nothing can go stale).
class ConstantDeclaration {
 public:
  explicit ConstantDeclaration(Tensor t);
  ~ConstantDeclaration();
  ConstantDeclaration(const ConstantDeclaration&) = delete;
  ConstantDeclaration& operator=(const ConstantDeclaration&) = delete;
  const Tensor& tensor() const { return tensor_; }

 private:
  Tensor tensor_;
  std::uint64_t id_ = 0;  // 0: not declared
};

// Whether any of t's elements are declared constant.
bool is_declared_constant(const Tensor& t);
// Whether all of t's elements lie inside one declaration (a contiguous CPU
// tensor; false otherwise).
bool is_wholly_declared_constant(const Tensor& t);
// A count that changes whenever a declaration ends: a tensor found wholly
// declared stays declared while the count is the same.
std::uint64_t constant_declarations_ended();
// Calls `listener` after every declaration that ends from now on.
void on_constant_declaration_ended(void (*listener)());
// Throws petal::Error naming `what` when t is declared constant: for
// petal's own writers of weights (optimizers, weight loading).
void check_not_declared_constant(const Tensor& t, std::string_view what);

}  // namespace petal::ops
