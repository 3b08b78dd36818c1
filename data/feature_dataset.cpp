#include "data/feature_dataset.hpp"

#include <algorithm>
#include <cstring>
#include <deque>
#include <mutex>
#include <system_error>
#include <utility>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/random.hpp"
#include "core/thread_pool.hpp"
#include "data/image_io.hpp"
#include "data/image_ops.hpp"
#include "data/tfrecord.hpp"

namespace petal::data {

namespace {

using Impl = FeatureIterator::Impl;
using NodePtr = std::shared_ptr<const FeatureDataset::Node>;

bool same_values(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  const Tensor ca = a.contiguous(), cb = b.contiguous();
  return a.nbytes() == 0 || std::memcmp(ca.raw_data(), cb.raw_data(), a.nbytes()) == 0;
}

// ---------------------------------------------------------------- sources

struct ElementsNode final : FeatureDataset::Node {
  std::vector<Features> elements;
  struct It final : Impl {
    const ElementsNode* node;
    std::size_t i = 0;
    std::optional<Features> next() override {
      if (i >= node->elements.size()) return std::nullopt;
      return node->elements[i++];
    }
  };
  std::unique_ptr<Impl> open(std::int64_t) const override {
    auto it = std::make_unique<It>();
    it->node = this;
    return it;
  }
  std::int64_t cardinality() const override { return static_cast<std::int64_t>(elements.size()); }
};

struct SlicesNode final : FeatureDataset::Node {
  Features tensors;
  std::int64_t rows = 0;
  struct It final : Impl {
    const SlicesNode* node;
    std::int64_t i = 0;
    std::optional<Features> next() override {
      if (i >= node->rows) return std::nullopt;
      Features out;
      for (const auto& [k, t] : node->tensors) out.emplace(k, t.select(0, i).contiguous());
      ++i;
      return out;
    }
  };
  std::unique_ptr<Impl> open(std::int64_t) const override {
    auto it = std::make_unique<It>();
    it->node = this;
    return it;
  }
  std::int64_t cardinality() const override { return rows; }
};

struct TFRecordNode final : FeatureDataset::Node {
  std::filesystem::path file;
  std::function<Features(const Example&)> parse;
  struct It final : Impl {
    const TFRecordNode* node;
    std::optional<TFRecordReader> reader;
    std::string payload;
    std::optional<Features> next() override {
      if (!reader) reader.emplace(node->file);
      const std::int64_t index = reader->next_record_index();
      if (!reader->read(payload)) return std::nullopt;
      try {
        return node->parse(decode_example(payload));
      } catch (const Error& e) {
        throw FormatError(str_cat(node->file.string(), ": record ", index, ": ", e.what()));
      }
    }
  };
  std::unique_ptr<Impl> open(std::int64_t) const override {
    auto it = std::make_unique<It>();
    it->node = this;
    return it;
  }
};

std::uint64_t mix_seed(std::uint64_t seed, std::int64_t pass) {
  // splitmix64 of the pair, so nearby seeds and passes give unrelated streams.
  std::uint64_t z = seed + 0x9e3779b97f4a7c15ull * (static_cast<std::uint64_t>(pass) + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

struct InterleaveNode final : FeatureDataset::Node {
  std::vector<FeatureDataset> inputs;
  int cycle_length = 1;
  int block_length = 1;
  std::optional<std::uint64_t> shuffle_seed;
  struct It final : Impl {
    const InterleaveNode* node;
    std::int64_t pass = 0;
    std::vector<std::size_t> order;  // the inputs in opening order
    std::vector<std::unique_ptr<Impl>> slots;
    std::size_t next_input = 0;
    std::size_t cycle = 0;
    int block = 0;
    void advance() {
      cycle = (cycle + 1) % slots.size();
      block = 0;
    }
    std::optional<Features> next() override {
      std::size_t empty_in_a_row = 0;
      while (true) {
        auto& slot = slots[cycle];
        if (slot) {
          empty_in_a_row = 0;
          if (auto e = slot->next()) {
            if (++block >= node->block_length) advance();
            return e;
          }
          slot.reset();
          advance();
        } else if (next_input < node->inputs.size()) {
          slot = node->inputs[order[next_input++]].node()->open(pass);
          block = 0;
        } else {
          if (++empty_in_a_row > slots.size()) return std::nullopt;
          advance();
        }
      }
    }
  };
  std::unique_ptr<Impl> open(std::int64_t pass) const override {
    auto it = std::make_unique<It>();
    it->node = this;
    it->pass = pass;
    it->slots.resize(static_cast<std::size_t>(cycle_length));
    it->order.resize(inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i) it->order[i] = i;
    if (shuffle_seed) {  // Fisher-Yates from (seed, pass)
      Generator rng(mix_seed(*shuffle_seed ^ 0xf11e5ull, pass));
      for (std::size_t i = inputs.size(); i > 1; --i)
        std::swap(it->order[i - 1], it->order[static_cast<std::size_t>(rng.uniform_int(i))]);
    }
    return it;
  }
  std::int64_t cardinality() const override {
    std::int64_t total = 0;
    for (const auto& d : inputs) {
      const std::int64_t c = d.cardinality();
      if (c < 0) return c;
      total += c;
    }
    return total;
  }
};

struct ZipNode final : FeatureDataset::Node {
  std::vector<FeatureDataset> inputs;
  struct It final : Impl {
    std::vector<std::unique_ptr<Impl>> its;
    std::int64_t index = 0;
    std::optional<Features> next() override {
      Features out;
      for (std::size_t d = 0; d < its.size(); ++d) {
        auto e = its[d]->next();
        if (!e) return std::nullopt;
        for (auto& [k, t] : *e) {
          PETAL_CHECK(!out.count(k), ValueError, "zip: key \"", k, "\" of dataset ", d,
                      " is also in an earlier dataset (element ", index, ")");
          out.emplace(k, std::move(t));
        }
      }
      ++index;
      return out;
    }
  };
  std::unique_ptr<Impl> open(std::int64_t pass) const override {
    auto it = std::make_unique<It>();
    for (const auto& d : inputs) it->its.push_back(d.node()->open(pass));
    return it;
  }
  std::int64_t cardinality() const override {
    std::int64_t best = FeatureDataset::kInfinite;
    for (const auto& d : inputs) {
      const std::int64_t c = d.cardinality();
      if (c == FeatureDataset::kInfinite) continue;
      if (c == FeatureDataset::kUnknown) return c;
      best = best == FeatureDataset::kInfinite ? c : std::min(best, c);
    }
    return inputs.empty() ? 0 : best;
  }
};

// ---------------------------------------------------------------- operators

struct UnaryNode : FeatureDataset::Node {
  NodePtr input;
};

struct MapNode final : UnaryNode {
  std::function<Features(Features)> fn;
  int threads = 0;  // 0: serial
  struct It final : Impl {
    const MapNode* node;
    std::unique_ptr<Impl> in;
    std::optional<Features> next() override {
      auto e = in->next();
      if (!e) return e;
      return node->fn(std::move(*e));
    }
  };
  struct ParallelIt final : Impl {
    const MapNode* node;
    std::unique_ptr<Impl> in;
    std::vector<Features> window;
    std::size_t pos = 0;
    bool input_done = false;
    std::optional<Features> next() override {
      if (pos >= window.size()) {
        window.clear();
        pos = 0;
        const std::size_t want = static_cast<std::size_t>(4 * node->threads);
        while (!input_done && window.size() < want) {
          auto e = in->next();
          if (!e) input_done = true;
          else window.push_back(std::move(*e));
        }
        if (window.empty()) return std::nullopt;
        const auto n = static_cast<std::int64_t>(window.size());
        const std::int64_t grain = (n + node->threads - 1) / node->threads;
        parallel_for(0, n, grain, [&](std::int64_t b, std::int64_t e) {
          for (std::int64_t i = b; i < e; ++i) {
            auto& slot = window[static_cast<std::size_t>(i)];
            slot = node->fn(std::move(slot));
          }
        });
      }
      return std::move(window[pos++]);
    }
  };
  std::unique_ptr<Impl> open(std::int64_t pass) const override {
    if (threads > 1) {
      auto it = std::make_unique<ParallelIt>();
      it->node = this;
      it->in = input->open(pass);
      return it;
    }
    auto it = std::make_unique<It>();
    it->node = this;
    it->in = input->open(pass);
    return it;
  }
  std::int64_t cardinality() const override { return input->cardinality(); }
};

struct FilterNode final : UnaryNode {
  std::function<bool(const Features&)> predicate;
  struct It final : Impl {
    const FilterNode* node;
    std::unique_ptr<Impl> in;
    std::optional<Features> next() override {
      while (auto e = in->next())
        if (node->predicate(*e)) return e;
      return std::nullopt;
    }
  };
  std::unique_ptr<Impl> open(std::int64_t pass) const override {
    auto it = std::make_unique<It>();
    it->node = this;
    it->in = input->open(pass);
    return it;
  }
  std::int64_t cardinality() const override {
    return input->cardinality() == FeatureDataset::kInfinite ? FeatureDataset::kInfinite : FeatureDataset::kUnknown;
  }
};

struct TakeNode final : UnaryNode {
  std::int64_t n = 0;
  struct It final : Impl {
    std::unique_ptr<Impl> in;
    std::int64_t left = 0;
    std::optional<Features> next() override {
      if (left == 0) return std::nullopt;
      auto e = in->next();
      if (e && left > 0) --left;
      if (!e) left = 0;
      return e;
    }
  };
  std::unique_ptr<Impl> open(std::int64_t pass) const override {
    auto it = std::make_unique<It>();
    it->in = input->open(pass);
    it->left = n;
    return it;
  }
  std::int64_t cardinality() const override {
    const std::int64_t c = input->cardinality();
    if (n < 0) return c;
    if (c == FeatureDataset::kInfinite) return n;
    return c < 0 ? c : std::min(c, n);
  }
};

struct SkipNode final : UnaryNode {
  std::int64_t n = 0;
  struct It final : Impl {
    std::unique_ptr<Impl> in;
    std::int64_t to_skip = 0;
    std::optional<Features> next() override {
      for (; to_skip > 0; --to_skip)
        if (!in->next()) {
          to_skip = 0;
          return std::nullopt;
        }
      return in->next();
    }
  };
  std::unique_ptr<Impl> open(std::int64_t pass) const override {
    auto it = std::make_unique<It>();
    it->in = input->open(pass);
    it->to_skip = n;
    return it;
  }
  std::int64_t cardinality() const override {
    const std::int64_t c = input->cardinality();
    return c < 0 ? c : std::max<std::int64_t>(0, c - n);
  }
};


struct ShuffleNode final : UnaryNode {
  std::size_t buffer_size = 0;
  std::uint64_t seed = 0;
  struct It final : Impl {
    std::unique_ptr<Impl> in;
    std::size_t buffer_size = 0;
    Generator rng;
    std::vector<Features> buffer;
    bool input_done = false;
    std::optional<Features> next() override {
      while (!input_done && buffer.size() < buffer_size) {
        auto e = in->next();
        if (!e) {
          input_done = true;
          break;
        }
        buffer.push_back(std::move(*e));
      }
      if (buffer.empty()) return std::nullopt;
      const std::size_t pick = static_cast<std::size_t>(rng.uniform_int(buffer.size()));
      Features out = std::move(buffer[pick]);
      if (!input_done) {
        if (auto e = in->next()) {
          buffer[pick] = std::move(*e);
          return out;
        }
        input_done = true;
      }
      buffer[pick] = std::move(buffer.back());
      buffer.pop_back();
      return out;
    }
  };
  std::unique_ptr<Impl> open(std::int64_t pass) const override {
    auto it = std::make_unique<It>();
    it->in = input->open(pass);
    it->buffer_size = buffer_size;
    it->rng.seed(mix_seed(seed, pass));
    it->buffer.reserve(buffer_size);
    return it;
  }
  std::int64_t cardinality() const override { return input->cardinality(); }
};

struct BatchNode final : UnaryNode {
  std::int64_t batch_size = 1;
  bool drop_remainder = false;
  struct It final : Impl {
    const BatchNode* node;
    std::unique_ptr<Impl> in;
    std::optional<Features> next() override {
      std::vector<Features> elements;
      elements.reserve(static_cast<std::size_t>(node->batch_size));
      while (static_cast<std::int64_t>(elements.size()) < node->batch_size) {
        auto e = in->next();
        if (!e) break;
        elements.push_back(std::move(*e));
      }
      if (elements.empty()) return std::nullopt;
      if (node->drop_remainder && static_cast<std::int64_t>(elements.size()) < node->batch_size)
        return std::nullopt;
      return stack_features(elements);
    }
  };
  std::unique_ptr<Impl> open(std::int64_t pass) const override {
    auto it = std::make_unique<It>();
    it->node = this;
    it->in = input->open(pass);
    return it;
  }
  std::int64_t cardinality() const override {
    const std::int64_t c = input->cardinality();
    if (c < 0) return c;
    return drop_remainder ? c / batch_size : (c + batch_size - 1) / batch_size;
  }
};

struct RepeatNode final : UnaryNode {
  std::int64_t count = -1;
  struct It final : Impl {
    const RepeatNode* node;
    std::int64_t pass = 0;
    std::int64_t r = 0;
    std::unique_ptr<Impl> in;
    bool produced_this_round = false;
    std::int64_t inner_pass() const {
      return node->count < 0 ? pass * (std::int64_t{1} << 32) + r : pass * node->count + r;
    }
    std::optional<Features> next() override {
      while (node->count < 0 || r < node->count) {
        if (!in) {
          in = node->input->open(inner_pass());
          produced_this_round = false;
        }
        if (auto e = in->next()) {
          produced_this_round = true;
          return e;
        }
        in.reset();
        ++r;
        if (!produced_this_round) return std::nullopt;  // an empty input would loop forever
      }
      return std::nullopt;
    }
  };
  std::unique_ptr<Impl> open(std::int64_t pass) const override {
    auto it = std::make_unique<It>();
    it->node = this;
    it->pass = pass;
    return it;
  }
  std::int64_t cardinality() const override {
    const std::int64_t c = input->cardinality();
    if (c == 0) return 0;
    if (count < 0) return FeatureDataset::kInfinite;
    return c < 0 ? c : c * count;
  }
};

// In-memory cache: the first complete pass is kept (shared by copies of the dataset).
struct MemoryCacheNode final : UnaryNode {
  mutable std::mutex mutex;
  mutable std::shared_ptr<const std::vector<Features>> cached;
  struct Replay final : Impl {
    std::shared_ptr<const std::vector<Features>> elements;
    std::size_t i = 0;
    std::optional<Features> next() override {
      if (i >= elements->size()) return std::nullopt;
      return (*elements)[i++];
    }
  };
  struct Fill final : Impl {
    const MemoryCacheNode* node;
    std::unique_ptr<Impl> in;
    std::vector<Features> seen;
    bool done = false;
    std::optional<Features> next() override {
      if (done) return std::nullopt;
      auto e = in->next();
      if (e) {
        seen.push_back(*e);
        return e;
      }
      done = true;
      std::lock_guard<std::mutex> lock(node->mutex);
      if (!node->cached) node->cached = std::make_shared<const std::vector<Features>>(std::move(seen));
      return std::nullopt;
    }
  };
  std::unique_ptr<Impl> open(std::int64_t pass) const override {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (cached) {
        auto it = std::make_unique<Replay>();
        it->elements = cached;
        return it;
      }
    }
    auto it = std::make_unique<Fill>();
    it->node = this;
    it->in = input->open(pass);
    return it;
  }
  std::int64_t cardinality() const override { return input->cardinality(); }
};

constexpr const char* kCacheEndKey = "__petal_cache_end__";

// The element count of a complete cache file, or -1 when the file is missing,
// truncated or corrupt (its last record must be the end record).
std::int64_t complete_cache_count(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return -1;
  try {
    TFRecordReader reader(path);
    std::string payload, last;
    std::int64_t records = 0;
    while (reader.skip()) ++records;  // checks every frame fits in the file
    if (records == 0) return -1;
    TFRecordReader again(path);
    for (std::int64_t i = 0; i + 1 < records; ++i) again.skip();
    if (!again.read(last)) return -1;
    const Example end = decode_example(last);
    if (!end.has(kCacheEndKey) || end.features.size() != 1) return -1;
    const std::int64_t count = end.int64(kCacheEndKey);
    return count == records - 1 ? count : -1;
  } catch (const Error&) {
    return -1;
  }
}

struct FileCacheNode final : UnaryNode {
  std::filesystem::path path;
  struct Replay final : Impl {
    TFRecordReader reader;
    std::int64_t left;
    std::string payload;
    Replay(const std::filesystem::path& p, std::int64_t count) : reader(p), left(count) {}
    std::optional<Features> next() override {
      if (left <= 0) return std::nullopt;
      --left;
      if (!reader.read(payload)) throw FormatError(str_cat(reader.path().string(), ": cache file ended early"));
      return decode_features(decode_example(payload));
    }
  };
  struct Fill final : Impl {
    std::filesystem::path path, temporary;
    std::unique_ptr<Impl> in;
    std::unique_ptr<TFRecordWriter> writer;
    std::int64_t count = 0;
    bool done = false;
    ~Fill() override {
      if (writer) {  // the pass stopped early: no cache
        writer.reset();
        std::error_code ec;
        std::filesystem::remove(temporary, ec);
      }
    }
    std::optional<Features> next() override {
      if (done) return std::nullopt;
      auto e = in->next();
      if (!writer) return e;  // another pass of this process is filling the cache: pass through
      if (e) {
        writer->write(encode_example(encode_features(*e)));
        ++count;
        return e;
      }
      done = true;
      Example end;
      end.set_int64s(kCacheEndKey, {count});
      writer->write(encode_example(end));
      writer->close();
      writer.reset();
      std::error_code ec;
      std::filesystem::rename(temporary, path, ec);
      if (ec) {
        std::filesystem::remove(temporary, ec);
        throw IOError(str_cat(path.string(), ": cannot rename the cache file into place: ", ec.message()));
      }
      return std::nullopt;
    }
  };
  std::unique_ptr<Impl> open(std::int64_t pass) const override {
    const std::int64_t count = complete_cache_count(path);
    if (count >= 0) return std::make_unique<Replay>(path, count);
    remove_stale_temporaries(path);
    auto it = std::make_unique<Fill>();
    it->path = path;
    it->temporary = atomic_temporary_path(path);
    it->in = input->open(pass);
    std::error_code ec;
    if (!std::filesystem::exists(it->temporary, ec)) it->writer = std::make_unique<TFRecordWriter>(it->temporary);
    return it;
  }
  std::int64_t cardinality() const override { return input->cardinality(); }
};

template <class N>
FeatureDataset unary(const NodePtr& input, std::shared_ptr<N> node) {
  node->input = input;
  return FeatureDataset(std::move(node));
}

void check_key(const std::string& key, const char* op) {
  PETAL_CHECK(key.find(':') == std::string::npos, ValueError, op, ": key \"", key,
              "\" contains ':', which the self-describing Example layout reserves");
}

Tensor raw_tensor(const std::string& bytes, DType dtype, const Shape& shape, const std::string& key) {
  Tensor t = Tensor::empty(shape, dtype);
  PETAL_CHECK(bytes.size() == t.nbytes(), FormatError, "feature \"", key, "\": ", bytes.size(),
              " bytes for a ", dtype_name(dtype), " tensor of shape ", shape_str(shape), " (", t.nbytes(),
              " bytes expected)");
  if (!bytes.empty()) std::memcpy(t.raw_data(), bytes.data(), bytes.size());
  return t;
}

}  // namespace

// ---------------------------------------------------------------- helpers

std::string describe_features(const Features& features) {
  std::string s = "{";
  for (const auto& [k, t] : features) {
    if (s.size() > 1) s += ", ";
    s += str_cat(k, ": ", t.defined() ? dtype_name(t.dtype()) : "undefined", " ",
                 t.defined() ? shape_str(t.shape()) : "");
  }
  return s + "}";
}

bool features_equal(const Features& a, const Features& b) {
  if (a.size() != b.size()) return false;
  for (auto ia = a.begin(), ib = b.begin(); ia != a.end(); ++ia, ++ib)
    if (ia->first != ib->first || !same_values(ia->second, ib->second)) return false;
  return true;
}

Features stack_features(const std::vector<Features>& elements) {
  PETAL_CHECK(!elements.empty(), ValueError, "batch: no elements to stack");
  const Features& first = elements.front();
  for (std::size_t i = 1; i < elements.size(); ++i) {
    const Features& e = elements[i];
    bool same_keys = e.size() == first.size();
    for (auto a = first.begin(), b = e.begin(); same_keys && a != first.end(); ++a, ++b)
      same_keys = a->first == b->first;
    PETAL_CHECK(same_keys, ValueError, "batch: element ", i, " has keys ", describe_features(e),
                " but element 0 has ", describe_features(first));
  }
  Features out;
  const auto n = static_cast<std::int64_t>(elements.size());
  for (const auto& [key, t0] : first) {
    t0.check_defined("batch");
    Shape shape = t0.shape();
    for (std::size_t i = 1; i < elements.size(); ++i) {
      const Tensor& t = elements[i].at(key);
      PETAL_CHECK(t.dtype() == t0.dtype(), DTypeError, "batch: key \"", key, "\": element ", i, " is ",
                  dtype_name(t.dtype()), " but element 0 is ", dtype_name(t0.dtype()));
      PETAL_CHECK(t.shape() == shape, ShapeError, "batch: key \"", key, "\": element ", i, " has shape ",
                  shape_str(t.shape()), " but element 0 has shape ", shape_str(shape),
                  " (elements of a batch need equal shapes)");
    }
    Shape batched = shape;
    batched.insert(batched.begin(), n);
    Tensor stacked = Tensor::empty(batched, t0.dtype());
    auto* dst = static_cast<unsigned char*>(stacked.raw_data());
    const std::size_t row = t0.nbytes();
    for (std::int64_t i = 0; i < n; ++i) {
      const Tensor c = elements[static_cast<std::size_t>(i)].at(key).to(Device::cpu()).contiguous();
      if (row) std::memcpy(dst + static_cast<std::size_t>(i) * row, c.raw_data(), row);
    }
    out.emplace(key, std::move(stacked));
  }
  return out;
}

// ---------------------------------------------------------------- Example parsing

FeatureSpec FeatureSpec::image(int height, int width) {
  FeatureSpec s;
  s.kind = Kind::Image;
  s.height = height;
  s.width = width;
  return s;
}
FeatureSpec FeatureSpec::int64(Shape shape) {
  FeatureSpec s;
  s.kind = Kind::Int64;
  s.shape = std::move(shape);
  return s;
}
FeatureSpec FeatureSpec::floats(Shape shape) {
  FeatureSpec s;
  s.kind = Kind::Float;
  s.shape = std::move(shape);
  return s;
}
FeatureSpec FeatureSpec::bytes(Shape shape) {
  FeatureSpec s;
  s.kind = Kind::Bytes;
  s.shape = std::move(shape);
  s.variable_length = s.shape.empty();
  return s;
}
FeatureSpec FeatureSpec::int64_list() {
  FeatureSpec s = int64();
  s.variable_length = true;
  return s;
}
FeatureSpec FeatureSpec::float_list() {
  FeatureSpec s = floats();
  s.variable_length = true;
  return s;
}

Features parse_example(const Example& example, const ExampleSpec& spec) {
  Features out;
  // Named references, not a structured binding: the lambdas below capture
  // them, which clang 14 (the fuzz build) refuses for bindings.
  for (const auto& entry : spec) {
    const std::string& key = entry.first;
    const FeatureSpec& s = entry.second;
    if (!example.has(key)) {
      PETAL_CHECK(s.optional, FormatError, "Example has no feature \"", key, "\" (it has: ", example.key_list(),
                  ")");
      continue;
    }
    const Feature& f = example.at(key);
    auto expect = [&](FeatureType type) {
      PETAL_CHECK(f.type == type, DTypeError, "feature \"", key, "\": the spec wants a ", feature_type_name(type),
                  ", the Example holds a ", feature_type_name(f.type));
    };
    auto fixed_shape = [&](std::size_t count) -> Shape {
      if (s.variable_length) return Shape{static_cast<std::int64_t>(count)};
      PETAL_CHECK(static_cast<std::int64_t>(count) == shape_numel(s.shape), FormatError, "feature \"", key,
                  "\": ", count, " values, the spec's shape ", shape_str(s.shape), " needs ", shape_numel(s.shape));
      return s.shape;
    };
    switch (s.kind) {
      case FeatureSpec::Kind::Image: {
        expect(FeatureType::Bytes);
        PETAL_CHECK(f.bytes.size() == 1, FormatError, "feature \"", key, "\": an image needs one bytes value, got ",
                    f.bytes.size());
        Image img = decode_image(f.bytes[0], str_cat("feature \"", key, "\""));
        if (s.height > 0 && s.width > 0 && (img.height != s.height || img.width != s.width))
          img = resize_bilinear(img, s.height, s.width);
        out.emplace(key, image_to_tensor(img));
        break;
      }
      case FeatureSpec::Kind::Int64:
        expect(FeatureType::Int64);
        out.emplace(key, from_vector(f.int64s, fixed_shape(f.int64s.size())));
        break;
      case FeatureSpec::Kind::Float:
        expect(FeatureType::Float);
        out.emplace(key, from_vector(f.floats, fixed_shape(f.floats.size())));
        break;
      case FeatureSpec::Kind::Bytes: {
        expect(FeatureType::Bytes);
        PETAL_CHECK(f.bytes.size() == 1, FormatError, "feature \"", key, "\": the spec reads one bytes value, got ",
                    f.bytes.size());
        const std::string& b = f.bytes[0];
        const Shape shape = s.variable_length ? Shape{static_cast<std::int64_t>(b.size())} : s.shape;
        out.emplace(key, raw_tensor(b, DType::UInt8, shape, key));
        break;
      }
    }
  }
  return out;
}

Example encode_features(const Features& features) {
  Example ex;
  for (const auto& [key, t] : features) {
    check_key(key, "encode_features");
    t.check_defined("encode_features");
    const Tensor c = t.to(Device::cpu()).contiguous();
    switch (c.dtype()) {
      case DType::Float32: ex.set_floats(key, c.to_vector<float>()); break;
      case DType::Int64: ex.set_int64s(key, c.to_vector<std::int64_t>()); break;
      case DType::UInt8:
      case DType::Float64:
        ex.set_bytes(key, {std::string(static_cast<const char*>(c.raw_data()), c.nbytes())});
        break;
    }
    ex.set_int64s(key + ":shape", std::vector<std::int64_t>(c.shape().begin(), c.shape().end()));
    ex.set_bytes(key + ":dtype", {dtype_name(c.dtype())});
  }
  return ex;
}

Features decode_features(const Example& example) {
  Features out;
  for (const auto& entry : example.features) {
    const std::string& name = entry.first;  // captured below: not a structured binding (clang 14)
    if (name.find(':') != std::string::npos) continue;
    const std::string shape_key = name + ":shape", dtype_key = name + ":dtype";
    PETAL_CHECK(example.has(shape_key) && example.has(dtype_key), FormatError, "feature \"", name,
                "\" has no \"", shape_key, "\" and \"", dtype_key,
                "\" features (not written by write_tfrecord: give from_tfrecords an ExampleSpec)");
    const auto& dims = example.int64_list(shape_key);
    const Shape shape(dims.begin(), dims.end());
    for (std::int64_t d : shape) PETAL_CHECK(d >= 0, FormatError, "feature \"", name, "\": negative dimension");
    const std::string& dtype = example.bytes(dtype_key);
    auto count_check = [&](std::size_t n) {
      PETAL_CHECK(static_cast<std::int64_t>(n) == shape_numel(shape), FormatError, "feature \"", name, "\": ", n,
                  " values for shape ", shape_str(shape));
    };
    if (dtype == dtype_name(DType::Float32)) {
      const auto& v = example.float_list(name);
      count_check(v.size());
      out.emplace(name, from_vector(v, shape));
    } else if (dtype == dtype_name(DType::Int64)) {
      const auto& v = example.int64_list(name);
      count_check(v.size());
      out.emplace(name, from_vector(v, shape));
    } else if (dtype == dtype_name(DType::UInt8)) {
      out.emplace(name, raw_tensor(example.bytes(name), DType::UInt8, shape, name));
    } else if (dtype == dtype_name(DType::Float64)) {
      out.emplace(name, raw_tensor(example.bytes(name), DType::Float64, shape, name));
    } else {
      throw FormatError(str_cat("feature \"", name, "\": unknown dtype \"", dtype, "\""));
    }
  }
  return out;
}

// ---------------------------------------------------------------- FeatureDataset

FeatureDataset::FeatureDataset(std::shared_ptr<const Node> node) : node_(std::move(node)) {
  PETAL_CHECK(node_ != nullptr, ValueError, "FeatureDataset: null node");
}

FeatureDataset FeatureDataset::from_tensors(Features tensors) {
  auto node = std::make_shared<SlicesNode>();
  std::string first_key;
  bool first = true;
  for (auto& [k, t] : tensors) {
    t.check_defined("from_tensors");
    PETAL_CHECK(t.dim() >= 1, ShapeError, "from_tensors: \"", k, "\" is a scalar; slicing needs an axis 0");
    t = t.to(Device::cpu());
    if (first) {
      node->rows = t.size(0);
      first_key = k;
      first = false;
    } else {
      PETAL_CHECK(t.size(0) == node->rows, ShapeError, "from_tensors: \"", k, "\" has shape ", shape_str(t.shape()),
                  " but \"", first_key, "\" has ", node->rows, " rows (all need the same size along axis 0)");
    }
  }
  node->tensors = std::move(tensors);
  return FeatureDataset(std::move(node));
}

FeatureDataset FeatureDataset::from_elements(std::vector<Features> elements) {
  auto node = std::make_shared<ElementsNode>();
  node->elements = std::move(elements);
  return FeatureDataset(std::move(node));
}

FeatureDataset FeatureDataset::from_tfrecords(std::vector<std::filesystem::path> files, ExampleSpec spec,
                                              int cycle_length, int block_length,
                                              std::optional<std::uint64_t> shuffle_files_seed) {
  std::function<Features(const Example&)> parse;
  if (spec.empty())
    parse = [](const Example& e) { return decode_features(e); };
  else
    parse = [spec = std::move(spec)](const Example& e) { return parse_example(e, spec); };
  return from_tfrecords(std::move(files), std::move(parse), cycle_length, block_length, shuffle_files_seed);
}

FeatureDataset FeatureDataset::from_tfrecords(std::vector<std::filesystem::path> files,
                                              std::function<Features(const Example&)> parse, int cycle_length,
                                              int block_length, std::optional<std::uint64_t> shuffle_files_seed) {
  PETAL_CHECK(parse != nullptr, ValueError, "from_tfrecords: null parse function");
  auto shared_parse = std::make_shared<std::function<Features(const Example&)>>(std::move(parse));
  std::vector<FeatureDataset> inputs;
  for (auto& f : files) {
    auto node = std::make_shared<TFRecordNode>();
    node->file = std::move(f);
    node->parse = [shared_parse](const Example& e) { return (*shared_parse)(e); };
    inputs.emplace_back(std::move(node));
  }
  return interleave(std::move(inputs), std::max(cycle_length, 1), block_length, shuffle_files_seed);
}

FeatureDataset FeatureDataset::interleave(std::vector<FeatureDataset> inputs, int cycle_length, int block_length,
                                          std::optional<std::uint64_t> shuffle_seed) {
  PETAL_CHECK(cycle_length >= 1, ValueError, "interleave: cycle_length must be >= 1, got ", cycle_length);
  PETAL_CHECK(block_length >= 1, ValueError, "interleave: block_length must be >= 1, got ", block_length);
  auto node = std::make_shared<InterleaveNode>();
  node->inputs = std::move(inputs);
  node->cycle_length = cycle_length;
  node->block_length = block_length;
  node->shuffle_seed = shuffle_seed;
  return FeatureDataset(std::move(node));
}

FeatureDataset FeatureDataset::zip(std::vector<FeatureDataset> datasets) {
  auto node = std::make_shared<ZipNode>();
  node->inputs = std::move(datasets);
  return FeatureDataset(std::move(node));
}

FeatureDataset FeatureDataset::map(std::function<Features(Features)> fn) const {
  PETAL_CHECK(fn != nullptr, ValueError, "map: null function");
  auto node = std::make_shared<MapNode>();
  node->fn = std::move(fn);
  return unary(node_, std::move(node));
}

FeatureDataset FeatureDataset::map(std::function<Features(Features)> fn, int num_parallel_calls) const {
  PETAL_CHECK(fn != nullptr, ValueError, "map: null function");
  auto node = std::make_shared<MapNode>();
  node->fn = std::move(fn);
  node->threads = num_parallel_calls < 1 ? num_threads() : num_parallel_calls;
  return unary(node_, std::move(node));
}

FeatureDataset FeatureDataset::filter(std::function<bool(const Features&)> predicate) const {
  PETAL_CHECK(predicate != nullptr, ValueError, "filter: null predicate");
  auto node = std::make_shared<FilterNode>();
  node->predicate = std::move(predicate);
  return unary(node_, std::move(node));
}

FeatureDataset FeatureDataset::take(std::int64_t n) const {
  auto node = std::make_shared<TakeNode>();
  node->n = n < 0 ? -1 : n;
  return unary(node_, std::move(node));
}

FeatureDataset FeatureDataset::skip(std::int64_t n) const {
  auto node = std::make_shared<SkipNode>();
  node->n = std::max<std::int64_t>(n, 0);
  return unary(node_, std::move(node));
}

FeatureDataset FeatureDataset::shuffle(std::size_t buffer_size, std::uint64_t seed) const {
  if (buffer_size <= 1) return *this;
  auto node = std::make_shared<ShuffleNode>();
  node->buffer_size = buffer_size;
  node->seed = seed;
  return unary(node_, std::move(node));
}

FeatureDataset FeatureDataset::batch(std::int64_t batch_size, bool drop_remainder) const {
  PETAL_CHECK(batch_size >= 1, ValueError, "batch: batch_size must be >= 1, got ", batch_size);
  auto node = std::make_shared<BatchNode>();
  node->batch_size = batch_size;
  node->drop_remainder = drop_remainder;
  return unary(node_, std::move(node));
}

FeatureDataset FeatureDataset::repeat(std::int64_t count) const {
  auto node = std::make_shared<RepeatNode>();
  node->count = count < 0 ? -1 : count;
  return unary(node_, std::move(node));
}

FeatureDataset FeatureDataset::cache() const { return unary(node_, std::make_shared<MemoryCacheNode>()); }

FeatureDataset FeatureDataset::cache(std::filesystem::path path) const {
  PETAL_CHECK(!path.empty(), ValueError, "cache: empty path (use cache() for memory)");
  auto node = std::make_shared<FileCacheNode>();
  node->path = std::move(path);
  return unary(node_, std::move(node));
}

FeatureIterator FeatureDataset::iterate(std::int64_t pass) const {
  // The iterator keeps the chain alive through a holder that owns both.
  struct Holder final : Impl {
    NodePtr node;
    std::unique_ptr<Impl> it;
    std::optional<Features> next() override { return it->next(); }
  };
  auto h = std::make_unique<Holder>();
  h->node = node_;
  h->it = node_->open(pass);
  return FeatureIterator(std::move(h));
}

std::vector<Features> FeatureDataset::collect(std::int64_t pass) const {
  PETAL_CHECK(cardinality() != kInfinite, ValueError, "collect: the dataset is infinite (use take(n) first)");
  std::vector<Features> out;
  auto it = iterate(pass);
  while (auto e = it.next()) out.push_back(std::move(*e));
  return out;
}

std::int64_t FeatureDataset::cardinality() const { return node_->cardinality(); }

std::int64_t write_tfrecord(const FeatureDataset& dataset, const std::filesystem::path& path, std::int64_t pass) {
  PETAL_CHECK(dataset.cardinality() != FeatureDataset::kInfinite, ValueError, "write_tfrecord ", path.string(),
              ": the dataset is infinite");
  remove_stale_temporaries(path);
  const std::filesystem::path temporary = atomic_temporary_path(path);
  std::int64_t count = 0;
  try {
    TFRecordWriter writer(temporary);
    auto it = dataset.iterate(pass);
    while (auto e = it.next()) {
      writer.write(encode_example(encode_features(*e)));
      ++count;
    }
    writer.close();
    std::filesystem::rename(temporary, path);
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(temporary, ec);
    throw;
  }
  return count;
}

std::int64_t write_tfrecord(const std::vector<Features>& elements, const std::filesystem::path& path) {
  return write_tfrecord(FeatureDataset::from_elements(elements), path);
}

}  // namespace petal::data
