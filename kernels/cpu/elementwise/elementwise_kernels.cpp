// Binary, unary and scalar float32 kernels over contiguous runs, compiled
// once per ISA. Each op's vector body is SimdBinary<op>::apply /
// SimdUnary<op>::apply on Vec<float>; one template per loop shape turns it
// into a kernel, and the tables are filled in enum order from these
// templates. Where an op's formula in kernels/portable/elementwise_ops.hpp
// is plain arithmetic, the vector body is that formula instantiated on
// Vec<float> (the primary templates); ops with comparisons or math
// functions specialise them below with the vector forms.
#include <utility>

#include "kernels/cpu/elementwise/row_helpers.hpp"
#include "kernels/cpu/elementwise/tables.hpp"
#include "kernels/portable/elementwise_ops.hpp"

namespace petal::cpu::PETAL_ISA_NS {
namespace {

// ---- binary ops: apply(a, b) ----
template <BinaryOp kOp>
struct SimdBinary {
  static VecF apply(const VecF& a, const VecF& b) { return kernels::binary_value<kOp>(a, b); }
};
template <> struct SimdBinary<BinaryOp::Maximum> {
  static VecF apply(const VecF& a, const VecF& b) { return vmax(a, b); }
};
template <> struct SimdBinary<BinaryOp::Minimum> {
  static VecF apply(const VecF& a, const VecF& b) { return vmin(a, b); }
};
template <> struct SimdBinary<BinaryOp::ReluBackward> {
  static VecF apply(const VecF& g, const VecF& x) {
    const VecF zero(0.0f);
    return vselect_gt(x, zero, g, zero);
  }
};
template <> struct SimdBinary<BinaryOp::Relu6Backward> {
  static VecF apply(const VecF& g, const VecF& x) {
    const VecF zero(0.0f), six(6.0f);
    return vselect_gt(x, zero, vselect_gt(six, x, g, zero), zero);
  }
};
template <> struct SimdBinary<BinaryOp::Pow> {
  static VecF apply(const VecF& a, const VecF& b) { return vpow(a, b); }
};
template <> struct SimdBinary<BinaryOp::AbsBackward> {
  static VecF apply(const VecF& g, const VecF& x) {
    const VecF zero(0.0f);
    return vselect_gt(x, zero, g, vselect_gt(zero, x, -g, zero));
  }
};
template <> struct SimdBinary<BinaryOp::GeluBackward> {
  static VecF apply(const VecF& g, const VecF& x) {
    const VecF cdf = VecF(0.5f) * verfc(x * VecF(-static_cast<float>(kernels::kSqrtHalf)));
    const VecF pdf = vexp(VecF(-0.5f) * x * x) * VecF(static_cast<float>(kernels::kInvSqrt2Pi));
    return g * vfma(x, pdf, cdf);
  }
};
template <> struct SimdBinary<BinaryOp::SiluBackward> {
  static VecF apply(const VecF& g, const VecF& x) {
    const VecF one(1.0f);
    const VecF s = one / (one + vexp(-x));
    return g * s * vfma(x, one - s, one);
  }
};
template <> struct SimdBinary<BinaryOp::SoftplusBackward> {
  static VecF apply(const VecF& g, const VecF& x) { return g / (VecF(1.0f) + vexp(-x)); }
};

// Tail padding of 1 keeps Div and Log free of spurious infinities (the
// padding lanes are discarded anyway).
constexpr float kPad = 1.0f;

template <BinaryOp kOp>
void binary_same(const float* a, const float* b, float* out, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 2 * kFloatLanes <= n; i += 2 * kFloatLanes) {
    const VecF r0 = SimdBinary<kOp>::apply(vload(a + i), vload(b + i));
    const VecF r1 = SimdBinary<kOp>::apply(vload(a + i + kFloatLanes), vload(b + i + kFloatLanes));
    vstore(out + i, r0);
    vstore(out + i + kFloatLanes, r1);
  }
  for (; i + kFloatLanes <= n; i += kFloatLanes) vstore(out + i, SimdBinary<kOp>::apply(vload(a + i), vload(b + i)));
  if (i < n) store_partial(out + i, SimdBinary<kOp>::apply(load_partial(a + i, n - i, kPad), load_partial(b + i, n - i, kPad)), n - i);
}

template <BinaryOp kOp>
void binary_scalar_rhs(const float* a, float b, float* out, std::int64_t n) {
  const VecF vb(b);
  std::int64_t i = 0;
  for (; i + kFloatLanes <= n; i += kFloatLanes) vstore(out + i, SimdBinary<kOp>::apply(vload(a + i), vb));
  if (i < n) store_partial(out + i, SimdBinary<kOp>::apply(load_partial(a + i, n - i, kPad), vb), n - i);
}

template <BinaryOp kOp>
void binary_scalar_lhs(float a, const float* b, float* out, std::int64_t n) {
  const VecF va(a);
  std::int64_t i = 0;
  for (; i + kFloatLanes <= n; i += kFloatLanes) vstore(out + i, SimdBinary<kOp>::apply(va, vload(b + i)));
  if (i < n) store_partial(out + i, SimdBinary<kOp>::apply(va, load_partial(b + i, n - i, kPad)), n - i);
}

template <BinaryOp kOp>
constexpr BinaryRowKernels binary_kernels() {
  return {&binary_same<kOp>, &binary_scalar_rhs<kOp>, &binary_scalar_lhs<kOp>};
}

// ---- unary ops: apply(x) ----
template <UnaryOp kOp>
struct SimdUnary {
  static VecF apply(const VecF& x) { return kernels::unary_value<kOp>(x); }
};
template <> struct SimdUnary<UnaryOp::Exp> {
  static VecF apply(const VecF& x) { return vexp(x); }
};
template <> struct SimdUnary<UnaryOp::Log> {
  static VecF apply(const VecF& x) { return vlog(x); }
};
template <> struct SimdUnary<UnaryOp::Sqrt> {
  static VecF apply(const VecF& x) { return vsqrt(x); }
};
template <> struct SimdUnary<UnaryOp::Abs> {
  static VecF apply(const VecF& x) { return vabs(x); }
};
template <> struct SimdUnary<UnaryOp::Relu> {
  static VecF apply(const VecF& x) { return vmax(x, VecF(0.0f)); }
};
template <> struct SimdUnary<UnaryOp::Relu6> {
  static VecF apply(const VecF& x) { return vmin(vmax(x, VecF(0.0f)), VecF(6.0f)); }
};
template <> struct SimdUnary<UnaryOp::Sigmoid> {
  static VecF apply(const VecF& x) { return VecF(1.0f) / (VecF(1.0f) + vexp(-x)); }
};
template <> struct SimdUnary<UnaryOp::Tanh> {
  static VecF apply(const VecF& x) { return vtanh(x); }
};
template <> struct SimdUnary<UnaryOp::Gelu> {
  static VecF apply(const VecF& x) {
    return VecF(0.5f) * x * verfc(x * VecF(-static_cast<float>(kernels::kSqrtHalf)));
  }
};
template <> struct SimdUnary<UnaryOp::Silu> {
  static VecF apply(const VecF& x) { return x / (VecF(1.0f) + vexp(-x)); }
};
template <> struct SimdUnary<UnaryOp::Softplus> {
  static VecF apply(const VecF& x) { return vlog1p(vexp(-vabs(x))) + vmax(x, VecF(0.0f)); }
};

template <UnaryOp kOp>
void unary(const float* in, float* out, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + kFloatLanes <= n; i += kFloatLanes) vstore(out + i, SimdUnary<kOp>::apply(vload(in + i)));
  if (i < n) store_partial(out + i, SimdUnary<kOp>::apply(load_partial(in + i, n - i, kPad)), n - i);
}

void affine(const float* in, float scale, float shift, float* out, std::int64_t n) {
  const VecF vs(scale), vt(shift);
  std::int64_t i = 0;
  for (; i + kFloatLanes <= n; i += kFloatLanes) vstore(out + i, vfma(vload(in + i), vs, vt));
  if (i < n) store_partial(out + i, vfma(load_partial(in + i, n - i, 0.0f), vs, vt), n - i);
}

void clamp(const float* in, float low, float high, float* out, std::int64_t n) {
  const VecF vl(low), vh(high);
  std::int64_t i = 0;
  for (; i + kFloatLanes <= n; i += kFloatLanes) vstore(out + i, vmin(vmax(vload(in + i), vl), vh));
  if (i < n) store_partial(out + i, vmin(vmax(load_partial(in + i, n - i, 0.0f), vl), vh), n - i);
}

void axpy(float alpha, const float* x, float* y, std::int64_t n) {
  const VecF va(alpha);
  std::int64_t i = 0;
  for (; i + kFloatLanes <= n; i += kFloatLanes) vstore(y + i, vfma(va, vload(x + i), vload(y + i)));
  if (i < n) store_partial(y + i, vfma(va, load_partial(x + i, n - i, 0.0f), load_partial(y + i, n - i, 0.0f)), n - i);
}

// Separate multiplies and adds (no vfma): the scalar loop's rounding. The
// ISA builds allow FMA, so contraction is switched off here.
#if defined(__clang__)
#define PETAL_NO_FP_CONTRACT _Pragma("clang fp contract(off)")
#else
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#define PETAL_NO_FP_CONTRACT
#endif
void adam_row(float* w, const float* g, float* m, float* v, std::int64_t n, const cuda::AdamParams& p) {
  PETAL_NO_FP_CONTRACT
  const VecF b1(p.one_minus_beta1), b2(p.one_minus_beta2), lr(p.lr_t), eps(p.epsilon), decay(p.decay_factor);
  std::int64_t i = 0;
  for (; i + kFloatLanes <= n; i += kFloatLanes) {
    VecF wv = vload(w + i);
    if (p.decay) wv = wv * decay;
    const VecF gv = vload(g + i);
    VecF mv = vload(m + i), vv = vload(v + i);
    mv = mv + (gv - mv) * b1;
    vv = vv + (gv * gv - vv) * b2;
    wv = wv - lr * mv / (vsqrt(vv) + eps);
    vstore(m + i, mv);
    vstore(v + i, vv);
    vstore(w + i, wv);
  }
  for (; i < n; ++i) cuda::adam_step(w[i], g[i], m[i], v[i], p);
}
#if !defined(__clang__)
#pragma GCC pop_options
#endif
#undef PETAL_NO_FP_CONTRACT

template <std::size_t... kBinary, std::size_t... kUnary>
constexpr ElementwiseTable make_elementwise_table(std::index_sequence<kBinary...>, std::index_sequence<kUnary...>) {
  return {
      {binary_kernels<static_cast<BinaryOp>(kBinary)>()...},
      {&unary<static_cast<UnaryOp>(kUnary)>...},
      &affine,
      &clamp,
      &axpy,
      &adam_row,
  };
}

}  // namespace

extern const ElementwiseTable elementwise_kernels;
const ElementwiseTable elementwise_kernels =
    make_elementwise_table(std::make_index_sequence<kBinaryOpCount>{}, std::make_index_sequence<kUnaryOpCount>{});

}  // namespace petal::cpu::PETAL_ISA_NS
