// ONNX export: the bytes decode back, with petal's own protobuf reader and
// onnx.proto's field numbers written down here independently of the
// exporter, to the graph the model means: node types in order, attributes,
// initializers bit for bit (folded batch norms included), opset and the
// input's symbolic batch dimension. tests/interop/onnx_interop.py runs the
// same files in ONNX Runtime.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include "core/random.hpp"
#include "data/image_io.hpp"
#include "data/protobuf_wire.hpp"
#include "nn/mobilenet_v2.hpp"
#include "nn/nn.hpp"
#include "nn/onnx_export.hpp"
#include "tests/thrown_message.hpp"

namespace fs = std::filesystem;
using namespace petal;
using namespace petal::nn;
namespace pb = petal::data::protobuf;

namespace {

// ---- a small ONNX decoder ----

struct OnnxTensor {
  std::string name;
  std::vector<std::int64_t> dims;
  std::int64_t data_type = 0;
  std::string raw;
  std::vector<float> floats() const {
    std::vector<float> values(raw.size() / 4);
    std::memcpy(values.data(), raw.data(), values.size() * 4);
    return values;
  }
  std::vector<std::int64_t> int64s() const {
    std::vector<std::int64_t> values(raw.size() / 8);
    std::memcpy(values.data(), raw.data(), values.size() * 8);
    return values;
  }
};

struct OnnxAttribute {
  std::string name;
  std::int64_t type = 0;
  std::int64_t i = 0;
  float f = 0;
  std::vector<std::int64_t> ints;
  OnnxTensor t;
};

struct OnnxNode {
  std::vector<std::string> inputs, outputs;
  std::string name, op_type;
  std::map<std::string, OnnxAttribute> attributes;
  const OnnxAttribute& attribute(const std::string& key) const {
    const auto it = attributes.find(key);
    REQUIRE_MESSAGE(it != attributes.end(), name, " has no attribute ", key);
    return it->second;
  }
};

struct OnnxDim {
  std::int64_t value = -1;
  std::string param;
};

struct OnnxValueInfo {
  std::string name;
  std::int64_t elem_type = 0;
  std::vector<OnnxDim> dims;
};

struct OnnxGraph {
  std::string name;
  std::vector<OnnxNode> nodes;
  std::map<std::string, OnnxTensor> initializers;
  std::vector<std::string> initializer_order;
  std::vector<OnnxValueInfo> inputs, outputs;
  std::vector<std::string> op_types() const {
    std::vector<std::string> ops;
    for (const auto& n : nodes) ops.push_back(n.op_type);
    return ops;
  }
  const OnnxNode& node(const std::string& name) const {
    for (const auto& n : nodes)
      if (n.name == name) return n;
    FAIL("no node named ", name);
    throw 0;
  }
  const OnnxTensor& initializer(const std::string& name) const {
    const auto it = initializers.find(name);
    REQUIRE_MESSAGE(it != initializers.end(), "no initializer named ", name);
    return it->second;
  }
  std::size_t count(const std::string& op) const {
    std::size_t n = 0;
    for (const auto& node : nodes) n += node.op_type == op;
    return n;
  }
};

struct OnnxModel {
  std::int64_t ir_version = 0;
  std::string producer_name;
  std::vector<std::pair<std::string, std::int64_t>> opsets;
  OnnxGraph graph;
};

// Calls fn(field, reader) for every field of the message.
template <class Fn>
void for_each_field(std::string_view bytes, const std::string& context, Fn&& fn) {
  pb::WireReader in(bytes, 0, "ONNX", context);
  std::uint32_t field = 0;
  int wire = 0;
  while (in.tag(field, wire)) fn(field, wire, in);
}

std::string_view bytes_of(pb::WireReader& in, int wire) {
  REQUIRE(wire == pb::kLengthDelimited);
  std::size_t at = 0;
  return in.length_delimited(at);
}

std::int64_t int_of(pb::WireReader& in, int wire) {
  REQUIRE(wire == pb::kVarint);
  return static_cast<std::int64_t>(in.varint());
}

OnnxTensor decode_tensor(std::string_view bytes) {
  OnnxTensor t;
  for_each_field(bytes, "TensorProto", [&](std::uint32_t field, int wire, pb::WireReader& in) {
    switch (field) {
      case 1: t.dims.push_back(int_of(in, wire)); break;
      case 2: t.data_type = int_of(in, wire); break;
      case 8: t.name = std::string(bytes_of(in, wire)); break;
      case 9: t.raw = std::string(bytes_of(in, wire)); break;
      default: FAIL("unexpected TensorProto field ", field);
    }
  });
  return t;
}

OnnxAttribute decode_attribute(std::string_view bytes) {
  OnnxAttribute a;
  for_each_field(bytes, "AttributeProto", [&](std::uint32_t field, int wire, pb::WireReader& in) {
    switch (field) {
      case 1: a.name = std::string(bytes_of(in, wire)); break;
      case 2: REQUIRE(wire == pb::kFixed32); a.f = pb::float_from_bits(in.fixed32()); break;
      case 3: a.i = int_of(in, wire); break;
      case 5: a.t = decode_tensor(bytes_of(in, wire)); break;
      case 8: a.ints.push_back(int_of(in, wire)); break;
      case 20: a.type = int_of(in, wire); break;
      default: FAIL("unexpected AttributeProto field ", field);
    }
  });
  return a;
}

OnnxNode decode_node(std::string_view bytes) {
  OnnxNode n;
  for_each_field(bytes, "NodeProto", [&](std::uint32_t field, int wire, pb::WireReader& in) {
    switch (field) {
      case 1: n.inputs.emplace_back(bytes_of(in, wire)); break;
      case 2: n.outputs.emplace_back(bytes_of(in, wire)); break;
      case 3: n.name = std::string(bytes_of(in, wire)); break;
      case 4: n.op_type = std::string(bytes_of(in, wire)); break;
      case 5: {
        OnnxAttribute a = decode_attribute(bytes_of(in, wire));
        n.attributes[a.name] = a;
        break;
      }
      default: FAIL("unexpected NodeProto field ", field);
    }
  });
  return n;
}

OnnxValueInfo decode_value_info(std::string_view bytes) {
  OnnxValueInfo v;
  for_each_field(bytes, "ValueInfoProto", [&](std::uint32_t field, int wire, pb::WireReader& in) {
    if (field == 1) {
      v.name = std::string(bytes_of(in, wire));
      return;
    }
    REQUIRE(field == 2);  // TypeProto
    for_each_field(bytes_of(in, wire), "TypeProto", [&](std::uint32_t f, int w, pb::WireReader& type) {
      REQUIRE(f == 1);  // tensor_type
      for_each_field(bytes_of(type, w), "TypeProto.Tensor", [&](std::uint32_t tf, int tw, pb::WireReader& tensor) {
        if (tf == 1) {
          v.elem_type = int_of(tensor, tw);
          return;
        }
        REQUIRE(tf == 2);  // TensorShapeProto
        for_each_field(bytes_of(tensor, tw), "TensorShapeProto", [&](std::uint32_t sf, int sw, pb::WireReader& shape) {
          REQUIRE(sf == 1);
          OnnxDim dim;
          for_each_field(bytes_of(shape, sw), "Dimension", [&](std::uint32_t df, int dw, pb::WireReader& d) {
            if (df == 1) dim.value = int_of(d, dw);
            else if (df == 2) dim.param = std::string(bytes_of(d, dw));
            else FAIL("unexpected Dimension field ", df);
          });
          v.dims.push_back(dim);
        });
      });
    });
  });
  return v;
}

OnnxGraph decode_graph(std::string_view bytes) {
  OnnxGraph g;
  for_each_field(bytes, "GraphProto", [&](std::uint32_t field, int wire, pb::WireReader& in) {
    switch (field) {
      case 1: g.nodes.push_back(decode_node(bytes_of(in, wire))); break;
      case 2: g.name = std::string(bytes_of(in, wire)); break;
      case 5: {
        OnnxTensor t = decode_tensor(bytes_of(in, wire));
        g.initializer_order.push_back(t.name);
        CHECK_MESSAGE(g.initializers.count(t.name) == 0, "initializer ", t.name, " twice");
        g.initializers[t.name] = t;
        break;
      }
      case 11: g.inputs.push_back(decode_value_info(bytes_of(in, wire))); break;
      case 12: g.outputs.push_back(decode_value_info(bytes_of(in, wire))); break;
      default: FAIL("unexpected GraphProto field ", field);
    }
  });
  return g;
}

OnnxModel decode_model(std::string_view bytes) {
  OnnxModel m;
  for_each_field(bytes, "ModelProto", [&](std::uint32_t field, int wire, pb::WireReader& in) {
    switch (field) {
      case 1: m.ir_version = int_of(in, wire); break;
      case 2: m.producer_name = std::string(bytes_of(in, wire)); break;
      case 3: bytes_of(in, wire); break;
      case 7: m.graph = decode_graph(bytes_of(in, wire)); break;
      case 8: {
        std::pair<std::string, std::int64_t> opset;
        for_each_field(bytes_of(in, wire), "OperatorSetIdProto", [&](std::uint32_t f, int w, pb::WireReader& o) {
          if (f == 1) opset.first = std::string(bytes_of(o, w));
          else if (f == 2) opset.second = int_of(o, w);
          else FAIL("unexpected OperatorSetIdProto field ", f);
        });
        m.opsets.push_back(opset);
        break;
      }
      default: FAIL("unexpected ModelProto field ", field);
    }
  });
  return m;
}

// ---- expectations ----

// Sizes a trained network has, positive where variances need it.
void randomize(Module& model, std::uint64_t seed) {
  manual_seed(seed);
  for (WeightRef w : model.weights()) {
    Tensor& t = w.variable.mutable_data();
    const std::string local = w.name.substr(w.name.rfind('/') + 1);
    if (local == "gamma" || local == "moving_variance") t.copy_(uniform(t.shape(), 0.5, 1.5));
    else t.copy_(normal(t.shape(), 0, 0.3));
  }
}

std::vector<float> values(const ag::Variable& v) { return v.data().to_vector<float>(); }

// What a conv kernel (HWIO; depthwise [kh, kw, C, 1]) becomes in OIHW, scaled
// per output channel by gamma / sqrt(variance + epsilon) of the BN after it.
std::vector<float> folded_oihw(const ag::Variable& kernel, const BatchNormalization& bn, bool depthwise) {
  const Shape s = kernel.data().shape();
  const std::int64_t kh = s[0], kw = s[1];
  const std::int64_t cin = depthwise ? 1 : s[2], cout = depthwise ? s[2] * s[3] : s[3];
  const auto w = values(kernel), gamma = values(bn.gamma()), variance = values(bn.moving_variance());
  std::vector<float> out;
  for (std::int64_t o = 0; o < cout; ++o) {
    const double scale = double(gamma[o]) / std::sqrt(double(variance[o]) + bn.options().epsilon);
    for (std::int64_t i = 0; i < cin; ++i)
      for (std::int64_t y = 0; y < kh; ++y)
        for (std::int64_t x = 0; x < kw; ++x)
          out.push_back(static_cast<float>(double(w[((y * kw + x) * cin + i) * cout + o]) * scale));
  }
  return out;
}

std::vector<float> folded_bias(const BatchNormalization& bn, const std::vector<float>& bias) {
  const auto gamma = values(bn.gamma()), beta = values(bn.beta()), mean = values(bn.moving_mean()),
             variance = values(bn.moving_variance());
  std::vector<float> out;
  for (std::size_t o = 0; o < gamma.size(); ++o) {
    const double scale = double(gamma[o]) / std::sqrt(double(variance[o]) + bn.options().epsilon);
    const double b = bias.empty() ? 0.0 : double(bias[o]);
    out.push_back(static_cast<float>(double(beta[o]) + (b - double(mean[o])) * scale));
  }
  return out;
}

void check_bits(const std::vector<float>& got, const std::vector<float>& expected) {
  REQUIRE(got.size() == expected.size());
  CHECK(std::memcmp(got.data(), expected.data(), got.size() * 4) == 0);
}

template <class T>
const T& child(const Module& m, const std::string& name) {
  for (const auto& c : m.children())
    if (c->name() == name) return dynamic_cast<const T&>(*c);
  FAIL("no layer ", name);
  throw 0;
}

void check_io(const OnnxValueInfo& v, const std::vector<std::int64_t>& dims) {
  CHECK(v.elem_type == 1);
  REQUIRE(v.dims.size() == dims.size() + 1);
  CHECK(v.dims[0].param == "N");
  for (std::size_t i = 0; i < dims.size(); ++i) CHECK(v.dims[i + 1].value == dims[i]);
}

std::string error_of(const std::function<void()>& f) { return test::thrown_message<ValueError>(f); }

}  // namespace

TEST_CASE("onnx export: conv, folded BN, ReLU6, depthwise, Flatten and Dense decode back") {
  reset_layer_names();
  ConvOptions conv_options;
  conv_options.strides = 2;
  conv_options.padding = Padding::Same;
  conv_options.use_bias = false;
  conv_options.name = "stem";
  DepthwiseConvOptions dw_options;
  dw_options.padding = Padding::Same;
  dw_options.name = "dw";
  BatchNormOptions bn_options;
  bn_options.name = "stem_bn";
  Sequential model({std::make_shared<InputLayer>(Shape{9, 10, 3}), std::make_shared<Conv2D>(8, 3, conv_options),
                    std::make_shared<BatchNormalization>(bn_options), std::make_shared<ReLU>(6.0, "stem_relu"),
                    std::make_shared<DepthwiseConv2D>(3, dw_options), std::make_shared<Flatten>("flatten"),
                    std::make_shared<Dense>(5, "softmax", DenseOptions{true, "dense"})},
                   "small");
  randomize(model, 3);

  const OnnxModel onnx = decode_model(petal::onnx::model_to_onnx(model));
  CHECK(onnx.ir_version == 8);
  CHECK(onnx.producer_name == "petal");
  REQUIRE(onnx.opsets.size() == 1);
  CHECK(onnx.opsets[0] == std::pair<std::string, std::int64_t>{"", 17});
  const OnnxGraph& g = onnx.graph;
  CHECK(g.name == "small");
  CHECK(g.op_types() == std::vector<std::string>{"Transpose", "Conv", "Constant", "Constant", "Clip", "Conv",
                                                 "Transpose", "Flatten", "Gemm", "Softmax"});
  REQUIRE(g.inputs.size() == 1);
  REQUIRE(g.outputs.size() == 1);
  CHECK(g.inputs[0].name == "input");
  check_io(g.inputs[0], {9, 10, 3});
  CHECK(g.outputs[0].name == "dense");
  check_io(g.outputs[0], {5});
  CHECK(g.initializer_order == std::vector<std::string>{"stem/kernel", "stem/bias", "dw/depthwise_kernel", "dw/bias",
                                                        "dense/kernel", "dense/bias"});

  const OnnxNode& to_nchw = g.nodes[0];
  CHECK(to_nchw.inputs == std::vector<std::string>{"input"});
  CHECK(to_nchw.attribute("perm").ints == std::vector<std::int64_t>{0, 3, 1, 2});
  CHECK(to_nchw.attribute("perm").type == 7);

  // The BN is folded: the conv's output carries the BN's name.
  const OnnxNode& stem = g.node("stem_bn");
  CHECK(stem.op_type == "Conv");
  CHECK(stem.inputs == std::vector<std::string>{to_nchw.outputs[0], "stem/kernel", "stem/bias"});
  CHECK(stem.attribute("kernel_shape").ints == std::vector<std::int64_t>{3, 3});
  CHECK(stem.attribute("strides").ints == std::vector<std::int64_t>{2, 2});
  // 9 rows -> 5 (total 2: 1 before, 1 after); 10 columns -> 5 (total 1: 0 before, 1 after).
  CHECK(stem.attribute("pads").ints == std::vector<std::int64_t>{1, 0, 1, 1});
  CHECK(stem.attribute("group").i == 1);
  CHECK(stem.attribute("group").type == 2);
  const auto& conv = child<Conv2D>(model, "stem");
  const auto& bn = child<BatchNormalization>(model, "stem_bn");
  CHECK(g.initializer("stem/kernel").dims == std::vector<std::int64_t>{8, 3, 3, 3});
  CHECK(g.initializer("stem/kernel").data_type == 1);
  check_bits(g.initializer("stem/kernel").floats(), folded_oihw(conv.kernel(), bn, false));
  check_bits(g.initializer("stem/bias").floats(), folded_bias(bn, {}));

  const OnnxNode& relu6 = g.node("stem_relu");
  CHECK(relu6.op_type == "Clip");
  REQUIRE(relu6.inputs.size() == 3);
  CHECK(relu6.inputs[0] == "stem_bn");
  const OnnxNode& low = g.node(relu6.inputs[1]);
  const OnnxNode& high = g.node(relu6.inputs[2]);
  CHECK(low.attribute("value").type == 4);
  CHECK(low.attribute("value").t.dims.empty());
  CHECK(low.attribute("value").t.floats() == std::vector<float>{0.0f});
  CHECK(high.attribute("value").t.floats() == std::vector<float>{6.0f});

  const OnnxNode& dw = g.node("dw");
  CHECK(dw.op_type == "Conv");
  CHECK(dw.inputs == std::vector<std::string>{"stem_relu", "dw/depthwise_kernel", "dw/bias"});
  CHECK(dw.attribute("group").i == 8);
  CHECK(dw.attribute("strides").ints == std::vector<std::int64_t>{1, 1});
  CHECK(dw.attribute("pads").ints == std::vector<std::int64_t>{1, 1, 1, 1});
  const auto& depthwise = child<DepthwiseConv2D>(model, "dw");
  CHECK(g.initializer("dw/depthwise_kernel").dims == std::vector<std::int64_t>{8, 1, 3, 3});
  std::vector<float> dw_oihw;  // [kh, kw, C, 1] -> [C, 1, kh, kw]
  const auto dw_hwio = values(depthwise.depthwise_kernel());
  for (int c = 0; c < 8; ++c)
    for (int k = 0; k < 9; ++k) dw_oihw.push_back(dw_hwio[k * 8 + c]);
  check_bits(g.initializer("dw/depthwise_kernel").floats(), dw_oihw);
  check_bits(g.initializer("dw/bias").floats(), values(depthwise.bias()));

  // Keras flattens (height, width, channels): back to NHWC first.
  const OnnxNode& to_nhwc = g.nodes[6];
  CHECK(to_nhwc.inputs == std::vector<std::string>{"dw"});
  CHECK(to_nhwc.attribute("perm").ints == std::vector<std::int64_t>{0, 2, 3, 1});
  CHECK(g.node("flatten").inputs == std::vector<std::string>{to_nhwc.outputs[0]});
  CHECK(g.node("flatten").attribute("axis").i == 1);

  const auto& dense = child<Dense>(model, "dense");
  const OnnxNode& gemm = g.nodes[8];
  CHECK(gemm.inputs == std::vector<std::string>{"flatten", "dense/kernel", "dense/bias"});
  CHECK(g.initializer("dense/kernel").dims == std::vector<std::int64_t>{5 * 5 * 8, 5});
  check_bits(g.initializer("dense/kernel").floats(), values(dense.kernel()));
  check_bits(g.initializer("dense/bias").floats(), values(dense.bias()));
  CHECK(g.node("dense").inputs == std::vector<std::string>{gemm.outputs[0]});
  CHECK(g.node("dense").attribute("axis").i == -1);
}

TEST_CASE("onnx export: MobileNetV2 with its residual adds, every BN folded, pads merged") {
  MobileNetV2Options options;
  options.input_shape = {64, 64, 3};
  options.classes = 7;
  MobileNetV2 model(options);
  randomize(model, 5);
  const OnnxGraph g = decode_model(petal::onnx::model_to_onnx(model)).graph;

  CHECK(g.count("Conv") == 52);
  CHECK(g.count("Clip") == 35);
  CHECK(g.count("Add") == 10);
  CHECK(g.count("Constant") == 2);
  CHECK(g.count("Transpose") == 1);
  CHECK(g.count("BatchNormalization") == 0);
  CHECK(g.count("Pad") == 0);
  CHECK(g.nodes.size() == 52 + 35 + 10 + 2 + 1 + 4);
  CHECK(g.nodes.front().op_type == "Transpose");
  const auto ops = g.op_types();
  CHECK(std::vector<std::string>(ops.end() - 4, ops.end()) ==
        std::vector<std::string>{"GlobalAveragePool", "Flatten", "Gemm", "Softmax"});
  CHECK(g.initializers.size() == 52 * 2 + 2);
  check_io(g.inputs[0], {64, 64, 3});
  check_io(g.outputs[0], {7});
  CHECK(g.outputs[0].name == "predictions");

  // Adds sum the block's input with its projection, in Keras's order.
  CHECK(g.node("block_2_add").inputs == std::vector<std::string>{"block_1_project_BN", "block_2_project_BN"});
  CHECK(g.node("block_5_add").inputs == std::vector<std::string>{"block_4_add", "block_5_project_BN"});
  CHECK(g.node("block_2_expand_BN").inputs[0] == "block_1_project_BN");

  // block_1_pad (0 before, 1 after on 32 x 32) goes into the valid depthwise conv.
  const OnnxNode& dw = g.node("block_1_depthwise_BN");
  CHECK(dw.inputs[0] == "block_1_expand_relu");
  CHECK(dw.attribute("pads").ints == std::vector<std::int64_t>{0, 0, 1, 1});
  CHECK(dw.attribute("strides").ints == std::vector<std::int64_t>{2, 2});
  CHECK(dw.attribute("group").i == 96);
  CHECK(g.initializer("block_1_depthwise/depthwise_kernel").dims == std::vector<std::int64_t>{96, 1, 3, 3});
  check_bits(g.initializer("block_1_depthwise/depthwise_kernel").floats(),
             folded_oihw(child<DepthwiseConv2D>(model, "block_1_depthwise").depthwise_kernel(),
                         child<BatchNormalization>(model, "block_1_depthwise_BN"), true));
  check_bits(g.initializer("block_1_depthwise/bias").floats(),
             folded_bias(child<BatchNormalization>(model, "block_1_depthwise_BN"), {}));
  // Conv1: "same" on 64 x 64 with stride 2 pads 0 before, 1 after.
  CHECK(g.node("bn_Conv1").attribute("pads").ints == std::vector<std::int64_t>{0, 0, 1, 1});
  check_bits(g.initializer("Conv_1/kernel").floats(),
             folded_oihw(child<Conv2D>(model, "Conv_1").kernel(), child<BatchNormalization>(model, "Conv_1_bn"),
                         false));
  check_bits(g.initializer("predictions/kernel").floats(), values(child<Dense>(model, "predictions").kernel()));
}

TEST_CASE("onnx export: the lab's model nests MobileNetV2 in a Sequential; GAP head and flowers_dense too") {
  MobileNetV2Options options;
  options.input_shape = {32, 32, 3};
  options.include_top = false;
  for (const char* head : {"flatten", "gap"}) {
    INFO(head);
    auto base = std::make_shared<MobileNetV2>(options);
    std::shared_ptr<Module> pool = std::string(head) == "flatten" ? std::shared_ptr<Module>(std::make_shared<Flatten>())
                                                                  : std::make_shared<GlobalAveragePooling2D>();
    Sequential lab({base, pool, std::make_shared<Dense>(5, "softmax")});
    lab.build({32, 32, 3});
    const OnnxGraph g = decode_model(petal::onnx::model_to_onnx(lab)).graph;
    const auto ops = g.op_types();
    const std::vector<std::string> tail =
        std::string(head) == "flatten" ? std::vector<std::string>{"Transpose", "Flatten", "Gemm", "Softmax"}
                                       : std::vector<std::string>{"GlobalAveragePool", "Flatten", "Gemm", "Softmax"};
    CHECK(std::vector<std::string>(ops.end() - 4, ops.end()) == tail);
    CHECK(g.count("Conv") == 52);
    check_io(g.outputs[0], {5});
  }

  Sequential dense_model({std::make_shared<Flatten>(Shape{4, 4, 3}), std::make_shared<Dense>(6, "relu"),
                          std::make_shared<Dense>(5, "softmax")});
  const OnnxGraph g = decode_model(petal::onnx::model_to_onnx(dense_model)).graph;
  // Already channels last: no Transpose at all.
  CHECK(g.op_types() == std::vector<std::string>{"Flatten", "Gemm", "Relu", "Gemm", "Softmax"});
  check_io(g.inputs[0], {4, 4, 3});
}

TEST_CASE("onnx export: standalone BatchNormalization and ZeroPadding2D, Residual") {
  reset_layer_names();
  BatchNormOptions bn_options;
  bn_options.epsilon = 0.01;
  Sequential model({std::make_shared<InputLayer>(Shape{6, 6, 4}), std::make_shared<ZeroPadding2D>(1, 2, 0, 1, "pad"),
                    std::make_shared<BatchNormalization>(bn_options),
                    std::make_shared<Residual>(std::make_shared<ReLU>(std::nullopt, "relu"), "res"),
                    std::make_shared<GlobalMaxPooling2D>("gmp")});
  randomize(model, 9);
  const OnnxGraph g = decode_model(petal::onnx::model_to_onnx(model)).graph;
  CHECK(g.op_types() ==
        std::vector<std::string>{"Transpose", "Constant", "Pad", "BatchNormalization", "Relu", "Add", "GlobalMaxPool",
                                 "Flatten"});
  const OnnxNode& pad = g.node("pad");
  CHECK(g.node(pad.inputs[1]).attribute("value").t.int64s() == std::vector<std::int64_t>{0, 0, 1, 0, 0, 0, 2, 1});
  CHECK(g.node(pad.inputs[1]).attribute("value").t.data_type == 7);
  const auto& bn = child<BatchNormalization>(model, "batch_normalization");
  const OnnxNode& bn_node = g.node("batch_normalization");
  CHECK(bn_node.attribute("epsilon").f == 0.01f);
  CHECK(bn_node.attribute("epsilon").type == 1);
  check_bits(g.initializer(bn_node.inputs[3]).floats(), values(bn.moving_mean()));
  check_bits(g.initializer(bn_node.inputs[4]).floats(), values(bn.moving_variance()));
  CHECK(g.node("res").inputs == std::vector<std::string>{"batch_normalization", "relu"});
  check_io(g.outputs[0], {4});
}

TEST_CASE("onnx export: unsupported layers and unbuilt models are ValueErrors naming them") {
  Sequential pooled({std::make_shared<InputLayer>(Shape{8, 8, 3}),
                     std::make_shared<MaxPooling2D>(2, PoolOptions{{}, Padding::Valid, "pool"})});
  const std::string message = error_of([&] { petal::onnx::model_to_onnx(pooled); });
  CHECK(message.find("\"pool\"") != std::string::npos);
  CHECK(message.find("MaxPooling2D") != std::string::npos);

  Sequential unbuilt({std::make_shared<Dense>(3)}, "unbuilt");
  CHECK(error_of([&] { petal::onnx::model_to_onnx(unbuilt); }).find("\"unbuilt\" is not built") != std::string::npos);
}

TEST_CASE("onnx export: export_model writes the bytes atomically") {
  Sequential model({std::make_shared<Flatten>(Shape{2, 2, 3}), std::make_shared<Dense>(2, "softmax")});
  const fs::path dir = fs::temp_directory_path() / ("petal_onnx_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path path = dir / "model.onnx";
  petal::onnx::export_model(model, path);
  CHECK(data::read_file(path) == petal::onnx::model_to_onnx(model));
  CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 1);
  fs::remove_all(dir);
}

TEST_CASE("protobuf wire: varint fields round-trip negative values; floats keep their bits") {
  std::string out;
  pb::put_varint_field(out, 3, -1);
  pb::put_float_field(out, 2, -0.0f);
  CHECK(out.size() == 1 + 10 + 1 + 4);
  pb::WireReader in(out, 0, "test", "message");
  std::uint32_t field = 0;
  int wire = 0;
  REQUIRE(in.tag(field, wire));
  CHECK((field == 3 && wire == pb::kVarint));
  CHECK(static_cast<std::int64_t>(in.varint()) == -1);
  REQUIRE(in.tag(field, wire));
  CHECK((field == 2 && wire == pb::kFixed32));
  CHECK(std::signbit(pb::float_from_bits(in.fixed32())));
  CHECK(!in.tag(field, wire));
  try {
    pb::WireReader truncated(std::string_view(out).substr(0, 5), 0, "test", "message");
    truncated.tag(field, wire);
    truncated.varint();
    FAIL("no error");
  } catch (const FormatError& e) {
    CHECK(std::string(e.what()) == "test: truncated varint in message at byte 1");
  }
}
