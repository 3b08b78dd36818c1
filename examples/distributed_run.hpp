// --distributed in the training examples: join the MPI launcher's process
// group (mpirun -np N build/examples/flowers_dense --distributed ...), train
// data-parallel with --batch the global batch, and let only rank 0 print
// progress and write outputs. A failure on any rank is reported with its
// rank and ends every rank at once (MPI_Abort), so none waits forever in a
// collective for the failed one.
#pragma once

#include <cstdio>
#include <memory>

#include "distributed/data_parallel.hpp"
#include "distributed/process_group.hpp"
#include "distributed/sharded_batch_source.hpp"
#include "examples/program_main.hpp"

namespace petal::examples {

struct DistributedRun {
  std::shared_ptr<distributed::ProcessGroup> group;  // null without --distributed
  int rank() const { return group ? group->rank() : 0; }
  int size() const { return group ? group->size() : 1; }
  bool chief() const { return rank() == 0; }
};

inline DistributedRun start_distributed(bool enabled) {
  DistributedRun run;
  if (!enabled) return run;
  run.group = distributed::init_process_group();
  if (run.size() > 1) {
    std::shared_ptr<distributed::ProcessGroup> group = run.group;
    failure_hook() = [group](int exit_code) {
      std::fprintf(stderr, "rank %d of %d failed (above); stopping every rank\n", group->rank(), group->size());
      std::fflush(stderr);
      group->abort(exit_code);
    };
  }
  return run;
}

}  // namespace petal::examples
