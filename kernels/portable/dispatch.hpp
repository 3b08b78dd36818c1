// Turning run-time choices into compile-time ones (host code): a floating
// dtype into float or double, an op enum into its std::integral_constant,
// so the per-element formulas of this folder are instantiated per type and
// per op rather than switched on per element.
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

#include "core/dtype.hpp"

namespace petal::kernels {

// Calls fn(float{}) for float32 and fn(double{}) otherwise (callers have
// checked that the dtype is floating).
template <class Fn>
decltype(auto) dispatch_floating(DType dtype, Fn&& fn) {
  if (dtype == DType::Float32) return fn(float{});
  return fn(double{});
}

namespace detail {
template <class Enum, class Fn, std::size_t... I>
decltype(auto) visit_op_impl(Enum op, Fn& fn, std::index_sequence<I...>) {
  using Result = decltype(fn(std::integral_constant<Enum, Enum{}>{}));
  using Entry = Result (*)(Fn&);
  static constexpr Entry entries[] = {
      [](Fn& f) -> Result { return f(std::integral_constant<Enum, static_cast<Enum>(I)>{}); }...};
  return entries[static_cast<std::size_t>(op)](fn);
}
}  // namespace detail

// Calls fn(std::integral_constant<Enum, op>{}) for an op of an enum whose
// last entry is Count (op < Count).
template <class Enum, class Fn>
decltype(auto) visit_op(Enum op, Fn&& fn) {
  return detail::visit_op_impl(op, fn, std::make_index_sequence<static_cast<std::size_t>(Enum::Count)>{});
}

}  // namespace petal::kernels
