#include "tests/ops/op_registry.hpp"

#include <cmath>
#include <limits>
#include <sstream>

namespace petal::test {

std::string OpCase::label(DType dtype) const {
  std::ostringstream out;
  out << family << "/" << name << " ";
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    out << (i ? " " : "") << shape_str(inputs[i].shape);
    if (inputs[i].transposed) out << "^T";
  }
  if (!attributes.empty()) out << " " << attributes;
  out << " " << dtype_name(dtype);
  return out.str();
}

const std::vector<OpCase>& all_op_cases() {
  static const std::vector<OpCase> cases = [] {
    std::vector<OpCase> all;
    for (auto family : {&elementwise_cases, &reduce_cases, &softmax_cases, &matmul_cases}) {
      std::vector<OpCase> entries = family();
      all.insert(all.end(), entries.begin(), entries.end());
    }
    return all;
  }();
  return cases;
}

Inputs make_inputs(const OpCase& c, DType dtype, Generator& gen) {
  Inputs out;
  for (const InputSpec& spec : c.inputs) {
    Shape stored = spec.shape;
    if (spec.transposed) std::swap(stored[stored.size() - 2], stored[stored.size() - 1]);
    const DType input_dtype = spec.fixed_dtype.value_or(dtype);
    Tensor t;
    if (is_floating(input_dtype)) {
      t = uniform(stored, spec.low, spec.high, gen, input_dtype);
    } else {
      // Integers in [low, high): floor of a uniform double, then converted.
      t = uniform(stored, spec.low, spec.high, gen, DType::Float64);
      std::vector<double> v = t.to_vector<double>();
      for (double& x : v) x = std::floor(x);
      t = from_vector(v, stored).to(input_dtype);
    }
    if (spec.transposed) t = t.transpose(static_cast<std::int64_t>(stored.size()) - 2,
                                         static_cast<std::int64_t>(stored.size()) - 1);
    out.push_back(t);
  }
  return out;
}

Inputs copy_inputs_to(const OpCase& c, const Inputs& inputs, Device device) {
  Inputs out;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!c.inputs[i].transposed) {
      out.push_back(inputs[i].to(device));
      continue;
    }
    // Tensor::to copies contiguously: move the stored layout, then view it.
    const std::int64_t last = inputs[i].dim() - 1;
    out.push_back(inputs[i].transpose(last - 1, last).contiguous().to(device).transpose(last - 1, last));
  }
  return out;
}

std::int64_t broadcast_source_index(const Shape& shape, const Shape& out_shape, std::int64_t flat) {
  std::int64_t src = 0, src_stride = 1;
  const std::int64_t lead = static_cast<std::int64_t>(out_shape.size() - shape.size());
  for (std::int64_t d = static_cast<std::int64_t>(out_shape.size()) - 1; d >= 0; --d) {
    const std::int64_t i = flat % out_shape[d];
    flat /= out_shape[d];
    if (d >= lead) {
      const std::int64_t size = shape[d - lead];
      if (size != 1) src += i * src_stride;
      src_stride *= size;
    }
  }
  return src;
}

std::string compare_with_reference(const Tensor& actual, const Reference& expected, double rtol, double atol) {
  std::ostringstream out;
  if (actual.shape() != expected.shape) {
    out << "shape " << shape_str(actual.shape()) << ", expected " << shape_str(expected.shape);
    return out.str();
  }
  const std::vector<double> got = actual.to_vector<double>();
  if (got.size() != expected.values.size()) {
    out << got.size() << " elements, the reference has " << expected.values.size();
    return out.str();
  }
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double want = expected.values[i];
    const double scale = expected.error_scale.empty() ? std::abs(want) : expected.error_scale[i];
    const bool float_overflow = actual.dtype() == DType::Float32 &&
                                std::abs(want) > std::numeric_limits<float>::max() &&
                                got[i] == std::copysign(std::numeric_limits<double>::infinity(), want);
    const bool ok = std::abs(got[i] - want) <= atol + rtol * scale || float_overflow ||
                    (std::isnan(want) && std::isnan(got[i])) || (std::isinf(want) && got[i] == want);
    if (!ok) {
      out.precision(17);
      out << "element " << i << " of " << shape_str(actual.shape()) << ": got " << got[i] << ", expected " << want
          << " (tolerance " << atol + rtol * scale << ")";
      return out.str();
    }
  }
  return {};
}

}  // namespace petal::test
