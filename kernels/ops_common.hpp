// Internal to kernels/ops_*.cpp: argument checks shared by every op, the
// backend switch, and the strided/broadcast loop that feeds contiguous runs
// to the per-ISA row kernels.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/shape.hpp"
#include "core/tensor.hpp"
#include "core/thread_pool.hpp"
#include "kernels/portable/strided_loop.hpp"

namespace petal::ops::detail {

// Elements per thread chunk below which an op stays on one thread: 256 KiB
// of float32. A vector add streams that in about 6 us, a few times what
// waking a pool thread costs on these machines, so smaller ops stay serial.
inline constexpr std::int64_t kParallelGrain = std::int64_t{1} << 16;

// ---- argument checks (each message names the op and the shapes) ----
// ValueError when undefined.
void check_defined(const char* op, std::initializer_list<const Tensor*> tensors);
// DTypeError unless float32 or float64.
void check_floating(const char* op, const Tensor& t);
// DTypeError when the dtypes differ.
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);
// ShapeError when the shapes differ.
void check_same_shape(const char* op, const Tensor& a, const Tensor& b);
// The common checks of a floating elementwise op: defined, floating, same dtype.
void check_floating_operands(const char* op, std::initializer_list<const Tensor*> tensors);
// "[2, 3] and [4]"-style list of shapes for messages.
std::string shapes_str(std::initializer_list<const Tensor*> tensors);
// The same checks for an operand with a role (kernel, bias, gamma, ...) that
// the message names: ValueError when undefined, DTypeError unless float32 or
// float64 ("<op>: <what> must be float32 or float64, got int64").
void check_floating(const char* op, const Tensor& t, const char* what);
// DTypeError unless t has the dtype of the op's input ("<op>: <what> is
// float64 but the input is float32").
void check_same_dtype(const char* op, const Tensor& input, const Tensor& t, const char* what);

// ---- the backend switch ----
// Every op asks here which backend runs it. All tensors must be on the same
// device (DeviceError otherwise). CUDA tensors get Backend::Cuda in a build
// with the CUDA backend (PETAL_HAS_CUDA) when the device exists; otherwise a
// DeviceError "<op>: CUDA backend not available (...)" says why.
enum class Backend { Cpu, Cuda };
Backend select_backend(const char* op, std::initializer_list<const Tensor*> tensors);
// select_backend over the defined tensors only, for ops with optional
// operands (an absent bias is undefined and has no device); Backend::Cpu
// when none is defined.
Backend select_backend_of_defined(const char* op, std::initializer_list<const Tensor*> tensors);

// The statement of an op's Backend::Cuda branch (a call into
// kernels/cuda/cuda_ops.hpp), compiled only in builds with the CUDA backend;
// without it select_backend never returns Backend::Cuda.
#if PETAL_HAS_CUDA
#define PETAL_CUDA_BRANCH(...) __VA_ARGS__
#else
#define PETAL_CUDA_BRANCH(...) throw ::petal::DeviceError("CUDA backend not available (built without CUDA)")
#endif

// ---- strided iteration ----
// The broadcast strides and the merged loop are kernels/portable/strided_loop.hpp
// (the CUDA kernels use the same geometry).
using kernels::make_strided_loop;
using kernels::StridedLoop;

// Strides of `t` viewed as broadcast to `shape` (0 on broadcast axes),
// aligned to the right as in NumPy.
inline Strides broadcast_strides(const Tensor& t, const Shape& shape) {
  return kernels::broadcast_strides(t.shape(), t.strides(), shape);
}

// A contiguous copy of t (t itself when already contiguous). Unlike
// Tensor::contiguous, a view whose innermost axis is strided (a transpose) is
// copied in square tiles, so reads do not jump a page per element.
Tensor contiguous_tiled(const Tensor& t);

// The off-CPU forms of ops::pad and ops::slice_backward (kernels/ops_shape.cpp),
// built from concat and copies into contiguous destinations only; any device
// runs them, so tests check them on the host against the CPU forms.
Tensor pad_by_concat(const Tensor& a, const std::vector<std::pair<std::int64_t, std::int64_t>>& pads, double value);
Tensor slice_backward_by_pad(const Tensor& grad, const Shape& input_shape, std::int64_t axis, std::int64_t start,
                             std::int64_t step);
// t itself unless its innermost axis has a stride other than 0 or 1 (then a
// contiguous_tiled copy): what elementwise ops want from an input, since
// their row kernels take contiguous and broadcast runs but not strided ones.
Tensor unit_stride_inner(const Tensor& t);

// Calls run(offsets, n) for runs of n consecutive elements (C order) along
// the innermost axis; offsets are each operand's element offset of the run's
// first element. The elements are split into contiguous chunks of at least
// `grain` over the thread pool (a run may straddle two chunks), so operand 0
// must not alias itself across elements when it is written.
template <int N, class Run>
void for_each_run(const StridedLoop<N>& loop, std::int64_t grain, Run&& run) {
  const std::int64_t nd = static_cast<std::int64_t>(loop.shape.size());
  const std::int64_t total = shape_numel(loop.shape);
  const std::int64_t inner = loop.shape[nd - 1];
  parallel_for(0, total, grain, [&](std::int64_t lo, std::int64_t hi) {
    // Multi-index and offsets of element lo.
    std::int64_t index[16] = {};
    std::vector<std::int64_t> index_heap;
    std::int64_t* idx = index;
    if (nd > 16) {
      index_heap.assign(nd, 0);
      idx = index_heap.data();
    }
    std::array<std::int64_t, N> off{};
    std::int64_t rest = lo;
    for (std::int64_t d = nd - 1; d >= 0; --d) {
      idx[d] = rest % loop.shape[d];
      rest /= loop.shape[d];
      for (int k = 0; k < N; ++k) off[k] += idx[d] * loop.strides[k][d];
    }
    std::int64_t pos = lo;
    while (pos < hi) {
      const std::int64_t n = std::min(inner - idx[nd - 1], hi - pos);
      run(off, n);
      pos += n;
      idx[nd - 1] += n;
      for (int k = 0; k < N; ++k) off[k] += n * loop.strides[k][nd - 1];
      // Carry into the outer axes.
      for (std::int64_t d = nd - 1; d > 0 && idx[d] == loop.shape[d]; --d) {
        idx[d] = 0;
        ++idx[d - 1];
        for (int k = 0; k < N; ++k) off[k] += loop.strides[k][d - 1] - loop.shape[d] * loop.strides[k][d];
      }
    }
  });
}

}  // namespace petal::ops::detail
