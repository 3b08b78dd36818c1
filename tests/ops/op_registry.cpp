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
    switch (inputs[i].layout) {
      case Layout::Contiguous: break;
      case Layout::Transposed: out << "(transposed view)"; break;
      case Layout::EveryOther: out << "(stride-2 view)"; break;
      case Layout::Expanded: out << "(expanded view)"; break;
    }
  }
  if (!attributes.empty()) out << " " << attributes;
  out << " " << dtype_name(dtype);
  return out.str();
}

const std::vector<OpCase>& all_op_cases() {
  static const std::vector<OpCase> cases = [] {
    std::vector<OpCase> all;
    for (auto family : {&elementwise_cases, &reduce_cases, &softmax_cases, &matmul_cases, &conv_cases, &shape_cases,
                        &indexing_cases}) {
      std::vector<OpCase> entries = family();
      all.insert(all.end(), entries.begin(), entries.end());
    }
    return all;
  }();
  return cases;
}

namespace {

// The tensor drawn for an input: its view (apply_layout) is what the op sees.
Shape stored_shape(const InputSpec& spec) {
  Shape stored = spec.shape;
  const std::size_t last = stored.size() - 1;
  switch (spec.layout) {
    case Layout::Contiguous: break;
    case Layout::Transposed: std::swap(stored[last - 1], stored[last]); break;
    case Layout::EveryOther: stored[last] *= 2; break;
    case Layout::Expanded: stored[0] = 1; break;
  }
  return stored;
}

Tensor apply_layout(const Tensor& stored, const InputSpec& spec) {
  const std::int64_t last = stored.dim() - 1;
  switch (spec.layout) {
    case Layout::Contiguous: return stored;
    case Layout::Transposed: return stored.transpose(last - 1, last);
    case Layout::EveryOther: return stored.slice(last, 0, stored.shape()[last], 2);
    case Layout::Expanded: return stored.expand(spec.shape);
  }
  return stored;
}

}  // namespace

Inputs make_inputs(const OpCase& c, DType dtype, Generator& gen, Device device) {
  Inputs out;
  for (const InputSpec& spec : c.inputs) {
    const Shape stored = stored_shape(spec);
    const DType input_dtype = spec.fixed_dtype.value_or(dtype);
    Tensor t;
    if (is_floating(input_dtype)) {
      t = uniform(stored, spec.low, spec.high, gen, input_dtype);
    } else {
      // Integers in [low, high): floor of a uniform double, then converted.
      std::vector<double> v = uniform(stored, spec.low, spec.high, gen, DType::Float64).to_vector<double>();
      for (double& x : v) x = std::floor(x);
      t = from_vector(v, stored).to(input_dtype);
    }
    out.push_back(apply_layout(device.is_cpu() ? t : t.to(device), spec));
  }
  return out;
}

std::size_t for_each_entry(std::uint64_t seed,
                           const std::function<void(const OpCase&, DType, Generator&)>& body) {
  Generator gen(seed);
  std::size_t calls = 0;
  for (const OpCase& c : all_op_cases())
    for (DType dtype : c.dtypes) {
      body(c, dtype, gen);
      ++calls;
    }
  return calls;
}

DrawnEntry draw_entry(const OpCase& c, DType dtype, Generator& gen, Device device) {
  const Generator::State start = gen.state();
  const Inputs host = make_inputs(c, dtype, gen);
  DrawnEntry drawn{host, c.reference(host)};
  if (!device.is_cpu()) {
    gen.set_state(start);
    drawn.inputs = make_inputs(c, dtype, gen, device);
  }
  return drawn;
}

std::string check_entry(const OpCase& c, DType dtype, const DrawnEntry& drawn) {
  const Tensor out = c.forward(drawn.inputs);
  const Device device = drawn.inputs.front().device();
  if (out.device() != device) return "the result is on " + out.device().str() + ", the inputs on " + device.str();
  const DType expected_dtype = c.output_dtype.value_or(dtype);
  if (out.dtype() != expected_dtype)
    return std::string("the result is ") + dtype_name(out.dtype()) + ", expected " + dtype_name(expected_dtype);
  return compare_with_reference(device.is_cpu() ? out : out.to(Device::cpu()), drawn.expected, c.rtol(dtype),
                                c.atol(dtype));
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
