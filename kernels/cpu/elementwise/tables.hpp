// Per-ISA float32 kernel tables for elementwise ops, reductions and the
// softmax family. Each table is defined three times (isa_scalar, isa_avx2,
// isa_avx512) by the sources in this folder compiled once per ISA; the
// accessors at the bottom pick the one for the active ISA. Every kernel
// works on contiguous runs (rows); the broadcasting/strided iteration around
// them lives in kernels/ops_*.cpp. Kernels never throw.
#pragma once

#include <cstdint>

#include "kernels/cuda/optimizer_body.hpp"
#include "kernels/portable/elementwise_ops.hpp"

namespace petal::cpu {

// The ops of the tables: the enums of kernels/portable/elementwise_ops.hpp
// index them.
using kernels::BinaryOp;
using kernels::kBinaryOpCount;
using kernels::kUnaryOpCount;
using kernels::UnaryOp;

// The three inner-loop shapes a broadcast binary op reduces to.
struct BinaryRowKernels {
  void (*same)(const float* a, const float* b, float* out, std::int64_t n);        // a[i] op b[i]
  void (*scalar_rhs)(const float* a, float b, float* out, std::int64_t n);         // a[i] op b
  void (*scalar_lhs)(float a, const float* b, float* out, std::int64_t n);         // a op b[i]
};

struct ElementwiseTable {
  BinaryRowKernels binary[kBinaryOpCount];
  void (*unary[kUnaryOpCount])(const float* in, float* out, std::int64_t n);
  // out = in * scale + shift (add_scalar, mul_scalar).
  void (*affine)(const float* in, float scale, float shift, float* out, std::int64_t n);
  // out = min(max(in, low), high).
  void (*clamp)(const float* in, float low, float high, float* out, std::int64_t n);
  // y += alpha * x (add_ with alpha).
  void (*axpy)(float alpha, const float* x, float* y, std::int64_t n);
  // One Adam step over n parameters: cuda::adam_step's float operations in
  // its order, without fused multiply-adds, so every ISA gives its bits.
  void (*adam_row)(float* w, const float* g, float* m, float* v, std::int64_t n, const cuda::AdamParams& p);
};

struct ReduceTable {
  float (*row_sum)(const float* in, std::int64_t n);
  float (*row_max)(const float* in, std::int64_t n);  // n >= 1
  // acc[i] += in[i] / acc[i] = max(acc[i], in[i]): reductions over leading axes.
  void (*accumulate_sum)(float* acc, const float* in, std::int64_t n);
  void (*accumulate_max)(float* acc, const float* in, std::int64_t n);
};

// Rows of length n >= 1, all contiguous.
struct SoftmaxTable {
  void (*softmax_row)(const float* x, float* y, std::int64_t n);
  void (*log_softmax_row)(const float* x, float* y, std::int64_t n);
  // dx = y * (g - sum(g * y))
  void (*softmax_backward_row)(const float* g, const float* y, float* dx, std::int64_t n);
  // dx = g - exp(log_y) * sum(g)
  void (*log_softmax_backward_row)(const float* g, const float* log_y, float* dx, std::int64_t n);
  // Loss -sum(t * log_softmax(x)) of one row; probs (may be null) receives softmax(x).
  float (*cross_entropy_row)(const float* x, const float* t, float* probs, std::int64_t n);
  // Loss -log_softmax(x)[label], label in [0, n).
  float (*cross_entropy_label_row)(const float* x, std::int64_t label, float* probs, std::int64_t n);
  // dx = g * (probs - t)
  void (*cross_entropy_backward_row)(float g, const float* probs, const float* t, float* dx, std::int64_t n);
};

const ElementwiseTable& elementwise_table();
const ReduceTable& reduce_table();
const SoftmaxTable& softmax_table();

}  // namespace petal::cpu
