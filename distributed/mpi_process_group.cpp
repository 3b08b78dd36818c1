// ProcessGroup over MPI_COMM_WORLD. Every MPI call's status is checked
// (MPI_ERRORS_RETURN) and becomes a petal::Error naming the call and rank.
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/error.hpp"
#include "distributed/mpi_backend.hpp"

namespace petal::distributed::detail {

namespace {

int world_rank() {
  int rank = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

void check_mpi(int status, const char* call) {
  if (status == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(status, text, &length);
  throw Error(str_cat(call, " failed on rank ", world_rank(), ": ", std::string(text, static_cast<std::size_t>(length))));
}

MPI_Datatype mpi_type(DType dtype, const char* op) {
  switch (dtype) {
    case DType::Float32: return MPI_FLOAT;
    case DType::Float64: return MPI_DOUBLE;
    case DType::Int64: return MPI_INT64_T;
    default: break;
  }
  throw DTypeError(str_cat(op, ": ", dtype_name(dtype), " tensors are not supported (float32, float64, int64)"));
}

// MPI counts are ints: larger buffers go in chunks of this many elements.
constexpr std::int64_t kChunk = std::int64_t{1} << 30;

// The tensor's values in host memory, contiguous: the tensor itself when it
// already is that, else a copy that write_back() returns to it.
struct HostView {
  Tensor& target;
  Tensor host;
  explicit HostView(Tensor& t) : target(t) {
    host = t.device().is_cpu() ? t.contiguous() : t.to(Device::cpu()).contiguous();
  }
  void write_back() {
    if (host.raw_data() != target.raw_data() || !target.device().is_cpu()) target.copy_(host);
  }
};

void scale_in_place(Tensor& host, double factor) {
  const std::int64_t n = host.numel();
  if (host.dtype() == DType::Float32) {
    auto* p = static_cast<float*>(host.raw_data());
    for (std::int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(p[i] * factor);
  } else if (host.dtype() == DType::Float64) {
    auto* p = static_cast<double*>(host.raw_data());
    for (std::int64_t i = 0; i < n; ++i) p[i] *= factor;
  } else {
    throw DTypeError("all_reduce: a mean of int64 tensors is not an integer; reduce with ReduceOp::Sum");
  }
}

class MpiProcessGroup final : public ProcessGroup {
 public:
  MpiProcessGroup() {
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised) {
      // One thread at a time calls MPI: the training loop's, or data
      // parallelism's communication thread while the loop runs backward.
      int provided = 0;
      check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided), "MPI_Init_thread");
      owns_mpi_ = true;
    }
    int level = MPI_THREAD_SINGLE;
    MPI_Query_thread(&level);
    serialized_ = level >= MPI_THREAD_SERIALIZED;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiProcessGroup() override {
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (owns_mpi_ && !finalised) MPI_Finalize();
  }
  MpiProcessGroup(const MpiProcessGroup&) = delete;
  MpiProcessGroup& operator=(const MpiProcessGroup&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }
  bool allows_background_thread() const override { return serialized_; }

  void barrier() override { check_mpi(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }

  void broadcast(Tensor& tensor, int root) override {
    PETAL_CHECK(tensor.defined(), ValueError, "broadcast: undefined tensor");
    PETAL_CHECK(root >= 0 && root < size_, ValueError, "broadcast: root ", root, " outside a group of ", size_);
    // Every rank must send the same number of bytes: a mismatch is found
    // before the data moves, on every rank.
    std::int64_t bytes = static_cast<std::int64_t>(tensor.nbytes());
    std::int64_t root_bytes = bytes;
    check_mpi(MPI_Bcast(&root_bytes, 1, MPI_INT64_T, root, MPI_COMM_WORLD), "MPI_Bcast");
    int agree = root_bytes == bytes ? 1 : 0;
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, &agree, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD), "MPI_Allreduce");
    PETAL_CHECK(agree == 1, ShapeError, "broadcast: the processes' tensors differ in size (rank ", rank_, ": ", bytes,
                " bytes, ", shape_str(tensor.shape()), "; root ", root, ": ", root_bytes, ")");
    HostView view(tensor);
    auto* data = static_cast<char*>(view.host.raw_data());
    for (std::int64_t at = 0; at < bytes; at += kChunk) {
      const int count = static_cast<int>(std::min(kChunk, bytes - at));
      check_mpi(MPI_Bcast(data + at, count, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
    }
    view.write_back();
  }

  void all_reduce(Tensor& tensor, ReduceOp op) override {
    PETAL_CHECK(tensor.defined(), ValueError, "all_reduce: undefined tensor");
    const MPI_Datatype type = mpi_type(tensor.dtype(), "all_reduce");
    HostView view(tensor);
    auto* data = static_cast<char*>(view.host.raw_data());
    const std::int64_t n = view.host.numel();
    const std::size_t element = view.host.nbytes() / static_cast<std::size_t>(std::max<std::int64_t>(n, 1));
    for (std::int64_t at = 0; at < n; at += kChunk) {
      const int count = static_cast<int>(std::min(kChunk, n - at));
      check_mpi(MPI_Allreduce(MPI_IN_PLACE, data + at * static_cast<std::int64_t>(element), count, type, MPI_SUM,
                              MPI_COMM_WORLD),
                "MPI_Allreduce");
    }
    if (op == ReduceOp::Mean) scale_in_place(view.host, 1.0 / size_);
    view.write_back();
  }

  void all_reduce(double* values, std::size_t count) override {
    for (std::size_t at = 0; at < count; at += static_cast<std::size_t>(kChunk)) {
      const int n = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(kChunk), count - at));
      check_mpi(MPI_Allreduce(MPI_IN_PLACE, values + at, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
    }
  }

  Tensor all_gather(const Tensor& tensor) override {
    PETAL_CHECK(tensor.defined() && tensor.dim() >= 1, ShapeError, "all_gather: needs a tensor with a first axis");
    const Tensor host = tensor.to(Device::cpu()).contiguous();
    const std::int64_t rows = host.size(0);
    const std::int64_t row_bytes = rows > 0 ? static_cast<std::int64_t>(host.nbytes()) / rows
                                            : static_cast<std::int64_t>(host.nbytes());
    // Each rank's rows and bytes per row, so a shape mismatch fails everywhere.
    std::int64_t mine[2] = {rows, rows > 0 ? row_bytes : -1};
    std::vector<std::int64_t> all(static_cast<std::size_t>(2 * size_));
    check_mpi(MPI_Allgather(mine, 2, MPI_INT64_T, all.data(), 2, MPI_INT64_T, MPI_COMM_WORLD), "MPI_Allgather");
    Shape row_shape(host.shape().begin() + 1, host.shape().end());
    std::int64_t per_row = 1;
    for (std::int64_t d : row_shape) per_row *= d;
    const std::int64_t expected_row_bytes = per_row * static_cast<std::int64_t>(dtype_size(host.dtype()));
    std::vector<int> counts(static_cast<std::size_t>(size_)), offsets(static_cast<std::size_t>(size_));
    std::int64_t total_rows = 0, offset = 0;
    for (int r = 0; r < size_; ++r) {
      const std::int64_t r_rows = all[static_cast<std::size_t>(2 * r)];
      const std::int64_t r_row_bytes = all[static_cast<std::size_t>(2 * r + 1)];
      PETAL_CHECK(r_rows == 0 || r_row_bytes == expected_row_bytes, ShapeError, "all_gather: rank ", r, " has rows of ",
                  r_row_bytes, " bytes, rank ", rank_, " of ", expected_row_bytes, " (", shape_str(host.shape()), ")");
      const std::int64_t bytes = r_rows * expected_row_bytes;
      PETAL_CHECK(offset + bytes <= INT_MAX, ValueError, "all_gather: more than 2 GiB in all");
      counts[static_cast<std::size_t>(r)] = static_cast<int>(bytes);
      offsets[static_cast<std::size_t>(r)] = static_cast<int>(offset);
      offset += bytes;
      total_rows += r_rows;
    }
    Shape out_shape = host.shape();
    out_shape[0] = total_rows;
    Tensor out = Tensor::empty(out_shape, host.dtype());
    check_mpi(MPI_Allgatherv(host.raw_data(), counts[static_cast<std::size_t>(rank_)], MPI_BYTE, out.raw_data(),
                             counts.data(), offsets.data(), MPI_BYTE, MPI_COMM_WORLD),
              "MPI_Allgatherv");
    return tensor.device().is_cpu() ? out : out.to(tensor.device());
  }

  [[noreturn]] void abort(int exit_code) override {
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::_Exit(exit_code);  // MPI_Abort does not return; this keeps [[noreturn]] honest
  }

 private:
  int rank_ = 0, size_ = 1;
  bool owns_mpi_ = false;
  bool serialized_ = false;
};

}  // namespace

bool mpi_compiled_in() { return true; }

std::shared_ptr<ProcessGroup> make_mpi_world() { return std::make_shared<MpiProcessGroup>(); }

}  // namespace petal::distributed::detail
