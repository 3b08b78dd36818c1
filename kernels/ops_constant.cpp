#include "kernels/ops_constant.hpp"

#include <string>

#include "core/error.hpp"
#include "kernels/cpu/gemm/constant_operands.hpp"

namespace petal::ops {
namespace {

bool declarable(const Tensor& t) { return t.defined() && t.device().is_cpu() && t.is_contiguous() && t.numel() > 0; }

}  // namespace

ConstantDeclaration::ConstantDeclaration(Tensor t) : tensor_(std::move(t)) {
  if (declarable(tensor_)) id_ = cpu::declare_constant(tensor_.raw_data(), tensor_.nbytes());
}

ConstantDeclaration::~ConstantDeclaration() {
  if (id_ != 0) cpu::withdraw_constant(id_);
}

bool is_declared_constant(const Tensor& t) {
  return declarable(t) && cpu::overlaps_declared_constant(t.raw_data(), t.nbytes());
}

bool is_wholly_declared_constant(const Tensor& t) {
  return declarable(t) && cpu::inside_declared_constant(t.raw_data(), t.nbytes());
}

std::uint64_t constant_declarations_ended() { return cpu::constant_withdrawals(); }

void on_constant_declaration_ended(void (*listener)()) { cpu::on_constant_withdrawn(listener); }

void check_not_declared_constant(const Tensor& t, std::string_view what) {
  if (is_declared_constant(t))
    throw Error(std::string(what) +
                ": the weight is declared constant (an nn::ConstantWeights of its model is alive); end that scope "
                "before changing the weights");
}

}  // namespace petal::ops
