// ProcessGroup for tensors on CUDA devices over NCCL, one device per process.
// NCCL's unique id travels from rank 0 over the host group (MPI). Collectives
// of CUDA tensors run on petal's stream of the device, which is then
// synchronised (the next host-side step may read the result); host tensors,
// double sums, barriers and aborts go to the host group.
//
// Compiled wherever the CUDA backend is built; no GPU was available when it
// was written, so its runtime checks are scripts/gpu_check.sh's NCCL run.
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.hpp"
#include "distributed/nccl_backend.hpp"
#include "kernels/cuda/cuda_common.cuh"

namespace petal::distributed::detail {

namespace {

void check_nccl(ncclResult_t status, const char* call, int rank) {
  if (status == ncclSuccess) return;
  throw DeviceError(str_cat(call, " failed on rank ", rank, ": ", ncclGetErrorString(status)));
}

void check_cuda(cudaError_t status, const char* call, int rank) {
  if (status == cudaSuccess) return;
  throw DeviceError(str_cat(call, " failed on rank ", rank, ": ", cudaGetErrorString(status)));
}

ncclDataType_t nccl_type(DType dtype, const char* op) {
  switch (dtype) {
    case DType::Float32: return ncclFloat32;
    case DType::Float64: return ncclFloat64;
    case DType::Int64: return ncclInt64;
    default: break;
  }
  throw DTypeError(str_cat(op, ": ", dtype_name(dtype), " tensors are not supported (float32, float64, int64)"));
}

class NcclProcessGroup final : public ProcessGroup {
 public:
  NcclProcessGroup(std::shared_ptr<ProcessGroup> host, int device) : host_(std::move(host)), device_(device) {
    PETAL_CHECK(host_ != nullptr, ValueError, "NCCL process group: null host group");
    const int rank = host_->rank();
    check_cuda(cudaSetDevice(device_), "cudaSetDevice", rank);
    ncclUniqueId id;
    std::memset(&id, 0, sizeof(id));
    if (rank == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId", rank);
    Tensor bytes = Tensor::empty({static_cast<std::int64_t>(sizeof(id))}, DType::UInt8);
    std::memcpy(bytes.raw_data(), &id, sizeof(id));
    host_->broadcast(bytes, 0);
    std::memcpy(&id, bytes.raw_data(), sizeof(id));
    check_nccl(ncclCommInitRank(&comm_, host_->size(), id, rank), "ncclCommInitRank", rank);
  }
  ~NcclProcessGroup() override {
    if (comm_ != nullptr) ncclCommDestroy(comm_);
  }
  NcclProcessGroup(const NcclProcessGroup&) = delete;
  NcclProcessGroup& operator=(const NcclProcessGroup&) = delete;

  int rank() const override { return host_->rank(); }
  int size() const override { return host_->size(); }
  std::string backend() const override { return "nccl"; }
  // The communication thread would share the device stream: collectives stay on the caller's thread.
  bool allows_background_thread() const override { return false; }
  void barrier() override { host_->barrier(); }

  void broadcast(Tensor& tensor, int root) override {
    if (!on_device(tensor, "broadcast")) return host_->broadcast(tensor, root);
    check_nccl(ncclBroadcast(tensor.raw_data(), tensor.raw_data(), tensor.nbytes(), ncclUint8, root, comm_, stream()),
               "ncclBroadcast", rank());
    synchronize();
  }

  void all_reduce(Tensor& tensor, ReduceOp op) override {
    if (!on_device(tensor, "all_reduce")) return host_->all_reduce(tensor, op);
    const ncclDataType_t type = nccl_type(tensor.dtype(), "all_reduce");
    PETAL_CHECK(op == ReduceOp::Sum || tensor.dtype() != DType::Int64, DTypeError,
                "all_reduce: a mean of int64 tensors is not an integer; reduce with ReduceOp::Sum");
    check_nccl(ncclAllReduce(tensor.raw_data(), tensor.raw_data(), static_cast<std::size_t>(tensor.numel()), type,
                             op == ReduceOp::Mean ? ncclAvg : ncclSum, comm_, stream()),
               "ncclAllReduce", rank());
    synchronize();
  }

  void all_reduce(double* values, std::size_t count) override { host_->all_reduce(values, count); }

  // Row counts may differ between ranks: through the host group.
  Tensor all_gather(const Tensor& tensor) override {
    if (!tensor.defined() || tensor.device().is_cpu()) return host_->all_gather(tensor);
    return host_->all_gather(tensor.to(Device::cpu())).to(tensor.device());
  }

  [[noreturn]] void abort(int exit_code) override {
    if (comm_ != nullptr) ncclCommAbort(comm_);
    host_->abort(exit_code);
    std::_Exit(exit_code);  // host_->abort does not return; this keeps [[noreturn]] visible here
  }

 private:
  bool on_device(const Tensor& tensor, const char* op) const {
    PETAL_CHECK(tensor.defined(), ValueError, op, ": undefined tensor");
    if (!tensor.device().is_cuda()) return false;
    PETAL_CHECK(tensor.device().index == device_, DeviceError, op, ": the tensor is on ", tensor.device().str(),
                ", this process's NCCL communicator on cuda:", device_);
    // The collectives work in place, and a strided write back into a CUDA
    // tensor does not exist: refused before any rank communicates.
    PETAL_CHECK(tensor.is_contiguous(), ValueError, op, ": a non-contiguous CUDA tensor of shape ",
                shape_str(tensor.shape()), "; pass a contiguous() copy and copy the result back");
    return true;
  }
  cudaStream_t stream() const { return petal::cuda::stream_for(device_); }
  // Waits for the collective.
  void synchronize() { check_cuda(cudaStreamSynchronize(stream()), "cudaStreamSynchronize", rank()); }

  std::shared_ptr<ProcessGroup> host_;
  int device_;
  ncclComm_t comm_ = nullptr;
};

}  // namespace

bool nccl_compiled_in() { return true; }

std::shared_ptr<ProcessGroup> make_nccl_group(std::shared_ptr<ProcessGroup> host, int device) {
  return std::make_shared<NcclProcessGroup>(std::move(host), device);
}

}  // namespace petal::distributed::detail
