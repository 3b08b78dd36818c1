// cuda_runtime_api.hpp in a build without the CUDA backend: no devices, and
// every device query is a DeviceError that says how to get the backend.
#include "core/error.hpp"
#include "kernels/cuda/cuda_runtime_api.hpp"

namespace petal::cuda {
namespace {
[[noreturn]] void unavailable(const char* what) {
  throw DeviceError(str_cat("cuda::", what, ": petal was built without CUDA (configure with -Dcuda=enabled and nvcc)"));
}
}  // namespace

bool built_with_cuda() { return false; }
bool ensure_registered() { return false; }
int device_count() { return 0; }
bool is_available() { return false; }
void synchronize(int) { unavailable("synchronize"); }
AllocatorStats memory_stats(int) { unavailable("memory_stats"); }
void empty_cache(int) { unavailable("empty_cache"); }
void reset_peak_memory(int) { unavailable("reset_peak_memory"); }
std::string device_name(int) { unavailable("device_name"); }
void set_tf32_enabled(bool) {}
bool tf32_is_enabled() { return false; }

}  // namespace petal::cuda
