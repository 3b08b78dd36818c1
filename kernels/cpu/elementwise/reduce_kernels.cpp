// float32 reduction kernels (sum and max) over contiguous runs, compiled once
// per ISA: a whole row folded to one value (reductions over the last axes) and
// a row folded into an accumulator row (reductions over leading axes).
#include "kernels/cpu/elementwise/row_helpers.hpp"
#include "kernels/cpu/elementwise/tables.hpp"
#include "kernels/portable/reduce_ops.hpp"

namespace petal::cpu::PETAL_ISA_NS {
namespace {

using kernels::reduce_combine;
using kernels::ReduceOp;

float row_sum(const float* in, std::int64_t n) { return row_sum_impl(in, n); }
float row_max(const float* in, std::int64_t n) { return row_max_impl(in, n); }

void accumulate_sum(float* acc, const float* in, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + kFloatLanes <= n; i += kFloatLanes)
    vstore(acc + i, reduce_combine<ReduceOp::Sum>(vload(acc + i), vload(in + i)));
  for (; i < n; ++i) acc[i] = reduce_combine<ReduceOp::Sum>(acc[i], in[i]);
}

void accumulate_max(float* acc, const float* in, std::int64_t n) {
  std::int64_t i = 0;
  // vmax(in, acc) is in > acc ? in : acc, the max combine step: NaN inputs
  // are skipped, as in row_max.
  for (; i + kFloatLanes <= n; i += kFloatLanes) vstore(acc + i, vmax(vload(in + i), vload(acc + i)));
  for (; i < n; ++i) acc[i] = reduce_combine<ReduceOp::Max>(acc[i], in[i]);
}

}  // namespace

extern const ReduceTable reduce_kernels;
const ReduceTable reduce_kernels = {&row_sum, &row_max, &accumulate_sum, &accumulate_max};

}  // namespace petal::cpu::PETAL_ISA_NS
