// Moved to kernels/portable/host_device.hpp (below both backends); this
// forwarding header keeps the convolution bodies and the installed header
// set compiling until they include the new path.
#pragma once

#include "kernels/portable/host_device.hpp"
