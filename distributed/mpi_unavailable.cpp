#include "core/error.hpp"
#include "distributed/mpi_backend.hpp"

namespace petal::distributed::detail {

bool mpi_compiled_in() { return false; }

std::shared_ptr<ProcessGroup> make_mpi_world() {
  throw Error("petal was built without MPI (-Dmpi=disabled, or libopenmpi-dev missing when it was configured)");
}

}  // namespace petal::distributed::detail
