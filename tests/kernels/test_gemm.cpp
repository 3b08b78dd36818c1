// sgemm against sgemm_reference (and both against a float64 loop) on shapes
// that hit every edge of the packed, tiled kernel: 1, primes, non-multiples
// of the register tiles and cache blocks, all four transpose combinations,
// padded leading dimensions, alpha/beta variations, beta == 0 over NaN, under
// every ISA this CPU has and with 1 and 2 threads.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/thread_pool.hpp"
#include "kernels/cpu/gemm/reference_gemm.hpp"
#include "kernels/cpu/gemm/sgemm.hpp"
#include "kernels/cpu/isa.hpp"
#include "tests/kernels/isas_under_test.hpp"

namespace {

using petal::cpu::Isa;

struct GemmShape {
  std::int64_t m, n, k;
};

// One problem: operands stored with padded leading dimensions so that a
// kernel reading past a row's end picks up garbage and fails the comparison.
struct GemmProblem {
  bool trans_a = false, trans_b = false;
  std::int64_t m = 0, n = 0, k = 0;
  std::int64_t lda = 0, ldb = 0, ldc = 0;
  float alpha = 1.0f, beta = 0.0f;
  std::vector<float> a, b, c_init;

  GemmProblem(bool ta, bool tb, GemmShape s, std::int64_t pad, float alpha_, float beta_, std::mt19937& rng)
      : trans_a(ta), trans_b(tb), m(s.m), n(s.n), k(s.k), alpha(alpha_), beta(beta_) {
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    const std::int64_t a_rows = ta ? k : m, a_cols = ta ? m : k;
    const std::int64_t b_rows = tb ? n : k, b_cols = tb ? k : n;
    lda = a_cols + pad;
    ldb = b_cols + pad;
    ldc = n + pad;
    a.resize(static_cast<std::size_t>(a_rows * lda + 1));
    b.resize(static_cast<std::size_t>(b_rows * ldb + 1));
    c_init.resize(static_cast<std::size_t>(m * ldc + 1));
    for (float& x : a) x = dist(rng);
    for (float& x : b) x = dist(rng);
    if (beta == 0.0f) {
      for (float& x : c_init) x = std::numeric_limits<float>::quiet_NaN();
    } else {
      for (float& x : c_init) x = dist(rng);
    }
  }

  bool stream_c = false;  // run sgemm_stream_c, or sgemm_epilogue streaming C (beta must be 0)
  // Run sgemm_epilogue: scale and shift of n floats (empty: none), relu6.
  bool epilogue = false, relu6 = false;
  std::vector<float> scale, shift;

  petal::cpu::GemmEpilogue gemm_epilogue() const {
    return {scale.empty() ? nullptr : scale.data(), shift.empty() ? nullptr : shift.data(), relu6};
  }
  void apply_epilogue(std::vector<float>& c) const {
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < n; ++j) {
        float& v = c[static_cast<std::size_t>(i * ldc + j)];
        if (!scale.empty()) v *= scale[static_cast<std::size_t>(j)];
        if (!shift.empty()) v += shift[static_cast<std::size_t>(j)];
        if (relu6) v = std::min(std::max(v, 0.0f), 6.0f);
      }
  }

  std::vector<float> run_sgemm() const {
    std::vector<float> c = c_init;
    if (epilogue) {
      petal::cpu::sgemm_epilogue(trans_a, trans_b, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc,
                                 gemm_epilogue(), stream_c);
    } else if (stream_c) {
      petal::cpu::sgemm_stream_c(trans_a, trans_b, m, n, k, alpha, a.data(), lda, b.data(), ldb, c.data(), ldc);
    } else {
      petal::cpu::sgemm(trans_a, trans_b, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
    }
    return c;
  }
  std::vector<float> run_reference() const {
    std::vector<float> c = c_init;
    petal::cpu::sgemm_reference(trans_a, trans_b, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(),
                                ldc);
    if (epilogue) apply_epilogue(c);
    return c;
  }

  std::string describe() const {
    return "m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k) +
           " trans_a=" + std::to_string(trans_a) + " trans_b=" + std::to_string(trans_b) +
           " lda=" + std::to_string(lda) + " ldb=" + std::to_string(ldb) + " ldc=" + std::to_string(ldc) +
           " alpha=" + std::to_string(alpha) + " beta=" + std::to_string(beta);
  }
};

// Inputs are in [-1, 1], so a float32 dot product of length k is off by at
// most about k * eps in the worst case; a random-sign sum stays far below.
float tolerance(const GemmProblem& p) {
  return 4e-6f * static_cast<float>(p.k + 4) * (std::abs(p.alpha) + 1.0f) + 1e-6f * std::abs(p.beta);
}

// Checks C inside the m x n window against the expected values, and that the
// padding between rows (ldc > n) was left untouched.
void check_result(const GemmProblem& p, const std::vector<float>& got, const std::vector<float>& expected,
                  const std::string& context) {
  const float tol = tolerance(p);
  std::int64_t bad = 0;
  float worst = 0.0f;
  for (std::int64_t i = 0; i < p.m; ++i) {
    for (std::int64_t j = 0; j < p.ldc && i * p.ldc + j < static_cast<std::int64_t>(got.size()); ++j) {
      const std::size_t idx = static_cast<std::size_t>(i * p.ldc + j);
      const float g = got[idx], e = expected[idx];
      if (j >= p.n) {
        // Outside the window: must still be the initial value (bitwise, NaN included).
        const float init = p.c_init[idx];
        const bool same = (std::isnan(g) && std::isnan(init)) || g == init;
        if (!same) ++bad;
        continue;
      }
      const float diff = std::abs(g - e);
      if (!(diff <= tol)) {
        ++bad;
        worst = std::isnan(diff) ? diff : std::max(worst, diff);
      }
    }
  }
  INFO(context, " ", p.describe(), " worst error ", worst, " tolerance ", tol);
  CHECK(bad == 0);
}

struct IsaRestorer {
  Isa saved = petal::cpu::active_isa();
  int saved_threads = petal::num_threads();
  ~IsaRestorer() {
    petal::cpu::set_active_isa(saved);
    petal::set_num_threads(saved_threads);
  }
};

// Runs sgemm on the problem under every ISA and thread count, comparing with
// the reference computed once.
void check_all_configurations(const GemmProblem& p) {
  IsaRestorer restore;
  const std::vector<float> expected = p.run_reference();
  for (Isa isa : petal::test::isas_under_test()) {
    petal::cpu::set_active_isa(isa);
    for (int threads : {1, 2}) {
      petal::set_num_threads(threads);
      check_result(p, p.run_sgemm(), expected,
                   std::string("isa=") + petal::cpu::isa_name(isa) + " threads=" + std::to_string(threads));
    }
  }
}

const std::vector<GemmShape>& edge_shapes() {
  // 1, primes, around common register tiles (8, 12, 14, 16, 32, 48, 64) and
  // past cache blocks in K (several hundred) and M.
  static const std::vector<GemmShape> shapes = {
      {1, 1, 1},    {1, 17, 5},   {13, 1, 7},   {5, 3, 1},     {2, 2, 2},     {7, 13, 11},  {14, 32, 16},
      {15, 33, 17}, {16, 48, 64}, {29, 47, 31}, {31, 65, 3},   {63, 17, 129}, {97, 96, 2},  {1, 257, 300},
      {258, 1, 33}, {37, 70, 613}, {131, 59, 67}, {300, 40, 20}, {23, 131, 97},
  };
  return shapes;
}

}  // namespace

TEST_CASE("sgemm_reference matches a float64 loop") {
  std::mt19937 rng(7);
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      GemmProblem p(ta, tb, {9, 11, 13}, 3, 0.75f, 0.5f, rng);
      const std::vector<float> got = p.run_reference();
      for (std::int64_t i = 0; i < p.m; ++i) {
        for (std::int64_t j = 0; j < p.n; ++j) {
          double sum = 0.0;
          for (std::int64_t q = 0; q < p.k; ++q) {
            const double av = ta ? p.a[q * p.lda + i] : p.a[i * p.lda + q];
            const double bv = tb ? p.b[j * p.ldb + q] : p.b[q * p.ldb + j];
            sum += av * bv;
          }
          const double want = p.alpha * sum + p.beta * p.c_init[i * p.ldc + j];
          CHECK(std::abs(got[i * p.ldc + j] - want) <= 1e-5);
        }
      }
    }
  }
}

TEST_CASE("sgemm matches the reference on edge shapes, all transposes, ISAs and thread counts") {
  std::mt19937 rng(1234);
  int index = 0;
  for (const GemmShape& shape : edge_shapes()) {
    for (bool ta : {false, true}) {
      for (bool tb : {false, true}) {
        // Vary padding and scalars with the case so every combination shows up.
        const std::int64_t pad = (index % 3 == 0) ? 0 : (index % 3 == 1 ? 1 : 5);
        const float alphas[] = {1.0f, -0.5f, 2.0f};
        const float betas[] = {0.0f, 1.0f, -1.5f, 0.0f};
        GemmProblem p(ta, tb, shape, pad, alphas[index % 3], betas[index % 4], rng);
        check_all_configurations(p);
        ++index;
      }
    }
  }
}

TEST_CASE("sgemm on shapes larger than the cache blocks") {
  std::mt19937 rng(99);
  // Tall-skinny like a 1x1 convolution; more rows than one packed A block
  // with several K slices; several column blocks of B and K slices.
  for (GemmShape shape : {GemmShape{1031, 24, 16}, GemmShape{290, 96, 144}, GemmShape{300, 70, 270},
                          GemmShape{25, 390, 300}}) {
    for (bool ta : {false, true}) {
      for (bool tb : {false, true}) {
        GemmProblem p(ta, tb, shape, 2, 1.0f, ta ? 0.0f : 1.0f, rng);
        check_all_configurations(p);
      }
    }
  }
}

TEST_CASE("sgemm packs B slices in pieces when it has fewer slices than twice the threads") {
  // One slice (250 columns, the last panel ragged, K 120), and four slices
  // (two column blocks by two K slices) that 3 and 4 threads cut in two:
  // every piece a range of whole panels, packed by whichever thread takes it.
  std::mt19937 rng(57);
  IsaRestorer restore;
  for (GemmShape shape : {GemmShape{200, 250, 120}, GemmShape{150, 300, 300}}) {
    for (bool tb : {false, true}) {
      GemmProblem p(false, tb, shape, 3, tb ? 1.0f : 0.75f, 0.5f, rng);
      const std::vector<float> expected = p.run_reference();
      for (Isa isa : petal::test::isas_under_test()) {
        petal::cpu::set_active_isa(isa);
        for (int threads : {2, 3, 4}) {
          petal::set_num_threads(threads);
          check_result(p, p.run_sgemm(), expected,
                       std::string("isa=") + petal::cpu::isa_name(isa) + " threads=" + std::to_string(threads));
        }
      }
    }
  }
}

TEST_CASE("sgemm splits a packed B larger than its buffer bound into column and K groups") {
  // K * N above the 4 Mi-float bound on packed B: two column groups, and K
  // deep enough to be cut into two groups as well (beta applies only once).
  // (Transposed B is covered above; here its strided reference loop would be slow.)
  std::mt19937 rng(21);
  for (bool ta : {false, true}) {
    GemmProblem p(ta, false, {2, 390, 11000}, 1, 0.5f, ta ? 0.0f : -1.0f, rng);
    check_all_configurations(p);
  }
}

TEST_CASE("sgemm with rows of A a multiple of 4 KiB apart (copied with a padded stride)") {
  // lda = 1024 and 2048 floats: every row of A in the same L1 set. Ragged
  // rows (37 = 3 x 12 + 1), several K slices, beta 0 and 1.
  std::mt19937 rng(45);
  for (GemmShape shape : {GemmShape{37, 70, 1024}, GemmShape{25, 33, 2048}})
    for (float beta : {0.0f, 1.0f}) {
      GemmProblem p(false, false, shape, 0, 1.0f, beta, rng);
      REQUIRE(p.lda % 1024 == 0);
      check_all_configurations(p);
    }
}

TEST_CASE("sgemm with few rows of A reads B in place (batch-1 1x1 convolutions)") {
  // M <= 96, B not transposed, alpha 1: no packing of B. Ragged last
  // column panels (330, 24), several K slices (600) and column blocks (1280),
  // padded leading dimensions; then just past the bound (97, 144, 1024
  // rows) and B's rows 2 KiB apart (N = 512 unpadded), which are packed.
  std::mt19937 rng(41);
  for (GemmShape shape : {GemmShape{36, 1280, 320}, GemmShape{96, 330, 600}, GemmShape{90, 24, 144},
                          GemmShape{13, 47, 5}, GemmShape{97, 330, 600}, GemmShape{144, 330, 600},
                          GemmShape{1024, 24, 144}, GemmShape{40, 512, 64}})
    for (std::int64_t pad : {0, 7})
      for (float beta : {0.0f, 1.0f}) {
        GemmProblem p(false, false, shape, pad, 1.0f, beta, rng);
        check_all_configurations(p);
      }
}

TEST_CASE("sgemm with few rows and B read in place gives the same bits on 1 and 2 threads") {
  // Two threads split such a product by column blocks (K slices outermost);
  // each element's sum still runs over K in the one-thread order. 36 x 320 x
  // 1280 is batch-1 MobileNetV2's Conv_1; 96 columns (6 AVX2 panels) must
  // split evenly; 2000 columns with K = 600 gives several blocks and slices.
  IsaRestorer restore;
  std::mt19937 rng(47);
  for (GemmShape shape : {GemmShape{36, 1280, 320}, GemmShape{96, 96, 384}, GemmShape{40, 2000, 600},
                          GemmShape{7, 33, 5}})
    for (Isa isa : petal::test::isas_under_test()) {
      petal::cpu::set_active_isa(isa);
      GemmProblem p(false, false, shape, 0, 1.0f, 0.0f, rng);
      petal::set_num_threads(1);
      const std::vector<float> one = p.run_sgemm();
      petal::set_num_threads(2);
      const std::vector<float> two = p.run_sgemm();
      INFO("isa=", std::string(petal::cpu::isa_name(isa)), " m=", shape.m, " n=", shape.n, " k=", shape.k);
      // Bitwise: the buffer ends in a NaN guard.
      REQUIRE(one.size() == two.size());
      CHECK(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)) == 0);
    }
}

TEST_CASE("sgemm with fewer rows of A than a register tile (Dense on a few samples) matches the reference") {
  // The small-rows kernels: every row count up to the kernel's 4, then 5 to
  // 11 rows in groups of 4 (AVX-512's tile has 12 rows; AVX2's 6 and the
  // scalar build's 4 send the larger counts to the tiles, AVX2's 7 and 8
  // with B not transposed to the tall-rows kernel), B in both layouts,
  // ragged vector tails in N and K, K not a multiple of the 4-row unroll
  // and past the tall kernel's 256-deep slices, padded leading dimensions,
  // and a classifier-sized product that runs threaded.
  std::mt19937 rng(43);
  int index = 0;
  for (std::int64_t m : {1, 2, 3, 4, 5, 7, 8, 11})
    for (GemmShape shape : {GemmShape{m, 1, 1}, GemmShape{m, 7, 33}, GemmShape{m, 66, 17}, GemmShape{m, 1281, 1003}})
      for (bool ta : {false, true})
        for (bool tb : {false, true}) {
          const float alphas[] = {1.0f, -0.5f, 2.0f};
          const float betas[] = {0.0f, 1.0f, -1.5f};
          GemmProblem p(ta, tb, shape, index % 2 == 0 ? 0 : 3, alphas[index % 3], betas[index % 3], rng);
          check_all_configurations(p);
          ++index;
        }
}

TEST_CASE("sgemm_stream_c (non-temporal stores of C) matches the reference") {
  // Edge shapes put tiles at every alignment (ldc = n + pad); K = 600 runs
  // several K slices (only the last streams); the last shape splits B into
  // column and K groups.
  std::mt19937 rng(31);
  std::vector<GemmShape> shapes = edge_shapes();
  shapes.push_back({301, 96, 600});
  shapes.push_back({2, 390, 11000});
  for (GemmShape shape : shapes)
    for (bool ta : {false, true})
      for (std::int64_t pad : {0, 3}) {
        GemmProblem p(ta, false, shape, pad, 0.75f, 0.0f, rng);
        p.stream_c = true;
        check_all_configurations(p);
      }
}

TEST_CASE("sgemm and sgemm_epilogue write a C of 32 MiB or more past the caches and still match the reference") {
  // 131072 x 64 floats: the streaming threshold exactly; beta 0 (streams,
  // ragged column pad) and beta 1 (must not: C is read).
  std::mt19937 rng(53);
  for (float beta : {0.0f, 1.0f}) {
    GemmProblem p(false, false, {131072, 64, 8}, beta == 0.0f ? 0 : 3, 1.0f, beta, rng);
    check_all_configurations(p);
    p.epilogue = true;
    p.shift.assign(static_cast<std::size_t>(p.n), 0.5f);
    p.relu6 = true;
    check_all_configurations(p);
  }
}

TEST_CASE("sgemm_epilogue applies scale, shift and ReLU6 per column as it stores C") {
  // Every combination of the three on edge shapes (ragged tiles, 1 to 4
  // rows), several K slices (600: only the last applies it), K groups
  // (5 x 390 x 11000), beta 0 and 1, both layouts of A, and K = 0.
  std::mt19937 rng(47);
  std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
  std::vector<GemmShape> shapes = {{1, 37, 20}, {3, 300, 17}, {13, 33, 9}, {37, 70, 600}, {290, 96, 144},
                                   {25, 17, 0}, {2, 390, 11000}, {5, 390, 11000}, {7, 37, 20}, {8, 300, 600}};
  int index = 0;
  for (GemmShape shape : shapes)
    for (bool ta : {false, true})
      for (int mode = 1; mode < 8; ++mode) {
        GemmProblem p(ta, false, shape, index % 2 ? 3 : 0, 1.0f, index % 3 == 0 ? 1.0f : 0.0f, rng);
        p.epilogue = true;
        if (mode & 1) p.scale.resize(static_cast<std::size_t>(p.n));
        if (mode & 2) p.shift.resize(static_cast<std::size_t>(p.n));
        p.relu6 = (mode & 4) != 0;
        for (float& v : p.scale) v = dist(rng);
        for (float& v : p.shift) v = dist(rng) * 3.0f;
        check_all_configurations(p);
        if (p.beta == 0.0f) {  // and with C written past the caches
          p.stream_c = true;
          check_all_configurations(p);
        }
        ++index;
      }
}

TEST_CASE("sgemm_epilogue gives the same bits however the rows are split between calls and threads") {
  // Batch-split inference runs each slice of the batch as its own GEMM: a row
  // must come out the same whether it lands in a full register tile, a ragged
  // edge tile or the few-rows kernel, under every ISA. (xsimd's AVX-512 fma
  // was fused only where the compiler contracted it, at -O2 but not -O1,
  // while the edge tiles' scalar path always was.)
  IsaRestorer restore;
  std::mt19937 rng(61);
  std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
  // (Fewer rows than a register tile take the few-rows kernel, which sums
  // over all of K at once where the tiles sum K slices of 256 and add them:
  // the deep shape is split into parts that all take it. The shallow
  // 20-row shape mixes both kernels: they agree for K within one slice.)
  // 14 and 15 rows split into 8 + 6 and 8 + 7: AVX2's tall-rows kernel
  // (7 or 8 rows) against the tiles, over three K slices.
  const std::vector<GemmShape> shapes = {{1280, 16, 16},   {320, 96, 24},  {80, 144, 32}, {20, 1280, 112},
                                         {290, 96, 144},   {3, 1000, 1280}, {14, 200, 600}, {15, 300, 300}};
  for (Isa isa : petal::test::isas_under_test()) {
    petal::cpu::set_active_isa(isa);
    for (const GemmShape& shape : shapes) {
      const std::int64_t m = shape.m, n = shape.n, k = shape.k;
      std::vector<float> a(static_cast<std::size_t>(m * k)), b(static_cast<std::size_t>(k * n));
      std::vector<float> scale(static_cast<std::size_t>(n)), shift(static_cast<std::size_t>(n));
      for (std::vector<float>* v : {&a, &b, &scale, &shift})
        for (float& x : *v) x = dist(rng);
      // With and without ReLU6: whole tiles store through their own
      // instantiations, edge tiles through the general store.
      for (bool relu6 : {true, false}) {
        const petal::cpu::GemmEpilogue epilogue{scale.data(), shift.data(), relu6};
        std::vector<float> whole(static_cast<std::size_t>(m * n)), split(whole.size());
        petal::set_num_threads(2);
        petal::cpu::sgemm_epilogue(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, whole.data(), n,
                                   epilogue);
        petal::set_num_threads(1);
        const std::int64_t first = m / 2 + 1;  // not a multiple of any register tile for these m
        petal::cpu::sgemm_epilogue(false, false, first, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, split.data(), n,
                                   epilogue);
        petal::cpu::sgemm_epilogue(false, false, m - first, n, k, 1.0f, a.data() + first * k, k, b.data(), n, 0.0f,
                                   split.data() + first * n, n, epilogue);
        std::size_t differing = 0;
        for (std::size_t i = 0; i < whole.size(); ++i) differing += whole[i] != split[i];
        INFO("isa=", std::string(petal::cpu::isa_name(isa)), " m=", m, " n=", n, " k=", k, " relu6=", relu6);
        CHECK(differing == 0);
      }
    }
  }
}

TEST_CASE("sgemm degenerate sizes and scalars") {
  std::mt19937 rng(5);
  SUBCASE("k == 0 scales C by beta, and beta == 0 clears NaN") {
    for (float beta : {0.0f, 2.0f}) {
      GemmProblem p(false, false, {4, 5, 0}, 1, 1.0f, beta, rng);
      const std::vector<float> got = p.run_sgemm();
      for (std::int64_t i = 0; i < p.m; ++i)
        for (std::int64_t j = 0; j < p.n; ++j)
          CHECK(got[i * p.ldc + j] == (beta == 0.0f ? 0.0f : beta * p.c_init[i * p.ldc + j]));
    }
  }
  SUBCASE("alpha == 0 never reads A or B products into C") {
    GemmProblem p(false, true, {33, 21, 19}, 0, 0.0f, 0.5f, rng);
    p.a[3] = std::numeric_limits<float>::infinity();  // 0 * inf would be NaN if the product were formed
    const std::vector<float> got = p.run_sgemm();
    for (std::int64_t i = 0; i < p.m; ++i)
      for (std::int64_t j = 0; j < p.n; ++j) CHECK(got[i * p.ldc + j] == 0.5f * p.c_init[i * p.ldc + j]);
  }
  SUBCASE("m == 0 or n == 0 touches nothing") {
    std::vector<float> c = {42.0f};
    const float a = 1.0f, b = 1.0f;
    petal::cpu::sgemm(false, false, 0, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, c.data(), 1);
    petal::cpu::sgemm(false, false, 1, 0, 1, 1.0f, &a, 1, &b, 1, 0.0f, c.data(), 1);
    CHECK(c[0] == 42.0f);
  }
}

TEST_CASE("sgemm inside a parallel region runs serially and stays correct") {
  IsaRestorer restore;
  petal::set_num_threads(2);
  std::mt19937 rng(11);
  const GemmProblem p(true, false, {70, 45, 90}, 1, 1.0f, 0.0f, rng);
  const std::vector<float> expected = p.run_reference();
  std::vector<std::vector<float>> results(2);
  petal::parallel_run([&](int thread) { results[static_cast<std::size_t>(thread)] = p.run_sgemm(); });
  check_result(p, results[0], expected, "parallel_run thread 0");
  check_result(p, results[1], expected, "parallel_run thread 1");
}

TEST_CASE("dgemm matches a float64 loop") {
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  for (GemmShape s : {GemmShape{1, 1, 1}, GemmShape{7, 5, 3}, GemmShape{17, 23, 31}}) {
    for (bool ta : {false, true}) {
      for (bool tb : {false, true}) {
        const std::int64_t lda = (ta ? s.m : s.k) + 2, ldb = (tb ? s.k : s.n) + 1, ldc = s.n + 3;
        std::vector<double> a(static_cast<std::size_t>((ta ? s.k : s.m) * lda));
        std::vector<double> b(static_cast<std::size_t>((tb ? s.n : s.k) * ldb));
        std::vector<double> c(static_cast<std::size_t>(s.m * ldc));
        for (double& x : a) x = dist(rng);
        for (double& x : b) x = dist(rng);
        for (double& x : c) x = dist(rng);
        const std::vector<double> c0 = c;
        const double alpha = 1.25, beta = -0.5;
        petal::cpu::dgemm(ta, tb, s.m, s.n, s.k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
        for (std::int64_t i = 0; i < s.m; ++i) {
          for (std::int64_t j = 0; j < s.n; ++j) {
            double sum = 0.0;
            for (std::int64_t q = 0; q < s.k; ++q)
              sum += (ta ? a[q * lda + i] : a[i * lda + q]) * (tb ? b[j * ldb + q] : b[q * ldb + j]);
            CHECK(c[i * ldc + j] == doctest::Approx(alpha * sum + beta * c0[i * ldc + j]).epsilon(1e-12));
          }
        }
        // beta == 0 overwrites NaN.
        std::vector<double> nan_c(c.size(), std::numeric_limits<double>::quiet_NaN());
        petal::cpu::dgemm(ta, tb, s.m, s.n, s.k, 1.0, a.data(), lda, b.data(), ldb, 0.0, nan_c.data(), ldc);
        for (std::int64_t i = 0; i < s.m; ++i)
          for (std::int64_t j = 0; j < s.n; ++j) CHECK(!std::isnan(nan_c[i * ldc + j]));
      }
    }
  }
}
