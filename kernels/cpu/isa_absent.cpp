// The kernel tables of an instruction set this build left out
// (-Dkernel_isas): empty tables under that ISA's namespace, so that the
// selectors (select_table in isa.hpp) still link. They are never picked:
// detected_isa() stops below the first ISA the build left out (isa.cpp), and
// set_active_isa refuses anything above it. Compiled once per absent ISA with
// PETAL_ISA_ABSENT_NS set to its namespace (meson.build).
#include "kernels/cpu/conv/conv_tables.hpp"
#include "kernels/cpu/conv/pool_tables.hpp"
#include "kernels/cpu/elementwise/tables.hpp"
#include "kernels/cpu/gemm/sgemm_kernels.hpp"

#ifndef PETAL_ISA_ABSENT_NS
#error "compile with -DPETAL_ISA_ABSENT_NS=isa_<name>"
#endif

namespace petal::cpu::PETAL_ISA_ABSENT_NS {

extern const SgemmKernels sgemm_kernels{};
extern const PoolKernels pool_table{};
extern const DepthwiseKernels depthwise_table{};
extern const DirectConvKernels direct_conv_table{};
extern const ChannelKernels channel_table{};
extern const PointwiseKernels pointwise_table{};
extern const ElementwiseTable elementwise_kernels{};
extern const ReduceTable reduce_kernels{};
extern const SoftmaxTable softmax_kernels{};

}  // namespace petal::cpu::PETAL_ISA_ABSENT_NS
