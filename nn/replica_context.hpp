// What data-parallel training needs from Trainer::fit and evaluate, without
// nn/ knowing how replicas talk (distributed/ implements it over MPI). Every
// replica runs the same loop on its share of each global batch; the Trainer
// calls these at the same points on every replica, so each call is a
// collective: every replica must make it, with values of the same length.
#pragma once

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
};

}  // namespace petal::nn
