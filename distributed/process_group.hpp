// A group of processes that train together, over a standard communication
// library: MPI for tensors in host memory (Open MPI 4.1 from Debian). A
// process started by an MPI launcher (mpirun, srun) joins the launcher's
// world; any other process is a group of one, where every collective is the
// identity, so the same program runs with and without a launcher.
//
//   auto group = distributed::init_process_group();
//   group->all_reduce(t, distributed::ReduceOp::Mean);   // t in place
//
// Collectives are blocking and every process of the group must call them in
// the same order with tensors of the same shape and dtype (all_gather: the
// same shape after the first axis). Tensors on a CUDA device are staged
// through host memory (NCCL is not wired in yet, see docs/distributed.md).
#pragma once

#include <memory>
#include <string>

#include "core/tensor.hpp"

namespace petal::distributed {

enum class ReduceOp { Sum, Mean };

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "mpi" or "single".
  virtual std::string backend() const = 0;
  // Whether one other thread may run this group's collectives while the
  // thread that made the group does not (MPI_THREAD_SERIALIZED): data
  // parallelism's communication thread, which overlaps the backward pass.
  virtual bool allows_background_thread() const { return true; }
  virtual void barrier() = 0;
  // Every process's `tensor` becomes root's (same shape and dtype required).
  virtual void broadcast(Tensor& tensor, int root = 0) = 0;
  // Element-wise sum (or mean) over the processes, in place; float32, float64 or int64.
  virtual void all_reduce(Tensor& tensor, ReduceOp op = ReduceOp::Sum) = 0;
  // Sums host doubles across the processes, in place.
  virtual void all_reduce(double* values, std::size_t count) = 0;
  // Every process's tensor concatenated along the first axis, in rank order.
  virtual Tensor all_gather(const Tensor& tensor) = 0;
  // Ends every process of the group with this exit code (MPI_Abort under a
  // launcher): for a process that failed while the others may be waiting in
  // a collective, so that none hangs. Does not return.
  [[noreturn]] virtual void abort(int exit_code) = 0;
};

// Whether this process was started by an MPI launcher (Open MPI's mpirun, or
// srun/another PMI launcher), read from the launcher's environment.
bool launched_by_mpi();
// Whether this build of petal has MPI (meson -Dmpi).
bool mpi_available();

// The launcher's world when launched_by_mpi(), else a group of one. Joining
// MPI initialises it once per process (later calls return the same group);
// launched by MPI in a build without MPI is a petal::Error saying so.
std::shared_ptr<ProcessGroup> init_process_group();
// A group of this process alone.
std::shared_ptr<ProcessGroup> single_process_group();

// Whether this build has NCCL (the CUDA backend and the toolkit's NCCL).
bool nccl_available();
// The group for tensors on `device`: for a CUDA device, an NCCL communicator
// over init_process_group()'s processes on that device (one GPU per process;
// host tensors and double sums still go over MPI); for the CPU,
// init_process_group(). DeviceError without NCCL.
std::shared_ptr<ProcessGroup> init_process_group(Device device);

}  // namespace petal::distributed
