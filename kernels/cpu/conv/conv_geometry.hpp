// The convolution geometry as the CPU kernels see it: the backend-neutral
// kernels::ConvGeometry, and the output size from which they stream.
#pragma once

#include <cstdint>

#include "kernels/portable/conv_geometry.hpp"

namespace petal::cpu {

using kernels::ConvGeometry;

// Output size from which a forward pass streams its output past the caches:
// the size of the L3 cache on these machines (32 MiB), so a following layer
// could not have found the output in cache anyway.
inline constexpr std::int64_t kStreamOutputThresholdBytes = std::int64_t{32} << 20;

}  // namespace petal::cpu
