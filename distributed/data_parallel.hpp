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
// then every process takes the same optimizer step. Batch normalization uses
// each process's own batch statistics (DDP's default; the moving statistics
// of rank 0 are what rank 0 saves). Losses and metrics in the logs are the
// global batch's and the whole epoch's (see nn::Trainer::set_replica_context).
//
// Not done yet (docs/distributed.md): overlapping the all-reduce with the
// backward pass, synchronised batch-norm statistics, NCCL for CUDA tensors
// (they are staged through host memory).
#pragma once

#include <cstddef>
#include <memory>
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
  int replica() const override { return group_->rank(); }
  int replicas() const override { return group_->size(); }
  void sum(std::span<double> values) override;
  void sum_gradients(const std::vector<ag::Variable>& parameters, double scale) override;

  ProcessGroup& group() { return *group_; }
  // All-reduce calls the last sum_gradients made (buckets).
  std::size_t last_bucket_count() const { return last_buckets_; }

 private:
  std::shared_ptr<ProcessGroup> group_;
  std::size_t bucket_bytes_;
  std::size_t last_buckets_ = 0;
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
