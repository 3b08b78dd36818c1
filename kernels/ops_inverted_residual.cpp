// The inverted-residual block's inference op (see ops_conv.hpp and, for the
// kernel, kernels/cpu/conv/inverted_residual.hpp).
#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/error.hpp"
#include "kernels/cpu/conv/inverted_residual.hpp"
#include "kernels/ops.hpp"
#include "kernels/ops_constant.hpp"
#include "kernels/ops_conv.hpp"
#include "kernels/ops_conv_common.hpp"

namespace petal::ops {

using namespace detail;

namespace {

bool cpu_float32(const Tensor& t) { return !t.defined() || (t.dtype() == DType::Float32 && t.device().is_cpu()); }

bool channel_vector(const Tensor& t, std::int64_t channels) {
  return !t.defined() || (t.dim() == 1 && t.size(0) == channels && cpu_float32(t));
}

// A stage whose operands are float32 CPU tensors shaped for a kernel of
// kh x kw x in_c x out_c (out_c 1 for a depthwise kernel, whose channels
// come from in_c).
bool stage_fits(const FoldedConvStage& s, std::int64_t kh, std::int64_t kw, std::int64_t in_c, std::int64_t out_c) {
  const Tensor& k = s.kernel;
  const std::int64_t channels = out_c == 1 ? in_c : out_c;
  return k.defined() && cpu_float32(k) && k.dim() == 4 && k.size(0) == kh && k.size(1) == kw && k.size(2) == in_c &&
         k.size(3) == out_c && channel_vector(s.bias, channels) && s.bn.scale.defined() && s.bn.shift.defined() &&
         channel_vector(s.bn.scale, channels) && channel_vector(s.bn.shift, channels);
}

bool pointwise_window(const Conv2dWindow& w) {
  return w.stride_h == 1 && w.stride_w == 1 && w.pad_top == 0 && w.pad_bottom == 0 && w.pad_left == 0 &&
         w.pad_right == 0;
}

// Output size along one axis of a 3x3 window, or -1 when it does not fit.
std::int64_t depthwise_output(std::int64_t in, std::int64_t stride, std::int64_t before, std::int64_t after) {
  const std::int64_t span = in + before + after - 3;
  return span < 0 ? -1 : span / stride + 1;
}

// The folded shift of a GEMM stage: bias * scale + shift (bias may be undefined).
Tensor gemm_shift(const FoldedConvStage& s) {
  const Tensor shift = s.bn.shift.contiguous();
  return s.bias.defined() ? add(mul(s.bias, s.bn.scale), shift) : shift;
}

Tensor run_stages(const Tensor& x, const FoldedConvStage* expand, const FoldedConvStage& depthwise,
                  const FoldedConvStage& project, bool residual) {
  Tensor h = x;
  if (expand) h = conv2d_bn_relu6_inference(h, expand->kernel, expand->bias, expand->bn, expand->window, expand->relu6);
  h = depthwise_bn_relu6_inference(h, depthwise.kernel, depthwise.bias, depthwise.bn, depthwise.window,
                                   depthwise.relu6);
  Tensor y = conv2d_bn_relu6_inference(h, project.kernel, project.bias, project.bn, project.window, project.relu6);
  if (!residual) return y;
  PETAL_CHECK(y.shape() == x.shape(), ShapeError, "inverted_residual_inference: the residual needs the block's output ",
              shape_str(y.shape()), " to equal its input ", shape_str(x.shape()));
  return add(y, x);
}

}  // namespace

bool inverted_residual_runs_fused(const Tensor& x, const FoldedConvStage* expand, const FoldedConvStage& depthwise,
                                  const FoldedConvStage& project, bool residual) {
  if (!cpu_float32(x) || !x.defined() || x.dim() != 4 || x.numel() == 0) return false;
  const std::int64_t in_c = x.size(3);
  std::int64_t channels = in_c;
  if (expand) {
    if (!pointwise_window(expand->window) || !expand->kernel.defined() || expand->kernel.dim() != 4) return false;
    channels = expand->kernel.size(3);
    if (!stage_fits(*expand, 1, 1, in_c, channels)) return false;
  }
  const Conv2dWindow& w = depthwise.window;
  if (!stage_fits(depthwise, 3, 3, channels, 1) || w.stride_h != w.stride_w || (w.stride_h != 1 && w.stride_h != 2) ||
      w.pad_top < 0 || w.pad_bottom < 0 || w.pad_left < 0 || w.pad_right < 0 || w.pad_top > 2 || w.pad_left > 2)
    return false;
  const std::int64_t out_h = depthwise_output(x.size(1), w.stride_h, w.pad_top, w.pad_bottom);
  const std::int64_t out_w = depthwise_output(x.size(2), w.stride_w, w.pad_left, w.pad_right);
  if (out_h <= 0 || out_w <= 0) return false;
  if (project.relu6 || !pointwise_window(project.window) || !project.kernel.defined() || project.kernel.dim() != 4)
    return false;
  const std::int64_t out_c = project.kernel.size(3);
  if (!stage_fits(project, 1, 1, channels, out_c)) return false;
  return !residual || (out_h == x.size(1) && out_w == x.size(2) && out_c == in_c);
}

namespace {

// A block's weights folded and made contiguous, and its geometry, for one
// input size: `block` points into `keep`; its batch is set per call.
struct PreparedBlock {
  cpu::InvertedResidualBlock block;
  std::vector<Tensor> keep;
};

// inverted_residual_runs_fused must hold.
PreparedBlock prepare_block(const Tensor& x, const FoldedConvStage* expand, const FoldedConvStage& depthwise,
                            const FoldedConvStage& project, bool residual) {
  const char* op = "inverted_residual_inference";
  const Conv2dWindow& w = depthwise.window;
  PreparedBlock p;
  cpu::InvertedResidualBlock& b = p.block;
  b.in_h = x.size(1), b.in_w = x.size(2), b.in_c = x.size(3);
  b.expanded_c = expand ? expand->kernel.size(3) : b.in_c;
  b.stride = w.stride_h;
  b.pad_top = w.pad_top, b.pad_left = w.pad_left;
  b.out_h = depthwise_output(b.in_h, w.stride_h, w.pad_top, w.pad_bottom);
  b.out_w = depthwise_output(b.in_w, w.stride_w, w.pad_left, w.pad_right);
  b.out_c = project.kernel.size(3);
  b.residual = residual;
  auto keep = [&p](Tensor t) -> const float* {
    p.keep.push_back(std::move(t));
    return p.keep.back().data<float>();
  };
  if (expand) {
    b.expand_kernel = keep(expand->kernel.contiguous());
    b.expand_scale = keep(expand->bn.scale.contiguous());
    b.expand_shift = keep(gemm_shift(*expand));
    b.expand_relu6 = expand->relu6;
  }
  // 9 * C floats, kept between calls (fold_into_kernel), unlike the GEMM
  // kernels, whose scale the GEMM epilogue applies.
  const FoldedConv folded = fold_into_kernel(depthwise.kernel, depthwise.bias, depthwise.bn, b.expanded_c, op);
  b.depthwise_kernel = keep(folded.kernel);
  b.depthwise_bias = keep(folded.bias);
  b.depthwise_relu6 = depthwise.relu6;
  b.project_kernel = keep(project.kernel.contiguous());
  b.project_scale = keep(project.bn.scale.contiguous());
  b.project_shift = keep(gemm_shift(project));
  return p;
}

Tensor run_block(const Tensor& x, const PreparedBlock& p) {
  cpu::InvertedResidualBlock b = p.block;
  b.batch = x.size(0);
  // (A contiguous x is used as it is: a copy of the Tensor allocates.)
  const Tensor copied = x.is_contiguous() ? Tensor() : x.contiguous();
  const Tensor& xc = copied.defined() ? copied : x;
  Tensor y = Tensor::empty({b.batch, b.out_h, b.out_w, b.out_c}, DType::Float32);
  cpu::inverted_residual_forward(xc.data<float>(), y.data<float>(), b);
  return y;
}

// Prepared blocks of stages whose tensors were all declared constant, by
// the stages' tensors (addresses and sizes), scalars and the input's size.
// An entry serves while no declaration has ended since it was made.
class KeptBlocks {
 public:
  using Key = std::vector<std::uint64_t>;

  static Key key_of(const Tensor& x, const std::vector<ConvBatchNormStageInputs>& stages, bool residual) {
    // 4 + 20 per stage, reserved at once: grown by push_back, the key took
    // five allocations per block and call at batch 1.
    Key key;
    key.reserve(4 + 20 * stages.size());
    key.insert(key.end(), {static_cast<std::uint64_t>(x.size(1)), static_cast<std::uint64_t>(x.size(2)),
                           static_cast<std::uint64_t>(x.size(3)), residual ? 1u : 0u});
    for (const ConvBatchNormStageInputs& s : stages) {
      for (const Tensor* t : {s.kernel, s.bias, s.gamma, s.beta, s.moving_mean, s.moving_variance}) {
        const bool defined = t != nullptr && t->defined();
        key.push_back(defined ? reinterpret_cast<std::uintptr_t>(t->raw_data()) : 0);
        key.push_back(defined ? static_cast<std::uint64_t>(t->numel()) : 0);
      }
      std::uint64_t epsilon_bits = 0;
      std::memcpy(&epsilon_bits, &s.epsilon, sizeof(epsilon_bits));
      const Conv2dWindow& w = s.window;
      key.insert(key.end(), {epsilon_bits, static_cast<std::uint64_t>(w.stride_h), static_cast<std::uint64_t>(w.stride_w),
                             static_cast<std::uint64_t>(w.pad_top), static_cast<std::uint64_t>(w.pad_bottom),
                             static_cast<std::uint64_t>(w.pad_left), static_cast<std::uint64_t>(w.pad_right),
                             s.relu6 ? 1u : 0u});
    }
    return key;
  }

  std::shared_ptr<const PreparedBlock> find(const Key& key, std::uint64_t declarations_ended) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = entries_.find(key);
    if (it == entries_.end()) return nullptr;
    if (it->second.made_while == declarations_ended) return it->second.block;
    entries_.erase(it);
    return nullptr;
  }

  void keep(Key key, std::shared_ptr<const PreparedBlock> block, std::uint64_t declarations_ended) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (entries_.size() >= kMaxEntries) entries_.clear();
    entries_.insert_or_assign(std::move(key), Entry{std::move(block), declarations_ended});
  }

  // Entries made before the last declaration ended will not serve again:
  // dropped when one ends, since a prepared block holds its weights (the
  // contiguous kernels are the weights themselves), which must not outlive
  // their model.
  void drop_stale() {
    const std::uint64_t ended = constant_declarations_ended();
    std::lock_guard<std::mutex> lock(mutex_);
    std::erase_if(entries_, [ended](const auto& entry) { return entry.second.made_while != ended; });
  }

 private:
  struct Entry {
    std::shared_ptr<const PreparedBlock> block;
    std::uint64_t made_while;  // constant_declarations_ended() then
  };
  struct KeyHash {
    std::size_t operator()(const Key& key) const {
      std::uint64_t h = 1469598103934665603ull;
      for (std::uint64_t v : key) h = (h ^ v) * 1099511628211ull;
      return static_cast<std::size_t>(h);
    }
  };
  static constexpr std::size_t kMaxEntries = 512;
  std::mutex mutex_;
  std::unordered_map<Key, Entry, KeyHash> entries_;
};

// Never destroyed: a declaration held by a static object may end after main().
KeptBlocks& kept_blocks() {
  static KeptBlocks* blocks = [] {
    auto* b = new KeptBlocks;
    on_constant_declaration_ended([] { kept_blocks().drop_stale(); });
    return b;
  }();
  return *blocks;
}

bool all_declared_constant(const std::vector<ConvBatchNormStageInputs>& stages) {
  for (const ConvBatchNormStageInputs& s : stages)
    for (const Tensor* t : {s.kernel, s.bias, s.gamma, s.beta, s.moving_mean, s.moving_variance})
      if (t != nullptr && t->defined() && !is_wholly_declared_constant(*t)) return false;
  return true;
}

}  // namespace

Tensor inverted_residual_inference(const Tensor& x, const FoldedConvStage* expand, const FoldedConvStage& depthwise,
                                   const FoldedConvStage& project, bool residual) {
  if (!inverted_residual_runs_fused(x, expand, depthwise, project, residual))
    return run_stages(x, expand, depthwise, project, residual);
  return run_block(x, prepare_block(x, expand, depthwise, project, residual));
}

Tensor inverted_residual_inference(const Tensor& x, const std::vector<ConvBatchNormStageInputs>& stages,
                                   bool residual) {
  const char* op = "inverted_residual_inference";
  PETAL_CHECK(stages.size() == 2 || stages.size() == 3, ValueError, op,
              ": takes 2 or 3 stages (expand, depthwise, project), got ", stages.size());
  PETAL_CHECK(x.defined() && x.dim() == 4, ShapeError, op, ": input must be 4-D [N, H, W, C]");
  for (const ConvBatchNormStageInputs& s : stages)
    PETAL_CHECK(s.kernel && s.gamma && s.beta && s.moving_mean && s.moving_variance, ValueError, op,
                ": a stage lacks its kernel, gamma, beta or moving statistics");
  KeptBlocks& kept = kept_blocks();
  // Read before the declarations are looked at, so that one ending meanwhile
  // leaves the new entry stale rather than trusted.
  const std::uint64_t ended = constant_declarations_ended();
  KeptBlocks::Key key = KeptBlocks::key_of(x, stages, residual);
  // (Kept blocks were made for a float32 CPU input, the only kind that runs fused.)
  if (cpu_float32(x) && x.numel() > 0)
    if (const std::shared_ptr<const PreparedBlock> block = kept.find(key, ended)) return run_block(x, *block);
  std::vector<FoldedConvStage> folded;
  for (const ConvBatchNormStageInputs& s : stages)
    folded.push_back({*s.kernel, s.bias ? *s.bias : Tensor(),
                      fold_batch_norm(*s.gamma, *s.beta, *s.moving_mean, *s.moving_variance, s.epsilon), s.window,
                      s.relu6});
  const std::size_t n = folded.size();
  const FoldedConvStage* expand = n == 3 ? &folded[0] : nullptr;
  if (!inverted_residual_runs_fused(x, expand, folded[n - 2], folded[n - 1], residual))
    return run_stages(x, expand, folded[n - 2], folded[n - 1], residual);
  auto block = std::make_shared<const PreparedBlock>(prepare_block(x, expand, folded[n - 2], folded[n - 1], residual));
  if (all_declared_constant(stages)) kept.keep(std::move(key), block, ended);
  return run_block(x, *block);
}

}  // namespace petal::ops
