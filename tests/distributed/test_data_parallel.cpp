// Process groups and data-parallel training. meson test runs this binary twice:
// alone (a group of one) and under `mpirun -np 2` (run_mpi_test.sh). Every
// rank runs every check; collectives make the ranks meet, so checks that could
// differ between ranks use CHECK (never REQUIRE, which would leave the other
// rank waiting in a collective).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "autograd/functions.hpp"
#include "core/random.hpp"
#include "distributed/data_parallel.hpp"
#include "distributed/process_group.hpp"
#include "distributed/sharded_batch_source.hpp"
#include "kernels/cuda/cuda_runtime_api.hpp"
#include "nn/nn.hpp"
#include "tests/doctest_skip.hpp"

using namespace petal;
using namespace petal::nn;
using petal::distributed::ProcessGroup;
using petal::distributed::ReduceOp;

namespace {

std::shared_ptr<ProcessGroup> world() { return distributed::init_process_group(); }

// The lab's dense head on small synthetic data: a classifier with a frozen
// BatchNormalization (inference mode, like the transfer model's base) so the
// equivalence covers BN too.
std::shared_ptr<Sequential> small_classifier() {
  reset_layer_names();
  manual_seed(1234);
  auto bn = std::make_shared<BatchNormalization>();
  bn->set_trainable(false);
  return std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<InputLayer>(Shape{12}), bn, std::make_shared<Dense>(32, "relu"), std::make_shared<Dropout>(0.0),
      std::make_shared<Dense>(5, "softmax")});
}

struct Data {
  Tensor x, y;
};

Data synthetic(std::int64_t n, std::uint64_t seed) {
  Generator gen(seed);
  std::vector<float> xs(static_cast<std::size_t>(n * 12));
  std::vector<std::int64_t> ys(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    double score[5] = {};
    for (int j = 0; j < 12; ++j) {
      const double v = 2 * gen.uniform_double() - 1;
      xs[static_cast<std::size_t>(i * 12 + j)] = static_cast<float>(v);
      score[j % 5] += v * (1 + j / 5);
    }
    ys[static_cast<std::size_t>(i)] = std::max_element(score, score + 5) - score;
  }
  return {from_vector(xs, {n, 12}), from_vector(ys)};
}

double max_weight_difference(const Module& a, const Module& b) {
  const auto wa = a.weights(), wb = b.weights();
  double worst = 0;
  for (std::size_t i = 0; i < wa.size(); ++i) {
    const std::vector<float> va = wa[i].variable.data().to_vector<float>(), vb = wb[i].variable.data().to_vector<float>();
    for (std::size_t k = 0; k < va.size(); ++k) worst = std::max(worst, static_cast<double>(std::abs(va[k] - vb[k])));
  }
  return worst;
}

}  // namespace

TEST_CASE("process group: rank, size, broadcast, all-reduce, all-gather") {
  auto group = world();
  const int rank = group->rank(), size = group->size();
  MESSAGE("rank " << rank << " of " << size << " (" << group->backend() << ")");
  CHECK(size >= 1);
  CHECK(rank < size);
  CHECK((group->backend() == "mpi") == distributed::launched_by_mpi());

  Tensor b = full({3, 2}, static_cast<double>(rank + 7));
  group->broadcast(b, 0);
  CHECK(b.to_vector<float>() == std::vector<float>(6, 7.0f));

  Tensor s = from_vector(std::vector<float>{1.0f * static_cast<float>(rank), 2.0f, -1.0f});
  group->all_reduce(s, ReduceOp::Sum);
  const float ranks_sum = static_cast<float>(size * (size - 1) / 2);
  CHECK(s.to_vector<float>() == std::vector<float>{ranks_sum, 2.0f * static_cast<float>(size), -1.0f * static_cast<float>(size)});
  Tensor m = from_vector(std::vector<double>{static_cast<double>(rank), 4.0});
  group->all_reduce(m, ReduceOp::Mean);
  CHECK(m.to_vector<double>()[0] == doctest::Approx((size - 1) / 2.0));
  CHECK(m.to_vector<double>()[1] == doctest::Approx(4.0));
  Tensor i64 = from_vector(std::vector<std::int64_t>{rank + 1});
  group->all_reduce(i64);
  CHECK(i64.to_vector<std::int64_t>()[0] == size * (size + 1) / 2);
  CHECK_THROWS_AS(group->all_reduce(i64, ReduceOp::Mean), DTypeError);  // checked before any message on every rank
  // A non-contiguous tensor is reduced in place too.
  Tensor wide = from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2});
  Tensor column = wide.slice(1, 0, 1);
  group->all_reduce(column);
  CHECK(wide.to_vector<float>() == std::vector<float>{1.0f * static_cast<float>(size), 2, 3.0f * static_cast<float>(size), 4});

  double sums[2] = {1.0, static_cast<double>(rank)};
  group->all_reduce(sums, 2);
  CHECK(sums[0] == size);

  // Rank r gives r + 1 rows of [r, r, r]: rows in rank order.
  const Tensor mine = full({rank + 1, 3}, static_cast<double>(rank));
  const Tensor all = group->all_gather(mine);
  CHECK(all.size(0) == size * (size + 1) / 2);
  std::vector<float> expected;
  for (int r = 0; r < size; ++r)
    for (int k = 0; k < (r + 1) * 3; ++k) expected.push_back(static_cast<float>(r));
  CHECK(all.to_vector<float>() == expected);

  if (size > 1) {
    // Tensors of different sizes: every rank gets the error, none hangs.
    Tensor odd = zeros({rank + 1});
    CHECK_THROWS_AS(group->broadcast(odd, 0), ShapeError);
    Tensor rows = zeros({1, rank + 2});
    CHECK_THROWS_AS(group->all_gather(rows), ShapeError);
  }
  group->barrier();
}

TEST_CASE("2 ranks with a global batch of 64 train to the weights of 1 process with batch 64") {
  auto group = world();
  const Data train = synthetic(200, 3), val = synthetic(70, 4);  // 200 = 3 x 64 + 8: a short last batch
  const int epochs = 3;
  FitOptions options;
  options.epochs = epochs;
  options.verbose = Verbosity::Quiet;

  // The one-process run, on every rank (no communication).
  auto reference = small_classifier();
  Trainer one(reference);
  one.compile(std::make_shared<Adam>(0.01), Loss::sparse_categorical_crossentropy(), {"accuracy"});
  TensorBatchSource one_train(train.x, train.y, 64, true, 77), one_val(val.x, val.y, 64);
  options.validation = &one_val;
  const History one_history = one.fit(one_train, options);

  // The same run split across the group: each rank a share of every global batch.
  auto model = small_classifier();
  // Different starting weights on other ranks: distribute() must replace them by rank 0's.
  if (group->rank() != 0)
    for (auto& w : model->weights())
      if (w.is_parameter) w.variable.mutable_data().copy_(uniform(w.variable.shape(), -1, 1));
  Trainer trainer(model);
  trainer.compile(std::make_shared<Adam>(0.01), Loss::sparse_categorical_crossentropy(), {"accuracy"});
  auto context = distributed::distribute(trainer, group, /*bucket_bytes=*/512);  // several buckets
  CHECK((context != nullptr) == (group->size() > 1));
  TensorBatchSource global_train(train.x, train.y, 64, true, 77), global_val(val.x, val.y, 64);
  distributed::ShardedBatchSource my_train(global_train, group->rank(), group->size());
  distributed::ShardedBatchSource my_val(global_val, group->rank(), group->size());
  options.validation = &my_val;
  const History history = trainer.fit(my_train, options);
  if (context) {
    CHECK(context->last_bucket_count() > 1);
    // Buckets start while the backward pass still runs: here every one, since
    // the first layer's kernel completes the last bucket inside the pass.
    CHECK(context->last_overlapped_buckets() == context->last_bucket_count());
    MESSAGE("buckets per step: " << context->last_bucket_count() << ", started during backward: "
                                 << context->last_overlapped_buckets());
  }

  const double difference = max_weight_difference(*model, *reference);
  MESSAGE("rank " << group->rank() << " of " << group->size() << ": max |w - w_1process| = " << difference
                  << " after " << epochs * 4 << " steps");
  // Summation order is the only difference: the bound holds with margin.
  CHECK(difference <= 2e-5);
  for (const char* key : {"loss", "accuracy", "val_loss", "val_accuracy"}) {
    CAPTURE(key);
    for (int e = 0; e < epochs; ++e) {
      CHECK(history[key][static_cast<std::size_t>(e)] ==
            doctest::Approx(one_history[key][static_cast<std::size_t>(e)]).epsilon(1e-5));
    }
  }
  // Every rank ends with the same weights.
  for (auto& w : model->weights()) {
    Tensor mine = w.variable.data().clone(), root = w.variable.data().clone();
    group->broadcast(root, 0);
    CHECK(mine.to_vector<float>() == root.to_vector<float>());
  }
}

namespace {

// A classifier whose BatchNormalization trains (batch statistics), with or
// without synchronised statistics.
std::shared_ptr<Sequential> batch_norm_classifier(bool synchronized) {
  reset_layer_names();
  manual_seed(4321);
  return std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<InputLayer>(Shape{12}), std::make_shared<Dense>(16),
      std::make_shared<BatchNormalization>(BatchNormOptions{.momentum = 0.9, .synchronized = synchronized}),
      std::make_shared<ReLU>(), std::make_shared<Dense>(5, "softmax")});
}

// Trains `model` on its share of the global batches for 2 epochs; returns the
// largest weight difference (moving statistics included) to `reference`.
// SGD, not Adam: the Dense bias in front of batch norm has a gradient that is
// zero but for rounding (the normalisation removes it), and Adam's
// normalised step turns that noise into steps of the learning rate's size
// (3.8e-4 apart after 6 steps with Adam 0.01, against 6e-8 with SGD).
double train_shared(const std::shared_ptr<Sequential>& model, const std::shared_ptr<ProcessGroup>& group,
                    const Data& train, const Module& reference) {
  Trainer trainer(model);
  trainer.compile(std::make_shared<SGD>(0.1), Loss::sparse_categorical_crossentropy());
  distributed::distribute(trainer, group, /*bucket_bytes=*/256);
  TensorBatchSource global(train.x, train.y, 64, true, 91);
  distributed::ShardedBatchSource mine(global, group->rank(), group->size());
  FitOptions options;
  options.epochs = 2;
  options.verbose = Verbosity::Quiet;
  trainer.fit(mine, options);
  return max_weight_difference(*model, reference);
}

}  // namespace

TEST_CASE("synchronised batch norm: 2 ranks train to the weights of 1 process with the whole batch") {
  auto group = world();
  const Data train = synthetic(136, 8);  // 2 x 64 + 8: a short last batch
  auto reference = batch_norm_classifier(true);
  {
    Trainer one(reference);
    one.compile(std::make_shared<SGD>(0.1), Loss::sparse_categorical_crossentropy());
    TensorBatchSource source(train.x, train.y, 64, true, 91);
    FitOptions options;
    options.epochs = 2;
    options.verbose = Verbosity::Quiet;
    one.fit(source, options);
  }
  const double synchronized = train_shared(batch_norm_classifier(true), group, train, *reference);
  const double local = train_shared(batch_norm_classifier(false), group, train, *reference);
  MESSAGE("rank " << group->rank() << " of " << group->size() << ": max |w - w_1process| = " << synchronized
                  << " with synchronised batch norm, " << local << " with each rank's own statistics");
  CHECK(synchronized <= 2e-5);
  // Each rank's own statistics differ from the global batch's: the check above
  // is not passing by accident.
  if (group->size() > 1) CHECK(local > 1e-3);
}

TEST_CASE("a global batch smaller than the group is refused with a clear error") {
  auto group = world();
  const Data tiny = synthetic(3, 5);
  TensorBatchSource source(tiny.x, tiny.y, 1);
  distributed::ShardedBatchSource shard(source, group->rank(), group->size());
  shard.begin_epoch(0);
  if (group->size() == 1) {
    CHECK(shard.next().has_value());
  } else {
    CHECK_THROWS_AS(shard.next(), ValueError);
  }
  CHECK_THROWS_AS(distributed::ShardedBatchSource(source, 2, 2), ValueError);
}

// On a GPU machine (scripts/gpu_check.sh runs it): the NCCL group of this
// process's world on cuda:0, with tensors in device memory.
TEST_CASE("NCCL group: all-reduce, broadcast and all-gather of CUDA tensors" *
          doctest::skip(test::skip_because(!distributed::nccl_available() || cuda::device_count() == 0,
                                           "needs NCCL and a CUDA device"))) {
  auto group = distributed::init_process_group(Device::cuda(0));
  const int rank = group->rank(), size = group->size();
  CHECK(group->backend() == "nccl");
  Tensor s = from_vector(std::vector<float>{static_cast<float>(rank), 1.5f}).to(Device::cuda(0));
  group->all_reduce(s, ReduceOp::Sum);
  CHECK(s.device().is_cuda());
  CHECK(s.to_vector<float>() == std::vector<float>{static_cast<float>(size * (size - 1) / 2), 1.5f * static_cast<float>(size)});
  Tensor m = full({4}, 2.0 + rank, DType::Float32, Device::cuda(0));
  group->all_reduce(m, ReduceOp::Mean);
  CHECK(m.to_vector<float>()[0] == doctest::Approx(2.0 + (size - 1) / 2.0));
  Tensor b = full({3}, static_cast<double>(rank + 5), DType::Float32, Device::cuda(0));
  group->broadcast(b, 0);
  CHECK(b.to_vector<float>() == std::vector<float>(3, 5.0f));
  // In place only: a strided view is refused before any rank communicates.
  Tensor strided = full({2, 3}, 1.0, DType::Float32, Device::cuda(0)).transpose(0, 1);
  CHECK_THROWS_AS(group->all_reduce(strided, ReduceOp::Sum), ValueError);
  CHECK_THROWS_AS(group->broadcast(strided, 0), ValueError);
  const Tensor all = group->all_gather(full({1, 2}, static_cast<double>(rank), DType::Float32, Device::cuda(0)));
  CHECK(all.device().is_cuda());
  CHECK(all.size(0) == size);
  // A data-parallel step on the device: the buckets go through the host here (DataParallel packs on the host).
  distributed::DataParallel parallel(group, 1024);
  ag::Variable w(full({8}, 1.0, DType::Float32, Device::cuda(0)), true);
  parallel.begin_gradients({w}, 1.0 / size);
  ag::sum(w * w).backward();
  parallel.finish_gradients();
  CHECK(w.grad().device().is_cuda());
  CHECK(w.grad().to_vector<float>() == std::vector<float>(8, 2.0f));
}
