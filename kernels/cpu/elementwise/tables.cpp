// Picks the float32 kernel tables of this folder for the active ISA.
#include "kernels/cpu/elementwise/tables.hpp"

#include "kernels/cpu/isa.hpp"

namespace petal::cpu {

namespace isa_scalar {
extern const ElementwiseTable elementwise_kernels;
extern const ReduceTable reduce_kernels;
extern const SoftmaxTable softmax_kernels;
}  // namespace isa_scalar
namespace isa_avx2 {
extern const ElementwiseTable elementwise_kernels;
extern const ReduceTable reduce_kernels;
extern const SoftmaxTable softmax_kernels;
}  // namespace isa_avx2
namespace isa_avx512 {
extern const ElementwiseTable elementwise_kernels;
extern const ReduceTable reduce_kernels;
extern const SoftmaxTable softmax_kernels;
}  // namespace isa_avx512

const ElementwiseTable& elementwise_table() {
  return select_table(isa_scalar::elementwise_kernels, isa_avx2::elementwise_kernels, isa_avx512::elementwise_kernels);
}

const ReduceTable& reduce_table() {
  return select_table(isa_scalar::reduce_kernels, isa_avx2::reduce_kernels, isa_avx512::reduce_kernels);
}

const SoftmaxTable& softmax_table() {
  return select_table(isa_scalar::softmax_kernels, isa_avx2::softmax_kernels, isa_avx512::softmax_kernels);
}

}  // namespace petal::cpu
