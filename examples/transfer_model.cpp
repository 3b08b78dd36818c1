#include "examples/transfer_model.hpp"

#include <sstream>

#include "core/error.hpp"
#include "examples/flowers_common.hpp"
#include "nn/conv_layers.hpp"
#include "nn/core_layers.hpp"
#include "nn/weights_io.hpp"

namespace petal::examples {

TransferModel build_transfer_model(int input_size, const std::string& head, std::vector<std::string> classes,
                                   data::PixelScale scale) {
  PETAL_CHECK(head == "flatten" || head == "gap", ValueError, "transfer model: head must be flatten or gap, got \"",
              head, "\"");
  PETAL_CHECK(!classes.empty(), ValueError, "transfer model: no classes");
  TransferModel m;
  m.head = head;
  m.input_size = input_size;
  m.scale = scale;
  m.classes = std::move(classes);
  m.base = std::make_shared<nn::MobileNetV2>(Shape{input_size, input_size, 3}, 1.0, /*include_top=*/false);
  std::shared_ptr<nn::Module> reduce;
  if (head == "flatten") reduce = std::make_shared<nn::Flatten>("flatten");
  else reduce = std::make_shared<nn::GlobalAveragePooling2D>("global_average_pooling2d");
  nn::DenseOptions dense;
  dense.name = "dense";
  m.model = std::make_shared<nn::Sequential>(
      std::vector<std::shared_ptr<nn::Module>>{
          m.base, reduce, std::make_shared<nn::Dense>(static_cast<std::int64_t>(m.classes.size()), "softmax", dense)},
      "flowers_transfer");
  return m;
}

nn::Metadata transfer_metadata(const TransferModel& m) {
  return {{"architecture", "mobilenet_v2_transfer"},
          {"base", "MobileNetV2(alpha=1.0, include_top=False)"},
          {"head", m.head},
          {"input_size", std::to_string(m.input_size)},
          {"classes", join(m.classes, ",")},
          {"preprocessing", m.scale == data::PixelScale::MinusOneOne ? "mobilenet" : "lab"},
          {"preprocessing_formula", preprocessing_formula(m.scale)}};
}

TransferModel load_transfer_model(const std::filesystem::path& path) {
  nn::Metadata meta;
  {
    nn::SafetensorsReader reader(path);
    meta = reader.metadata();
  }
  auto field = [&](const char* key) -> const std::string& {
    auto it = meta.find(key);
    PETAL_CHECK(it != meta.end(), FormatError, path.string(), ": no \"", key,
                "\" in __metadata__; not a model written by flowers_transfer");
    return it->second;
  };
  PETAL_CHECK(field("architecture") == "mobilenet_v2_transfer", FormatError, path.string(), ": architecture \"",
              field("architecture"), "\" is not mobilenet_v2_transfer");
  std::vector<std::string> classes;
  std::stringstream list(field("classes"));
  for (std::string c; std::getline(list, c, ',');) classes.push_back(c);
  int size = 0;
  try {
    size = std::stoi(field("input_size"));
  } catch (const std::exception&) {
    throw FormatError(str_cat(path.string(), ": input_size \"", field("input_size"), "\" is not a number"));
  }
  TransferModel m = build_transfer_model(size, field("head"), classes, parse_preprocessing(field("preprocessing")));
  nn::load_weights(*m.model, path);
  return m;
}

}  // namespace petal::examples
