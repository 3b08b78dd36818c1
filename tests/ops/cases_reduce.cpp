// Registry entries of the reduction family: sum, mean and max over any axes
// with and without keepdim, argmax along an axis, and sum_to.
#include <cmath>
#include <limits>

#include "autograd/functions.hpp"
#include "kernels/ops.hpp"
#include "tests/ops/op_registry.hpp"

namespace petal::test {
namespace {

enum class Kind { Sum, Mean, Max, Min, Var };

std::vector<bool> reduced_axes(std::int64_t nd, const ops::Axes& axes) {
  std::vector<bool> reduced(nd, axes.empty());
  for (std::int64_t axis : axes) reduced[axis < 0 ? axis + nd : axis] = true;
  return reduced;
}

// Reference reduction in double over a plain loop.
Reference reference_reduce(const Tensor& a, const ops::Axes& axes, bool keepdim, Kind kind) {
  const std::int64_t nd = a.dim();
  const std::vector<bool> reduced = reduced_axes(nd, axes);
  Shape kept = a.shape();  // the keepdim shape
  Reference r;
  for (std::int64_t d = 0; d < nd; ++d) {
    if (reduced[d]) kept[d] = 1;
    if (!reduced[d] || keepdim) r.shape.push_back(kept[d]);
  }
  const std::int64_t out_numel = shape_numel(kept);
  const double identity = kind == Kind::Max   ? -std::numeric_limits<double>::infinity()
                          : kind == Kind::Min ? std::numeric_limits<double>::infinity()
                                              : 0.0;
  r.values.assign(out_numel, identity);
  std::vector<std::int64_t> count(out_numel, 0);
  std::vector<double> v = a.to_vector<double>();
  if (kind == Kind::Var) {
    // The squared deviations from each group's mean, then their mean.
    const Reference means = reference_reduce(a, axes, true, Kind::Mean);
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(v.size()); ++i) {
      const double d = v[i] - means.values[broadcast_source_index(means.shape, a.shape(), i)];
      v[i] = d * d;
    }
  }
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(v.size()); ++i) {
    std::int64_t rest = i, o = 0, o_stride = 1;
    for (std::int64_t d = nd - 1; d >= 0; --d) {
      const std::int64_t idx = rest % a.shape()[d];
      rest /= a.shape()[d];
      if (!reduced[d]) o += idx * o_stride;
      o_stride *= kept[d];
    }
    r.values[o] = kind == Kind::Max   ? std::max(r.values[o], v[i])
                  : kind == Kind::Min ? std::min(r.values[o], v[i])
                                      : r.values[o] + v[i];
    ++count[o];
  }
  if (kind == Kind::Mean || kind == Kind::Var)
    for (std::int64_t o = 0; o < out_numel; ++o) r.values[o] /= static_cast<double>(count[o]);
  return r;
}

struct AxesCase {
  Shape shape;
  ops::Axes axes;
  Layout layout = Layout::Contiguous;
};

// Last axis, leading axes (narrow rows in blocks, wide rows in column strips),
// middle axes (NHWC over H, W), all axes, negative axes, size-1 axes; lengths
// around the SIMD widths and primes; a few large enough to use two threads;
// inputs read through views.
const std::vector<AxesCase> axes_cases = {
    {{1}, {}},          {{7}, {}},          {{17}, {0}},          {{100003}, {}},        {{5, 16}, {1}},
    {{5, 17}, {-1}},    {{3, 1}, {1}},      {{31, 8}, {0}},       {{31, 19}, {0}},       {{1000, 67}, {0}},
    {{67, 1000}, {1}},  {{2, 5, 7, 3}, {1, 2}}, {{4, 3, 5, 17}, {0, 1, 2}}, {{3, 4, 5}, {0, 2}}, {{3, 4, 5}, {-3, -1}},
    {{2, 3, 4, 5}, {0, 2}}, {{2, 3, 4, 5}, {1, 3}}, {{6, 1, 9}, {1}},  {{6, 1, 9}, {0, 1}},  {{64, 40, 33}, {0, 1}},
    {{3, 4}, {0, 1}},   {{300, 257}, {1}},  {{3, 4099}, {0}},     {{40, 4500}, {0}},     {{2, 3000, 24}, {0, 1}},
    {{33, 19}, {}, Layout::Transposed}, {{33, 19}, {0}, Layout::Transposed}, {{33, 19}, {-1}, Layout::Transposed},
    {{19, 11}, {}, Layout::EveryOther}, {{19, 11}, {0}, Layout::EveryOther}, {{19, 11}, {-1}, Layout::EveryOther},
    {{4, 6, 9}, {}, Layout::Expanded},  {{4, 6, 9}, {0}, Layout::Expanded},  {{4, 6, 9}, {-1}, Layout::Expanded},
};

std::string axes_label(const ops::Axes& axes, bool keepdim) {
  std::string s = "axes {";
  for (std::size_t i = 0; i < axes.size(); ++i) s += (i ? ", " : "") + std::to_string(axes[i]);
  return s + "}" + (keepdim ? ", keepdim" : "");
}

}  // namespace

std::vector<OpCase> reduce_cases() {
  std::vector<OpCase> out;
  for (const AxesCase& a : axes_cases) {
    for (bool keepdim : {false, true}) {
      for (Kind kind : {Kind::Sum, Kind::Mean, Kind::Max, Kind::Min, Kind::Var}) {
        OpCase c;
        c.family = "reduce";
        c.name = kind == Kind::Sum ? "sum" : kind == Kind::Mean ? "mean" : kind == Kind::Max ? "max"
                 : kind == Kind::Min ? "min" : "variance";
        c.attributes = axes_label(a.axes, keepdim);
        c.inputs = {InputSpec(a.shape).viewed(a.layout)};
        const ops::Axes axes = a.axes;
        c.reference = [axes, keepdim, kind](const Inputs& in) { return reference_reduce(in[0], axes, keepdim, kind); };
        if (kind == Kind::Max) {
          c.forward = [axes, keepdim](const Inputs& in) { return ops::max(in[0], axes, keepdim); };
          c.differentiable = [axes, keepdim](const std::vector<ag::Variable>& v) { return ag::max(v[0], axes, keepdim); };
          c.exact();
        } else if (kind == Kind::Min) {
          c.forward = [axes, keepdim](const Inputs& in) { return ops::min(in[0], axes, keepdim); };
          c.differentiable = [axes, keepdim](const std::vector<ag::Variable>& v) { return ag::min(v[0], axes, keepdim); };
          c.exact();
        }
        if ((kind == Kind::Max || kind == Kind::Min) && a.layout == Layout::Expanded &&
            (a.axes.empty() || a.axes[0] == 0)) {
          // Every row is the same element (stride 0): a tie across the
          // reduced axis 0, where max has no derivative.
          c.differentiable = {};
        }
        if (kind == Kind::Var) {
          c.forward = [axes, keepdim](const Inputs& in) { return ops::variance(in[0], axes, keepdim); };
          c.differentiable = [axes, keepdim](const std::vector<ag::Variable>& v) {
            return ag::variance(v[0], axes, keepdim);
          };
          c.rtol_float32 = 1e-5;
          c.atol_float32 = 1e-5 * std::sqrt(static_cast<double>(shape_numel(a.shape)));
        } else if (kind == Kind::Sum || kind == Kind::Mean) {
          c.forward = kind == Kind::Sum ? ForwardFn([axes, keepdim](const Inputs& in) { return ops::sum(in[0], axes, keepdim); })
                                        : ForwardFn([axes, keepdim](const Inputs& in) { return ops::mean(in[0], axes, keepdim); });
          c.differentiable = kind == Kind::Sum ? DifferentiableFn([axes, keepdim](const std::vector<ag::Variable>& v) {
                                                   return ag::sum(v[0], axes, keepdim);
                                                 })
                                               : DifferentiableFn([axes, keepdim](const std::vector<ag::Variable>& v) {
                                                   return ag::mean(v[0], axes, keepdim);
                                                 });
          // float32 sums of n values of size <= 2 carry about sqrt(n) ulps of error.
          c.rtol_float32 = 1e-5;
          c.atol_float32 = 1e-5 * std::sqrt(static_cast<double>(shape_numel(a.shape)));
        }
        out.push_back(c);
      }
    }
  }

  // argmax: the first largest element along one axis, as int64.
  for (const auto& [shape, axis] : std::vector<std::pair<Shape, std::int64_t>>{
           {{17}, 0}, {{5, 13}, 1}, {{5, 13}, 0}, {{3, 4, 5}, 1}, {{3, 4, 5}, -1}, {{400, 129}, 1}}) {
    OpCase c;
    c.family = "reduce";
    c.name = "argmax";
    c.attributes = "axis " + std::to_string(axis);
    c.inputs = {InputSpec{shape}};
    c.forward = [axis](const Inputs& in) { return ops::argmax(in[0], axis); };
    c.output_dtype = DType::Int64;
    c.reference = [axis](const Inputs& in) {
      const Shape& s = in[0].shape();
      const std::int64_t d = axis < 0 ? axis + in[0].dim() : axis;
      std::int64_t outer = 1, inner = 1;
      for (std::int64_t i = 0; i < d; ++i) outer *= s[i];
      for (std::int64_t i = d + 1; i < in[0].dim(); ++i) inner *= s[i];
      const std::vector<double> v = in[0].to_vector<double>();
      Reference r;
      for (std::int64_t i = 0; i < in[0].dim(); ++i)
        if (i != d) r.shape.push_back(s[i]);
      for (std::int64_t o = 0; o < outer; ++o)
        for (std::int64_t i = 0; i < inner; ++i) {
          std::int64_t best = 0;
          for (std::int64_t j = 1; j < s[d]; ++j)
            if (v[(o * s[d] + j) * inner + i] > v[(o * s[d] + best) * inner + i]) best = j;
          r.values.push_back(static_cast<double>(best));
        }
      return r;
    };
    c.exact();
    out.push_back(c);
  }

  // sum_to: a broadcast result summed back to the operand's shape.
  for (const auto& [from, to] : std::vector<std::pair<Shape, Shape>>{
           {{5, 19}, {19}}, {{5, 19}, {5, 1}}, {{5, 19}, {1, 19}}, {{2, 3, 4}, {3, 1}}, {{2, 3, 4}, {}},
           {{2, 3, 4}, {2, 3, 4}}, {{6, 1, 7}, {1, 7}}, {{300, 129}, {129}}}) {
    OpCase c;
    c.family = "reduce";
    c.name = "sum_to";
    c.attributes = "to " + shape_str(to);
    c.inputs = {InputSpec{from}};
    const Shape target = to;
    c.forward = [target](const Inputs& in) { return ops::sum_to(in[0], target); };
    c.reference = [target](const Inputs& in) {
      Reference r;
      r.shape = target;
      r.values.assign(shape_numel(target), 0.0);
      const std::vector<double> v = in[0].to_vector<double>();
      for (std::int64_t i = 0; i < in[0].numel(); ++i)
        r.values[broadcast_source_index(target, in[0].shape(), i)] += v[i];
      return r;
    };
    c.rtol_float32 = 1e-5;
    c.atol_float32 = 1e-5;
    out.push_back(c);
  }
  return out;
}

}  // namespace petal::test
