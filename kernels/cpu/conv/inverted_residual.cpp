#include "kernels/cpu/conv/inverted_residual.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "core/thread_pool.hpp"
#include "kernels/cpu/conv/conv_tables.hpp"
#include "kernels/cpu/elementwise/tables.hpp"
#include "kernels/cpu/gemm/sgemm.hpp"

namespace petal::cpu {
namespace {

// Expanded rows plus depthwise output per pass, in floats: 384 KiB, a third
// of the smallest L2 of the machines this runs on (1 MiB on Zen 4 and on
// Skylake-SP), leaving room for the weights the GEMMs read in place.
constexpr std::int64_t kPassBudgetFloats = 96 * 1024;

// Fewer images than threads: an image with fewer output rows than this is
// cut by channels rather than by rows. Cut by rows, a part recomputes the
// expanded rows its depthwise window shares with the next part (4 + 4 of 6
// rows at 6x6). Cut by channels, each thread expands and filters its own
// channels and projects them into a partial sum of the output; the partial
// sums are then added (a pass over a small output). MobileNetV2's 6x6
// blocks at batch 1 on 2 threads, timed inside the model: 295-300 -> 235-240
// us (block_14); at 12x12 and 24x24 cutting by channels was slower (block_7
// 125 -> 139 us, block_4 127 -> 165 us).
constexpr std::int64_t kChannelSplitMaxRows = 8;

// Output rows at least this wide are cut into bands claimed by whoever is
// free (run_row_segments); narrower ones into fixed parts. Every GEMM of a
// band then has at least this many rows, where each row's sums do not
// depend on the row count (AVX-512's register tile; fewer rows go to
// small_rows, whose rounding differs), so the result does not depend on
// which thread took which band.
constexpr std::int64_t kMinClaimedBandWidth = 12;

// Per-thread buffers, kept between calls (a pool thread keeps its own).
struct Scratch {
  std::vector<float> expanded, depthwise, depthwise_weights;
  std::vector<float> partials;  // the calling thread's: run_channel_parts' partial sums
};
Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

// The block's depthwise convolution over `images` images of `channels`
// expanded channels (all of them, or one thread's share).
ConvGeometry depthwise_geometry(const InvertedResidualBlock& b, std::int64_t images, std::int64_t channels) {
  ConvGeometry g;
  g.batch = images;
  g.in_h = b.in_h, g.in_w = b.in_w, g.in_c = channels;
  g.out_h = b.out_h, g.out_w = b.out_w, g.out_c = channels;
  g.kernel_h = g.kernel_w = 3;
  g.stride_h = g.stride_w = b.stride;
  g.pad_top = b.pad_top, g.pad_left = b.pad_left;
  return g;
}

float* sized(std::vector<float>& v, std::int64_t floats) {
  if (static_cast<std::int64_t>(v.size()) < floats) v.resize(static_cast<std::size_t>(floats));
  return v.data();
}

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// Expanded rows [begin, end) of image `image` held by a thread's buffer.
struct KeptRows {
  std::int64_t image = -1, begin = 0, end = 0;
};

class BlockRunner {
 public:
  BlockRunner(const float* x, float* y, const InvertedResidualBlock& b) : x_(x), y_(y), b_(b) {
    expanded_row_ = b.in_w * b.expanded_c;
    depthwise_row_ = b.out_w * b.expanded_c;
  }

  // Floats one whole image needs in the buffers.
  std::int64_t image_floats() const {
    return (b_.expand_kernel ? b_.in_h * expanded_row_ : 0) + b_.out_h * depthwise_row_;
  }

  // Images [n, n + count), whole: every step over all their rows at once.
  void run_images(std::int64_t n, std::int64_t count) const {
    Scratch& s = scratch();
    const float* x_images = x_ + n * b_.in_h * b_.in_w * b_.in_c;
    const float* source = x_images;
    if (b_.expand_kernel) {
      float* expanded = sized(s.expanded, count * b_.in_h * expanded_row_);
      expand(x_images, count * b_.in_h * b_.in_w, expanded);
      source = expanded;
    }
    float* depthwise_out = sized(s.depthwise, count * b_.out_h * depthwise_row_);
    depthwise(source, depthwise_out, count, 0, count * b_.out_h);
    project(depthwise_out, count * b_.out_h * b_.out_w, x_images, y_ + n * b_.out_h * b_.out_w * b_.out_c);
  }

  // Output rows per band, for bands of at most `rows` rows: as many as fit
  // the budget beside the expanded input rows they need.
  std::int64_t band_rows(std::int64_t rows) const {
    std::int64_t band = 1;
    while (band < rows && band_floats(band + 1) <= kPassBudgetFloats) ++band;
    return band;
  }

  // Output rows [oy_begin, oy_end) of image n, in bands from the top.
  void run_rows(std::int64_t n, std::int64_t oy_begin, std::int64_t oy_end) const {
    const std::int64_t band = band_rows(oy_end - oy_begin);
    reserve_bands(band);
    KeptRows kept;
    for (std::int64_t oy0 = oy_begin; oy0 < oy_end; oy0 += band) run_band(n, oy0, std::min(oy0 + band, oy_end), kept);
  }

  // Sizes this thread's buffers for bands of up to `band` output rows.
  void reserve_bands(std::int64_t band) const {
    Scratch& s = scratch();
    if (b_.expand_kernel) sized(s.expanded, input_rows(band) * expanded_row_);
    sized(s.depthwise, band * depthwise_row_);
  }

  // Output rows [oy0, oy1) of image n, after reserve_bands for at least that
  // many rows. `kept` says which expanded rows of which image this thread's
  // buffer holds from its start; the rows the band shares with them (the
  // depthwise window overlaps the last band above or below) are moved into
  // place rather than computed again.
  void run_band(std::int64_t n, std::int64_t oy0, std::int64_t oy1, KeptRows& kept) const {
    Scratch& s = scratch();
    const std::int64_t S = b_.stride;
    const float* x_image = x_ + n * b_.in_h * b_.in_w * b_.in_c;
    float* y_image = y_ + n * b_.out_h * b_.out_w * b_.out_c;
    // The depthwise kernel addresses its input as a whole image: `source` is
    // where that image would start, so that the rows it reads, [need_begin,
    // need_end), fall in the buffer (and only those).
    const float* source = x_image;
    if (b_.expand_kernel) {
      const std::int64_t need_begin = std::max<std::int64_t>(oy0 * S - b_.pad_top, 0);
      const std::int64_t need_end = std::min((oy1 - 1) * S - b_.pad_top + 3, b_.in_h);
      float* expanded = s.expanded.data();
      const std::int64_t same_begin = std::max(need_begin, kept.begin), same_end = std::min(need_end, kept.end);
      auto compute = [&](std::int64_t r0, std::int64_t r1) {
        if (r1 > r0)
          expand(x_image + r0 * b_.in_w * b_.in_c, (r1 - r0) * b_.in_w, expanded + (r0 - need_begin) * expanded_row_);
      };
      if (kept.image == n && same_begin < same_end) {
        if (kept.begin != need_begin)
          std::memmove(expanded + (same_begin - need_begin) * expanded_row_,
                       expanded + (same_begin - kept.begin) * expanded_row_,
                       static_cast<std::size_t>((same_end - same_begin) * expanded_row_) * sizeof(float));
        compute(need_begin, same_begin);
        compute(same_end, need_end);
      } else {
        compute(need_begin, need_end);
      }
      kept = {n, need_begin, need_end};
      source = expanded - need_begin * expanded_row_;
    }
    float* depthwise_out = s.depthwise.data();
    depthwise(source, depthwise_out - oy0 * depthwise_row_, 1, oy0, oy1);
    const std::int64_t pixel0 = oy0 * b_.out_w;
    project(depthwise_out, (oy1 - oy0) * b_.out_w, x_image + pixel0 * b_.in_c, y_image + pixel0 * b_.out_c);
  }

 private:
  // Expanded input rows that `band` output rows read.
  std::int64_t input_rows(std::int64_t band) const { return std::min((band - 1) * b_.stride + 3, b_.in_h); }
  std::int64_t band_floats(std::int64_t band) const {
    return (b_.expand_kernel ? input_rows(band) * expanded_row_ : 0) + band * depthwise_row_;
  }

  // `pixels` input pixels -> expanded rows, scale, shift and ReLU6 applied.
  void expand(const float* x, std::int64_t pixels, float* out) const {
    const GemmEpilogue epilogue{b_.expand_scale, b_.expand_shift, b_.expand_relu6};
    sgemm_epilogue(false, false, pixels, b_.expanded_c, b_.in_c, 1.0f, x, b_.in_c, b_.expand_kernel, b_.expanded_c,
                   0.0f, out, b_.expanded_c, epilogue);
  }

  // Output rows [row_begin, row_end) of `images` images (rows counted from
  // the first of them) of the depthwise convolution.
  void depthwise(const float* source, float* out, std::int64_t images, std::int64_t row_begin,
                 std::int64_t row_end) const {
    depthwise_kernels().forward(source, b_.depthwise_kernel, b_.depthwise_bias, out,
                                depthwise_geometry(b_, images, b_.expanded_c), b_.depthwise_relu6, row_begin, row_end);
  }

  // `pixels` depthwise outputs -> output pixels (+ the same input pixels).
  void project(const float* depthwise_out, std::int64_t pixels, const float* x, float* y) const {
    const GemmEpilogue epilogue{b_.project_scale, b_.project_shift, false};
    sgemm_epilogue(false, false, pixels, b_.out_c, b_.expanded_c, 1.0f, depthwise_out, b_.expanded_c,
                   b_.project_kernel, b_.out_c, 0.0f, y, b_.out_c, epilogue);
    if (b_.residual)
      elementwise_table().binary[static_cast<int>(BinaryOp::Add)].same(y, x, y, pixels * b_.out_c);
  }

  const float* x_;
  float* y_;
  const InvertedResidualBlock& b_;
  std::int64_t expanded_row_ = 0, depthwise_row_ = 0;
};

// Channel ranges are cut at multiples of this (whole AVX-512 vectors).
constexpr std::int64_t kChannelAlign = 16;

// Expanded channels [c0, c1) of image n: expand, depthwise and the
// projection of those channels into partial [out_h * out_w, out_c].
void run_channels(const float* x, const InvertedResidualBlock& b, std::int64_t n, std::int64_t c0, std::int64_t c1,
                  float* partial) {
  Scratch& s = scratch();
  const std::int64_t width = c1 - c0, in_pixels = b.in_h * b.in_w, out_pixels = b.out_h * b.out_w;
  const float* x_image = x + n * in_pixels * b.in_c;
  const float* source = x_image;
  std::int64_t source_stride = b.in_c;
  if (b.expand_kernel) {
    float* expanded = sized(s.expanded, in_pixels * width);
    const GemmEpilogue epilogue{b.expand_scale + c0, b.expand_shift + c0, b.expand_relu6};
    sgemm_epilogue(false, false, in_pixels, width, b.in_c, 1.0f, x_image, b.in_c, b.expand_kernel + c0,
                   b.expanded_c, 0.0f, expanded, width, epilogue);
    source = expanded;
    source_stride = width;
  }
  // The depthwise kernel reads channels [0, in_c) of each pixel: without an
  // expansion its input channels are copied out first.
  if (source_stride != width) {
    float* gathered = sized(s.expanded, in_pixels * width);
    for (std::int64_t p = 0; p < in_pixels; ++p)
      std::memcpy(gathered + p * width, x_image + p * b.in_c + c0, static_cast<std::size_t>(width) * sizeof(float));
    source = gathered;
  }
  float* weights = sized(s.depthwise_weights, 9 * width);
  for (int t = 0; t < 9; ++t)
    std::memcpy(weights + t * width, b.depthwise_kernel + t * b.expanded_c + c0,
                static_cast<std::size_t>(width) * sizeof(float));
  float* filtered = sized(s.depthwise, out_pixels * width);
  depthwise_kernels().forward(source, weights, b.depthwise_bias + c0, filtered, depthwise_geometry(b, 1, width),
                              b.depthwise_relu6, 0, b.out_h);
  sgemm(false, false, out_pixels, b.out_c, width, 1.0f, filtered, width, b.project_kernel + c0 * b.out_c, b.out_c,
        0.0f, partial, b.out_c);
}

void run_channel_parts(const float* x, float* y, const InvertedResidualBlock& b, std::int64_t parts) {
  const std::int64_t out_floats = b.out_h * b.out_w * b.out_c;
  // Every element is written by its part before it is read: no zeroing.
  float* partials = sized(scratch().partials, parts * b.batch * out_floats);
  auto cut = [&](std::int64_t part) {
    return (b.expanded_c / kChannelAlign * part / parts) * kChannelAlign + (part == parts ? b.expanded_c % kChannelAlign : 0);
  };
  parallel_for(0, b.batch * parts, 1, [&](std::int64_t u0, std::int64_t u1) {
    for (std::int64_t u = u0; u < u1; ++u) {
      const std::int64_t n = u / parts, part = u % parts;
      run_channels(x, b, n, cut(part), cut(part + 1), partials + u * out_floats);
    }
  });
  // Partial sums added in part order (into the first part's), then the
  // projection's scale and shift and the residual, on the calling thread
  // alone (split between the threads it was no faster at batch 1: a second
  // wake-up), with the vector kernels: the scalar loop this was took 10-15
  // us per 6x6 block at batch 1, as long as a tenth of the block.
  const ElementwiseTable& elementwise = elementwise_table();
  const auto& add = elementwise.binary[static_cast<int>(BinaryOp::Add)].same;
  const ChannelKernels& channel = channel_kernels();
  for (std::int64_t n = 0; n < b.batch; ++n) {
    float* sum = partials + n * parts * out_floats;
    const float* x_image = x + n * out_floats;
    float* y_image = y + n * out_floats;
    for (std::int64_t part = 1; part < parts; ++part) add(sum, sum + part * out_floats, sum, out_floats);
    if (b.out_c % channel.lanes == 0) {
      channel.affine(sum, out_floats, b.out_c, b.project_scale, b.project_shift, y_image, false, false);
    } else {
      for (std::int64_t i0 = 0; i0 < out_floats; i0 += b.out_c)
        for (std::int64_t c = 0; c < b.out_c; ++c)
          y_image[i0 + c] = std::fma(sum[i0 + c], b.project_scale[c], b.project_shift[c]);
    }
    if (b.residual) add(y_image, x_image, y_image, out_floats);
  }
}

// Fewer images than threads, `parts` threads per image: each image's output
// rows are cut into one segment per two threads, and each segment into
// bands that the two take from opposite ends (TwoEndedRange): they finish
// within a band of each other (with the rows cut in two fixed halves, the
// calling thread waited for the other 5% of the time at batch 1, up to 17%
// in the machine's slow minutes). A thread that
// runs out takes bands from the other segments. Only where two threads
// meet are expanded rows computed twice. The bands depend only on the
// thread count, and each output row's sums do not depend on who computes
// it, so the result does not either.
void run_row_segments(const BlockRunner& runner, const InvertedResidualBlock& b, std::int64_t parts) {
  const std::int64_t per_image = ceil_div(parts, 2), segments = b.batch * per_image;
  // An even number of bands of equal height (within a row), at least two
  // and as many as the budget needs: two threads running at the same speed
  // then split a segment as two fixed halves would, and bands of uneven
  // height would not (12 rows in bands of 9 and 3 left one thread a quarter
  // of the work).
  const std::int64_t rows = ceil_div(b.out_h, per_image);
  const std::int64_t budget_bands = ceil_div(rows, runner.band_rows(rows));
  const std::int64_t bands = std::min(rows, budget_bands + budget_bands % 2);
  auto rows_of = [&](std::int64_t segment, std::int64_t& r0, std::int64_t& r1) {
    const std::int64_t k = segment % per_image;
    r0 = b.out_h * k / per_image;
    r1 = b.out_h * (k + 1) / per_image;
  };
  std::unique_ptr<TwoEndedRange[]> ranges(new TwoEndedRange[static_cast<std::size_t>(segments)]);
  for (std::int64_t s = 0; s < segments; ++s) {
    std::int64_t r0 = 0, r1 = 0;
    rows_of(s, r0, r1);
    ranges[s].reset(std::min(bands, r1 - r0));
  }
  parallel_run([&](int index) {
    runner.reserve_bands(ceil_div(rows, bands));
    const bool from_back = index % 2 == 1;
    KeptRows kept;
    for (std::int64_t k = 0; k < segments; ++k) {
      const std::int64_t s = (index / 2 + k) % segments;
      std::int64_t r0 = 0, r1 = 0;
      rows_of(s, r0, r1);
      const std::int64_t count = std::min(bands, r1 - r0);
      for (std::int64_t i; (i = ranges[s].take(from_back)) >= 0;)
        runner.run_band(s / per_image, r0 + (r1 - r0) * i / count, r0 + (r1 - r0) * (i + 1) / count, kept);
    }
  });
}

}  // namespace

void inverted_residual_forward(const float* x, float* y, const InvertedResidualBlock& block) {
  if (block.batch == 0 || block.out_h == 0 || block.out_w == 0) return;
  const BlockRunner runner(x, y, block);
  const std::int64_t threads = in_parallel_region() ? 1 : num_threads();
  // Fewer images than threads: each image is shared by `parts` threads.
  const std::int64_t parts =
      block.batch >= threads ? 1 : std::min(block.out_h, (threads + block.batch - 1) / block.batch);
  if (parts > 1 && block.out_h < kChannelSplitMaxRows && block.expanded_c >= 2 * parts * kChannelAlign) {
    run_channel_parts(x, y, block, parts);
    return;
  }
  if (parts > 1 && block.out_w >= kMinClaimedBandWidth) {
    run_row_segments(runner, block, parts);
    return;
  }
  if (parts > 1) {
    parallel_for(0, block.batch * parts, 1, [&](std::int64_t u0, std::int64_t u1) {
      for (std::int64_t u = u0; u < u1; ++u) {
        const std::int64_t n = u / parts, part = u % parts;
        runner.run_rows(n, block.out_h * part / parts, block.out_h * (part + 1) / parts);
      }
    });
    return;
  }
  if (runner.image_floats() <= kPassBudgetFloats) {
    const std::int64_t images_per_pass = std::max<std::int64_t>(1, kPassBudgetFloats / runner.image_floats());
    parallel_for(0, block.batch, 1, [&](std::int64_t n0, std::int64_t n1) {
      for (std::int64_t n = n0; n < n1; n += images_per_pass) runner.run_images(n, std::min(images_per_pass, n1 - n));
    });
    return;
  }
  parallel_for(0, block.batch, 1, [&](std::int64_t n0, std::int64_t n1) {
    for (std::int64_t n = n0; n < n1; ++n) runner.run_rows(n, 0, block.out_h);
  });
}

}  // namespace petal::cpu
