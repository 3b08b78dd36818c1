// Keras weight files in HDF5, read and written through libhdf5
// (nn/hdf5_file.hpp):
//
// - Keras 2 "legacy" layout (model.save_weights("x.h5"), the official
//   keras-applications files): root attributes layer_names, backend,
//   keras_version; a group per layer with attribute weight_names
//   ("Conv1/kernel:0"); the values at `<layer>/<weight name>`. A nested model
//   (a Functional base inside a Sequential) is one group holding its inner
//   layers' weights. Whole-model saves keep the same under /model_weights.
// - Keras 3 layout (model.save_weights("x.weights.h5")): a group per layer
//   at `layers/<snake_case class name>[_<n>]` (numbered per class, in the
//   model's layer order; nested models add /layers/...), its values in
//   vars/0, vars/1, ... (trainable then non-trainable, the creation order).
//
// Matching follows Keras. Legacy files pair the model's layers that have
// weights with the file's, by order (Keras 2.1 files name the input layer
// input_1 and the 224 classifier Logits, so names may differ), checking
// every shape; within a layer the weights pair by their names ("gamma") when
// both sides use the same names, else by order (Keras 3 renamed a depthwise
// kernel "kernel"). Inside a nested model the weights
// pair by their names ("block_1_expand/kernel"), which do not depend on what
// was trainable when the file was written. With LoadOptions::by_name, layers
// pair by name at any depth. Keras 3 files are found by structure (class
// names and order), as Keras 3 finds them. Every mismatch (a layer count, a
// missing, extra or wrongly shaped weight) is collected into one FormatError
// before any weight changes.
//
// Writing produces the legacy layout in the order Keras 2's save_weights
// uses (a layer's trainable weights, then its non-trainable ones), so Keras
// loads it into the same architecture in the same trainable state.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>

#include "nn/module.hpp"
#include "nn/weights_io.hpp"

namespace petal::nn {

enum class WeightFileFormat { safetensors, keras_h5_legacy, keras_h5_v3 };

// Decided by the file's bytes (the safetensors header or the HDF5 signature
// and root layout), never by its name. A file of neither kind is a
// FormatError naming it.
WeightFileFormat weight_file_format(const std::filesystem::path& path);
const char* weight_file_format_name(WeightFileFormat format);
bool is_keras_h5(WeightFileFormat format);

// Whether this petal reads and writes Keras .h5 files: false where it was
// built without libhdf5 (-Dhdf5=disabled, or auto without libhdf5-dev), in
// which case load_keras_h5 and save_keras_h5 throw IOError. Programs that
// write an .h5 only as an extra copy (flowers_transfer) ask first.
bool keras_h5_available();

// Loads a Keras HDF5 file of either layout into a built model.
LoadReport load_keras_h5(Module& model, const std::filesystem::path& path, const LoadOptions& options = {});

// Writes every weight of a built model in the Keras 2 legacy layout,
// atomically (core/atomic_file.hpp). The file says keras_version "2.15.0"
// (Keras loaders convert only files of version "1") and petal_version.
void save_keras_h5(const Module& model, const std::filesystem::path& path);

// What Keras pairs by order: the model's top-level layers that have weights,
// and the file's (legacy layout; for a Keras 3 file, its top-level layer
// groups holding variables).
std::size_t keras_weighted_layer_count(const Module& model);
std::size_t keras_h5_weighted_layer_count(const std::filesystem::path& path);

// Keras 3's key for a class name: "DepthwiseConv2D" -> "depthwise_conv2d".
std::string keras_snake_case(const std::string& class_name);

}  // namespace petal::nn
