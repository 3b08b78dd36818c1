// Matrix product of 2-D operands, batched over a leading axis for 3-D ones,
// through petal::cpu::sgemm (float32) and dgemm (float64); other ranks
// broadcast their batch axes (NumPy matmul) and reduce to the 3-D case. Transposed views
// are not copied: a matrix whose columns are contiguous is handed to the GEMM
// as the transpose of a row-major matrix.
#include <algorithm>
#include <type_traits>

#include "kernels/cpu/gemm/reference_gemm.hpp"
#include "kernels/cpu/gemm/sgemm.hpp"
#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/ops.hpp"
#include "kernels/ops_common.hpp"

namespace petal::ops {
namespace {

// How one operand matrix (the last two axes of a view) is handed to the GEMM.
struct GemmOperand {
  Tensor storage;         // the tensor whose data is read (the view, or a contiguous copy)
  bool transposed;        // the GEMM's trans flag
  std::int64_t ld;        // leading dimension of the stored matrix
  std::int64_t batch_stride;
};

// rows x cols are the view's last two axes; `transpose` is the op's flag.
GemmOperand gemm_operand(const Tensor& t, bool transpose) {
  const std::int64_t nd = t.dim();
  const std::int64_t rows = t.shape()[nd - 2], cols = t.shape()[nd - 1];
  // Size-1 axes may carry any stride; pick the one that makes the layout valid.
  const std::int64_t row_stride = rows == 1 ? std::max<std::int64_t>(cols, 1) : t.strides()[nd - 2];
  const std::int64_t col_stride = cols == 1 ? 1 : t.strides()[nd - 1];
  const std::int64_t batch_stride = nd == 3 ? t.strides()[0] : 0;
  if (col_stride == 1 && row_stride >= std::max<std::int64_t>(cols, 1))
    return {t, transpose, row_stride, batch_stride};
  const std::int64_t col_stride_t = rows == 1 ? 1 : t.strides()[nd - 2];
  const std::int64_t row_stride_t = cols == 1 ? std::max<std::int64_t>(rows, 1) : t.strides()[nd - 1];
  if (col_stride_t == 1 && row_stride_t >= std::max<std::int64_t>(rows, 1))
    return {t, !transpose, row_stride_t, batch_stride};
  Tensor c = detail::contiguous_tiled(t);
  return {c, transpose, std::max<std::int64_t>(cols, 1), nd == 3 ? rows * cols : 0};
}

template <class T>
void gemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, const T* a, std::int64_t lda,
          const T* b, std::int64_t ldb, T* c, std::int64_t ldc) {
  if constexpr (std::is_same_v<T, float>)
    cpu::sgemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
  else
    cpu::dgemm(ta, tb, m, n, k, 1.0, a, lda, b, ldb, 0.0, c, ldc);
}

// Below this many multiply-adds per matrix, a batch runs one matrix per
// thread instead of threading inside each GEMM.
constexpr std::int64_t kSmallGemmMacs = std::int64_t{1} << 18;

Tensor matmul_2d_or_3d(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b);

std::int64_t product(const Shape& shape) { return shape_numel(shape); }

// Operands of other ranks (each at least 2-D): the batch axes (all but the
// last two) broadcast; each operand is viewed as [batch..., rows, cols]
// (stride 0 where broadcast) and flattened to one batch axis, which copies
// only when the batch axes cannot merge. A 2-D b under an untransposed a
// makes one GEMM of a's rows stacked.
Tensor matmul_broadcast(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b) {
  const char* op = "matmul";
  const Shape batch_a(a.shape().begin(), a.shape().end() - 2), batch_b(b.shape().begin(), b.shape().end() - 2);
  bool broadcastable = true;
  const std::size_t nb = std::max(batch_a.size(), batch_b.size());
  Shape batch(nb);
  for (std::size_t i = 0; i < nb; ++i) {
    const std::int64_t x = i + batch_a.size() >= nb ? batch_a[i + batch_a.size() - nb] : 1;
    const std::int64_t y = i + batch_b.size() >= nb ? batch_b[i + batch_b.size() - nb] : 1;
    broadcastable = broadcastable && (x == y || x == 1 || y == 1);
    batch[i] = x == 1 ? y : x;
  }
  PETAL_CHECK(broadcastable, ShapeError, op, ": batch dimensions ", shape_str(batch_a), " and ", shape_str(batch_b),
              " do not broadcast: ", shape_str(a.shape()), transpose_a ? "^T" : "", " @ ", shape_str(b.shape()),
              transpose_b ? "^T" : "");
  const std::int64_t ar = a.shape()[a.dim() - 2], ac = a.shape()[a.dim() - 1];
  const std::int64_t br = b.shape()[b.dim() - 2], bc = b.shape()[b.dim() - 1];
  const std::int64_t m = transpose_a ? ac : ar, n = transpose_b ? br : bc;
  Shape out_shape = batch;
  out_shape.push_back(m);
  out_shape.push_back(n);
  if (b.dim() == 2 && !transpose_a) {
    const Tensor rows = a.reshape({product(batch_a) * ar, ac});
    return matmul_2d_or_3d(rows, b, false, transpose_b).reshape(out_shape);
  }
  auto as_3d = [&](const Tensor& t, std::int64_t r, std::int64_t c) {
    Shape full = batch;
    full.push_back(r);
    full.push_back(c);
    return t.expand(full).reshape({product(batch), r, c});
  };
  return matmul_2d_or_3d(as_3d(a, ar, ac), as_3d(b, br, bc), transpose_a, transpose_b).reshape(out_shape);
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b) {
  const char* op = "matmul";
  detail::check_floating_operands(op, {&a, &b});
  PETAL_CHECK(a.dim() >= 2 && b.dim() >= 2, ShapeError, op, ": operands need at least 2 dimensions, got shapes ",
              shape_str(a.shape()), " and ", shape_str(b.shape()));
  {
    // The inner dimensions, checked here for every rank.
    const std::int64_t k = transpose_a ? a.shape()[a.dim() - 2] : a.shape()[a.dim() - 1];
    const std::int64_t kb = transpose_b ? b.shape()[b.dim() - 1] : b.shape()[b.dim() - 2];
    PETAL_CHECK(k == kb, ShapeError, op, ": inner dimensions differ: ", shape_str(a.shape()), transpose_a ? "^T" : "",
                " @ ", shape_str(b.shape()), transpose_b ? "^T" : "", " (", k, " vs ", kb, ")");
  }
  const bool plain = (a.dim() == 2 && b.dim() == 2) || (a.dim() == 3 && b.dim() == 3 && a.shape()[0] == b.shape()[0]);
  if (!plain) {
    detail::select_backend(op, {&a, &b});  // device errors before any reshaping
    return matmul_broadcast(a, b, transpose_a, transpose_b);
  }
  return matmul_2d_or_3d(a, b, transpose_a, transpose_b);
}

namespace {

Tensor matmul_2d_or_3d(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b) {
  const char* op = "matmul";
  PETAL_CHECK((a.dim() == 2 && b.dim() == 2) || (a.dim() == 3 && b.dim() == 3), ShapeError, op,
              ": expected two 2-D or two 3-D operands, got shapes ", shape_str(a.shape()), " and ",
              shape_str(b.shape()));
  const std::int64_t nd = a.dim();
  const std::int64_t m = transpose_a ? a.shape()[nd - 1] : a.shape()[nd - 2];
  const std::int64_t k = transpose_a ? a.shape()[nd - 2] : a.shape()[nd - 1];
  const std::int64_t kb = transpose_b ? b.shape()[nd - 1] : b.shape()[nd - 2];
  const std::int64_t n = transpose_b ? b.shape()[nd - 2] : b.shape()[nd - 1];
  PETAL_CHECK(k == kb, ShapeError, op, ": inner dimensions differ: ", shape_str(a.shape()),
              transpose_a ? "^T" : "", " @ ", shape_str(b.shape()), transpose_b ? "^T" : "", " (", k, " vs ", kb,
              ")");
  const std::int64_t batch = nd == 3 ? a.shape()[0] : 1;
  PETAL_CHECK(nd == 2 || b.shape()[0] == batch, ShapeError, op, ": batch sizes differ: ", shape_str(a.shape()),
              " @ ", shape_str(b.shape()));
  switch (detail::select_backend(op, {&a, &b})) {
    case detail::Backend::Cpu: break;
    case detail::Backend::Cuda: PETAL_CUDA_BRANCH(return cuda_ops::matmul(a, b, transpose_a, transpose_b));
  }

  Shape out_shape = nd == 3 ? Shape{batch, m, n} : Shape{m, n};
  Tensor out = Tensor::empty(out_shape, a.dtype());
  if (out.numel() == 0) return out;
  if (k == 0) return out.zero_();
  const GemmOperand ga = gemm_operand(a, transpose_a), gb = gemm_operand(b, transpose_b);

  auto run = [&](auto tag) {
    using T = decltype(tag);
    const T* pa = ga.storage.template data<T>();
    const T* pb = gb.storage.template data<T>();
    T* pc = out.data<T>();
    auto one = [&](std::int64_t i) {
      gemm<T>(ga.transposed, gb.transposed, m, n, k, pa + i * ga.batch_stride, ga.ld, pb + i * gb.batch_stride, gb.ld,
              pc + i * m * n, n);
    };
    if (batch > 1 && m * n * k < kSmallGemmMacs) {
      // The GEMM runs serially inside a parallel region.
      parallel_for(0, batch, std::max<std::int64_t>(1, kSmallGemmMacs / std::max<std::int64_t>(m * n * k, 1)),
                   [&](std::int64_t lo, std::int64_t hi) {
                     for (std::int64_t i = lo; i < hi; ++i) one(i);
                   });
    } else {
      for (std::int64_t i = 0; i < batch; ++i) one(i);
    }
  };
  if (a.dtype() == DType::Float32)
    run(float{});
  else
    run(double{});
  return out;
}

}  // namespace

}  // namespace petal::ops
