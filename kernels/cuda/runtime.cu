// The CUDA device backend: registration with core (allocator, copies,
// strided gathers), the pinned host memory hook and cuda_runtime_api.hpp.
#include <array>
#include <mutex>

#include "core/storage.hpp"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_runtime_api.hpp"
#include "kernels/cuda/device_allocator.hpp"
#include "kernels/cuda/strided_index.hpp"

namespace petal::cuda {
namespace {

// ---- devices ----
int query_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // no driver or no device: not an error for a query
    return 0;
  }
  return count;
}

// ---- asynchronous copies from page-locked memory ----
// A host -> device copy from page-locked memory is read by DMA after the call
// returns. An event per device, recorded after each such copy, lets the pinned
// allocator wait before it hands a buffer out again (or frees it), so a batch
// buffer is never rewritten while a copy may still read it.
struct PinnedReads {
  std::mutex mutex;
  std::array<cudaEvent_t, 64> events{};
  std::array<bool, 64> pending{};
};
PinnedReads& pinned_reads() {
  static auto* reads = new PinnedReads();  // never destroyed (events outlive static destructors)
  return *reads;
}

void note_pinned_read(int device_index, cudaStream_t stream, const std::string& what) {
  PinnedReads& r = pinned_reads();
  std::lock_guard<std::mutex> lock(r.mutex);
  cudaEvent_t& event = r.events.at(device_index);
  if (!event) PETAL_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), what);
  PETAL_CUDA_CHECK(cudaEventRecord(event, stream), what);
  r.pending[device_index] = true;
}

// Waits until every copy from page-locked memory issued so far has read its
// source. Errors are left for the next op to report (a failed wait means the
// device is unusable, and no copy is running any more).
void wait_pinned_reads(void*) {
  std::array<cudaEvent_t, 64> events{};
  {
    PinnedReads& r = pinned_reads();
    std::lock_guard<std::mutex> lock(r.mutex);
    for (std::size_t d = 0; d < events.size(); ++d)
      if (r.pending[d]) events[d] = r.events[d];
  }
  for (cudaEvent_t event : events)
    if (event && cudaEventSynchronize(event) != cudaSuccess) cudaGetLastError();
}

void* pinned_allocate(std::size_t nbytes) {
  void* ptr = nullptr;
  if (cudaHostAlloc(&ptr, nbytes, cudaHostAllocPortable) != cudaSuccess) {
    cudaGetLastError();
    return nullptr;
  }
  return ptr;
}
void pinned_free(void* ptr) {
  wait_pinned_reads(ptr);
  cudaFreeHost(ptr);
}

// The device count, queried once. The first query that finds a device also
// makes the pinned host allocator page-locked (not at library load: that
// would start the CUDA runtime in every program, GPU or not).
int cached_device_count() {
  static const int count = [] {
    const int n = query_device_count();
    if (n > 0) set_pinned_host_memory_hook({&pinned_allocate, &pinned_free, &wait_pinned_reads});
    return n;
  }();
  return count;
}

void check_device(Device device, const char* what) {
  const int count = cached_device_count();
  PETAL_CHECK(count > 0, DeviceError, what, ": no CUDA device is available (tensor on ", device.str(),
              "; the CUDA driver reports no device)");
  PETAL_CHECK(device.index >= 0 && device.index < count, DeviceError, what, ": ", device.str(),
              " does not exist (", count, " CUDA device", count == 1 ? "" : "s", ")");
}

// ---- backend hooks ----
Allocator* backend_allocator(int device_index) {
  check_device(Device::cuda(device_index), "CUDA allocator");
  return &device_allocator(device_index);
}

bool is_page_locked(const void* host) {
  cudaPointerAttributes attributes{};
  if (cudaPointerGetAttributes(&attributes, host) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return attributes.type == cudaMemoryTypeHost;
}

void backend_copy(void* dst, Device dst_device, const void* src, Device src_device, std::size_t nbytes) {
  const std::string what = str_cat("copy of ", nbytes, " bytes ", src_device.str(), " -> ", dst_device.str());
  if (dst_device.is_cuda()) check_device(dst_device, what.c_str());
  if (src_device.is_cuda()) check_device(src_device, what.c_str());
  if (src_device.is_cpu()) {
    // Host -> device on the device's stream, ordered after the ops queued
    // there, without waiting: from pageable memory the call returns once the
    // source has been staged; page-locked memory is read by DMA later, and the
    // pinned allocator waits for that (wait_pinned_reads) before reusing it.
    DeviceGuard guard(dst_device);
    const cudaStream_t stream = stream_for(dst_device.index);
    PETAL_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, stream), what);
    if (is_page_locked(src)) note_pinned_read(dst_device.index, stream, what);
    return;
  }
  if (dst_device.is_cpu()) {
    // Device -> host: the host reads the data right after, so wait.
    DeviceGuard guard(src_device);
    const cudaStream_t stream = stream_for(src_device.index);
    PETAL_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, stream), what);
    PETAL_CUDA_CHECK(cudaStreamSynchronize(stream), what);
    return;
  }
  if (dst_device == src_device) {
    DeviceGuard guard(src_device);
    PETAL_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, stream_for(src_device.index)), what);
    return;
  }
  // Between devices: the destination block may still be in use by work queued
  // on its device, and the source is written by work queued on its own.
  PETAL_CUDA_CHECK(cudaStreamSynchronize(stream_for(dst_device.index)), what);
  DeviceGuard guard(src_device);
  const cudaStream_t stream = stream_for(src_device.index);
  PETAL_CUDA_CHECK(cudaMemcpyPeerAsync(dst, dst_device.index, src, src_device.index, nbytes, stream), what);
  PETAL_CUDA_CHECK(cudaStreamSynchronize(stream), what);
}

template <class E>
__global__ void gather_kernel(E* dst, const E* src, StridedIndexer<2> ix, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * std::int64_t{blockDim.x} + threadIdx.x; i < n;
       i += std::int64_t{blockDim.x} * gridDim.x) {
    std::int64_t off[2];
    ix.offsets(i, off);
    dst[off[0]] = src[off[1]];
  }
}

void backend_strided_copy(void* dst, const void* src, const Shape& shape, const Strides& src_strides,
                          std::size_t itemsize, Device device) {
  const std::int64_t n = shape_numel(shape);
  if (n == 0) return;
  const std::string what = str_cat("strided copy of ", shape_str(shape), " (strides ", shape_str(src_strides),
                                   ") on ", device.str());
  check_device(device, what.c_str());
  const Strides dst_strides[2] = {contiguous_strides(shape), src_strides};
  const StridedIndexer<2> ix = make_indexer<2>("strided copy", shape, dst_strides);
  DeviceGuard guard(device);
  const cudaStream_t stream = stream_for(device.index);
  const unsigned blocks = blocks_for(n);
  switch (itemsize) {
    case 1: gather_kernel<<<blocks, 256, 0, stream>>>(static_cast<std::uint8_t*>(dst), static_cast<const std::uint8_t*>(src), ix, n); break;
    case 2: gather_kernel<<<blocks, 256, 0, stream>>>(static_cast<std::uint16_t*>(dst), static_cast<const std::uint16_t*>(src), ix, n); break;
    case 4: gather_kernel<<<blocks, 256, 0, stream>>>(static_cast<std::uint32_t*>(dst), static_cast<const std::uint32_t*>(src), ix, n); break;
    case 8: gather_kernel<<<blocks, 256, 0, stream>>>(static_cast<std::uint64_t*>(dst), static_cast<const std::uint64_t*>(src), ix, n); break;
    default: throw DeviceError(str_cat(what, ": unsupported element size ", itemsize));
  }
  check_launch(what);
}

bool register_backend() {
  DeviceBackend backend;
  backend.allocator = &backend_allocator;
  backend.copy = &backend_copy;
  backend.device_count = &cached_device_count;
  backend.strided_copy = &backend_strided_copy;
  register_device_backend(DeviceType::CUDA, backend);
  return true;
}

// Registers at library load (no CUDA call happens here), so Tensor::to and
// factories find the backend before any op ran.
const bool g_registered = register_backend();

}  // namespace

bool built_with_cuda() { return true; }

bool ensure_registered() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (!has_device_backend(DeviceType::CUDA)) register_backend();
  });
  return g_registered;
}

int device_count() { return cached_device_count(); }
bool is_available() { return cached_device_count() > 0; }

void synchronize(int device_index) {
  check_device(Device::cuda(device_index), "cuda::synchronize");
  DeviceGuard guard(device_index);
  PETAL_CUDA_CHECK(cudaStreamSynchronize(stream_for(device_index)), str_cat("synchronize cuda:", device_index));
}

AllocatorStats memory_stats(int device_index) {
  check_device(Device::cuda(device_index), "cuda::memory_stats");
  return device_allocator(device_index).stats();
}

void empty_cache(int device_index) {
  check_device(Device::cuda(device_index), "cuda::empty_cache");
  device_allocator(device_index).empty_cache();
}

void reset_peak_memory(int device_index) {
  check_device(Device::cuda(device_index), "cuda::reset_peak_memory");
  device_allocator(device_index).reset_peak();
}

std::string device_name(int device_index) {
  check_device(Device::cuda(device_index), "cuda::device_name");
  cudaDeviceProp prop{};
  PETAL_CUDA_CHECK(cudaGetDeviceProperties(&prop, device_index), str_cat("cudaGetDeviceProperties(", device_index, ")"));
  return str_cat(prop.name, " (sm_", prop.major, prop.minor, ")");
}

void set_tf32_enabled(bool enabled) { set_tf32(enabled); }
bool tf32_is_enabled() { return tf32_enabled(); }

}  // namespace petal::cuda
