// Binary, unary and scalar float32 kernels over contiguous runs, compiled
// once per ISA. Each op is a small functor on Vec<float>; one template per
// loop shape turns it into a kernel.
#include "kernels/cpu/elementwise/row_helpers.hpp"
#include "kernels/cpu/elementwise/tables.hpp"

namespace petal::cpu::PETAL_ISA_NS {
namespace {

// ---- binary ops: apply(a, b) ----
struct AddOp { static VecF apply(const VecF& a, const VecF& b) { return a + b; } };
struct SubOp { static VecF apply(const VecF& a, const VecF& b) { return a - b; } };
struct MulOp { static VecF apply(const VecF& a, const VecF& b) { return a * b; } };
struct DivOp { static VecF apply(const VecF& a, const VecF& b) { return a / b; } };
struct MaximumOp { static VecF apply(const VecF& a, const VecF& b) { return vmax(a, b); } };
struct MinimumOp { static VecF apply(const VecF& a, const VecF& b) { return vmin(a, b); } };
struct ReluBackwardOp {
  static VecF apply(const VecF& g, const VecF& x) {
    const VecF zero(0.0f);
    return vselect_gt(x, zero, g, zero);
  }
};
struct Relu6BackwardOp {
  static VecF apply(const VecF& g, const VecF& x) {
    const VecF zero(0.0f), six(6.0f);
    return vselect_gt(x, zero, vselect_gt(six, x, g, zero), zero);
  }
};
struct SigmoidBackwardOp {
  static VecF apply(const VecF& g, const VecF& y) { return g * y * (VecF(1.0f) - y); }
};
struct TanhBackwardOp {
  static VecF apply(const VecF& g, const VecF& y) { return g * (VecF(1.0f) - y * y); }
};

// Tail padding of 1 keeps Div and Log free of spurious infinities (the
// padding lanes are discarded anyway).
constexpr float kPad = 1.0f;

template <class Op>
void binary_same(const float* a, const float* b, float* out, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 2 * kFloatLanes <= n; i += 2 * kFloatLanes) {
    const VecF r0 = Op::apply(vload(a + i), vload(b + i));
    const VecF r1 = Op::apply(vload(a + i + kFloatLanes), vload(b + i + kFloatLanes));
    vstore(out + i, r0);
    vstore(out + i + kFloatLanes, r1);
  }
  for (; i + kFloatLanes <= n; i += kFloatLanes) vstore(out + i, Op::apply(vload(a + i), vload(b + i)));
  if (i < n) store_partial(out + i, Op::apply(load_partial(a + i, n - i, kPad), load_partial(b + i, n - i, kPad)), n - i);
}

template <class Op>
void binary_scalar_rhs(const float* a, float b, float* out, std::int64_t n) {
  const VecF vb(b);
  std::int64_t i = 0;
  for (; i + kFloatLanes <= n; i += kFloatLanes) vstore(out + i, Op::apply(vload(a + i), vb));
  if (i < n) store_partial(out + i, Op::apply(load_partial(a + i, n - i, kPad), vb), n - i);
}

template <class Op>
void binary_scalar_lhs(float a, const float* b, float* out, std::int64_t n) {
  const VecF va(a);
  std::int64_t i = 0;
  for (; i + kFloatLanes <= n; i += kFloatLanes) vstore(out + i, Op::apply(va, vload(b + i)));
  if (i < n) store_partial(out + i, Op::apply(va, load_partial(b + i, n - i, kPad)), n - i);
}

template <class Op>
constexpr BinaryRowKernels binary_kernels() {
  return {&binary_same<Op>, &binary_scalar_rhs<Op>, &binary_scalar_lhs<Op>};
}

// ---- unary ops: apply(x) ----
struct NegOp { static VecF apply(const VecF& x) { return -x; } };
struct ExpOp { static VecF apply(const VecF& x) { return vexp(x); } };
struct LogOp { static VecF apply(const VecF& x) { return vlog(x); } };
struct SqrtOp { static VecF apply(const VecF& x) { return vsqrt(x); } };
struct AbsOp { static VecF apply(const VecF& x) { return vabs(x); } };
struct ReluOp { static VecF apply(const VecF& x) { return vmax(x, VecF(0.0f)); } };
struct Relu6Op { static VecF apply(const VecF& x) { return vmin(vmax(x, VecF(0.0f)), VecF(6.0f)); } };
// 1 / (1 + e^-x): e^-x overflows to +inf for x < -88, giving exactly 0.
struct SigmoidOp { static VecF apply(const VecF& x) { return VecF(1.0f) / (VecF(1.0f) + vexp(-x)); } };
struct TanhOp { static VecF apply(const VecF& x) { return vtanh(x); } };
struct SquareOp { static VecF apply(const VecF& x) { return x * x; } };
struct ReciprocalOp { static VecF apply(const VecF& x) { return VecF(1.0f) / x; } };

template <class Op>
void unary(const float* in, float* out, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + kFloatLanes <= n; i += kFloatLanes) vstore(out + i, Op::apply(vload(in + i)));
  if (i < n) store_partial(out + i, Op::apply(load_partial(in + i, n - i, kPad)), n - i);
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

}  // namespace

extern const ElementwiseTable elementwise_kernels;
const ElementwiseTable elementwise_kernels = {
    {
        binary_kernels<AddOp>(),
        binary_kernels<SubOp>(),
        binary_kernels<MulOp>(),
        binary_kernels<DivOp>(),
        binary_kernels<MaximumOp>(),
        binary_kernels<MinimumOp>(),
        binary_kernels<ReluBackwardOp>(),
        binary_kernels<Relu6BackwardOp>(),
        binary_kernels<SigmoidBackwardOp>(),
        binary_kernels<TanhBackwardOp>(),
    },
    {
        &unary<NegOp>,
        &unary<ExpOp>,
        &unary<LogOp>,
        &unary<SqrtOp>,
        &unary<AbsOp>,
        &unary<ReluOp>,
        &unary<Relu6Op>,
        &unary<SigmoidOp>,
        &unary<TanhOp>,
        &unary<SquareOp>,
        &unary<ReciprocalOp>,
    },
    &affine,
    &clamp,
    &axpy,
};

}  // namespace petal::cpu::PETAL_ISA_NS
