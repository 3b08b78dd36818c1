// The message of an expected exception, for tests that check what it says:
//
//   const std::string message = test::thrown_message<FormatError>([&] { decode_png(png, {}, "x.png"); });
//   CHECK(message.find("x.png") != std::string::npos);
//
// The test case stops with a failure (doctest FAIL) when fn throws
// nothing; an exception of another type propagates, and doctest reports it.
#pragma once

#include <doctest/doctest.h>

#include <string>

namespace petal::test {

template <class E, class Fn>
std::string thrown_message(Fn&& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  }
  FAIL("expected an exception, nothing was thrown");
  return {};
}

}  // namespace petal::test
