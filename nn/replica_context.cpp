#include "nn/replica_context.hpp"

#include <utility>

namespace petal::nn {
namespace {

thread_local std::shared_ptr<ReplicaContext> t_current;

}  // namespace

std::shared_ptr<ReplicaContext> ReplicaContext::current() { return t_current; }

ReplicaScope::ReplicaScope(std::shared_ptr<ReplicaContext> context) : previous_(std::exchange(t_current, std::move(context))) {}

ReplicaScope::~ReplicaScope() { t_current = std::move(previous_); }

}  // namespace petal::nn
