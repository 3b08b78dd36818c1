// float32 softmax, log-softmax, their backward passes and the fused softmax
// cross-entropy, one contiguous row at a time, compiled once per ISA. Every
// row is shifted by its maximum before exp, so logits like +-1000 stay finite.
#include <limits>

#include "kernels/cpu/elementwise/row_helpers.hpp"
#include "kernels/cpu/elementwise/tables.hpp"

namespace petal::cpu::PETAL_ISA_NS {
namespace {

constexpr float kMinusInf = -std::numeric_limits<float>::infinity();

// sum(exp(x - m)); when e is not null it also receives exp(x - m).
float exp_sum(const float* x, float m, float* e, std::int64_t n) {
  const VecF vm(m);
  VecF acc(0.0f);
  std::int64_t i = 0;
  for (; i + kFloatLanes <= n; i += kFloatLanes) {
    const VecF v = vexp(vload(x + i) - vm);
    if (e) vstore(e + i, v);
    acc += v;
  }
  if (i < n) {
    // -inf padding contributes exp(-inf) = 0.
    const VecF v = vexp(load_partial(x + i, n - i, kMinusInf) - vm);
    if (e) store_partial(e + i, v, n - i);
    acc += v;
  }
  return vreduce_add(acc);
}

void scale_row(float* y, float s, std::int64_t n) {
  const VecF vs(s);
  std::int64_t i = 0;
  for (; i + kFloatLanes <= n; i += kFloatLanes) vstore(y + i, vload(y + i) * vs);
  if (i < n) store_partial(y + i, load_partial(y + i, n - i, 0.0f) * vs, n - i);
}

float dot(const float* a, const float* b, std::int64_t n) {
  VecF acc(0.0f);
  std::int64_t i = 0;
  for (; i + kFloatLanes <= n; i += kFloatLanes) acc = vfma(vload(a + i), vload(b + i), acc);
  if (i < n) acc = vfma(load_partial(a + i, n - i, 0.0f), load_partial(b + i, n - i, 0.0f), acc);
  return vreduce_add(acc);
}

void softmax_row(const float* x, float* y, std::int64_t n) {
  const float m = row_max_impl(x, n);
  const float s = exp_sum(x, m, y, n);
  scale_row(y, 1.0f / s, n);
}

void log_softmax_row(const float* x, float* y, std::int64_t n) {
  const float m = row_max_impl(x, n);
  const float log_s = std::log(exp_sum(x, m, nullptr, n));
  const VecF vm(m), vl(log_s);
  std::int64_t i = 0;
  // (x - m) - log s rather than x - (m + log s): exact for the largest logit.
  for (; i + kFloatLanes <= n; i += kFloatLanes) vstore(y + i, (vload(x + i) - vm) - vl);
  if (i < n) store_partial(y + i, (load_partial(x + i, n - i, 0.0f) - vm) - vl, n - i);
}

void softmax_backward_row(const float* g, const float* y, float* dx, std::int64_t n) {
  const VecF vd(dot(g, y, n));
  std::int64_t i = 0;
  for (; i + kFloatLanes <= n; i += kFloatLanes) vstore(dx + i, vload(y + i) * (vload(g + i) - vd));
  if (i < n)
    store_partial(dx + i, load_partial(y + i, n - i, 0.0f) * (load_partial(g + i, n - i, 0.0f) - vd), n - i);
}

void log_softmax_backward_row(const float* g, const float* log_y, float* dx, std::int64_t n) {
  const VecF vs(row_sum_impl(g, n));
  std::int64_t i = 0;
  for (; i + kFloatLanes <= n; i += kFloatLanes) vstore(dx + i, vload(g + i) - vexp(vload(log_y + i)) * vs);
  if (i < n)
    store_partial(dx + i, load_partial(g + i, n - i, 0.0f) - vexp(load_partial(log_y + i, n - i, 0.0f)) * vs,
                  n - i);
}

// Shared front half of both cross-entropy flavours: the row maximum m and
// log(sum(exp(x - m))); probs (if any) receives softmax(x).
float shifted_log_sum_exp(const float* x, float m, float* probs, std::int64_t n) {
  const float s = exp_sum(x, m, probs, n);
  if (probs) scale_row(probs, 1.0f / s, n);
  return std::log(s);
}

float cross_entropy_row(const float* x, const float* t, float* probs, std::int64_t n) {
  const float m = row_max_impl(x, n);
  const VecF vm(m), vl(shifted_log_sum_exp(x, m, probs, n));
  // loss = sum t * (lse - x) with lse - x = (m - x) + log s, which stays small
  // and exact-ish even when the logits are huge.
  VecF acc(0.0f);
  std::int64_t i = 0;
  for (; i + kFloatLanes <= n; i += kFloatLanes) acc = vfma(vload(t + i), (vm - vload(x + i)) + vl, acc);
  if (i < n) acc = vfma(load_partial(t + i, n - i, 0.0f), (vm - load_partial(x + i, n - i, 0.0f)) + vl, acc);
  return vreduce_add(acc);
}

float cross_entropy_label_row(const float* x, std::int64_t label, float* probs, std::int64_t n) {
  const float m = row_max_impl(x, n);
  const float log_s = shifted_log_sum_exp(x, m, probs, n);
  return (m - x[label]) + log_s;
}

void cross_entropy_backward_row(float g, const float* probs, const float* t, float* dx, std::int64_t n) {
  const VecF vg(g);
  std::int64_t i = 0;
  for (; i + kFloatLanes <= n; i += kFloatLanes) vstore(dx + i, vg * (vload(probs + i) - vload(t + i)));
  if (i < n) store_partial(dx + i, vg * (load_partial(probs + i, n - i, 0.0f) - load_partial(t + i, n - i, 0.0f)), n - i);
}

}  // namespace

extern const SoftmaxTable softmax_kernels;
const SoftmaxTable softmax_kernels = {
    &softmax_row,           &log_softmax_row,         &softmax_backward_row,       &log_softmax_backward_row,
    &cross_entropy_row,     &cross_entropy_label_row, &cross_entropy_backward_row,
};

}  // namespace petal::cpu::PETAL_ISA_NS
