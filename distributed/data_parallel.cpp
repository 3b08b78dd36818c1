#include "distributed/data_parallel.hpp"

#include <algorithm>

#include "core/error.hpp"

namespace petal::distributed {

DataParallel::DataParallel(std::shared_ptr<ProcessGroup> group, std::size_t bucket_bytes)
    : group_(std::move(group)), bucket_bytes_(std::max<std::size_t>(bucket_bytes, sizeof(float))) {
  PETAL_CHECK(group_ != nullptr, ValueError, "DataParallel: null process group");
}

void DataParallel::sum(std::span<double> values) { group_->all_reduce(values.data(), values.size()); }

void DataParallel::sum_gradients(const std::vector<ag::Variable>& parameters, double scale) {
  // Gradients in float32, scaled by this process's share, packed into
  // buckets: one all-reduce per bucket instead of one per parameter.
  std::vector<const ag::Variable*> with_grad;
  for (const ag::Variable& p : parameters)
    if (p.has_grad()) with_grad.push_back(&p);
  const std::size_t bucket_floats = bucket_bytes_ / sizeof(float);
  last_buckets_ = 0;
  std::size_t first = 0;
  while (first < with_grad.size()) {
    // Parameters [first, last) fill this bucket (a larger one goes alone).
    std::size_t last = first, floats = 0;
    while (last < with_grad.size()) {
      const auto n = static_cast<std::size_t>(with_grad[last]->grad().numel());
      if (last > first && floats + n > bucket_floats) break;
      floats += n;
      ++last;
    }
    Tensor bucket = Tensor::empty({static_cast<std::int64_t>(floats)}, DType::Float32);
    auto* out = static_cast<float*>(bucket.raw_data());
    std::size_t at = 0;
    for (std::size_t i = first; i < last; ++i) {
      const Tensor g = with_grad[i]->grad().to(Device::cpu()).to(DType::Float32).contiguous();
      const auto* in = static_cast<const float*>(g.raw_data());
      const auto n = static_cast<std::size_t>(g.numel());
      for (std::size_t k = 0; k < n; ++k) out[at + k] = static_cast<float>(in[k] * scale);
      at += n;
    }
    group_->all_reduce(bucket, ReduceOp::Sum);
    ++last_buckets_;
    at = 0;
    for (std::size_t i = first; i < last; ++i) {
      ag::Variable p = *with_grad[i];  // a handle: set_grad reaches the parameter
      const Tensor& old = p.grad();
      const std::int64_t n = old.numel();
      Tensor summed = bucket.slice(0, static_cast<std::int64_t>(at), static_cast<std::int64_t>(at) + n)
                          .reshape(old.shape())
                          .to(old.dtype())
                          .to(old.device())
                          .clone();
      p.set_grad(std::move(summed));
      at += static_cast<std::size_t>(n);
    }
    first = last;
  }
}

void broadcast_weights(nn::Module& model, ProcessGroup& group, int root) {
  for (nn::WeightRef& w : model.weights()) {
    Tensor& t = w.variable.mutable_data();
    try {
      group.broadcast(t, root);
    } catch (const Error& e) {
      throw Error(str_cat("broadcast_weights: \"", w.path, "\": ", e.what()));
    }
  }
}

std::shared_ptr<DataParallel> distribute(nn::Trainer& trainer, const std::shared_ptr<ProcessGroup>& group,
                                         std::size_t bucket_bytes) {
  PETAL_CHECK(group != nullptr, ValueError, "distribute: null process group");
  if (group->size() == 1) return nullptr;
  broadcast_weights(trainer.model(), *group);
  auto context = std::make_shared<DataParallel>(group, bucket_bytes);
  trainer.set_replica_context(context);
  return context;
}

}  // namespace petal::distributed
