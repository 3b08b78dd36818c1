// Datasets whose elements are named tensors, in the spirit of tf.data:
//
//   FeatureDataset ds = FeatureDataset::from_tfrecords(files, {{"image", FeatureSpec::image(64, 64)},
//                                                              {"class", FeatureSpec::int64()}})
//                           .shuffle(1024, /*seed=*/42).batch(32, /*drop_remainder=*/true);
//   for (std::int64_t pass = 0; pass < 3; ++pass) {
//     auto it = ds.iterate(pass);
//     while (auto b = it.next()) use((*b)["image"], (*b)["class"]);
//   }
//
// A FeatureDataset is an immutable description (a chain of operators, shared
// by copies); each operator returns a new dataset. iterate(pass) runs one pass
// on the calling thread (no worker threads: the image Dataset of dataset.hpp
// stays the fast path for image training). `pass` seeds what changes between
// passes: shuffle(buffer, seed) orders pass p with seed (seed, p), so a given
// seed and pass always give the same elements in the same order.
//
// Elements are Features: a map from a name to a host tensor of any dtype and
// shape (std::map, so keys iterate sorted). Elements may share storage with
// the tensors given to from_tensors/from_elements and with the in-memory
// cache (no copy is made): a map must return new tensors rather than modify
// its input's in place.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.hpp"
#include "data/example.hpp"

namespace petal::data {

using Features = std::map<std::string, Tensor>;

// "{class: int64 [], image: uint8 [4, 4, 3]}", for messages.
std::string describe_features(const Features& features);
// Same keys, and for each the same dtype, shape and values.
bool features_equal(const Features& a, const Features& b);

// How one feature of a tf.train.Example becomes a tensor (tf.io.FixedLenFeature /
// VarLenFeature plus image decoding).
struct FeatureSpec {
  enum class Kind : std::uint8_t {
    Image,  // one bytes value, JPEG or PNG, decoded to uint8 [H, W, 3] (resized when height, width > 0)
    Int64,  // int64_list -> int64 tensor
    Float,  // float_list -> float32 tensor
    Bytes,  // one bytes value -> uint8 tensor of its bytes ([n], or reshaped to `shape`)
  };
  Kind kind = Kind::Int64;
  // Fixed length: the values are reshaped to `shape` ({} = a scalar, one value);
  // a count other than its product is a FormatError naming the key.
  Shape shape = {};
  // Variable length (Int64, Float, Bytes): a 1-D tensor of however many values
  // there are; `shape` is ignored.
  bool variable_length = false;
  // Image only: resize (bilinear, half-pixel centres) to height x width.
  int height = 0;
  int width = 0;
  // A missing feature is a FormatError unless optional (then the key is absent).
  bool optional = false;

  static FeatureSpec image(int height = 0, int width = 0);
  static FeatureSpec int64(Shape shape = {});
  static FeatureSpec floats(Shape shape = {});
  static FeatureSpec bytes(Shape shape = {});  // {}: 1-D of the value's length
  static FeatureSpec int64_list();             // variable length
  static FeatureSpec float_list();             // variable length
};
using ExampleSpec = std::map<std::string, FeatureSpec>;

// Parses an Example by a spec (only the spec's keys are read). Errors name the
// key, what the spec expects and what the Example holds.
Features parse_example(const Example& example, const ExampleSpec& spec);

// Self-describing encoding, used by write_tfrecord and cache(path): for each
// key K a feature K with the values (float32 -> float_list, int64 -> int64_list,
// uint8 and float64 -> one bytes value of the raw little-endian data) plus
// "K:shape" (int64_list) and "K:dtype" (bytes: "float32", "float64", "uint8",
// "int64"). Read back exactly by decode_features. Keys may not contain ':'.
Example encode_features(const Features& features);
Features decode_features(const Example& example);

class FeatureDataset;

// One pass over a dataset. Not thread-safe; move-only.
class FeatureIterator {
 public:
  struct Impl {
    virtual ~Impl() = default;
    virtual std::optional<Features> next() = 0;
  };
  explicit FeatureIterator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
  // The next element, nullopt at the end of the pass. Errors of the pipeline
  // (bad records, a failing map) are thrown here.
  std::optional<Features> next() { return impl_->next(); }

 private:
  std::unique_ptr<Impl> impl_;
};

class FeatureDataset {
 public:
  // A node of the operator chain: opens one pass. Implementations live in
  // feature_dataset.cpp; custom sources may derive from it too.
  struct Node {
    virtual ~Node() = default;
    virtual std::unique_ptr<FeatureIterator::Impl> open(std::int64_t pass) const = 0;
    // Elements per pass, -1 unknown, -2 infinite.
    virtual std::int64_t cardinality() const { return -1; }
  };
  static constexpr std::int64_t kUnknown = -1;
  static constexpr std::int64_t kInfinite = -2;

  explicit FeatureDataset(std::shared_ptr<const Node> node);

  // ---- sources ----
  // Slices every tensor along axis 0 (tf.data's from_tensor_slices): element i
  // holds row i of each. All tensors need the same size(0) (ShapeError naming the keys).
  static FeatureDataset from_tensors(Features tensors);
  static FeatureDataset from_tensor_slices(Features tensors) { return from_tensors(std::move(tensors)); }
  // These elements, in order.
  static FeatureDataset from_elements(std::vector<Features> elements);
  // Records of TFRecord files of Examples, parsed by `spec`; an empty spec
  // reads the self-describing layout of encode_features (write_tfrecord's files).
  // Files are read one after the other unless cycle_length > 1: then they are
  // interleaved as interleave() does (shuffle_files_seed: the file order is
  // shuffled per pass). Errors name the file and record.
  static FeatureDataset from_tfrecords(std::vector<std::filesystem::path> files, ExampleSpec spec = {},
                                       int cycle_length = 1, int block_length = 1,
                                       std::optional<std::uint64_t> shuffle_files_seed = std::nullopt);
  // The same with any map from an Example to Features.
  static FeatureDataset from_tfrecords(std::vector<std::filesystem::path> files,
                                       std::function<Features(const Example&)> parse, int cycle_length = 1,
                                       int block_length = 1,
                                       std::optional<std::uint64_t> shuffle_files_seed = std::nullopt);
  // tf.data's interleave over the given datasets (deterministic): cycle_length
  // of them are open at once; block_length elements are taken from each in
  // turn; an exhausted one is replaced by the next unopened dataset in its slot.
  // With shuffle_seed the inputs are opened in an order shuffled per pass from
  // (seed, pass) (tf's list_files(shuffle=True) before interleave).
  static FeatureDataset interleave(std::vector<FeatureDataset> inputs, int cycle_length, int block_length = 1,
                                   std::optional<std::uint64_t> shuffle_seed = std::nullopt);
  // Element i merges element i of each dataset (keys merged; the same key in two
  // of them is a ValueError). Ends with the shortest.
  static FeatureDataset zip(std::vector<FeatureDataset> datasets);

  // ---- operators (each returns a new dataset) ----
  FeatureDataset map(std::function<Features(Features)> fn) const;
  // The same on num_parallel_calls threads of petal's thread pool (< 1: all
  // of them): windows of 4 x num_parallel_calls elements are pulled, mapped
  // in parallel, and handed out in input order (deterministic). fn must be
  // thread-safe. An exception of fn is rethrown by next().
  FeatureDataset map(std::function<Features(Features)> fn, int num_parallel_calls) const;
  FeatureDataset filter(std::function<bool(const Features&)> predicate) const;
  FeatureDataset take(std::int64_t n) const;  // n < 0: all
  FeatureDataset skip(std::int64_t n) const;
  // A buffer of buffer_size elements; each output is a uniformly chosen element
  // of the buffer, replaced by the next input (tf.data's algorithm). Reshuffled
  // every pass from (seed, pass). buffer_size <= 1: no shuffling.
  FeatureDataset shuffle(std::size_t buffer_size, std::uint64_t seed) const;
  // Stacks batch_size consecutive elements key by key into [batch_size, ...]
  // tensors. Elements of a batch need the same keys, dtypes and shapes
  // (ShapeError/ValueError naming the key and both shapes). The last, smaller
  // batch is dropped when drop_remainder.
  FeatureDataset batch(std::int64_t batch_size, bool drop_remainder = false) const;
  // count passes over this dataset per pass (-1: forever). Repetition r of
  // pass p runs this dataset's pass p * count + r (forever: p * 2^32 + r), so a
  // shuffle before repeat reshuffles each repetition.
  FeatureDataset repeat(std::int64_t count = -1) const;
  // Keeps the elements of the first complete pass in memory; later passes
  // replay them (so an upstream shuffle is frozen, as in tf.data). A pass that
  // stops early caches nothing.
  FeatureDataset cache() const;
  // The same on disk: the first complete pass is written to `path` as a
  // TFRecord file of self-describing Examples (encode_features) followed by an
  // end record holding the element count. It is written under a temporary name
  // (<path>.tmp.<pid>) and renamed to `path` only once the pass is complete.
  // A pass finds `path` usable only when its last record is a valid end record
  // with the right count; otherwise (truncated, corrupt) it is ignored and
  // rewritten. Later passes, also of other datasets and processes, read the file.
  // While one pass of this process fills it, other passes opened meanwhile
  // pass the elements through without writing.
  FeatureDataset cache(std::filesystem::path path) const;

  // ---- iteration ----
  FeatureIterator iterate(std::int64_t pass = 0) const;
  // All elements of one pass (an infinite dataset is a ValueError).
  std::vector<Features> collect(std::int64_t pass = 0) const;
  // Elements per pass: a count, kUnknown (filter, TFRecords) or kInfinite.
  std::int64_t cardinality() const;

  const std::shared_ptr<const Node>& node() const { return node_; }

 private:
  std::shared_ptr<const Node> node_;
};

// Writes every element of one pass as a self-describing Example (encode_features),
// one record each; returns the count. from_tfrecords(files) without a spec reads
// them back equal. The file appears complete or not at all (temporary + rename).
std::int64_t write_tfrecord(const FeatureDataset& dataset, const std::filesystem::path& path,
                            std::int64_t pass = 0);
std::int64_t write_tfrecord(const std::vector<Features>& elements, const std::filesystem::path& path);

// Stacks elements key by key (what batch() does), with its errors.
Features stack_features(const std::vector<Features>& elements);

}  // namespace petal::data
