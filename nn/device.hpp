// Choosing where a model runs: `--device cpu|cuda[:N]` of the examples and
// benchmarks, checked once up front so that a missing CUDA build or GPU is
// one clear DeviceError instead of a failure deep inside the first op.
#pragma once

#include <string>
#include <string_view>

#include "core/device.hpp"

namespace petal::nn {

// Throws DeviceError naming `who` unless tensors can live on `device` in this
// build on this machine: the CPU always; a CUDA device when petal was built
// with the CUDA backend and the device index exists.
void require_device(Device device, std::string_view who);

// Device::parse(name) ("cpu", "cuda", "cuda:1") followed by require_device.
Device usable_device(const std::string& name, std::string_view who);

}  // namespace petal::nn
