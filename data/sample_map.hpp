// The "map" stage of a Dataset: one raw record (a serialized Example or an
// encoded image file) in, one decoded and augmented image with its label out.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/random.hpp"
#include "data/image.hpp"

namespace petal::data {

enum class RecordKind : std::uint8_t { Example, EncodedImage };

struct RawRecord {
  RecordKind kind = RecordKind::Example;
  std::string bytes;        // the serialized Example, or the image file's bytes
  std::int64_t label = -1;  // for EncodedImage: the class of its folder
  std::string origin;       // "path/file.tfrec record 7" or the image path, for messages
};

struct Sample {
  Image image;
  std::int64_t label = 0;
};

// Runs on worker threads; rng is seeded per element, so augmentation does
// not depend on which thread runs it. Must fill out.image and out.label.
using MapFn = std::function<void(const RawRecord& record, Generator& rng, Sample& out)>;

enum class ResizeMode : std::uint8_t {
  Stretch,              // straight to height x width
  ShortSideCenterCrop,  // keep the aspect ratio, cover, then center-crop
};

// The standard map: parse (Examples), decode, resize, augment.
struct Preprocess {
  std::string image_key = "image";  // Example features used
  std::string label_key = "class";
  // Output size; 0 keeps the decoded size (images of a batch must then agree).
  int height = 0;
  int width = 0;
  ResizeMode resize = ResizeMode::Stretch;  // only when the size differs
  // Augmentation, in this order, all off by default.
  int random_crop_height = 0;  // crop after resizing (0 = none)
  int random_crop_width = 0;
  bool random_flip = false;
  float brightness_max_delta = 0.0f;  // in [0, 1] pixel units
  float contrast_lower = 1.0f;
  float contrast_upper = 1.0f;
  std::int64_t max_pixels = std::int64_t{64} << 20;  // refuse larger images
  bool fast_dct = false;
};

MapFn make_map(const Preprocess& preprocess);

}  // namespace petal::data
