#include "core/tensor.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <sstream>

#include "core/thread_pool.hpp"

namespace petal {

// ---------------- construction ----------------

Tensor::Tensor(std::shared_ptr<Storage> storage, Shape shape, Strides strides, std::int64_t offset, DType dtype)
    : storage_(std::move(storage)), shape_(std::move(shape)), strides_(std::move(strides)), offset_(offset),
      dtype_(dtype) {
  PETAL_CHECK(shape_.size() == strides_.size(), ShapeError, "Tensor: shape ", shape_str(shape_), " and strides ",
              shape_str(strides_), " differ in rank");
}

// Rejects negative dimensions and shapes whose byte count overflows 63 bits
// when multiplied out in order, as shape_numel does (typically a corrupt header).
static void check_shape_valid(const Shape& shape, DType dtype, const char* op) {
  std::int64_t bytes = static_cast<std::int64_t>(dtype_size(dtype));
  bool overflow = false;
  for (auto d : shape) {
    PETAL_CHECK(d >= 0, ShapeError, op, ": negative dimension in shape ", shape_str(shape));
    overflow = overflow || __builtin_mul_overflow(bytes, d, &bytes);
  }
  PETAL_CHECK(!overflow, ShapeError, op, ": shape ", shape_str(shape), " of ", dtype_name(dtype),
              " is too large to address");
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  check_shape_valid(shape, dtype, "empty");
  const std::size_t nbytes = static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype);
  auto storage = std::make_shared<Storage>(nbytes, device, allocator_for(device));
  return Tensor(std::move(storage), shape, contiguous_strides(shape), 0, dtype);
}

Tensor Tensor::empty_pinned(const Shape& shape, DType dtype) {
  check_shape_valid(shape, dtype, "empty_pinned");
  const std::size_t nbytes = static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype);
  auto storage = std::make_shared<Storage>(nbytes, Device::cpu(), pinned_host_allocator());
  return Tensor(std::move(storage), shape, contiguous_strides(shape), 0, dtype);
}

Device Tensor::device() const { return storage_ ? storage_->device() : Device::cpu(); }

std::int64_t Tensor::size(std::int64_t axis) const { return shape_[normalize_axis(axis, dim(), "size")]; }

bool Tensor::is_contiguous() const {
  std::int64_t expected = 1;
  for (std::size_t i = shape_.size(); i-- > 0;) {
    if (shape_[i] == 1) continue;
    if (strides_[i] != expected) return false;
    expected *= shape_[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  check_defined("raw_data");
  return static_cast<char*>(storage_->data()) + offset_ * static_cast<std::int64_t>(itemsize());
}

void Tensor::check_dtype(DType expected, const char* op) const {
  PETAL_CHECK(dtype_ == expected, DTypeError, op, ": expected a ", dtype_name(expected), " tensor, got ",
              dtype_name(dtype_), " of shape ", shape_str(shape_));
}

void Tensor::check_defined(const char* op) const {
  PETAL_CHECK(defined(), ValueError, op, ": the tensor is undefined (default-constructed)");
}

// ---------------- views ----------------

Tensor Tensor::view(Shape shape) const {
  check_defined("view");
  std::int64_t infer = -1, known = 1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      PETAL_CHECK(infer < 0, ShapeError, "reshape: more than one -1 in ", shape_str(shape));
      infer = static_cast<std::int64_t>(i);
    } else {
      PETAL_CHECK(shape[i] >= 0, ShapeError, "reshape: negative dimension in ", shape_str(shape));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    PETAL_CHECK(known != 0 && numel() % known == 0, ShapeError, "reshape: cannot reshape ", shape_str(shape_),
                " (", numel(), " elements) into ", shape_str(shape));
    shape[infer] = numel() / known;
  }
  PETAL_CHECK(shape_numel(shape) == numel(), ShapeError, "reshape: cannot reshape ", shape_str(shape_), " (",
              numel(), " elements) into ", shape_str(shape));
  PETAL_CHECK(is_contiguous(), ShapeError, "view: tensor of shape ", shape_str(shape_), " with strides ",
              shape_str(strides_), " is not contiguous; use reshape()");
  Strides strides = contiguous_strides(shape);
  return Tensor(storage_, std::move(shape), std::move(strides), offset_, dtype_);
}

Tensor Tensor::reshape(Shape shape) const {
  check_defined("reshape");
  return is_contiguous() ? view(std::move(shape)) : contiguous().view(std::move(shape));
}

Tensor Tensor::flatten(std::int64_t start_axis, std::int64_t end_axis) const {
  if (dim() == 0) return reshape({1});
  const std::int64_t s = normalize_axis(start_axis, dim(), "flatten");
  const std::int64_t e = normalize_axis(end_axis, dim(), "flatten");
  PETAL_CHECK(s <= e, IndexError, "flatten: start axis ", start_axis, " is after end axis ", end_axis);
  Shape out(shape_.begin(), shape_.begin() + s);
  std::int64_t n = 1;
  for (std::int64_t i = s; i <= e; ++i) n *= shape_[i];
  out.push_back(n);
  out.insert(out.end(), shape_.begin() + e + 1, shape_.end());
  return reshape(out);
}

Tensor Tensor::transpose(std::int64_t axis_a, std::int64_t axis_b) const {
  std::vector<std::int64_t> order(dim());
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[normalize_axis(axis_a, dim(), "transpose")], order[normalize_axis(axis_b, dim(), "transpose")]);
  return permute(order);
}

Tensor Tensor::permute(const std::vector<std::int64_t>& order) const {
  check_defined("permute");
  PETAL_CHECK(static_cast<std::int64_t>(order.size()) == dim(), ShapeError, "permute: order has ",
              order.size(), " axes, tensor of shape ", shape_str(shape_), " has ", dim());
  std::vector<bool> seen(dim(), false);
  Shape shape(dim());
  Strides strides(dim());
  for (std::int64_t i = 0; i < dim(); ++i) {
    const std::int64_t a = normalize_axis(order[i], dim(), "permute");
    PETAL_CHECK(!seen[a], IndexError, "permute: axis ", a, " appears twice");
    seen[a] = true;
    shape[i] = shape_[a];
    strides[i] = strides_[a];
  }
  return Tensor(storage_, std::move(shape), std::move(strides), offset_, dtype_);
}

Tensor Tensor::slice(std::int64_t axis, std::int64_t start, std::int64_t end, std::int64_t step) const {
  check_defined("slice");
  const std::int64_t a = normalize_axis(axis, dim(), "slice");
  PETAL_CHECK(step > 0, ValueError, "slice: step must be positive, got ", step);
  const std::int64_t n = shape_[a];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<std::int64_t>(start, 0, n);
  end = std::clamp<std::int64_t>(end, start, n);
  Shape shape = shape_;
  Strides strides = strides_;
  shape[a] = (end - start + step - 1) / step;
  strides[a] = strides_[a] * step;
  return Tensor(storage_, std::move(shape), std::move(strides), offset_ + start * strides_[a], dtype_);
}

Tensor Tensor::select(std::int64_t axis, std::int64_t index) const {
  check_defined("select");
  const std::int64_t a = normalize_axis(axis, dim(), "select");
  const std::int64_t i = index < 0 ? index + shape_[a] : index;
  PETAL_CHECK(i >= 0 && i < shape_[a], IndexError, "select: index ", index, " is out of range for axis ", a,
              " of size ", shape_[a]);
  Shape shape = shape_;
  Strides strides = strides_;
  shape.erase(shape.begin() + a);
  strides.erase(strides.begin() + a);
  return Tensor(storage_, std::move(shape), std::move(strides), offset_ + i * strides_[a], dtype_);
}

Tensor Tensor::unsqueeze(std::int64_t axis) const {
  check_defined("unsqueeze");
  const std::int64_t a = normalize_axis(axis, dim() + 1, "unsqueeze");
  Shape shape = shape_;
  Strides strides = strides_;
  const std::int64_t stride = a < dim() ? strides_[a] * shape_[a] : 1;
  shape.insert(shape.begin() + a, 1);
  strides.insert(strides.begin() + a, stride);
  return Tensor(storage_, std::move(shape), std::move(strides), offset_, dtype_);
}

Tensor Tensor::squeeze(std::int64_t axis) const {
  const std::int64_t a = normalize_axis(axis, dim(), "squeeze");
  PETAL_CHECK(shape_[a] == 1, ShapeError, "squeeze: axis ", a, " of shape ", shape_str(shape_), " is not 1");
  return select(a, 0);
}

Tensor Tensor::expand(const Shape& shape) const {
  check_defined("expand");
  PETAL_CHECK(shape.size() >= shape_.size(), ShapeError, "expand: cannot expand ", shape_str(shape_), " to ",
              shape_str(shape));
  for (auto d : shape)
    PETAL_CHECK(d >= 0, ShapeError, "expand: negative dimension in target shape ", shape_str(shape),
                " (expanding ", shape_str(shape_), ")");
  const std::size_t lead = shape.size() - shape_.size();
  Strides strides(shape.size(), 0);
  for (std::size_t i = 0; i < shape_.size(); ++i) {
    const std::int64_t have = shape_[i], want = shape[lead + i];
    PETAL_CHECK(have == want || have == 1, ShapeError, "expand: cannot expand ", shape_str(shape_), " to ",
                shape_str(shape));
    strides[lead + i] = have == want ? strides_[i] : 0;
  }
  return Tensor(storage_, shape, std::move(strides), offset_, dtype_);
}

// ---------------- copies ----------------

namespace {

// Calls body(dst_offset, src_offset) for each element of a strided iteration
// with an innermost contiguous run handled by inner(dst, src, n, dst_stride, src_stride).
template <class Fn>
void for_each_strided(const Shape& shape, const Strides& dst_strides, const Strides& src_strides, Fn&& inner) {
  const std::int64_t nd = static_cast<std::int64_t>(shape.size());
  if (shape_numel(shape) == 0) return;
  if (nd == 0) {
    inner(0, 0, 1, 1, 1);
    return;
  }
  const std::int64_t last = shape[nd - 1];
  const std::int64_t outer = shape_numel(shape) / last;
  std::vector<std::int64_t> idx(nd, 0);
  std::int64_t doff = 0, soff = 0;
  for (std::int64_t o = 0; o < outer; ++o) {
    inner(doff, soff, last, dst_strides[nd - 1], src_strides[nd - 1]);
    for (std::int64_t d = nd - 2; d >= 0; --d) {
      doff += dst_strides[d];
      soff += src_strides[d];
      if (++idx[d] < shape[d]) break;
      doff -= dst_strides[d] * shape[d];
      soff -= src_strides[d] * shape[d];
      idx[d] = 0;
    }
  }
}

template <class D, class S>
void convert_copy(D* dst, const Strides& dst_strides, const S* src, const Strides& src_strides, const Shape& shape) {
  for_each_strided(shape, dst_strides, src_strides,
                   [&](std::int64_t doff, std::int64_t soff, std::int64_t n, std::int64_t ds, std::int64_t ss) {
                     D* d = dst + doff;
                     const S* s = src + soff;
                     if (ds == 1 && ss == 1) {
                       if constexpr (std::is_same_v<D, S>) {
                         std::memcpy(d, s, n * sizeof(D));
                       } else {
                         for (std::int64_t i = 0; i < n; ++i) d[i] = static_cast<D>(s[i]);
                       }
                     } else {
                       for (std::int64_t i = 0; i < n; ++i) d[i * ds] = static_cast<D>(s[i * ss]);
                     }
                   });
}

}  // namespace

Tensor& Tensor::copy_(const Tensor& src) {
  check_defined("copy_");
  src.check_defined("copy_");
  PETAL_CHECK(src.shape() == shape_ || shape_numel(src.shape()) == numel(), ShapeError, "copy_: source shape ",
              shape_str(src.shape()), " does not match destination ", shape_str(shape_));
  Tensor source = src.shape() == shape_ ? src : src.reshape(shape_);
  if (source.storage() == storage_) {
    // Copying a view onto itself changes nothing.
    if (source.offset() == offset_ && source.strides() == strides_ && source.dtype() == dtype_) return *this;
    // A source that shares this storage (x.copy_(x.t()), shifted slices) could
    // be overwritten before it is read: copy it out first.
    source = source.clone();
  }
  if (!device().is_cpu() || !source.device().is_cpu()) {
    PETAL_CHECK(source.dtype() == dtype_ && is_contiguous(), DTypeError,
                "copy_: between devices the dtypes must match and the destination be contiguous (", source.dtype(),
                " -> ", dtype_, ")");
    if (!source.device().is_cpu() && !source.is_contiguous()) {
      const DeviceBackend& backend = device_backend(source.device().type);
      PETAL_CHECK(backend.strided_copy != nullptr, DeviceError, "copy_: the ", source.device().str(),
                  " backend cannot copy a strided tensor of shape ", shape_str(source.shape()));
      if (source.device() == device()) {
        backend.strided_copy(raw_data(), source.raw_data(), shape_, source.strides(), itemsize(), device());
        return *this;
      }
      source = source.contiguous();  // gathered on its own device first
    }
    Tensor s = source.device().is_cpu() ? source.contiguous() : source;
    copy_bytes(raw_data(), device(), s.raw_data(), s.device(), nbytes());
    return *this;
  }
  dispatch_dtype(dtype_, [&](auto dtag) {
    using D = decltype(dtag);
    dispatch_dtype(source.dtype(), [&](auto stag) {
      using S = decltype(stag);
      convert_copy(static_cast<D*>(raw_data()), strides_, static_cast<const S*>(source.raw_data()),
                   source.strides(), shape_);
    });
  });
  return *this;
}

Tensor Tensor::contiguous() const {
  check_defined("contiguous");
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  check_defined("clone");
  Tensor out = Tensor::empty(shape_, dtype_, device());
  out.copy_(*this);
  return out;
}

Tensor Tensor::to(DType dtype) const {
  check_defined("to");
  if (dtype == dtype_) return *this;
  PETAL_CHECK(device().is_cpu(), DeviceError, "to(", dtype_name(dtype), "): dtype conversion runs on the CPU; ",
              "move the tensor to the CPU first");
  Tensor out = Tensor::empty(shape_, dtype, device());
  out.copy_(*this);
  return out;
}

Tensor Tensor::to(Device device) const {
  check_defined("to");
  if (device == this->device()) return *this;
  Tensor src = contiguous();
  Tensor out = Tensor::empty(shape_, dtype_, device);
  copy_bytes(out.raw_data(), device, src.raw_data(), src.device(), nbytes());
  return out;
}

Tensor& Tensor::fill_(double value) {
  check_defined("fill_");
  if (!device().is_cpu()) {
    Tensor host = full(shape_, value, dtype_);
    return copy_(host);
  }
  dispatch_dtype(dtype_, [&](auto tag) {
    using T = decltype(tag);
    const T v = static_cast<T>(value);
    T* base = static_cast<T*>(raw_data());
    for_each_strided(shape_, strides_, strides_,
                     [&](std::int64_t off, std::int64_t, std::int64_t n, std::int64_t s, std::int64_t) {
                       for (std::int64_t i = 0; i < n; ++i) base[off + i * s] = v;
                     });
  });
  return *this;
}

std::string Tensor::str() const {
  if (!defined()) return "Tensor(undefined)";
  std::ostringstream out;
  out << "Tensor(" << dtype_name(dtype_) << ", " << shape_str(shape_) << ", " << device() << ")";
  const std::int64_t n = numel();
  if (n == 0) return out.str();
  std::vector<double> v = to_vector<double>();
  out << " [";
  const std::int64_t shown = std::min<std::int64_t>(n, 20);
  for (std::int64_t i = 0; i < shown; ++i) out << (i ? ", " : "") << v[i];
  if (n > shown) out << ", ... (" << n << " values)";
  out << "]";
  return out.str();
}

std::ostream& operator<<(std::ostream& out, const Tensor& t) { return out << t.str(); }

// ---------------- factories ----------------

Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  if (!device.is_cpu()) return full(shape, value, dtype).to(device);
  Tensor t = Tensor::empty(shape, dtype, device);
  t.fill_(value);
  return t;
}

Tensor zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }

Tensor arange(double start, double end, double step, DType dtype) {
  PETAL_CHECK(step != 0.0, ValueError, "arange: step must not be zero");
  const double count = std::ceil((end - start) / step);
  const std::int64_t n = count > 0 ? static_cast<std::int64_t>(count) : 0;
  Tensor t = Tensor::empty({n}, dtype);
  dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    for (std::int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(start + static_cast<double>(i) * step);
  });
  return t;
}

Tensor arange(std::int64_t n, DType dtype) { return arange(0.0, static_cast<double>(n), 1.0, dtype); }

Tensor uniform(const Shape& shape, double low, double high, Generator& gen, DType dtype) {
  PETAL_CHECK(is_floating(dtype), DTypeError, "uniform: dtype must be float32 or float64, got ", dtype_name(dtype));
  Tensor t = Tensor::empty(shape, dtype);
  const std::int64_t n = t.numel();
  if (dtype == DType::Float32) {
    float* p = t.data<float>();
    const float lo = static_cast<float>(low), span = static_cast<float>(high - low);
    for (std::int64_t i = 0; i < n; ++i) p[i] = lo + span * gen.uniform_float();
  } else {
    double* p = t.data<double>();
    for (std::int64_t i = 0; i < n; ++i) p[i] = low + (high - low) * gen.uniform_double();
  }
  return t;
}

Tensor normal(const Shape& shape, double mean, double stddev, Generator& gen, DType dtype) {
  PETAL_CHECK(is_floating(dtype), DTypeError, "normal: dtype must be float32 or float64, got ", dtype_name(dtype));
  Tensor t = Tensor::empty(shape, dtype);
  const std::int64_t n = t.numel();
  dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_floating_point_v<T>) {
      T* p = t.data<T>();
      for (std::int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(mean + stddev * gen.normal());
    }
  });
  return t;
}

}  // namespace petal
