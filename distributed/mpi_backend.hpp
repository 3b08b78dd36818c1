// The MPI process group's factory: mpi_process_group.cpp in builds with MPI,
// mpi_unavailable.cpp otherwise (meson picks one).
#pragma once

#include <memory>

#include "distributed/process_group.hpp"

namespace petal::distributed::detail {

bool mpi_compiled_in();
// MPI_COMM_WORLD, initialising MPI (finalised at process exit).
std::shared_ptr<ProcessGroup> make_mpi_world();

}  // namespace petal::distributed::detail
