// Reductions: sum, mean, max over any set of axes, argmax, and sum_to.
//
// The (contiguous) input is described as alternating groups of kept and
// reduced axes, e.g. NHWC summed over H, W is [N kept, HW reduced, C kept].
// The innermost group decides the kernel: a reduced inner group folds each
// row to one value (row_sum/row_max), a kept inner group folds rows into an
// accumulator row (accumulate_sum/max). Threads split the outermost kept
// group, so each output element is owned by one thread and is accumulated in
// the same order for every thread count; a reduction to a single value sums
// fixed-size blocks and then the block results in order.
#include <cmath>
#include <limits>
#include <type_traits>

#include "kernels/cpu/elementwise/tables.hpp"
#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/ops.hpp"
#include "kernels/ops_common.hpp"
#include "kernels/portable/reduce_ops.hpp"

namespace petal::ops {
namespace {

using detail::kParallelGrain;
using kernels::reduce_combine;
using kernels::reduce_identity;
using kernels::ReduceOp;

// Row kernels of one reduction for element type T.
template <class T>
struct ReduceKernels {
  T (*row)(const T* in, std::int64_t n);
  void (*accumulate)(T* acc, const T* in, std::int64_t n);
  T identity;
  T (*combine)(T a, T b);
};

// The float64 row kernels: the combine step of reduce_ops.hpp in a loop.
template <ReduceOp kOp, class T> T generic_row(const T* in, std::int64_t n) {
  T acc = reduce_identity<kOp, T>();
  for (std::int64_t i = 0; i < n; ++i) acc = reduce_combine<kOp>(acc, in[i]);
  return acc;
}
template <ReduceOp kOp, class T> void generic_accumulate(T* acc, const T* in, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) acc[i] = reduce_combine<kOp>(acc[i], in[i]);
}

template <ReduceOp kOp, class T>
ReduceKernels<T> reduce_kernels_of() {
  if constexpr (std::is_same_v<T, float>) {
    const auto& t = cpu::reduce_table();
    return {kOp == ReduceOp::Sum ? t.row_sum : t.row_max, kOp == ReduceOp::Sum ? t.accumulate_sum : t.accumulate_max,
            reduce_identity<kOp, T>(), &reduce_combine<kOp, T>};
  } else {
    return {&generic_row<kOp, T>, &generic_accumulate<kOp, T>, reduce_identity<kOp, T>(), &reduce_combine<kOp, T>};
  }
}

template <class T>
ReduceKernels<T> reduce_kernels(ReduceOp kind) {
  return kind == ReduceOp::Sum ? reduce_kernels_of<ReduceOp::Sum, T>() : reduce_kernels_of<ReduceOp::Max, T>();
}

struct AxisGroup {
  std::int64_t size;
  bool reduced;
  std::int64_t out_stride;  // element stride in the output (kept groups)
};

// Reduces contiguous `in` (shape `shape`) over the flagged axes into `out`
// (contiguous, the keepdim shape).
template <class T>
void reduce_cpu(const T* in, const Shape& shape, const std::vector<bool>& reduced, T* out, std::int64_t out_numel,
                ReduceOp kind) {
  const ReduceKernels<T> k = reduce_kernels<T>(kind);
  std::vector<AxisGroup> groups;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    if (!groups.empty() && groups.back().reduced == reduced[d])
      groups.back().size *= shape[d];
    else
      groups.push_back({shape[d], static_cast<bool>(reduced[d]), 0});
  }
  std::int64_t stride = 1;
  for (std::size_t g = groups.size(); g-- > 0;)
    if (!groups[g].reduced) {
      groups[g].out_stride = stride;
      stride *= groups[g].size;
    }

  const std::int64_t total = shape_numel(shape);
  if (groups.empty() || std::none_of(groups.begin(), groups.end(), [](const AxisGroup& g) { return g.reduced; })) {
    std::copy(in, in + total, out);  // nothing (of size > 1) to reduce
    return;
  }
  std::fill(out, out + out_numel, k.identity);

  const std::int64_t m = static_cast<std::int64_t>(groups.size());
  const std::int64_t inner = groups[m - 1].size;
  const bool inner_reduced = groups[m - 1].reduced;
  std::int64_t first_kept = -1;
  for (std::int64_t g = 0; g < m && first_kept < 0; ++g)
    if (!groups[g].reduced) first_kept = g;

  // Elements per block of the blocked reductions below.
  constexpr std::int64_t kBlock = std::int64_t{1} << 16;
  // Widest rows reduced through per-block partial rows (beyond, the partial
  // rows would cost too much memory).
  constexpr std::int64_t kMaxBlockedColumns = 4096;
  if (first_kept < 0) {
    // Everything reduced into one value: fixed blocks, then the block results
    // in order, so the sum does not depend on the thread count.
    const std::int64_t blocks = (total + kBlock - 1) / kBlock;
    std::vector<T> partial(blocks);
    parallel_for(0, blocks, 1, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t b = lo; b < hi; ++b)
        partial[b] = k.row(in + b * kBlock, std::min(kBlock, total - b * kBlock));
    });
    T acc = k.identity;
    for (const T& p : partial) acc = k.combine(acc, p);
    out[0] = acc;
    return;
  }

  const std::int64_t rows = total / inner;
  // Folds row r (its out offset precomputed) into the output.
  auto fold_row = [&](std::int64_t r, std::int64_t out_offset, std::int64_t col_lo, std::int64_t col_hi) {
    const T* row = in + r * inner;
    if (inner_reduced)
      out[out_offset] = k.combine(out[out_offset], k.row(row, inner));
    else
      k.accumulate(out + out_offset + col_lo, row + col_lo, col_hi - col_lo);
  };

  if (first_kept == m - 1 && inner <= kMaxBlockedColumns) {
    // [reduced, kept] with narrow rows (bias and batch-norm gradients, e.g.
    // [N*H*W, C]): fixed blocks of rows fold into their own partial row, then
    // the partial rows fold into the output in order. Each thread streams
    // contiguous memory and the result does not depend on the thread count.
    const std::int64_t block_rows = std::max<std::int64_t>(1, kBlock / inner);
    const std::int64_t blocks = (rows + block_rows - 1) / block_rows;
    std::vector<T> partial_storage(blocks > 1 ? blocks * inner : 0, k.identity);
    T* partial = blocks > 1 ? partial_storage.data() : out;
    parallel_for(0, blocks, 1, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t b = lo; b < hi; ++b)
        for (std::int64_t r = b * block_rows; r < std::min(rows, (b + 1) * block_rows); ++r)
          k.accumulate(partial + b * inner, in + r * inner, inner);
    });
    if (blocks > 1)
      for (std::int64_t b = 0; b < blocks; ++b) k.accumulate(out, partial + b * inner, inner);
    return;
  }
  if (first_kept == m - 1) {
    // [reduced, kept] with wide rows: threads take column strips of every row.
    const std::int64_t grain = std::max<std::int64_t>(64, kParallelGrain / std::max<std::int64_t>(rows, 1));
    parallel_for(0, inner, grain, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t r = 0; r < rows; ++r) fold_row(r, 0, lo, hi);
    });
    return;
  }

  // Threads split the indices of the outermost kept group p. Rows are
  // (outer over groups < p, i_p, q over groups p+1 .. m-2).
  const std::int64_t p = first_kept;
  std::int64_t outer = 1, q_count = 1;
  for (std::int64_t g = 0; g < p; ++g) outer *= groups[g].size;
  for (std::int64_t g = p + 1; g < m - 1; ++g) q_count *= groups[g].size;
  const std::int64_t per_index = total / groups[p].size;
  parallel_for(0, groups[p].size, std::max<std::int64_t>(1, kParallelGrain / per_index),
               [&](std::int64_t lo, std::int64_t hi) {
                 for (std::int64_t o = 0; o < outer; ++o)
                   for (std::int64_t ip = lo; ip < hi; ++ip)
                     for (std::int64_t q = 0; q < q_count; ++q) {
                       std::int64_t out_offset = ip * groups[p].out_stride, rest = q;
                       for (std::int64_t g = m - 2; g > p; --g) {
                         out_offset += (rest % groups[g].size) * groups[g].out_stride;
                         rest /= groups[g].size;
                       }
                       fold_row((o * groups[p].size + ip) * q_count + q, out_offset, 0, inner);
                     }
               });
}

// Maps a possibly negative axis into [0, dim); IndexError naming the shape.
std::int64_t checked_axis(const char* op, const Tensor& a, std::int64_t axis) {
  PETAL_CHECK(axis >= -a.dim() && axis < a.dim(), IndexError, op, ": axis ", axis,
              " is out of range for a tensor of shape ", shape_str(a.shape()), " (", a.dim(), " dimensions)");
  return axis < 0 ? axis + a.dim() : axis;
}

// Flags of the reduced axes; empty `axes` means all.
std::vector<bool> reduced_axes(const char* op, const Tensor& a, const Axes& axes) {
  std::vector<bool> flags(a.dim(), axes.empty());
  for (std::int64_t axis : axes) {
    const std::int64_t d = checked_axis(op, a, axis);
    PETAL_CHECK(!flags[d], IndexError, op, ": axis ", axis, " appears twice in the axes of a tensor of shape ",
                shape_str(a.shape()));
    flags[d] = true;
  }
  return flags;
}

std::string axes_str(const Axes& axes) {
  if (axes.empty()) return "all";
  std::string out = "[";
  for (std::size_t i = 0; i < axes.size(); ++i) out += (i ? ", " : "") + std::to_string(axes[i]);
  return out + "]";
}

Tensor reduce_op(const char* op, const Tensor& a, const Axes& axes, bool keepdim, ReduceOp kind) {
  detail::check_floating_operands(op, {&a});
  const std::vector<bool> flags = reduced_axes(op, a, axes);
  const detail::Backend backend = detail::select_backend(op, {&a});
  Shape keep_shape = a.shape(), out_shape;
  for (std::int64_t d = 0; d < a.dim(); ++d) {
    if (flags[d]) keep_shape[d] = 1;
    if (!flags[d] || keepdim) out_shape.push_back(keep_shape[d]);
  }
  Tensor out = Tensor::empty(keep_shape, a.dtype(), a.device());
  if (a.numel() == 0) {
    PETAL_CHECK(kind != ReduceOp::Max || out.numel() == 0, ValueError, op, ": cannot reduce axes ",
                axes_str(axes), " of size 0 (shape ", shape_str(a.shape()), "): max has no identity");
    out.zero_();
  } else if (backend == detail::Backend::Cuda) {
    PETAL_CUDA_BRANCH(out = cuda_ops::reduce(kind, a, flags));
  } else {
    const Tensor c = detail::contiguous_tiled(a);
    dispatch_dtype(a.dtype(), [&](auto tag) {
      using T = decltype(tag);
      if constexpr (std::is_floating_point_v<T>)
        reduce_cpu<T>(c.data<T>(), c.shape(), flags, out.data<T>(), out.numel(), kind);
    });
  }
  return out.view(out_shape);
}

}  // namespace

Tensor sum(const Tensor& a, const Axes& axes, bool keepdim) { return reduce_op("sum", a, axes, keepdim, ReduceOp::Sum); }

Tensor max(const Tensor& a, const Axes& axes, bool keepdim) { return reduce_op("max", a, axes, keepdim, ReduceOp::Max); }

Tensor min(const Tensor& a, const Axes& axes, bool keepdim) {
  // -max(-a): the max kernels (NaN skipped alike) on every backend.
  detail::check_floating_operands("min", {&a});
  return neg(reduce_op("min", neg(a), axes, keepdim, ReduceOp::Max));
}

Tensor variance(const Tensor& a, const Axes& axes, bool keepdim) {
  detail::check_floating_operands("variance", {&a});
  reduced_axes("variance", a, axes);  // the axis errors name this op
  // Two passes (mean first, then the squared deviations): no cancellation.
  const Tensor deviation = sub(a, mean(a, axes, true));
  return mean(mul(deviation, deviation), axes, keepdim);
}

Tensor mean(const Tensor& a, const Axes& axes, bool keepdim) {
  Tensor out = reduce_op("mean", a, axes, keepdim, ReduceOp::Sum);
  const std::int64_t count = out.numel() == 0 ? 0 : a.numel() / out.numel();
  if (count == 0)
    out.fill_(std::numeric_limits<double>::quiet_NaN());  // the mean of nothing, as in NumPy
  else
    mul_scalar_(out, 1.0 / static_cast<double>(count));
  return out;
}

Tensor argmax(const Tensor& a, std::int64_t axis) {
  const char* op = "argmax";
  detail::check_floating_operands(op, {&a});
  const std::int64_t d = checked_axis(op, a, axis);
  Shape out_shape = a.shape();
  out_shape.erase(out_shape.begin() + d);
  const std::int64_t n = a.shape()[d];
  PETAL_CHECK(n > 0 || shape_numel(out_shape) == 0, ValueError, op, ": axis ", axis, " of shape ",
              shape_str(a.shape()), " is empty, there is no largest element");
  switch (detail::select_backend(op, {&a})) {
    case detail::Backend::Cpu: break;
    case detail::Backend::Cuda: PETAL_CUDA_BRANCH(return cuda_ops::argmax(a, d));
  }
  Tensor out = Tensor::empty(out_shape, DType::Int64);
  if (out.numel() == 0) return out;
  std::int64_t outer = 1, inner = 1;
  for (std::int64_t i = 0; i < d; ++i) outer *= a.shape()[i];
  for (std::int64_t i = d + 1; i < a.dim(); ++i) inner *= a.shape()[i];
  const Tensor c = detail::contiguous_tiled(a);
  std::int64_t* po = out.data<std::int64_t>();
  dispatch_dtype(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_floating_point_v<T>) {
      const T* pa = c.data<T>();
      // Scan the axis with all `inner` positions side by side (contiguous
      // reads); the first of equal maxima wins and NaN is skipped, as in max.
      parallel_for(0, outer, std::max<std::int64_t>(1, kParallelGrain / (n * inner)),
                   [&](std::int64_t lo, std::int64_t hi) {
                     std::vector<T> best(inner);
                     for (std::int64_t o = lo; o < hi; ++o) {
                       const T* base = pa + o * n * inner;
                       std::int64_t* idx = po + o * inner;
                       for (std::int64_t j = 0; j < n; ++j)
                         for (std::int64_t i = 0; i < inner; ++i)
                           kernels::argmax_step(best[i], idx[i], base[j * inner + i], j);
                     }
                   });
    }
  });
  return out;
}

Tensor sum_to(const Tensor& a, const Shape& shape) {
  const char* op = "sum_to";
  detail::check_floating_operands(op, {&a});
  const std::int64_t lead = a.dim() - static_cast<std::int64_t>(shape.size());
  bool ok = lead >= 0;
  Axes axes;
  for (std::int64_t d = 0; ok && d < a.dim(); ++d) {
    if (d < lead) {
      axes.push_back(d);
    } else if (shape[d - lead] != a.shape()[d]) {
      ok = shape[d - lead] == 1;
      axes.push_back(d);
    }
  }
  PETAL_CHECK(ok, ShapeError, op, ": cannot sum a tensor of shape ", shape_str(a.shape()), " to shape ",
              shape_str(shape), " (it must broadcast to the input shape)");
  if (axes.empty()) return a.clone().view(shape);
  return sum(a, axes, true).view(shape);
}

}  // namespace petal::ops
