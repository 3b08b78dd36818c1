#include "data/image.hpp"

#include <cstring>

namespace petal::data {

std::string Image::shape_str() const { return str_cat(height, "x", width, "x", channels); }

// Cloned per instruction set (picked once at load time through an ifunc):
// the baseline x86-64 build converts 4 pixels per instruction, AVX-512 16.
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void pixels_to_float(const std::uint8_t* src, float* dst, std::size_t n, PixelScale scale) {
  // A multiply by a constant (not a divide) lets the compiler vectorise the
  // loop; the result may differ from x / 255 in the last bit only.
  if (scale == PixelScale::ZeroOne) {
    constexpr float k = 1.0f / 255.0f;
    for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(src[i]) * k;
  } else {
    constexpr float k = 1.0f / 127.5f;
    for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(src[i]) * k - 1.0f;
  }
}

Tensor image_to_tensor(const Image& image) {
  Tensor t = Tensor::empty({image.height, image.width, image.channels}, DType::UInt8);
  if (image.size() > 0) std::memcpy(t.data<std::uint8_t>(), image.data(), image.size());
  return t;
}

Tensor image_to_float_tensor(const Image& image, PixelScale scale) {
  Tensor t = Tensor::empty({image.height, image.width, image.channels}, DType::Float32);
  pixels_to_float(image.data(), t.data<float>(), image.size(), scale);
  return t;
}

Image tensor_to_image(const Tensor& tensor) {
  tensor.check_defined("tensor_to_image");
  tensor.check_dtype(DType::UInt8, "tensor_to_image");
  PETAL_CHECK(tensor.dim() == 3, ShapeError, "tensor_to_image: expected [H, W, C], got ", shape_str(tensor.shape()));
  const Tensor c = tensor.device().is_cpu() ? tensor.contiguous() : tensor.to(Device::cpu()).contiguous();
  Image image(static_cast<int>(c.size(0)), static_cast<int>(c.size(1)), static_cast<int>(c.size(2)));
  if (image.size() > 0) std::memcpy(image.data(), c.data<std::uint8_t>(), image.size());
  return image;
}

}  // namespace petal::data
