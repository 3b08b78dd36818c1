// The per-element optimizer updates, shared by the CPU ops (kernels/
// ops_optimizer.cpp) and the CUDA kernels: the float32 Keras forms that
// nn/optimizers.cpp has always used, operation for operation, so the CPU
// results do not change.
#pragma once

#include "kernels/cuda/device_math.hpp"
#include "kernels/cuda/host_device.hpp"

namespace petal::cuda {

struct SgdParams {
  float lr = 0;
  float momentum = 0;
  bool use_momentum = false;  // momentum != 0 (as a double)
  bool nesterov = false;
  bool decay = false;         // weight_decay > 0
  float decay_factor = 1;     // float(1 - lr * weight_decay)
};

// w, g and the momentum buffer entry of one element.
PETAL_HD_INLINE void sgd_step(float& w, float g, float& buf, const SgdParams& p) {
  if (p.decay) w *= p.decay_factor;
  if (!p.use_momentum) {
    w -= p.lr * g;
    return;
  }
  buf = p.momentum * buf - p.lr * g;
  w += p.nesterov ? p.momentum * buf - p.lr * g : buf;
}

struct AdamParams {
  float lr_t = 0;  // float(lr * sqrt(1 - beta2^t) / (1 - beta1^t)), in double first
  float one_minus_beta1 = 0;
  float one_minus_beta2 = 0;
  float epsilon = 0;
  bool decay = false;
  float decay_factor = 1;
};

PETAL_HD_INLINE void adam_step(float& w, float g, float& m, float& v, const AdamParams& p) {
  if (p.decay) w *= p.decay_factor;
  m += (g - m) * p.one_minus_beta1;
  v += (g * g - v) * p.one_minus_beta2;
  w -= p.lr_t * m / (math_sqrt(v) + p.epsilon);
}

}  // namespace petal::cuda
