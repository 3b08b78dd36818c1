// Streams, cuBLAS handles and error reporting of the CUDA backend.
#include "kernels/cuda/cuda_common.cuh"

#include <array>
#include <atomic>
#include <cstdlib>
#include <mutex>

namespace petal::cuda {
namespace {

constexpr int kMaxDevices = 64;

struct PerDevice {
  std::once_flag stream_once;
  cudaStream_t stream = nullptr;
  std::once_flag cublas_once;
  cublasHandle_t cublas = nullptr;
};

std::array<PerDevice, kMaxDevices>& per_device() {
  // Never destroyed: streams and handles live until the process ends (the
  // driver may already be shutting down when static destructors run).
  static auto* table = new std::array<PerDevice, kMaxDevices>();
  return *table;
}

std::atomic<bool> g_tf32{false};

int current_device_index() {
  int index = 0;
  PETAL_CUDA_CHECK(cudaGetDevice(&index), "cudaGetDevice");
  PETAL_CHECK(index >= 0 && index < kMaxDevices, DeviceError, "CUDA device ", index, " is beyond the ", kMaxDevices,
              " devices petal supports");
  return index;
}

}  // namespace

void throw_cuda_error(const std::string& what, cudaError_t status) {
  cudaGetLastError();  // clear a non-sticky error so the next call starts clean
  throw DeviceError(str_cat(what, ": CUDA error ", cudaGetErrorName(status), ": ", cudaGetErrorString(status)));
}

void throw_cublas_error(const std::string& what, cublasStatus_t status) {
  throw DeviceError(str_cat(what, ": cuBLAS error ", cublasGetStatusName(status), ": ",
                            cublasGetStatusString(status)));
}

// PETAL_CUDA_SYNC=1 waits for every kernel in check_launch, so a fault
// inside a kernel is reported with that kernel's op and shapes instead of at
// the next synchronisation (debugging; slow).
bool sync_after_launch() {
  static const bool enabled = [] {
    const char* v = std::getenv("PETAL_CUDA_SYNC");
    return v != nullptr && v[0] != '\0' && v[0] != '0';
  }();
  return enabled;
}

void check_launch(const std::string& what) {
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess) throw_cuda_error(str_cat(what, " (kernel launch)"), status);
  if (sync_after_launch()) PETAL_CUDA_CHECK(cudaStreamSynchronize(current_stream()), str_cat(what, " (kernel run)"));
}

cudaStream_t stream_for(int device_index) {
  PETAL_CHECK(device_index >= 0 && device_index < kMaxDevices, DeviceError, "CUDA device ", device_index,
              " is out of range");
  PerDevice& d = per_device()[device_index];
  std::call_once(d.stream_once, [&] {
    DeviceGuard guard(device_index);
    PETAL_CUDA_CHECK(cudaStreamCreateWithFlags(&d.stream, cudaStreamNonBlocking),
                     str_cat("creating the stream of cuda:", device_index));
  });
  return d.stream;
}

cudaStream_t current_stream() { return stream_for(current_device_index()); }

cublasHandle_t cublas_handle() {
  const int index = current_device_index();
  PerDevice& d = per_device()[index];
  std::call_once(d.cublas_once, [&] {
    PETAL_CUBLAS_CHECK(cublasCreate(&d.cublas), str_cat("creating the cuBLAS handle of cuda:", index));
  });
  PETAL_CUBLAS_CHECK(cublasSetStream(d.cublas, stream_for(index)), "cublasSetStream");
  PETAL_CUBLAS_CHECK(cublasSetMathMode(d.cublas, g_tf32.load() ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
                     "cublasSetMathMode");
  return d.cublas;
}

void set_tf32(bool enabled) { g_tf32.store(enabled); }
bool tf32_enabled() { return g_tf32.load(); }

DeviceGuard::DeviceGuard(int index) {
  PETAL_CUDA_CHECK(cudaGetDevice(&previous_), "cudaGetDevice");
  if (previous_ != index) PETAL_CUDA_CHECK(cudaSetDevice(index), str_cat("cudaSetDevice(", index, ")"));
}

DeviceGuard::~DeviceGuard() {
  int now = previous_;
  if (cudaGetDevice(&now) == cudaSuccess && now != previous_) cudaSetDevice(previous_);
}

}  // namespace petal::cuda
