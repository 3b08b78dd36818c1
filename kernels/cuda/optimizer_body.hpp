// The per-element optimizer updates, shared by the CPU ops (kernels/
// ops_optimizer.cpp) and the CUDA kernels: the float32 Keras forms that
// nn/optimizers.cpp has always used, operation for operation, so the CPU
// results do not change. RMSprop and Adagrad follow Keras 3's
// keras/src/optimizers/rmsprop.py and adagrad.py in the same way.
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

struct RmspropParams {
  float lr = 0;
  float rho = 0;
  float one_minus_rho = 0;  // float(1 - rho), in double first
  float momentum = 0;
  float epsilon = 0;
  bool use_momentum = false;  // momentum != 0 (as a double)
  bool centered = false;
  bool decay = false;
  float decay_factor = 1;
};

// Keras 3: velocity = rho * velocity + (1 - rho) * g^2; centered:
// average = rho * average + (1 - rho) * g, denominator = velocity - average^2
// + epsilon, else velocity + epsilon; increment = lr * g / sqrt(denominator);
// momentum: buf = momentum * buf + increment, w -= buf; else w -= increment.
// mom and avg are read and written only when used.
PETAL_HD_INLINE void rmsprop_step(float& w, float g, float& vel, float& mom, float& avg, const RmspropParams& p) {
  if (p.decay) w *= p.decay_factor;
  vel = p.rho * vel + p.one_minus_rho * (g * g);
  float denominator;
  if (p.centered) {
    avg = p.rho * avg + p.one_minus_rho * g;
    denominator = vel - avg * avg + p.epsilon;
  } else {
    denominator = vel + p.epsilon;
  }
  const float increment = p.lr * g / math_sqrt(denominator);
  if (p.use_momentum) {
    mom = p.momentum * mom + increment;
    w -= mom;
  } else {
    w -= increment;
  }
}

struct AdagradParams {
  float lr = 0;
  float epsilon = 0;
  bool decay = false;
  float decay_factor = 1;
};

// Keras 3: accumulator += g^2; w -= lr * g / sqrt(accumulator + epsilon).
PETAL_HD_INLINE void adagrad_step(float& w, float g, float& acc, const AdagradParams& p) {
  if (p.decay) w *= p.decay_factor;
  acc += g * g;
  w -= p.lr * g / math_sqrt(acc + p.epsilon);
}

}  // namespace petal::cuda
