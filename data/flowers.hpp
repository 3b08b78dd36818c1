// The lab's flowers dataset (../shared/data/flowers-192, or assets/flowers-192):
// 16 TFRecord shards of 192x192 JPEGs with features image (bytes) and class
// (int64), split like the lab into the first 3 shards for validation and 13
// for training.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>

#include "data/dataset.hpp"
#include "data/file_list.hpp"

namespace petal::data {

// Class names in label order (class 0..4).
inline constexpr std::array<const char*, 5> kFlowerClasses = {"daisy", "dandelion", "roses", "sunflowers",
                                                              "tulips"};
inline constexpr int kFlowerImageSize = 192;

struct FlowersOptions {
  std::int64_t batch_size = 64;
  std::size_t validation_files = 3;  // int(16 * VALIDATION_SPLIT) with VALIDATION_SPLIT = 0.19
  int image_size = kFlowerImageSize;  // resized (stretched) when not 192
  std::size_t shuffle_buffer = 2048;  // training only; 0 keeps the file order like the lab
  std::uint64_t seed = 42;
  bool augment = false;               // random horizontal flips for training
  DType dtype = DType::Float32;
  PixelScale scale = PixelScale::MinusOneOne;  // MobileNetV2's preprocessing
  bool one_hot = false;
  int threads = 0;   // map workers (0: number of cores)
  int prefetch = 2;
};

struct FlowersDatasets {
  Dataset training;    // repeats forever; drop_remainder; use training_steps per epoch
  Dataset validation;  // one ordered pass; keeps the last partial batch
  std::int64_t training_steps = 0;    // training images // batch (the lab: 2980 // 64 = 46)
  std::int64_t validation_steps = 0;  // validation images // batch (690 // 64 = 10)
};

// The *.tfrec files of `dir` sorted by name, the first `validation_files` for
// validation. Throws IOError naming the folder when it has too few shards to
// leave both sides non-empty.
FileSplit split_flowers_shards(const std::filesystem::path& dir, std::size_t validation_files = 3);

// The *.tfrec files of `dir` (e.g. find_asset("flowers-192")), split and set up
// as in the lab. Throws IOError when the folder has too few shards.
FlowersDatasets make_flowers_datasets(const std::filesystem::path& dir, const FlowersOptions& options = {});

}  // namespace petal::data
