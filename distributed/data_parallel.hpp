// Data-parallel training over a ProcessGroup, PyTorch DDP's recipe:
//
//   auto group = distributed::init_process_group();          // mpirun -np N ...
//   nn::Trainer trainer(model);
//   trainer.compile(...);
//   distributed::distribute(trainer, group);                // rank 0's weights everywhere
//   distributed::ShardedBatchSource train(global_batches, group->rank(), group->size());
//   trainer.fit(train, options);                             // options.verbose: Quiet off rank 0
//
// Each step, every process runs forward and backward on its share of the
// global batch; the gradients are summed across processes, each weighted by
// its share (so they are the gradient of the global batch's mean loss, the
// one-process gradient up to summation order), in buckets of about 25 MB,
// then every process takes the same optimizer step. A bucket is handed to a
// communication thread as soon as the backward pass has completed its
// gradients (leaf grad-ready hooks on the tape), so its all-reduce runs
// while the backward pass computes the earlier layers' gradients. Batch normalization uses
// each process's own batch statistics by default (DDP's default; the moving
// statistics of rank 0 are what rank 0 saves). Losses and metrics in the logs are the
// global batch's and the whole epoch's (see nn::Trainer::set_replica_context).
//
// BatchNormOptions::synchronized switches a layer to the global batch's
// statistics (nn/sync_batch_norm.hpp): its sums go through sum(), queued
// behind the buckets while the backward pass runs.
//
// Not done yet (docs/distributed.md): NCCL buckets for CUDA tensors (they are
// staged through host memory).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <span>
#include <vector>

#include "distributed/process_group.hpp"
#include "nn/module.hpp"
#include "nn/replica_context.hpp"
#include "nn/trainer.hpp"

namespace petal::distributed {

class DataParallel final : public nn::ReplicaContext {
 public:
  static constexpr std::size_t kDefaultBucketBytes = std::size_t{25} << 20;

  explicit DataParallel(std::shared_ptr<ProcessGroup> group, std::size_t bucket_bytes = kDefaultBucketBytes);
  ~DataParallel() override;
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  int replica() const override { return group_->rank(); }
  int replicas() const override { return group_->size(); }
  void sum(std::span<double> values) override;
  void begin_gradients(const std::vector<ag::Variable>& parameters, double scale) override;
  void finish_gradients() override;
  double gradient_scale() const override { return scale_; }

  ProcessGroup& group() { return *group_; }
  // Buckets the last step all-reduced, and how many of them started before
  // the backward pass ended (overlapping it).
  std::size_t last_bucket_count() const { return last_buckets_; }
  std::size_t last_overlapped_buckets() const { return last_overlapped_; }

 private:
  struct Bucket {
    std::vector<std::size_t> parameters;  // indices into parameters_
    Tensor values;                        // their scaled gradients, packed
  };
  void on_gradient_ready(std::size_t index);
  void launch_bucket();
  void communicate();  // the communication thread's loop

  std::shared_ptr<ProcessGroup> group_;
  std::size_t bucket_floats_;
  // This step's parameters, scale, and the ready gradients not yet in a bucket.
  std::vector<ag::Variable> parameters_;
  double scale_ = 1.0;
  std::vector<std::size_t> ready_;
  std::size_t ready_floats_ = 0;
  bool in_backward_ = false;
  std::deque<Bucket> buckets_;  // launched this step (a deque: the thread holds pointers)
  std::size_t last_buckets_ = 0, last_overlapped_ = 0;
  // The communication thread: all-reduces queued buckets in order while the
  // backward pass goes on (the process group allows one other thread).
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable changed_;
  // In order: buckets, and host sums made during the backward pass
  // (synchronised batch norm), which must keep their place among the
  // buckets so that every process makes the same collectives in the same order.
  struct Work {
    Bucket* bucket = nullptr;  // else `values`
    std::span<double> values;
    std::size_t ticket = 0;
  };
  std::deque<Work> queue_;
  std::size_t reduced_ = 0;
  std::size_t sums_queued_ = 0, sums_done_ = 0;
  std::exception_ptr error_;
  bool stopping_ = false;
};

// Copies root's parameters and buffers (moving statistics) into every
// process's model: the same starting point everywhere.
void broadcast_weights(nn::Module& model, ProcessGroup& group, int root = 0);

// Makes trainer train data-parallel over group: broadcasts the model's
// weights from rank 0 and gives the trainer a DataParallel context. With a
// group of one it changes nothing (and returns null).
std::shared_ptr<DataParallel> distribute(nn::Trainer& trainer, const std::shared_ptr<ProcessGroup>& group,
                                         std::size_t bucket_bytes = DataParallel::kDefaultBucketBytes);

}  // namespace petal::distributed
