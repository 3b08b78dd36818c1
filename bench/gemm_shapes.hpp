// The GEMM shapes both gemm benchmarks time (bench/gemm.cpp on the CPU,
// bench/gemm_cuda.cpp on a CUDA device): square matrices and the
// 1x1-convolution GEMMs of MobileNetV2.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace petal::bench {

struct GemmShape {
  std::string name;
  std::int64_t m, k, n;
};

// "square_N" for each N of sizes, in that order.
inline std::vector<GemmShape> square_gemm_shapes(std::initializer_list<std::int64_t> sizes) {
  std::vector<GemmShape> shapes;
  for (std::int64_t s : sizes) shapes.push_back({"square_" + std::to_string(s), s, s, s});
  return shapes;
}

// MobileNetV2 1x1 convolutions at batch 64, 192x192 (M = 64 * H * W), and
// its classifier.
inline std::vector<GemmShape> mobilenet_v2_gemm_shapes() {
  return {
      {"mnv2_2304x960x320", 2304, 960, 320},
      {"mnv2_2304x320x1280", 2304, 320, 1280},
      {"mnv2_589824x16x96", 589824, 16, 96},
      {"mnv2_147456x144x24", 147456, 144, 24},
      {"mnv2_9216x96x576", 9216, 96, 576},
      // The 1000-class Dense layer on one thread's 8-image slice of batch-split
      // inference (weights 5 MB, read once per slice).
      {"mnv2_8x1280x1000", 8, 1280, 1000},
  };
}

// The squares, then the MobileNetV2 shapes.
inline std::vector<GemmShape> gemm_shapes(std::initializer_list<std::int64_t> square_sizes) {
  std::vector<GemmShape> shapes = square_gemm_shapes(square_sizes);
  for (GemmShape& s : mobilenet_v2_gemm_shapes()) shapes.push_back(std::move(s));
  return shapes;
}

// The smallest MobileNetV2 shape (mnv2_9216x96x576), for --quick runs.
inline GemmShape quick_mobilenet_v2_gemm_shape() { return mobilenet_v2_gemm_shapes().back(); }

}  // namespace petal::bench
