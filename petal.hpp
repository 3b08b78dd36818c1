// Umbrella header for programs built against an installed petal
// (pkg-config --cflags petal puts include/petal on the path).
#pragma once

#include "core/allocator.hpp"
#include "core/assets.hpp"
#include "core/error.hpp"
#include "core/random.hpp"
#include "core/tensor.hpp"
#include "core/thread_pool.hpp"
#include "kernels/ops.hpp"
#include "autograd/variable.hpp"
#include "autograd/functions.hpp"
