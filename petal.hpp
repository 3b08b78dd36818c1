// Umbrella header for programs built against an installed petal:
//   #include <petal.hpp>
// or one part of it, e.g. #include <petal/nn/safetensors.hpp> (pkg-config
// --cflags petal puts include/ on the path). Installed copies include
// <petal/core/...>; scripts/install_headers.py writes them from these sources.
#pragma once

// core: tensors, errors, memory, threads, random numbers, assets
#include "core/allocator.hpp"
#include "core/assets.hpp"
#include "core/atomic_file.hpp"
#include "core/device.hpp"
#include "core/dtype.hpp"
#include "core/error.hpp"
#include "core/random.hpp"
#include "core/shape.hpp"
#include "core/storage.hpp"
#include "core/tensor.hpp"
#include "core/thread_pool.hpp"

// kernels: Tensor-level ops; ISA choice and GEMM for kernel work; the CUDA
// backend's device queries (present in every build)
#include "kernels/cpu/gemm/reference_gemm.hpp"
#include "kernels/cpu/gemm/sgemm.hpp"
#include "kernels/cpu/isa.hpp"
#include "kernels/cuda/cuda_runtime_api.hpp"
#include "kernels/ops.hpp"
#include "kernels/ops_conv.hpp"

// autograd: the tape, differentiable functions, gradient checks
#include "autograd/conv_functions.hpp"
#include "autograd/functions.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/variable.hpp"

// data: TFRecord, tf.train.Example, images, datasets
#include "data/crc32c.hpp"
#include "data/dataset.hpp"
#include "data/example.hpp"
#include "data/file_list.hpp"
#include "data/flowers.hpp"
#include "data/image.hpp"
#include "data/image_io.hpp"
#include "data/image_ops.hpp"
#include "data/jpeg.hpp"
#include "data/png.hpp"
#include "data/sample_map.hpp"
#include "data/tfrecord.hpp"

// nn: the Keras-shaped API (layers, models, losses, optimizers, trainer)
#include "nn/dataset_source.hpp"
#include "nn/json.hpp"
#include "nn/mobilenet_v2.hpp"
#include "nn/nn.hpp"
