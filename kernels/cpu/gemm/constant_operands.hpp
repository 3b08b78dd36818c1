// Memory that its owner has declared constant for a while (inference
// weights), and the packed copies of GEMM operands read from it.
//
// sgemm packs its B operand into the micro-kernel's panel layout on every
// call: for the few-row products of batch-1 inference that costs as much as
// the product, so those read B in place (a new row of B, on another page, at
// every K step). A B that lies in declared-constant memory is packed once,
// the first time a call needs it, and the packed copy is used by every later
// call with the same operand window (address, leading dimension, K and N)
// until the declaration is withdrawn.
//
// Nothing here sees writes: a declaration is the owner's promise
// (nn::ConstantWeights keeps it, and checks it when it ends). petal's own
// writers of weights (optimizers, weight loading) ask
// overlaps_declared_constant first and refuse.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

namespace petal::cpu {

// Declares bytes [begin, begin + bytes) constant; the id withdraws it.
std::uint64_t declare_constant(const void* begin, std::size_t bytes);
// Withdraws a declaration and drops the packed copies made from its memory.
void withdraw_constant(std::uint64_t id);
// Whether any memory is declared constant now (one atomic load).
bool any_declared_constant();
// Whether [begin, begin + bytes) overlaps memory declared constant.
bool overlaps_declared_constant(const void* begin, std::size_t bytes);
// Whether [begin, begin + bytes) lies wholly inside one declaration.
bool inside_declared_constant(const void* begin, std::size_t bytes);
// How many declarations have been withdrawn so far: memory found inside a
// declaration stays declared while this count has not changed.
std::uint64_t constant_withdrawals();
// Calls `listener` after every withdrawal from now on (outside the
// registry's lock): caches of values derived from declared memory drop
// them there rather than hold the memory's owners alive.
void on_constant_withdrawn(void (*listener)());

// A packed copy of a B operand (64-byte aligned floats).
class PackedOperand {
 public:
  explicit PackedOperand(std::size_t floats);
  ~PackedOperand();
  PackedOperand(const PackedOperand&) = delete;
  PackedOperand& operator=(const PackedOperand&) = delete;
  float* data() { return data_; }
  const float* data() const { return data_; }

 private:
  float* data_;
};

// The packed copy of the operand window that starts at `b` (k rows of n
// floats, ldb apart) in the layout `layout` names (the kernel table), made
// by `pack` into `floats` floats the first time; null when the window is not
// wholly inside one declared-constant range. Thread-safe; the copy stays
// valid while the caller holds it, even if the declaration is withdrawn.
std::shared_ptr<const PackedOperand> packed_constant_operand(const void* layout, const float* b, std::int64_t ldb,
                                                             std::int64_t k, std::int64_t n, std::size_t floats,
                                                             const std::function<void(float*)>& pack);

}  // namespace petal::cpu
