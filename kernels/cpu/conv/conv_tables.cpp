// Picks the active ISA's convolution-family tables.
#include "kernels/cpu/conv/conv_tables.hpp"

#include "kernels/cpu/isa.hpp"

namespace petal::cpu {

#define PETAL_DECLARE_ISA_TABLES(ns)                  \
  namespace ns {                                      \
  extern const DepthwiseKernels depthwise_table;      \
  extern const DirectConvKernels direct_conv_table;   \
  extern const ChannelKernels channel_table;          \
  extern const PointwiseKernels pointwise_table;      \
  }
PETAL_DECLARE_ISA_TABLES(isa_scalar)
PETAL_DECLARE_ISA_TABLES(isa_avx2)
PETAL_DECLARE_ISA_TABLES(isa_avx512)
#undef PETAL_DECLARE_ISA_TABLES

const DepthwiseKernels& depthwise_kernels() {
  return select_table(isa_scalar::depthwise_table, isa_avx2::depthwise_table, isa_avx512::depthwise_table);
}
const DirectConvKernels& direct_conv_kernels() {
  return select_table(isa_scalar::direct_conv_table, isa_avx2::direct_conv_table, isa_avx512::direct_conv_table);
}
const ChannelKernels& channel_kernels() {
  return select_table(isa_scalar::channel_table, isa_avx2::channel_table, isa_avx512::channel_table);
}

const PointwiseKernels& pointwise_kernels() {
  return select_table(isa_scalar::pointwise_table, isa_avx2::pointwise_table, isa_avx512::pointwise_table);
}

}  // namespace petal::cpu
