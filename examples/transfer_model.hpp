// The flowers transfer-learning model of the lab, shared by flowers_transfer
// (which trains and saves it) and flowers_evaluate / flowers_predict (which
// rebuild it from the saved file's metadata alone):
//
//   Sequential([MobileNetV2(input_shape=[S, S, 3], include_top=False),
//               Flatten() or GlobalAveragePooling2D(), Dense(classes, softmax)])
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "data/image.hpp"
#include "nn/mobilenet_v2.hpp"
#include "nn/safetensors.hpp"
#include "nn/sequential.hpp"

namespace petal::examples {

struct TransferModel {
  std::shared_ptr<nn::Sequential> model;
  std::shared_ptr<nn::MobileNetV2> base;
  std::string head;  // "flatten" or "gap"
  int input_size = 192;
  data::PixelScale scale = data::PixelScale::MinusOneOne;
  std::vector<std::string> classes;
};

// Untrained head (Keras initialisers from default_generator()), base without weights.
TransferModel build_transfer_model(int input_size, const std::string& head, std::vector<std::string> classes,
                                   data::PixelScale scale);

// What a saved model needs to be rebuilt: architecture, head, input_size,
// classes (comma separated), preprocessing ("mobilenet" / "lab") and its formula.
nn::Metadata transfer_metadata(const TransferModel& m);

// Rebuilds the model from a file written with transfer_metadata() and loads
// all its weights. FormatError naming the file when the metadata is missing.
TransferModel load_transfer_model(const std::filesystem::path& path);

}  // namespace petal::examples
