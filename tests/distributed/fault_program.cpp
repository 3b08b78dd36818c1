// A data-parallel loop in which rank 1 fails at step 3, to show that every
// other rank stops within a bounded time instead of waiting forever in a
// collective (tests/distributed/test_faults.sh). Modes: "raise" (rank 1
// throws: run_program reports it and MPI_Abort ends every rank) and "kill"
// (rank 1 dies by SIGKILL: the launcher ends the others).
#include <csignal>
#include <string>

#include "core/error.hpp"
#include "examples/distributed_run.hpp"
#include "examples/program_main.hpp"

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "raise";
  return petal::examples::run_program("fault_program", [&] {
    const petal::examples::DistributedRun run = petal::examples::start_distributed(true);
    for (int step = 0; step < 2000; ++step) {
      if (run.rank() == 1 && step == 3) {
        if (mode == "kill") std::raise(SIGKILL);
        throw petal::IOError("rank 1 failed on purpose at step 3");
      }
      double value = 1.0;
      run.group->all_reduce(&value, 1);  // a training step's collective
    }
    return 0;  // reached only if the failure did not stop this rank
  });
}
