// Registry entries of the matrix product: 2-D and batched 3-D, every
// combination of the transpose flags, and operands read through views.
#include <array>
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
  return out;
}

}  // namespace petal::test
