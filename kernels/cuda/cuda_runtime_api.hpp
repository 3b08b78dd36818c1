// The CUDA backend as seen from plain C++ (nn, examples, bench, tests): no
// CUDA types. Every function exists in every build; without CUDA support
// (-Dcuda=disabled or no nvcc) device_count() is 0, is_available() false and
// the rest throw DeviceError, so callers need no #ifdef.
#pragma once

#include <string>

#include "core/allocator.hpp"

namespace petal::cuda {

// True when petal was built with the CUDA backend.
bool built_with_cuda();
// Usable CUDA devices (0 without a driver, a device or the backend).
int device_count();
bool is_available();
// Waits until every queued op of the device has finished; errors of
// asynchronous kernels surface here as DeviceError.
void synchronize(int device_index = 0);
// The device allocator's counters (in use, cached, peak, ...).
AllocatorStats memory_stats(int device_index = 0);
// Returns every cached block of the device to the driver.
void empty_cache(int device_index = 0);
// Zeroes the peak counter (to measure one phase).
void reset_peak_memory(int device_index = 0);
// Name and compute capability, e.g. "NVIDIA H200 (sm_90)".
std::string device_name(int device_index = 0);
// TF32 tensor-core math for float32 GEMMs (default off).
void set_tf32_enabled(bool enabled);
bool tf32_is_enabled();
// Copies from page-locked host memory (Tensor::empty_pinned, once a device
// was found) to a device do not wait for the transfer: do not write into such
// a tensor after moving it; let it go and take a new one (the pinned cache
// waits for pending copies before it hands a buffer out again). Copies from
// ordinary host memory may be rewritten at once.
//
// Registers the CUDA device backend with core (allocator, copies). Runs at
// library load; calling it again does nothing. False without the backend.
bool ensure_registered();

}  // namespace petal::cuda
