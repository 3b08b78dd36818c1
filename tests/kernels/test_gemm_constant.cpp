// sgemm with its B operand in memory declared constant
// (kernels/cpu/gemm/constant_operands.hpp): B is packed once and the packed
// copy read by later calls. The results must be the bits sgemm gives
// without the declaration (same K slices, same order), under every ISA and
// thread count, for the row counts that pack B anyway, those that read B in
// place (36, 96) and those whose kernels never pack it (fewer rows than a
// tile, AVX2's tall rows), and for windows of a larger declared matrix.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/thread_pool.hpp"
#include "kernels/cpu/gemm/constant_operands.hpp"
#include "kernels/cpu/gemm/reference_gemm.hpp"
#include "kernels/cpu/gemm/sgemm.hpp"
#include "kernels/cpu/isa.hpp"
#include "tests/kernels/isas_under_test.hpp"

namespace {

using petal::cpu::Isa;

struct Restorer {
  Isa isa = petal::cpu::active_isa();
  int threads = petal::num_threads();
  ~Restorer() {
    petal::cpu::set_active_isa(isa);
    petal::set_num_threads(threads);
  }
};

std::vector<float> random_floats(std::int64_t count, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(static_cast<std::size_t>(count));
  for (float& x : v) x = dist(rng);
  return v;
}

// C[m, n] (ldc = n) = A[m, k] @ B window, with the batch-norm-like epilogue
// when `scale` is not empty, C's initial values given (beta 1) or NaN (beta 0).
struct Product {
  std::int64_t m, n, k;
  const float* b;
  std::int64_t ldb;
  float beta = 0.0f;
  std::vector<float> a, c_init, scale, shift;

  std::vector<float> run() const {
    std::vector<float> c = c_init;
    const petal::cpu::GemmEpilogue epilogue{scale.empty() ? nullptr : scale.data(),
                                            shift.empty() ? nullptr : shift.data(), !scale.empty()};
    petal::cpu::sgemm_epilogue(false, false, m, n, k, 1.0f, a.data(), k, b, ldb, beta, c.data(), n, epilogue);
    return c;
  }
};

Product make_product(std::int64_t m, std::int64_t n, std::int64_t k, const float* b, std::int64_t ldb, float beta,
                     bool epilogue, std::mt19937& rng) {
  Product p{m, n, k, b, ldb, beta};
  p.a = random_floats(m * k, rng);
  p.c_init = beta == 0.0f ? std::vector<float>(static_cast<std::size_t>(m * n), std::numeric_limits<float>::quiet_NaN())
                          : random_floats(m * n, rng);
  if (epilogue) {
    p.scale = random_floats(n, rng);
    p.shift = random_floats(n, rng);
  }
  return p;
}

bool same_bits(const std::vector<float>& x, const std::vector<float>& y) {
  return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
}

// Runs `p` without a declaration, then twice with `declared` (bytes from
// `begin`) declared constant, under every ISA and thread count: all three
// must agree bit for bit.
void check_declared_same_bits(const Product& p, const float* begin, std::size_t bytes, const std::string& what) {
  Restorer restore;
  for (Isa isa : petal::test::isas_under_test()) {
    petal::cpu::set_active_isa(isa);
    for (int threads : {1, 2}) {
      petal::set_num_threads(threads);
      const std::vector<float> plain = p.run();
      const std::uint64_t id = petal::cpu::declare_constant(begin, bytes);
      const std::vector<float> first = p.run(), second = p.run();
      petal::cpu::withdraw_constant(id);
      INFO(what, " isa=", std::string(petal::cpu::isa_name(isa)), " threads=", threads);
      CHECK(same_bits(plain, first));
      CHECK(same_bits(plain, second));
    }
  }
}

}  // namespace

TEST_CASE("sgemm reads a declared-constant B packed once, with the bits of B read every call") {
  // 36 and 96 rows read B in place undeclared (36 x 1280 x 320 is batch-1
  // MobileNetV2's Conv_1); 97 and 144 pack it; 5 and 8 rows take the
  // few-rows and tall-rows kernels, which never pack. K of 600 makes three
  // K slices, N of 330 and 24 ragged last panels; K of 257 two slices of
  // 129 and 128 rows (the last is shallower) over several column blocks;
  // padded rows of B.
  std::mt19937 rng(71);
  struct Shape {
    std::int64_t m, n, k;
  };
  for (Shape s : {Shape{36, 1280, 320}, Shape{96, 330, 600}, Shape{97, 330, 600}, Shape{144, 576, 96},
                  Shape{13, 47, 5}, Shape{5, 100, 64}, Shape{8, 200, 300}, Shape{300, 24, 257}, Shape{144, 600, 257},
                  Shape{36, 1280, 257}}) {
    for (std::int64_t pad : {0, 7}) {
      const std::int64_t ldb = s.n + pad;
      const std::vector<float> b = random_floats(s.k * ldb, rng);
      for (float beta : {0.0f, 1.0f})
        for (bool epilogue : {false, true}) {
          const Product p = make_product(s.m, s.n, s.k, b.data(), ldb, beta, epilogue, rng);
          check_declared_same_bits(p, b.data(), b.size() * sizeof(float),
                                   "m=" + std::to_string(s.m) + " n=" + std::to_string(s.n) +
                                       " k=" + std::to_string(s.k) + " ldb=" + std::to_string(ldb) +
                                       " beta=" + std::to_string(beta) + " epilogue=" + std::to_string(epilogue));
        }
    }
  }
}

TEST_CASE("sgemm packs each window of a declared matrix on its own") {
  // The inverted-residual blocks' channel split reads column windows of the
  // expansion's weights and K windows of the projection's, all inside one
  // declared tensor; the same address with another K or N is another window.
  std::mt19937 rng(73);
  const std::int64_t rows = 576, cols = 160;
  const std::vector<float> w = random_floats(rows * cols, rng);
  const std::size_t bytes = w.size() * sizeof(float);
  struct Window {
    std::int64_t row0, col0, k, n;
  };
  for (Window win : {Window{0, 0, 576, 160}, Window{0, 0, 288, 160}, Window{288, 0, 288, 160}, Window{0, 32, 96, 80},
                     Window{0, 0, 96, 32}, Window{100, 17, 250, 111}}) {
    const float* b = w.data() + win.row0 * cols + win.col0;
    for (std::int64_t m : {36, 144}) {
      const Product p = make_product(m, win.n, win.k, b, cols, 0.0f, true, rng);
      check_declared_same_bits(p, w.data(), bytes,
                               "window rows " + std::to_string(win.row0) + "+" + std::to_string(win.k) + " cols " +
                                   std::to_string(win.col0) + "+" + std::to_string(win.n) + " m=" + std::to_string(m));
    }
  }
}

TEST_CASE("a declared B is packed once: later calls read the copy, until the declaration is withdrawn") {
  // What makes the declaration a promise: a write to declared memory is not
  // seen while it lasts (nn::ConstantWeights checks for that when it ends).
  // This also shows that the packed copy is really the one read.
  Restorer restore;
  std::mt19937 rng(79);
  for (Isa isa : petal::test::isas_under_test()) {
    petal::cpu::set_active_isa(isa);
    for (int threads : {1, 2}) {
      petal::set_num_threads(threads);
      for (std::int64_t m : {36, 144}) {
        std::vector<float> b = random_floats(320 * 256, rng);
        const Product p = make_product(m, 256, 320, b.data(), 256, 0.0f, false, rng);
        const std::uint64_t id = petal::cpu::declare_constant(b.data(), b.size() * sizeof(float));
        const std::vector<float> before = p.run();
        for (float& x : b) x *= 2.0f;
        INFO("isa=", std::string(petal::cpu::isa_name(isa)), " threads=", threads, " m=", m);
        CHECK(same_bits(p.run(), before));
        petal::cpu::withdraw_constant(id);
        // Withdrawn: B is read again, and the products are exactly doubled.
        const std::vector<float> after = p.run();
        std::size_t not_doubled = 0;
        for (std::size_t i = 0; i < after.size(); ++i) not_doubled += after[i] != 2.0f * before[i];
        CHECK(not_doubled == 0);
      }
    }
  }
}

TEST_CASE("a B that reaches past its declared range is read in place") {
  // Only a window wholly inside one declaration is packed: here the
  // declaration covers all but B's last row, so every call reads B itself
  // and sees a write to it.
  std::mt19937 rng(83);
  std::vector<float> b = random_floats(200 * 64, rng);
  const Product p = make_product(40, 64, 200, b.data(), 64, 0.0f, false, rng);
  const std::uint64_t id = petal::cpu::declare_constant(b.data(), (b.size() - 64) * sizeof(float));
  const std::vector<float> before = p.run();
  for (float& x : b) x *= 2.0f;
  const std::vector<float> after = p.run();
  petal::cpu::withdraw_constant(id);
  std::size_t not_doubled = 0;
  for (std::size_t i = 0; i < after.size(); ++i) not_doubled += after[i] != 2.0f * before[i];
  CHECK(not_doubled == 0);
}

TEST_CASE("overlaps_declared_constant sees any overlap, and nothing once withdrawn") {
  std::vector<float> v(100);
  CHECK_FALSE(petal::cpu::overlaps_declared_constant(v.data(), 400));
  const std::uint64_t id = petal::cpu::declare_constant(v.data() + 10, 40);  // floats 10..19
  CHECK(petal::cpu::overlaps_declared_constant(v.data(), 44));               // reaches float 10
  CHECK_FALSE(petal::cpu::overlaps_declared_constant(v.data(), 40));         // floats 0..9
  CHECK(petal::cpu::overlaps_declared_constant(v.data() + 19, 4));
  CHECK_FALSE(petal::cpu::overlaps_declared_constant(v.data() + 20, 320));
  petal::cpu::withdraw_constant(id);
  CHECK_FALSE(petal::cpu::overlaps_declared_constant(v.data(), 400));
}

TEST_CASE("declared ranges found by address agree with a walk over every range (nested, repeated, adjacent)") {
  // The registry looks addresses up in its ranges sorted by start: checked
  // against the plain definitions on random ranges inside one buffer,
  // before and after withdrawing half of them.
  std::vector<unsigned char> buffer(4096);
  struct Declared {
    std::size_t begin, end;
    std::uint64_t id;
  };
  std::mt19937 rng(7);
  std::vector<Declared> declared;
  auto declare = [&](std::size_t begin, std::size_t end) {
    declared.push_back({begin, end, petal::cpu::declare_constant(buffer.data() + begin, end - begin)});
  };
  declare(100, 900), declare(200, 300), declare(200, 300), declare(900, 1000), declare(2000, 2000);
  for (int i = 0; i < 40; ++i) {
    const std::size_t begin = rng() % 4000, length = rng() % 3 == 0 ? rng() % 1000 : rng() % 64;
    declare(begin, std::min<std::size_t>(begin + length, buffer.size()));
  }
  auto check_queries = [&] {
    for (int q = 0; q < 3000; ++q) {
      const std::size_t begin = rng() % buffer.size();
      const std::size_t bytes = std::min<std::size_t>(rng() % 3 == 0 ? rng() % 700 : rng() % 40, buffer.size() - begin);
      bool inside = false, overlaps = false;
      for (const Declared& d : declared) {
        inside = inside || (begin >= d.begin && begin + bytes <= d.end);
        overlaps = overlaps || (bytes > 0 && begin < d.end && d.begin < begin + bytes);
      }
      INFO("bytes [" << begin << ", " << begin + bytes << ") of the buffer");
      CHECK(petal::cpu::inside_declared_constant(buffer.data() + begin, bytes) == inside);
      CHECK(petal::cpu::overlaps_declared_constant(buffer.data() + begin, bytes) == overlaps);
    }
  };
  check_queries();
  for (std::size_t i = 0; i < declared.size(); i += 2) petal::cpu::withdraw_constant(declared[i].id);
  std::vector<Declared> kept;
  for (std::size_t i = 1; i < declared.size(); i += 2) kept.push_back(declared[i]);
  declared = kept;
  check_queries();
  for (const Declared& d : declared) petal::cpu::withdraw_constant(d.id);
  CHECK_FALSE(petal::cpu::overlaps_declared_constant(buffer.data(), buffer.size()));
}
