// A decoded image: height x width x channels uint8 pixels, row-major HWC
// (the NHWC layout of petal's tensors without the batch axis).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.hpp"

namespace petal::data {

struct Image {
  int height = 0;
  int width = 0;
  int channels = 0;
  std::vector<std::uint8_t> pixels;  // height * width * channels

  Image() = default;
  Image(int h, int w, int c) : height(h), width(w), channels(c), pixels(static_cast<std::size_t>(h) * w * c) {}
  // Reshapes in place, reusing the pixel buffer's capacity.
  void reset(int h, int w, int c) {
    height = h;
    width = w;
    channels = c;
    pixels.resize(static_cast<std::size_t>(h) * w * c);
  }
  std::size_t size() const { return pixels.size(); }
  std::uint8_t* data() { return pixels.data(); }
  const std::uint8_t* data() const { return pixels.data(); }
  std::uint8_t* row(int y) { return pixels.data() + static_cast<std::size_t>(y) * width * channels; }
  const std::uint8_t* row(int y) const { return pixels.data() + static_cast<std::size_t>(y) * width * channels; }
  // "192x192x3"
  std::string shape_str() const;
  bool operator==(const Image&) const = default;
};

// How uint8 pixels map to float32: [0, 1] (x / 255) or MobileNetV2's [-1, 1]
// (x / 127.5 - 1, what keras.applications.mobilenet_v2.preprocess_input does).
enum class PixelScale : std::uint8_t { ZeroOne, MinusOneOne };

// Converts n pixels to float32.
void pixels_to_float(const std::uint8_t* src, float* dst, std::size_t n, PixelScale scale);

// The image as a uint8 tensor [H, W, C] (a copy).
Tensor image_to_tensor(const Image& image);
// The image as a float32 tensor [H, W, C] scaled by `scale`.
Tensor image_to_float_tensor(const Image& image, PixelScale scale);
// A uint8 tensor [H, W, C] (any strides) back to an Image.
Image tensor_to_image(const Tensor& tensor);

}  // namespace petal::data
