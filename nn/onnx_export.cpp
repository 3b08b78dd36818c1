#include "nn/onnx_export.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <vector>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "data/protobuf_wire.hpp"
#include "nn/conv_layers.hpp"
#include "nn/core_layers.hpp"
#include "nn/merge_layers.hpp"
#include "nn/model.hpp"
#include "nn/sequential.hpp"

namespace petal::onnx {
namespace {

namespace pb = data::protobuf;
using nn::ActivationKind;
using nn::Module;

// ---- the ONNX schema, as far as the exporter writes it ----
// Field numbers of onnx.proto. It is proto2, so repeated scalars (dims, ints)
// are written unpacked, one tag per value.
namespace model_field {
enum : std::uint32_t { ir_version = 1, producer_name = 2, producer_version = 3, graph = 7, opset_import = 8 };
}
namespace opset_field {
enum : std::uint32_t { domain = 1, version = 2 };
}
namespace graph_field {
enum : std::uint32_t { node = 1, name = 2, initializer = 5, input = 11, output = 12 };
}
namespace node_field {
enum : std::uint32_t { input = 1, output = 2, name = 3, op_type = 4, attribute = 5 };
}
namespace attribute_field {
enum : std::uint32_t { name = 1, f = 2, i = 3, t = 5, ints = 8, type = 20 };
}
namespace attribute_type {
enum : std::int64_t { kFloat = 1, kInt = 2, kTensor = 4, kInts = 7 };
}
namespace tensor_field {
enum : std::uint32_t { dims = 1, data_type = 2, name = 8, raw_data = 9 };
}
namespace value_info_field {
enum : std::uint32_t { name = 1, type = 2 };
}
namespace type_field {
enum : std::uint32_t { tensor_type = 1 };
}
namespace tensor_type_field {
enum : std::uint32_t { elem_type = 1, shape = 2 };
}
namespace shape_field {
enum : std::uint32_t { dim = 1 };
}
namespace dimension_field {
enum : std::uint32_t { dim_value = 1, dim_param = 2 };
}
enum DataType : std::int64_t { kFloat32 = 1, kInt64 = 7 };

using Dims = std::vector<std::int64_t>;

std::string tensor_proto(const std::string& name, const Dims& dims, DataType type, const std::string& raw) {
  std::string out;
  for (std::int64_t d : dims) pb::put_varint_field(out, tensor_field::dims, d);
  pb::put_varint_field(out, tensor_field::data_type, type);
  if (!name.empty()) pb::put_bytes_field(out, tensor_field::name, name);
  pb::put_bytes_field(out, tensor_field::raw_data, raw);
  return out;
}

std::string float_tensor(const std::string& name, const Dims& dims, const std::vector<float>& values) {
  std::string raw;
  raw.reserve(values.size() * 4);
  for (float v : values) pb::put_float_bits(raw, v);
  return tensor_proto(name, dims, kFloat32, raw);
}

std::string int64_tensor(const std::string& name, const Dims& dims, const std::vector<std::int64_t>& values) {
  std::string raw;
  for (std::int64_t v : values) pb::put_int64_bits(raw, v);
  return tensor_proto(name, dims, kInt64, raw);
}

std::string attribute_header(const std::string& name, std::int64_t type) {
  std::string out;
  pb::put_bytes_field(out, attribute_field::name, name);
  pb::put_varint_field(out, attribute_field::type, type);
  return out;
}

std::string int_attribute(const std::string& name, std::int64_t value) {
  std::string out = attribute_header(name, attribute_type::kInt);
  pb::put_varint_field(out, attribute_field::i, value);
  return out;
}

std::string ints_attribute(const std::string& name, const Dims& values) {
  std::string out = attribute_header(name, attribute_type::kInts);
  for (std::int64_t v : values) pb::put_varint_field(out, attribute_field::ints, v);
  return out;
}

std::string float_attribute(const std::string& name, float value) {
  std::string out = attribute_header(name, attribute_type::kFloat);
  pb::put_float_field(out, attribute_field::f, value);
  return out;
}

std::string tensor_attribute(const std::string& name, const std::string& tensor) {
  std::string out = attribute_header(name, attribute_type::kTensor);
  pb::put_bytes_field(out, attribute_field::t, tensor);
  return out;
}

// A float32 value's type: fixed sizes, except the symbolic batch dimension first.
std::string value_info(const std::string& name, const std::string& batch_param, const Shape& shape) {
  std::string dims;
  std::string batch;
  pb::put_bytes_field(batch, dimension_field::dim_param, batch_param);
  pb::put_bytes_field(dims, shape_field::dim, batch);
  for (std::int64_t d : shape) {
    std::string dim;
    pb::put_varint_field(dim, dimension_field::dim_value, d);
    pb::put_bytes_field(dims, shape_field::dim, dim);
  }
  std::string tensor_type;
  pb::put_varint_field(tensor_type, tensor_type_field::elem_type, kFloat32);
  pb::put_bytes_field(tensor_type, tensor_type_field::shape, dims);
  std::string type;
  pb::put_bytes_field(type, type_field::tensor_type, tensor_type);
  std::string out;
  pb::put_bytes_field(out, value_info_field::name, name);
  pb::put_bytes_field(out, value_info_field::type, type);
  return out;
}

// Collects nodes and initializers in order; every value (node output,
// initializer, graph input) gets a graph-wide unique name.
class GraphBuilder {
 public:
  // `base`, or base_1, base_2, ... when taken.
  std::string unique_name(const std::string& base) {
    std::string name = base;
    for (int i = 1; !names_.insert(name).second; ++i) name = str_cat(base, "_", i);
    return name;
  }

  // Adds a node named after its single output; returns that output's name.
  std::string add_node(const std::string& op_type, const std::vector<std::string>& inputs,
                       const std::string& output_base, const std::vector<std::string>& attributes = {}) {
    const std::string output = unique_name(output_base);
    std::string node;
    for (const std::string& in : inputs) pb::put_bytes_field(node, node_field::input, in);
    pb::put_bytes_field(node, node_field::output, output);
    pb::put_bytes_field(node, node_field::name, output);
    pb::put_bytes_field(node, node_field::op_type, op_type);
    for (const std::string& a : attributes) pb::put_bytes_field(node, node_field::attribute, a);
    pb::put_bytes_field(nodes_, graph_field::node, node);
    return output;
  }

  std::string add_initializer(const std::string& base, const Dims& dims, const std::vector<float>& values) {
    const std::string name = unique_name(base);
    pb::put_bytes_field(initializers_, graph_field::initializer, float_tensor(name, dims, values));
    return name;
  }

  // A Constant node holding a float scalar, made once per name.
  std::string scalar_constant(const std::string& base, float value) {
    auto [it, added] = constants_.try_emplace(base);
    if (added) it->second = add_node("Constant", {}, base, {tensor_attribute("value", float_tensor("", {}, {value}))});
    return it->second;
  }

  std::string int64_constant(const std::string& base, const std::vector<std::int64_t>& values) {
    const Dims dims{static_cast<std::int64_t>(values.size())};
    return add_node("Constant", {}, base, {tensor_attribute("value", int64_tensor("", dims, values))});
  }

  std::string graph(const std::string& name, const std::string& input, const std::string& output) const {
    std::string out = nodes_;
    pb::put_bytes_field(out, graph_field::name, name);
    out += initializers_;
    pb::put_bytes_field(out, graph_field::input, input);
    pb::put_bytes_field(out, graph_field::output, output);
    return out;
  }

 private:
  std::string nodes_, initializers_;  // the GraphProto's repeated fields, already tagged
  std::set<std::string> names_;
  std::map<std::string, std::string> constants_;
};

// ---- from petal's layers to nodes ----

enum class Layout { ChannelsLast, ChannelsFirst };

// A value of the graph. `shape` is petal's (channels last, no batch axis);
// `layout` says how a 4-D value is actually laid out in the graph.
struct Value {
  std::string name;
  Shape shape;
  Layout layout = Layout::ChannelsLast;
};

bool is_image(const Value& x) { return x.shape.size() == 3; }

bool is_conv(const Module* m) {
  return dynamic_cast<const nn::Conv2D*>(m) || dynamic_cast<const nn::DepthwiseConv2D*>(m);
}

ActivationKind conv_activation(const Module& m) {
  if (const auto* c = dynamic_cast<const nn::Conv2D*>(&m)) return c->options().activation.kind;
  return dynamic_cast<const nn::DepthwiseConv2D&>(m).options().activation.kind;
}

std::vector<float> values_of(const ag::Variable& v) { return v.data().to_vector<float>(); }

class Exporter {
 public:
  explicit Exporter(const ExportOptions& options) : options_(options) {}

  std::string run(const Module& model) {
    PETAL_CHECK(model.built(), ValueError, "ONNX export: model \"", model.name(),
                "\" is not built: give it an input shape or call it once");
    const Value input{graph_.unique_name(options_.input_name), model.input_shape(), Layout::ChannelsLast};
    Value output = channels_last(layer(model, input));
    PETAL_CHECK(output.name != input.name, ValueError, "ONNX export: model \"", model.name(),
                "\" has no layer that computes anything");
    PETAL_CHECK(output.shape == model.output_shape(), ValueError, "ONNX export: model \"", model.name(),
                "\": the graph's output ", nn::keras_shape_str(output.shape), " differs from the model's ",
                nn::keras_shape_str(model.output_shape()));
    const std::string graph = graph_.graph(model.name(), value_info(input.name, options_.batch_dim_param, input.shape),
                                           value_info(output.name, options_.batch_dim_param, output.shape));
    std::string opset;
    pb::put_bytes_field(opset, opset_field::domain, "");
    pb::put_varint_field(opset, opset_field::version, kOpsetVersion);
    std::string out;
    pb::put_varint_field(out, model_field::ir_version, kIrVersion);
    pb::put_bytes_field(out, model_field::producer_name, "petal");
    pb::put_bytes_field(out, model_field::producer_version, "0.1.0");
    pb::put_bytes_field(out, model_field::graph, graph);
    pb::put_bytes_field(out, model_field::opset_import, opset);
    return out;
  }

 private:
  Value layer(const Module& m, const Value& x) {
    if (const auto* s = dynamic_cast<const nn::Sequential*>(&m)) return chain(s->layers(), x);
    if (const auto* model = dynamic_cast<const nn::Model*>(&m)) return graph(*model, x);
    if (const auto* r = dynamic_cast<const nn::Residual*>(&m)) return add(x, layer(*r->block(), x), m.name());
    if (dynamic_cast<const nn::InputLayer*>(&m) || dynamic_cast<const nn::Dropout*>(&m)) return x;
    if (is_conv(&m)) return conv(m, nullptr, nullptr, x);
    if (const auto* bn = dynamic_cast<const nn::BatchNormalization*>(&m)) return batch_norm(*bn, x);
    if (const auto* p = dynamic_cast<const nn::ZeroPadding2D*>(&m)) return pad(*p, x);
    if (const auto* r = dynamic_cast<const nn::ReLU*>(&m))
      return activation(x, r->is_relu6() ? ActivationKind::Relu6 : ActivationKind::Relu, m.name());
    if (const auto* a = dynamic_cast<const nn::Activation*>(&m)) return activation(x, a->activation(), m.name());
    if (dynamic_cast<const nn::GlobalAveragePooling2D*>(&m)) return global_pool("GlobalAveragePool", m, x);
    if (dynamic_cast<const nn::GlobalMaxPooling2D*>(&m)) return global_pool("GlobalMaxPool", m, x);
    if (dynamic_cast<const nn::Flatten*>(&m)) return flatten(m, x);
    if (const auto* d = dynamic_cast<const nn::Dense*>(&m)) return dense(*d, x);
    throw ValueError(str_cat("ONNX export: layer \"", m.name(), "\" (", m.type_name(),
                             ") has no ONNX translation; supported: Sequential, Model (one input, one output; Add), Residual, InputLayer, Conv2D, "
                             "DepthwiseConv2D, BatchNormalization, ZeroPadding2D, ReLU, Activation, "
                             "GlobalAveragePooling2D, GlobalMaxPooling2D, Flatten, Dense, Dropout"));
  }

  // Layers run one after the other. A ZeroPadding2D right before a
  // convolution goes into its pads, a BatchNormalization right after a
  // convolution without activation into its weights.
  Value chain(const std::vector<std::shared_ptr<Module>>& layers, Value x) {
    const auto at = [&](std::size_t i) { return i < layers.size() ? layers[i].get() : nullptr; };
    for (std::size_t i = 0; i < layers.size(); ++i) {
      const Module* m = layers[i].get();
      const auto* padding = dynamic_cast<const nn::ZeroPadding2D*>(m);
      if (padding && is_conv(at(i + 1))) {
        m = at(++i);
      } else {
        padding = nullptr;
      }
      if (is_conv(m)) {
        const auto* bn = dynamic_cast<const nn::BatchNormalization*>(at(i + 1));
        if (bn && conv_activation(*m) != ActivationKind::Linear) bn = nullptr;
        if (bn) ++i;
        x = conv(*m, padding, bn, x);
        continue;
      }
      x = layer(*m, x);
    }
    return x;
  }

  // A functional model's graph, node by node, with the same merges as
  // chain(): a ZeroPadding2D read only by a convolution goes into its pads, a
  // BatchNormalization that alone reads a convolution without activation
  // into its weights.
  Value graph(const nn::Model& model, const Value& x) {
    PETAL_CHECK(model.inputs().size() == 1 && model.outputs().size() == 1, ValueError, "ONNX export: model \"",
                model.name(), "\" has ", model.inputs().size(), " inputs and ", model.outputs().size(),
                " outputs; the exporter takes one of each");
    using Key = std::pair<const nn::Node*, int>;
    const auto key = [](const nn::SymbolicTensor& t) { return Key{t.node().get(), t.output_index()}; };
    std::map<Key, std::vector<const nn::Node*>> readers;
    for (const auto& node : model.nodes())
      for (const auto& in : node->inputs) readers[key(in)].push_back(node.get());
    const Key output = key(model.outputs()[0]);
    const auto only_reader = [&](const nn::Node* node) -> const nn::Node* {
      const auto it = readers.find({node, 0});
      if (node->output_shapes.size() != 1 || it == readers.end() || it->second.size() != 1 || Key{node, 0} == output)
        return nullptr;
      return it->second[0];
    };
    std::map<Key, Value> values;
    values[key(model.inputs()[0])] = x;
    std::map<const nn::Node*, const nn::ZeroPadding2D*> merged_pads;  // conv node -> its pad
    std::set<const nn::Node*> folded;                                  // BN nodes in their conv
    for (const auto& node : model.nodes()) {
      if (node->inputs.empty() || folded.count(node.get())) continue;
      const Module& m = *node->layer;
      std::vector<Value> args;
      for (const auto& in : node->inputs) args.push_back(values.at(key(in)));
      if (const auto* pad = dynamic_cast<const nn::ZeroPadding2D*>(&m)) {
        const nn::Node* next = only_reader(node.get());
        if (next && is_conv(next->layer.get())) {
          merged_pads[next] = pad;
          values[{node.get(), 0}] = args[0];  // the conv pads instead
          continue;
        }
      }
      if (is_conv(&m)) {
        const nn::Node* next = only_reader(node.get());
        const auto* bn = next ? dynamic_cast<const nn::BatchNormalization*>(next->layer.get()) : nullptr;
        if (bn && conv_activation(m) != ActivationKind::Linear) bn = nullptr;
        const auto pad = merged_pads.find(node.get());
        const Value y = conv(m, pad == merged_pads.end() ? nullptr : pad->second, bn, args[0]);
        if (bn) {
          folded.insert(next);
          values[{next, 0}] = y;
        } else {
          values[{node.get(), 0}] = y;
        }
        continue;
      }
      if (dynamic_cast<const nn::Add*>(&m)) {
        Value sum = args[0];
        for (std::size_t i = 1; i < args.size(); ++i)
          sum = add(sum, args[i], i + 1 == args.size() ? m.name() : str_cat(m.name(), "/", i));
        values[{node.get(), 0}] = sum;
        continue;
      }
      PETAL_CHECK(args.size() == 1, ValueError, "ONNX export: layer \"", m.name(), "\" (", m.type_name(),
                  ") has no ONNX translation for ", args.size(), " inputs; supported merges: Add");
      values[{node.get(), 0}] = layer(m, args[0]);
    }
    return values.at(output);
  }

  Value transpose(const Value& x, Layout to) {
    if (!is_image(x) || x.layout == to) return x;
    const bool first = to == Layout::ChannelsFirst;
    const std::string name = graph_.add_node("Transpose", {x.name}, x.name + (first ? "_nchw" : "_nhwc"),
                                             {ints_attribute("perm", first ? Dims{0, 3, 1, 2} : Dims{0, 2, 3, 1})});
    return {name, x.shape, to};
  }
  Value channels_first(const Value& x) { return transpose(x, Layout::ChannelsFirst); }
  Value channels_last(const Value& x) { return transpose(x, Layout::ChannelsLast); }

  void require_image(const Module& m, const Value& x) {
    PETAL_CHECK(is_image(x), ValueError, "ONNX export: layer \"", m.name(), "\" (", m.type_name(),
                ") needs a (height, width, channels) input, got ", nn::keras_shape_str(x.shape));
  }

  // The name of a layer's output before its activation: the layer's own
  // name when there is no activation.
  static std::string before_activation(const std::string& layer_name, const char* op, ActivationKind kind) {
    return kind == ActivationKind::Linear ? layer_name : layer_name + "/" + op;
  }

  // Conv2D or DepthwiseConv2D (with an optional ZeroPadding2D merged before
  // it and a BatchNormalization folded after it).
  Value conv(const Module& layer, const nn::ZeroPadding2D* padding, const nn::BatchNormalization* bn, Value x) {
    require_image(padding ? static_cast<const Module&>(*padding) : layer, x);
    const auto* regular = dynamic_cast<const nn::Conv2D*>(&layer);
    const auto* depthwise = dynamic_cast<const nn::DepthwiseConv2D*>(&layer);
    const nn::Size2 k = regular ? regular->kernel_size() : depthwise->kernel_size();
    const nn::Size2 s = regular ? regular->options().strides : depthwise->options().strides;
    const nn::Padding conv_padding = regular ? regular->options().padding : depthwise->options().padding;
    const ActivationKind act = conv_activation(layer);
    const ag::Variable& kernel = regular ? regular->kernel() : depthwise->depthwise_kernel();
    const ag::Variable& bias = regular ? regular->bias() : depthwise->bias();
    const Shape& in = layer.input_shape();  // after the padding layer
    const Shape& out = layer.output_shape();

    // ONNX pads: [top, left, bottom, right].
    Dims pads = padding ? Dims{padding->top(), padding->left(), padding->bottom(), padding->right()} : Dims{0, 0, 0, 0};
    if (conv_padding == nn::Padding::Same) {
      const std::int64_t total_h = std::max<std::int64_t>((out[0] - 1) * s.h + k.h - in[0], 0);
      const std::int64_t total_w = std::max<std::int64_t>((out[1] - 1) * s.w + k.w - in[1], 0);
      const std::int64_t top = ag::same_padding_before(in[0], k.h, s.h);
      const std::int64_t left = ag::same_padding_before(in[1], k.w, s.w);
      pads[0] += top, pads[1] += left, pads[2] += total_h - top, pads[3] += total_w - left;
    }

    // HWIO (depthwise [kh, kw, C, M]) to OIHW (depthwise [C * M, 1, kh, kw],
    // output channel c * M + m as TensorFlow orders them).
    const std::int64_t cout = out[2];
    const std::int64_t cin_per_group = regular ? in[2] : 1;
    const std::int64_t group = regular ? 1 : in[2];
    const std::vector<float> hwio = values_of(kernel);
    std::vector<float> oihw(hwio.size());
    std::vector<double> scale(static_cast<std::size_t>(cout), 1.0);
    std::vector<float> folded_bias;
    if (bn) {
      PETAL_CHECK(bn->output_shape().back() == cout, ValueError, "ONNX export: BatchNormalization \"", bn->name(),
                  "\" does not match the channels of \"", layer.name(), "\"");
      const std::vector<float> gamma = values_of(bn->gamma()), beta = values_of(bn->beta());
      const std::vector<float> mean = values_of(bn->moving_mean()), variance = values_of(bn->moving_variance());
      const std::vector<float> b = bias.defined() ? values_of(bias) : std::vector<float>(cout, 0.0f);
      const double epsilon = bn->options().epsilon;
      folded_bias.resize(static_cast<std::size_t>(cout));
      for (std::size_t o = 0; o < scale.size(); ++o) {
        scale[o] = static_cast<double>(gamma[o]) / std::sqrt(static_cast<double>(variance[o]) + epsilon);
        folded_bias[o] = static_cast<float>(static_cast<double>(beta[o]) +
                                            (static_cast<double>(b[o]) - static_cast<double>(mean[o])) * scale[o]);
      }
    }
    for (std::int64_t o = 0; o < cout; ++o)
      for (std::int64_t i = 0; i < cin_per_group; ++i)
        for (std::int64_t y = 0; y < k.h; ++y)
          for (std::int64_t xw = 0; xw < k.w; ++xw) {
            const float w = hwio[static_cast<std::size_t>(((y * k.w + xw) * cin_per_group + i) * cout + o)];
            oihw[static_cast<std::size_t>(((o * cin_per_group + i) * k.h + y) * k.w + xw)] =
                bn ? static_cast<float>(static_cast<double>(w) * scale[static_cast<std::size_t>(o)]) : w;
          }

    x = channels_first(x);
    std::vector<std::string> inputs{x.name};
    inputs.push_back(graph_.add_initializer(layer.name() + (regular ? "/kernel" : "/depthwise_kernel"),
                                            {cout, cin_per_group, k.h, k.w}, oihw));
    if (bn) inputs.push_back(graph_.add_initializer(layer.name() + "/bias", {cout}, folded_bias));
    else if (bias.defined()) inputs.push_back(graph_.add_initializer(layer.name() + "/bias", {cout}, values_of(bias)));
    const std::string name = bn ? bn->name() : layer.name();
    const std::string y = graph_.add_node("Conv", inputs, before_activation(name, "Conv", act),
                                          {ints_attribute("kernel_shape", {k.h, k.w}),
                                           ints_attribute("strides", {s.h, s.w}), ints_attribute("pads", pads),
                                           int_attribute("group", group)});
    return activation({y, out, Layout::ChannelsFirst}, act, name);
  }

  Value activation(const Value& x, ActivationKind kind, const std::string& name) {
    switch (kind) {
      case ActivationKind::Linear: return x;
      case ActivationKind::Relu: return {graph_.add_node("Relu", {x.name}, name), x.shape, x.layout};
      case ActivationKind::Relu6: {
        const std::string low = graph_.scalar_constant("relu6_min", 0.0f);
        const std::string high = graph_.scalar_constant("relu6_max", 6.0f);
        return {graph_.add_node("Clip", {x.name, low, high}, name), x.shape, x.layout};
      }
      case ActivationKind::Sigmoid: return {graph_.add_node("Sigmoid", {x.name}, name), x.shape, x.layout};
      case ActivationKind::Tanh: return {graph_.add_node("Tanh", {x.name}, name), x.shape, x.layout};
      case ActivationKind::Softmax: {
        // Over petal's last axis, the channels.
        const std::int64_t axis = is_image(x) && x.layout == Layout::ChannelsFirst ? 1 : -1;
        return {graph_.add_node("Softmax", {x.name}, name, {int_attribute("axis", axis)}), x.shape, x.layout};
      }
      case ActivationKind::Gelu:
      case ActivationKind::Silu:
      case ActivationKind::Softplus:
      case ActivationKind::LeakyRelu:
      case ActivationKind::Elu:
        throw ValueError(str_cat("ONNX export: activation \"", activation_name(kind), "\" of layer \"", name,
                                 "\" is not exported yet"));
    }
    throw ValueError(str_cat("ONNX export: unknown activation of layer \"", name, "\""));
  }

  Value batch_norm(const nn::BatchNormalization& bn, Value x) {
    PETAL_CHECK(is_image(x) || x.shape.size() == 1, ValueError, "ONNX export: BatchNormalization \"", bn.name(),
                "\" needs a (channels) or (height, width, channels) input, got ", nn::keras_shape_str(x.shape));
    x = channels_first(x);
    const Dims c{x.shape.back()};
    const auto weight = [&](const char* local, const ag::Variable& v) {
      return graph_.add_initializer(bn.name() + "/" + local, c, values_of(v));
    };
    const std::vector<std::string> inputs{x.name, weight("gamma", bn.gamma()), weight("beta", bn.beta()),
                                          weight("moving_mean", bn.moving_mean()),
                                          weight("moving_variance", bn.moving_variance())};
    const float epsilon = static_cast<float>(bn.options().epsilon);
    return {graph_.add_node("BatchNormalization", inputs, bn.name(), {float_attribute("epsilon", epsilon)}), x.shape,
            x.layout};
  }

  Value pad(const nn::ZeroPadding2D& p, Value x) {
    require_image(p, x);
    x = channels_first(x);
    // [begin of N, C, H, W, end of N, C, H, W]
    const std::string pads =
        graph_.int64_constant(p.name() + "/pads", {0, 0, p.top(), p.left(), 0, 0, p.bottom(), p.right()});
    return {graph_.add_node("Pad", {x.name, pads}, p.name()), p.output_shape(), Layout::ChannelsFirst};
  }

  Value global_pool(const char* op, const Module& m, Value x) {
    require_image(m, x);
    x = channels_first(x);
    const std::string pooled = graph_.add_node(op, {x.name}, m.name() + "/" + op);  // [N, C, 1, 1]
    return {graph_.add_node("Flatten", {pooled}, m.name(), {int_attribute("axis", 1)}), m.output_shape(),
            Layout::ChannelsLast};
  }

  Value flatten(const Module& m, Value x) {
    x = channels_last(x);  // Keras flattens in (height, width, channels) order
    return {graph_.add_node("Flatten", {x.name}, m.name(), {int_attribute("axis", 1)}), m.output_shape(),
            Layout::ChannelsLast};
  }

  Value dense(const nn::Dense& d, Value x) {
    x = channels_last(x);
    const Shape& kernel_shape = d.kernel().data().shape();
    const std::string kernel = graph_.add_initializer(d.name() + "/kernel", {kernel_shape[0], kernel_shape[1]},
                                                      values_of(d.kernel()));
    const std::string bias =
        d.bias().defined() ? graph_.add_initializer(d.name() + "/bias", {d.units()}, values_of(d.bias())) : "";
    std::string y;
    if (x.shape.size() == 1) {
      std::vector<std::string> inputs{x.name, kernel};
      if (!bias.empty()) inputs.push_back(bias);
      y = graph_.add_node("Gemm", inputs, before_activation(d.name(), "Gemm", d.activation()));
    } else {
      y = graph_.add_node("MatMul", {x.name, kernel},
                          bias.empty() ? before_activation(d.name(), "MatMul", d.activation()) : d.name() + "/MatMul");
      if (!bias.empty()) y = graph_.add_node("Add", {y, bias}, before_activation(d.name(), "Add", d.activation()));
    }
    return activation({y, d.output_shape(), Layout::ChannelsLast}, d.activation(), d.name());
  }

  Value add(const Value& a, const Value& b, const std::string& name) {
    PETAL_CHECK(a.shape == b.shape, ValueError, "ONNX export: add \"", name, "\" of ", nn::keras_shape_str(a.shape),
                " and ", nn::keras_shape_str(b.shape));
    const Value b_like_a = transpose(b, a.layout);
    return {graph_.add_node("Add", {a.name, b_like_a.name}, name), a.shape, a.layout};
  }

  ExportOptions options_;
  GraphBuilder graph_;
};

}  // namespace

std::string model_to_onnx(const nn::Module& model, const ExportOptions& options) {
  return Exporter(options).run(model);
}

void export_model(const nn::Module& model, const std::filesystem::path& path, const ExportOptions& options) {
  write_file_atomic(path, model_to_onnx(model, options));
}

}  // namespace petal::onnx
