// Registry entries of the matrix product: 2-D and batched 3-D, every
// combination of the transpose flags, operands read through views, and
// batch axes broadcast (a 2-D operand against a batch, size-1 batch axes, 4-D).
#include <array>
#include <utility>
#include <vector>
#include <cmath>

#include "autograd/functions.hpp"
#include "kernels/ops.hpp"
#include "tests/ops/op_registry.hpp"

namespace petal::test {

// op(a) @ op(b) per batch in double, with each element's error scale
// sum |a_ik * b_kj| (float32 accumulates rounding in proportion to it).
Reference reference_matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  const bool batched = a.dim() == 3;
  const Tensor a3 = batched ? a : a.unsqueeze(0), b3 = batched ? b : b.unsqueeze(0);
  const std::int64_t batch = a3.shape()[0];
  const std::int64_t ar = a3.shape()[1], ac = a3.shape()[2], br = b3.shape()[1], bc = b3.shape()[2];
  const std::int64_t m = ta ? ac : ar, k = ta ? ar : ac, n = tb ? br : bc;
  const std::vector<double> va = a3.to_vector<double>(), vb = b3.to_vector<double>();
  Reference r;
  r.shape = batched ? Shape{batch, m, n} : Shape{m, n};
  for (std::int64_t p = 0; p < batch; ++p)
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < n; ++j) {
        double s = 0, magnitude = 0;
        for (std::int64_t q = 0; q < k; ++q) {
          const double x = va[p * ar * ac + (ta ? q * ac + i : i * ac + q)];
          const double y = vb[p * br * bc + (tb ? j * bc + q : q * bc + j)];
          s += x * y;
          magnitude += std::abs(x * y);
        }
        r.values.push_back(s);
        r.error_scale.push_back(magnitude);
      }
  return r;
}

namespace {

// An operand whose op() has the logical shape [batch,] rows x cols: stored as
// cols x rows when its transpose flag is set, optionally as a transposed view.
InputSpec operand(std::int64_t batch, std::int64_t rows, std::int64_t cols, bool flag,
                  Layout layout = Layout::Contiguous) {
  Shape shape = flag ? Shape{cols, rows} : Shape{rows, cols};
  if (batch > 0) shape.insert(shape.begin(), batch);
  return InputSpec(shape).viewed(layout);
}

// op(a) @ op(b) with the batch axes broadcast: both operands expanded to the
// broadcast batch, flattened to one batch axis for reference_matmul.
Reference reference_broadcast_matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  const Shape batch = broadcast_shapes(Shape(a.shape().begin(), a.shape().end() - 2),
                                       Shape(b.shape().begin(), b.shape().end() - 2), "reference");
  auto flat = [&](const Tensor& t) {
    Shape full = batch;
    full.push_back(t.shape()[t.dim() - 2]);
    full.push_back(t.shape()[t.dim() - 1]);
    return t.expand(full).contiguous().reshape({shape_numel(batch), full[full.size() - 2], full.back()});
  };
  Reference r = reference_matmul(flat(a), flat(b), ta, tb);
  Shape out = batch;
  out.push_back(r.shape[1]);
  out.push_back(r.shape[2]);
  r.shape = out;
  return r;
}

OpCase matmul_case(InputSpec a, InputSpec b, bool ta, bool tb) {
  OpCase c;
  c.family = "matmul";
  c.name = "matmul";
  c.attributes = std::string(ta ? "a^T" : "a") + " @ " + (tb ? "b^T" : "b");
  c.inputs = {a, b};
  c.forward = [ta, tb](const Inputs& in) { return ops::matmul(in[0], in[1], ta, tb); };
  c.reference = [ta, tb](const Inputs& in) { return reference_matmul(in[0], in[1], ta, tb); };
  c.differentiable = [ta, tb](const std::vector<ag::Variable>& v) {
    return ag::matmul(ta ? ag::transpose(v[0], -2, -1) : v[0], tb ? ag::transpose(v[1], -2, -1) : v[1]);
  };
  c.rtol_float32 = 1e-5;
  c.rtol_float64 = 1e-13;
  c.atol_float32 = c.atol_float64 = 1e-30;
  return c;
}

}  // namespace

std::vector<OpCase> matmul_cases() {
  std::vector<OpCase> out;
  // (m, k, n): ones, primes, around the SIMD widths and the GEMM tiles.
  for (const auto& [m, k, n] : std::vector<std::array<std::int64_t, 3>>{
           {1, 1, 1}, {1, 7, 1}, {3, 1, 4}, {7, 13, 5}, {17, 33, 16}, {16, 8, 31}, {1, 300, 1}, {64, 48, 129},
           {97, 61, 2}})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) out.push_back(matmul_case(operand(0, m, k, ta), operand(0, k, n, tb), ta, tb));
  for (const auto& [batch, m, k, n] : std::vector<std::array<std::int64_t, 4>>{
           {1, 3, 4, 5}, {5, 7, 13, 5}, {3, 17, 33, 16}, {9, 1, 8, 1}, {2, 70, 90, 60}, {33, 4, 4, 4}})
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        out.push_back(matmul_case(operand(batch, m, k, ta), operand(batch, k, n, tb), ta, tb));
  // Views: column-major operands with and without the flags, a column stride
  // of 2 (copied), a batch shared through stride 0.
  const Layout t = Layout::Transposed;
  out.push_back(matmul_case(operand(0, 50, 40, false, t), operand(0, 40, 9, false), false, false));
  out.push_back(matmul_case(operand(0, 6, 50, false), operand(0, 50, 40, false, t), false, false));
  out.push_back(matmul_case(operand(0, 40, 50, true, t), operand(0, 50, 9, false), true, false));
  out.push_back(matmul_case(operand(0, 8, 40, false), operand(0, 40, 50, true, t), false, true));
  out.push_back(matmul_case(operand(3, 6, 4, false, t), operand(3, 4, 5, false), false, false));
  out.push_back(matmul_case(operand(0, 40, 25, false, Layout::EveryOther), operand(0, 25, 3, false), false, false));
  out.push_back(matmul_case(operand(3, 2, 4, false), operand(3, 4, 5, false, Layout::Expanded), false, false));

  // Broadcast batch axes: [B, M, K] @ [K, N] (one GEMM of stacked rows),
  // [M, K] @ [B, K, N], [1, M, K] @ [B, K, N], 4-D against 3-D, size-1 axes on
  // both sides, every flag, strided operands.
  auto batched = [](Shape batch, std::int64_t rows, std::int64_t cols, bool flag, Layout layout = Layout::Contiguous) {
    Shape shape = batch;
    shape.push_back(flag ? cols : rows);
    shape.push_back(flag ? rows : cols);
    return InputSpec(shape).viewed(layout);
  };
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      for (const auto& [sa, sb] : std::vector<std::pair<Shape, Shape>>{
               {{4}, {}}, {{}, {3}}, {{1}, {5}}, {{3}, {1}}, {{2, 1}, {3}}, {{2, 3}, {1, 3}}, {{1, 1}, {2, 3}}, {{2, 1, 3}, {4, 1}}}) {
        OpCase c = matmul_case(batched(sa, 5, 3, ta), batched(sb, 3, 4, tb), ta, tb);
        c.attributes += " batch " + shape_str(sa) + " with " + shape_str(sb);
        c.reference = [ta = ta, tb = tb](const Inputs& in) { return reference_broadcast_matmul(in[0], in[1], ta, tb); };
        out.push_back(c);
      }
    }
  for (const auto& [a, b] : std::vector<std::pair<InputSpec, InputSpec>>{
           {batched({6}, 7, 9, false, Layout::Transposed), batched({}, 9, 5, false)},
           {batched({2, 3}, 4, 6, false, Layout::EveryOther), batched({}, 6, 2, false, Layout::Transposed)},
           {batched({}, 4, 6, false, Layout::Transposed), batched({5}, 6, 3, false, Layout::Expanded)},
           {batched({1, 4}, 3, 2, false), batched({3, 1}, 2, 5, false, Layout::Expanded)},
           {batched({8}, 70, 33, false), batched({}, 33, 65, false)},
           {batched({0}, 3, 4, false), batched({}, 4, 2, false)}}) {
    OpCase c = matmul_case(a, b, false, false);
    c.attributes += " broadcast";
    c.reference = [](const Inputs& in) { return reference_broadcast_matmul(in[0], in[1], false, false); };
    out.push_back(c);
  }
  return out;
}

}  // namespace petal::test
