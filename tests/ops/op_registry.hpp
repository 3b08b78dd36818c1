// The op-test registry: one table entry per op and configuration (input
// shapes, dtypes, attributes), each with the op's forward through kernels/ops,
// a plain double-precision reference loop, and (when autograd has the op) its
// differentiable form. tests/ops/test_op_registry.cpp runs every entry forward
// on every CPU ISA and thread count against the reference and through
// gradcheck; tests/cuda/test_cuda_op_registry.cpp runs the same entries on a
// GPU. Each family's entries live in tests/ops/cases_FAMILY.cpp; adding an op
// means adding its entries there (usually one line through a family helper).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "autograd/variable.hpp"
#include "core/random.hpp"
#include "core/tensor.hpp"
#include "tests/kernels/ops_test_support.hpp"  // broadcast_source_index, for_each_isa_and_threads

namespace petal::test {

// How an input reaches the op: a contiguous tensor, or a view of another
// tensor so the op reads strides.
enum class Layout {
  Contiguous,
  Transposed,  // stored with its last two axes swapped (column-major)
  EveryOther,  // every other element of a last axis twice as long (stride 2)
  Expanded,    // a first axis of size 1 expanded (stride 0): each row the same
};

// How one input of an entry is made: uniform values in [low, high) of the
// entry's dtype (or a fixed dtype: integer class indices, masks), in a layout.
struct InputSpec {
  Shape shape;  // what the op sees
  double low = -2.0;
  double high = 2.0;
  std::optional<DType> fixed_dtype;  // e.g. Int64 targets; integers are drawn in [low, high)
  Layout layout = Layout::Contiguous;
  // false: a constant for gradcheck (targets, indices). gradcheck takes only
  // float64, so integer inputs reach `differentiable` as float64 holding
  // whole numbers, and the function converts them back.
  bool differentiable = true;

  InputSpec(Shape shape_, double low_ = -2.0, double high_ = 2.0) : shape(std::move(shape_)), low(low_), high(high_) {}
  InputSpec viewed(Layout l) const {
    InputSpec s = *this;
    s.layout = l;
    return s;
  }
  InputSpec transposed_view(bool yes = true) const { return viewed(yes ? Layout::Transposed : Layout::Contiguous); }
  InputSpec constant() const {
    InputSpec s = *this;
    s.differentiable = false;
    return s;
  }
  InputSpec of_dtype(DType dtype) const {
    InputSpec s = *this;
    s.fixed_dtype = dtype;
    return s;
  }
};

// The reference's answer: values in float64 in the output's C order, the
// output shape, and per element the magnitude its rounding error scales with
// (|value| when empty; sum |a_ik * b_kj| for a matrix product).
struct Reference {
  Shape shape;
  std::vector<double> values;
  std::vector<double> error_scale;
};

using Inputs = std::vector<Tensor>;
using ForwardFn = std::function<Tensor(const Inputs&)>;
using ReferenceFn = std::function<Reference(const Inputs&)>;
using DifferentiableFn = std::function<ag::Variable(const std::vector<ag::Variable>&)>;

struct OpCase {
  std::string family;      // elementwise, reduce, softmax, matmul, conv, shape, indexing...
  std::string name;        // the op, e.g. "add"
  std::string attributes;  // what distinguishes this entry, e.g. "axes {0, 2}, keepdim"
  std::vector<InputSpec> inputs;
  std::vector<DType> dtypes = {DType::Float32, DType::Float64};
  ForwardFn forward;
  ReferenceFn reference;
  DifferentiableFn differentiable;  // empty when autograd has no such function
  std::optional<DType> output_dtype;  // when not the entry's dtype (argmax: int64)
  // The op has no device kernel yet (take, embedding, where): the GPU registry
  // checks that it says so with a DeviceError instead of comparing values.
  bool cpu_only = false;
  double rtol_float32 = 2e-6;
  double rtol_float64 = 1e-12;
  double atol_float32 = 1e-7;
  double atol_float64 = 1e-10;
  // Gradcheck runs on every entry whose inputs hold at most this many
  // elements in all (finite differences cost two forward passes an element).
  std::int64_t gradcheck_max_elements = 256;

  std::string label(DType dtype) const;  // "family/name [shapes] attributes dtype"
  double rtol(DType dtype) const { return dtype == DType::Float32 ? rtol_float32 : rtol_float64; }
  double atol(DType dtype) const { return dtype == DType::Float32 ? atol_float32 : atol_float64; }
  // Exact answers (max, argmax, copies): no tolerance at all.
  void exact() { rtol_float32 = rtol_float64 = atol_float32 = atol_float64 = 0.0; }
};

// Every entry of every family, built once.
const std::vector<OpCase>& all_op_cases();

// The families' tables (tests/ops/cases_*.cpp).
std::vector<OpCase> elementwise_cases();
std::vector<OpCase> reduce_cases();
std::vector<OpCase> softmax_cases();
std::vector<OpCase> matmul_cases();
std::vector<OpCase> conv_cases();
std::vector<OpCase> shape_cases();
std::vector<OpCase> indexing_cases();

// The entry's inputs in `dtype`, drawn from gen on the host; on another
// device the drawn tensors are copied there and the views made there. The
// same generator state gives the same values on every device.
Inputs make_inputs(const OpCase& c, DType dtype, Generator& gen, Device device = Device::cpu());

// Calls body(entry, dtype, gen) for every entry and each of its dtypes, all
// drawing from one generator seeded with `seed`; returns how many calls.
std::size_t for_each_entry(std::uint64_t seed,
                           const std::function<void(const OpCase&, DType, Generator&)>& body);

// One entry in one dtype, ready to run: its inputs on the device that runs it
// and the reference's answer for the same values (drawn on the host).
struct DrawnEntry {
  Inputs inputs;
  Reference expected;
};
DrawnEntry draw_entry(const OpCase& c, DType dtype, Generator& gen, Device device = Device::cpu());
// Runs the entry's forward on the drawn inputs; the first problem found (the
// result's device, dtype or an element off the reference), or empty.
std::string check_entry(const OpCase& c, DType dtype, const DrawnEntry& drawn);

// References that tests of special cases share with the registry.
// op(a) @ op(b) (2-D or batched 3-D) with each element's error scale.
Reference reference_matmul(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b);
// log_softmax of every row of the last axis, in double.
std::vector<double> reference_log_softmax(const Tensor& a);

// The first element where `actual` is off the reference by more than
// atol + rtol * scale, as a message; empty when every element is close.
// NaN matches NaN, an infinity matches itself, and a float32 result may
// overflow to the infinity of the reference's sign.
std::string compare_with_reference(const Tensor& actual, const Reference& expected, double rtol, double atol);

}  // namespace petal::test
