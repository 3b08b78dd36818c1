// The NCCL process group's factory: nccl_process_group.cu in builds with CUDA
// and NCCL (the toolkit's nccl.h and libnccl), nccl_unavailable.cpp otherwise.
#pragma once

#include <memory>

#include "distributed/process_group.hpp"

namespace petal::distributed::detail {

bool nccl_compiled_in();
// A communicator over the processes of `host` (whose broadcast carries
// NCCL's unique id from rank 0), on CUDA device `device` of this process.
std::shared_ptr<ProcessGroup> make_nccl_group(std::shared_ptr<ProcessGroup> host, int device);

}  // namespace petal::distributed::detail
