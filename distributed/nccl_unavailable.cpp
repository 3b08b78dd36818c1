#include "core/error.hpp"
#include "distributed/nccl_backend.hpp"

namespace petal::distributed::detail {

bool nccl_compiled_in() { return false; }

std::shared_ptr<ProcessGroup> make_nccl_group(std::shared_ptr<ProcessGroup>, int) {
  throw DeviceError("petal was built without NCCL (needs the CUDA backend and the toolkit's nccl.h and libnccl)");
}

}  // namespace petal::distributed::detail
