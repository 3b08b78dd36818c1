#include "distributed/data_parallel.hpp"

#include <algorithm>
#include <utility>

#include "core/error.hpp"
#include "kernels/ops_constant.hpp"

namespace petal::distributed {

DataParallel::DataParallel(std::shared_ptr<ProcessGroup> group, std::size_t bucket_bytes)
    : group_(std::move(group)), bucket_floats_(std::max<std::size_t>(bucket_bytes / sizeof(float), 1)) {
  PETAL_CHECK(group_ != nullptr, ValueError, "DataParallel: null process group");
  if (group_->allows_background_thread()) thread_ = std::thread([this] { communicate(); });
}

DataParallel::~DataParallel() {
  for (ag::Variable& p : parameters_) p.set_grad_ready_hook({});
  if (thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
    thread_.join();
  }
}

void DataParallel::sum(std::span<double> values) {
  if (!in_backward_ || !thread_.joinable()) {
    // The communication thread is idle outside the backward pass.
    group_->all_reduce(values.data(), values.size());
    return;
  }
  std::unique_lock<std::mutex> lock(mutex_);
  const std::size_t ticket = ++sums_queued_;
  queue_.push_back(Work{nullptr, values, ticket});
  changed_.notify_all();
  changed_.wait(lock, [&] { return sums_done_ >= ticket; });
  if (error_) std::rethrow_exception(error_);
}

void DataParallel::communicate() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    changed_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, nothing left
    const Work work = queue_.front();
    queue_.pop_front();
    lock.unlock();
    std::exception_ptr failure;
    try {
      if (work.bucket != nullptr)
        group_->all_reduce(work.bucket->values, ReduceOp::Sum);
      else
        group_->all_reduce(work.values.data(), work.values.size());
    } catch (...) {
      failure = std::current_exception();
    }
    lock.lock();
    if (failure && !error_) error_ = failure;
    if (work.bucket != nullptr)
      ++reduced_;
    else
      sums_done_ = work.ticket;
    changed_.notify_all();
  }
}

void DataParallel::begin_gradients(const std::vector<ag::Variable>& parameters, double scale) {
  PETAL_CHECK(buckets_.empty() && !in_backward_, ValueError, "DataParallel: begin_gradients twice without finish");
  for (ag::Variable& p : parameters_) p.set_grad_ready_hook({});
  parameters_ = parameters;
  scale_ = scale;
  ready_.clear();
  ready_floats_ = 0;
  last_overlapped_ = 0;
  in_backward_ = true;
  // The hooks capture an index, not the Variable (which owns the hook).
  for (std::size_t i = 0; i < parameters_.size(); ++i)
    if (parameters_[i].requires_grad()) parameters_[i].set_grad_ready_hook([this, i] { on_gradient_ready(i); });
}

void DataParallel::on_gradient_ready(std::size_t index) {
  // Every process runs the same graph in the same order, so the buckets hold
  // the same parameters everywhere.
  ready_.push_back(index);
  ready_floats_ += static_cast<std::size_t>(parameters_[index].grad().numel());
  if (ready_floats_ >= bucket_floats_) launch_bucket();
}

void DataParallel::launch_bucket() {
  Bucket& bucket = buckets_.emplace_back();
  bucket.parameters = std::move(ready_);
  ready_.clear();
  bucket.values = Tensor::empty({static_cast<std::int64_t>(ready_floats_)}, DType::Float32);
  ready_floats_ = 0;
  auto* out = static_cast<float*>(bucket.values.raw_data());
  for (std::size_t index : bucket.parameters) {
    const Tensor g = parameters_[index].grad().to(Device::cpu()).to(DType::Float32).contiguous();
    const auto* in = static_cast<const float*>(g.raw_data());
    const auto n = static_cast<std::size_t>(g.numel());
    for (std::size_t k = 0; k < n; ++k) out[k] = static_cast<float>(in[k] * scale_);
    out += n;
  }
  if (in_backward_) ++last_overlapped_;
  if (!thread_.joinable()) {
    group_->all_reduce(bucket.values, ReduceOp::Sum);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(Work{&bucket, {}, 0});
  }
  changed_.notify_all();
}

void DataParallel::finish_gradients() {
  in_backward_ = false;
  // Gradients the hooks did not report (a leaf reached only as the root):
  // in a last bucket with the rest, in parameter order.
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    if (!parameters_[i].has_grad()) continue;
    bool listed = std::find(ready_.begin(), ready_.end(), i) != ready_.end();
    for (const Bucket& b : buckets_)
      listed = listed || std::find(b.parameters.begin(), b.parameters.end(), i) != b.parameters.end();
    if (!listed) {
      ready_.push_back(i);
      ready_floats_ += static_cast<std::size_t>(parameters_[i].grad().numel());
    }
  }
  if (!ready_.empty()) launch_bucket();
  std::exception_ptr failure;
  if (thread_.joinable()) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [this] { return reduced_ == buckets_.size(); });
    reduced_ = 0;
    failure = std::exchange(error_, nullptr);
  }
  for (ag::Variable& p : parameters_) p.set_grad_ready_hook({});
  last_buckets_ = buckets_.size();
  if (failure) {
    buckets_.clear();
    std::rethrow_exception(failure);
  }
  for (const Bucket& bucket : buckets_) {
    std::int64_t at = 0;
    for (std::size_t index : bucket.parameters) {
      ag::Variable p = parameters_[index];  // a handle: set_grad reaches the parameter
      const Tensor& old = p.grad();
      const std::int64_t n = old.numel();
      p.set_grad(bucket.values.slice(0, at, at + n).reshape(old.shape()).to(old.dtype()).to(old.device()).clone());
      at += n;
    }
  }
  buckets_.clear();
}

void broadcast_weights(nn::Module& model, ProcessGroup& group, int root) {
  for (const nn::WeightRef& w : model.weights()) ops::check_not_declared_constant(w.variable.data(), "broadcast_weights");
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
