// Shared by every .cu file of the CUDA backend (nvcc only): error checks
// that throw petal::DeviceError, the per-device stream, the cuBLAS handle,
// launch geometry for grid-stride loops and the device guard.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "core/device.hpp"
#include "core/error.hpp"

namespace petal::cuda {

// Throws DeviceError "<what>: <CUDA error name>: <description>".
[[noreturn]] void throw_cuda_error(const std::string& what, cudaError_t status);
[[noreturn]] void throw_cublas_error(const std::string& what, cublasStatus_t status);

// Checks the status of the last kernel launch (a bad configuration, or an
// earlier asynchronous fault surfacing); `what` names the op and the shapes.
// With PETAL_CUDA_SYNC=1 in the environment it also waits for the kernel, so
// a fault inside it is reported with `what`.
void check_launch(const std::string& what);

// The stream every op of the current device runs on: one non-blocking
// stream per device, created on first use. Ops are ordered on it, so the
// caching allocator can reuse a freed block at once.
cudaStream_t current_stream();
// The stream of a given device (makes no device current).
cudaStream_t stream_for(int device_index);

// A cuBLAS handle of the current device bound to current_stream(), with the
// math mode that tf32_enabled() asks for.
cublasHandle_t cublas_handle();

// TF32 tensor-core math for float32 GEMMs (off by default: results then
// match a float32 reference to float32 rounding).
void set_tf32(bool enabled);
bool tf32_enabled();

// Grid size for a grid-stride loop over n elements: enough blocks to fill
// the device, capped so huge tensors loop instead of launching millions.
inline unsigned blocks_for(std::int64_t n, int threads = 256) {
  constexpr std::int64_t kMaxBlocks = 65535;
  const std::int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > kMaxBlocks ? kMaxBlocks : blocks));
}

// Makes a device current for a scope and restores the previous one.
class DeviceGuard {
 public:
  explicit DeviceGuard(int index);
  explicit DeviceGuard(Device device) : DeviceGuard(device.index) {}
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

}  // namespace petal::cuda

// PETAL_CUDA_CHECK(cudaMemcpyAsync(...), "to(cuda): [2, 3] float32") throws
// DeviceError naming `what` and the CUDA error string.
#define PETAL_CUDA_CHECK(expr, what)                                          \
  do {                                                                        \
    const cudaError_t petal_cuda_status_ = (expr);                            \
    if (petal_cuda_status_ != cudaSuccess) ::petal::cuda::throw_cuda_error((what), petal_cuda_status_); \
  } while (0)

#define PETAL_CUBLAS_CHECK(expr, what)                                        \
  do {                                                                        \
    const cublasStatus_t petal_cublas_status_ = (expr);                       \
    if (petal_cublas_status_ != CUBLAS_STATUS_SUCCESS)                        \
      ::petal::cuda::throw_cublas_error((what), petal_cublas_status_);        \
  } while (0)
