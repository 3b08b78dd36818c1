// Includes kernels/cpu/simd.hpp for the per-ISA sources of this folder.
#pragma once

#include "kernels/cpu/simd.hpp"
