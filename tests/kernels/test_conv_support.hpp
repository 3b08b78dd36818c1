// Helpers for the convolution-family kernel tests: random tensors, a
// comparison against the float reference loops (which accumulate in double),
// a loop over every ISA this CPU runs with 1 and 2 threads, and a check that
// 1 to 4 threads give the same bits.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.hpp"
#include "core/thread_pool.hpp"
#include "kernels/cpu/conv/conv_geometry.hpp"
#include "kernels/cpu/isa.hpp"
#include "kernels/ops_conv.hpp"
#include "tests/kernels/isas_under_test.hpp"

namespace petal::conv_test {

inline Tensor random_tensor(const Shape& shape, Generator& gen, double low = -1.0, double high = 1.0) {
  return uniform(shape, low, high, gen);
}

// max |actual - expected| <= tol * max(1, max |expected|), with the worst element in the message.
inline void check_close(const Tensor& actual, const std::vector<float>& expected, double tol, const std::string& what) {
  REQUIRE(actual.numel() == static_cast<std::int64_t>(expected.size()));
  const std::vector<float> a = actual.to_vector<float>();
  double scale = 1.0, worst = 0.0;
  std::size_t worst_index = 0;
  for (float e : expected) scale = std::max(scale, double(std::fabs(e)));
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double err = std::fabs(double(a[i]) - double(expected[i]));
    if (!(err <= worst)) {  // NaN counts as the worst
      worst = std::isnan(err) ? INFINITY : err;
      worst_index = i;
    }
  }
  INFO(what << ": worst element " << worst_index << " got " << a[worst_index] << " expected "
            << expected[worst_index] << " (scale " << scale << ")");
  CHECK(worst <= tol * scale);
}

// Runs fn under every ISA under test (isas_under_test.hpp), with 1 and 2 threads; restores both.
inline void for_each_isa_and_threads(const std::function<void(const std::string&)>& fn) {
  const cpu::Isa saved_isa = cpu::active_isa();
  const int saved_threads = num_threads();
  for (cpu::Isa isa : test::isas_under_test()) {
    cpu::set_active_isa(isa);
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      fn(std::string(cpu::isa_name(isa)) + " x" + std::to_string(threads) + " threads");
    }
  }
  cpu::set_active_isa(saved_isa);
  set_num_threads(saved_threads);
}

// Under every ISA under test: run() on one thread (its result handed to
// check_serial), then five times each on 2, 3 and 4 threads, which must
// give the same bits (for work that threads claim in pieces, whoever is
// free: four threads on a two-core machine take them in varying order).
// Restores the ISA and the thread count.
inline void check_same_bits_on_1_to_4_threads(const std::function<Tensor()>& run,
                                              const std::function<void(const Tensor&)>& check_serial) {
  const cpu::Isa saved_isa = cpu::active_isa();
  const int saved_threads = num_threads();
  for (cpu::Isa isa : test::isas_under_test()) {
    cpu::set_active_isa(isa);
    set_num_threads(1);
    const Tensor serial = run();
    check_serial(serial);
    const std::vector<float> serial_bits = serial.to_vector<float>();
    for (int threads : {2, 3, 4}) {
      set_num_threads(threads);
      for (int call = 0; call < 5; ++call) {
        INFO(cpu::isa_name(isa), " x", threads, " threads, call ", call);
        CHECK(run().to_vector<float>() == serial_bits);
      }
    }
  }
  cpu::set_active_isa(saved_isa);
  set_num_threads(saved_threads);
}

// The kernel-level geometry the op will use (for calling the reference loops).
inline cpu::ConvGeometry geometry(const Shape& x, std::int64_t kh, std::int64_t kw, std::int64_t out_c,
                                  const ops::Conv2dWindow& w) {
  cpu::ConvGeometry g;
  g.batch = x[0], g.in_h = x[1], g.in_w = x[2], g.in_c = x[3];
  g.kernel_h = kh, g.kernel_w = kw, g.stride_h = w.stride_h, g.stride_w = w.stride_w;
  g.pad_top = w.pad_top, g.pad_left = w.pad_left;
  g.out_h = (x[1] + w.pad_top + w.pad_bottom - kh) / w.stride_h + 1;
  g.out_w = (x[2] + w.pad_left + w.pad_right - kw) / w.stride_w + 1;
  g.out_c = out_c;
  return g;
}

// One convolution test case: input [n, h, w, c] and a kh x kw window;
// `channels` is Cout for conv2d and the multiplier for depthwise.
struct ConvTestCase {
  std::int64_t n, h, w, c, channels, kh, kw, sh, sw;
  ops::ConvPadding padding;
  const char* label;
};

// "label [n,h,w,c] -> Cout k3x3 s2x2 same" (depthwise: "x multiplier") for INFO.
inline std::string describe(const ConvTestCase& c, bool depthwise) {
  return std::string(c.label) + " [" + std::to_string(c.n) + "," + std::to_string(c.h) + "," + std::to_string(c.w) +
         "," + std::to_string(c.c) + "] " + (depthwise ? "x" : "-> ") + std::to_string(c.channels) + " k" +
         std::to_string(c.kh) + "x" + std::to_string(c.kw) + " s" + std::to_string(c.sh) + "x" + std::to_string(c.sw) +
         (c.padding == ops::ConvPadding::Same ? " same" : " valid");
}

// The case's random operands (drawn in this order: x, kernel, bias, dy), its
// window and geometry, and buffers for the reference results.
struct ConvTestData {
  Tensor x, kernel, bias, dy;
  ops::Conv2dWindow window;
  cpu::ConvGeometry g;
  std::vector<float> y_ref, dx_ref, dw_ref, db_ref;
};

// The operands of a conv2d case (depthwise = false: kernel [kh, kw, c, channels])
// or a depthwise one (kernel [kh, kw, c, multiplier], c * multiplier outputs).
inline ConvTestData make_case_data(const ConvTestCase& c, bool depthwise, Generator& gen) {
  const std::int64_t out_c = depthwise ? c.c * c.channels : c.channels;
  ConvTestData d;
  d.x = random_tensor({c.n, c.h, c.w, c.c}, gen);
  d.kernel = random_tensor({c.kh, c.kw, c.c, c.channels}, gen);
  d.bias = random_tensor({out_c}, gen);
  d.window = ops::conv2d_window(c.h, c.w, c.kh, c.kw, c.sh, c.sw, c.padding, "test");
  d.g = geometry(d.x.shape(), c.kh, c.kw, out_c, d.window);
  d.dy = random_tensor({d.g.batch, d.g.out_h, d.g.out_w, d.g.out_c}, gen);
  d.y_ref.resize(static_cast<std::size_t>(d.g.output_pixels() * out_c));
  d.dx_ref.resize(static_cast<std::size_t>(d.x.numel()));
  d.dw_ref.resize(static_cast<std::size_t>(d.kernel.numel()));
  d.db_ref.resize(static_cast<std::size_t>(out_c));
  return d;
}

inline std::vector<float> relu6_of(std::vector<float> v) {
  for (float& x : v) x = std::min(std::max(x, 0.0f), 6.0f);
  return v;
}

}  // namespace petal::conv_test
