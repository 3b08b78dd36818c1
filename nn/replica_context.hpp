// What data-parallel training needs from Trainer::fit and evaluate, without
// nn/ knowing how replicas talk (distributed/ implements it over MPI). Every
// replica runs the same loop on its share of each global batch; the Trainer
// calls these at the same points on every replica, so each call is a
// collective: every replica must make it, with values of the same length.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "autograd/variable.hpp"

namespace petal::nn {

class ReplicaContext {
 public:
  virtual ~ReplicaContext() = default;
  virtual int replica() const = 0;   // this process's index, 0 .. replicas() - 1
  virtual int replicas() const = 0;  // how many train together
  // Adds host values across replicas, in place.
  virtual void sum(std::span<double> values) = 0;
  // Around each backward pass: begin_gradients before it, finish_gradients
  // after it. Together they replace each parameter's gradient g by the sum
  // over replicas of scale * g (scale: this replica's share of the global
  // batch, so the result is the gradient of the global batch's mean loss).
  // Between the two the replica may start summing the gradients the backward
  // pass has already completed (leaf grad-ready hooks), while it runs.
  virtual void begin_gradients(const std::vector<ag::Variable>& parameters, double scale) = 0;
  virtual void finish_gradients() = 0;
  // The scale of the last begin_gradients (this replica's share of the global
  // batch): synchronised batch normalization needs it in its backward pass.
  virtual double gradient_scale() const = 0;

  // The context of the training step running on this thread (set by
  // Trainer around forward and backward, or by a custom loop with
  // ReplicaScope), null outside one: what BatchNormalization(synchronized)
  // sums its statistics over. A sum() made during the backward pass is a
  // collective like the gradient buckets, made in the same order on every
  // replica.
  static std::shared_ptr<ReplicaContext> current();
};

// Makes `context` the current one on this thread until destroyed.
class ReplicaScope {
 public:
  explicit ReplicaScope(std::shared_ptr<ReplicaContext> context);
  ~ReplicaScope();
  ReplicaScope(const ReplicaScope&) = delete;
  ReplicaScope& operator=(const ReplicaScope&) = delete;

 private:
  std::shared_ptr<ReplicaContext> previous_;
};

}  // namespace petal::nn
