#include "distributed/process_group.hpp"

#include <cstdlib>
#include <cstring>
#include <mutex>

#include "core/error.hpp"
#include "distributed/mpi_backend.hpp"
#include "distributed/nccl_backend.hpp"

namespace petal::distributed {

namespace {

class SingleProcessGroup final : public ProcessGroup {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "single"; }
  void barrier() override {}
  void broadcast(Tensor& tensor, int root) override {
    PETAL_CHECK(root == 0, ValueError, "broadcast: root ", root, " outside a group of 1");
    PETAL_CHECK(tensor.defined(), ValueError, "broadcast: undefined tensor");
  }
  void all_reduce(Tensor& tensor, ReduceOp op) override {
    // The same checks as a group of many, so a program fails alike with one process.
    PETAL_CHECK(tensor.defined(), ValueError, "all_reduce: undefined tensor");
    const DType t = tensor.dtype();
    PETAL_CHECK(t == DType::Float32 || t == DType::Float64 || t == DType::Int64, DTypeError, "all_reduce: ",
                dtype_name(t), " tensors are not supported (float32, float64, int64)");
    PETAL_CHECK(op == ReduceOp::Sum || t != DType::Int64, DTypeError,
                "all_reduce: a mean of int64 tensors is not an integer; reduce with ReduceOp::Sum");
  }
  void all_reduce(double*, std::size_t) override {}
  Tensor all_gather(const Tensor& tensor) override {
    PETAL_CHECK(tensor.defined() && tensor.dim() >= 1, ShapeError, "all_gather: needs a tensor with a first axis");
    return tensor.clone();
  }
  [[noreturn]] void abort(int exit_code) override { std::_Exit(exit_code); }
};

}  // namespace

bool launched_by_mpi() {
  // Open MPI's mpirun, PMIx launchers (srun --mpi=pmix) and PMI-1/2 ones.
  for (const char* variable : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"}) {
    const char* value = std::getenv(variable);
    if (value != nullptr && *value != '\0') return true;
  }
  return false;
}

bool mpi_available() { return detail::mpi_compiled_in(); }

bool nccl_available() { return detail::nccl_compiled_in(); }

std::shared_ptr<ProcessGroup> single_process_group() { return std::make_shared<SingleProcessGroup>(); }

std::shared_ptr<ProcessGroup> init_process_group() {
  static std::mutex mutex;
  static std::shared_ptr<ProcessGroup> world;
  std::lock_guard<std::mutex> lock(mutex);
  if (world) return world;
  if (!launched_by_mpi()) return world = single_process_group();
  PETAL_CHECK(mpi_available(), Error,
              "this process was started by an MPI launcher, but this petal was built without MPI: install "
              "libopenmpi-dev (scripts/install_deps.sh) and reconfigure with -Dmpi=enabled");
  return world = detail::make_mpi_world();
}

std::shared_ptr<ProcessGroup> init_process_group(Device device) {
  if (device.is_cpu()) return init_process_group();
  std::shared_ptr<ProcessGroup> world = init_process_group();
  static std::mutex mutex;
  static std::shared_ptr<ProcessGroup> device_group;
  static int group_device = -1;
  std::lock_guard<std::mutex> lock(mutex);
  if (device_group) {
    PETAL_CHECK(group_device == device.index, DeviceError, "init_process_group: this process's NCCL group is on cuda:",
                group_device, ", not ", device.str(), " (one GPU per process)");
    return device_group;
  }
  device_group = detail::make_nccl_group(std::move(world), device.index);
  group_device = device.index;
  return device_group;
}

}  // namespace petal::distributed
