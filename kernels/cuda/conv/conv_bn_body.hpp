// Training fusion of a convolution and batch norm's statistics on CUDA: the
// depthwise and direct-conv kernels run as the "term" of the column
// reduction (reduce_body.hpp) over [output pixels, output channels]: each
// (pixel, channel) is visited exactly once, computes the convolution output,
// stores it and contributes (y, y^2) to the channel's moments. The batch
// statistics then need no second read of the convolution's output.
#pragma once

#include <cstdint>

#include "kernels/cuda/conv/batch_norm_body.hpp"
#include "kernels/cuda/conv/conv_body.hpp"
#include "kernels/cuda/conv/depthwise_body.hpp"

namespace petal::cuda_body {

template <class T, class G, bool kDepthwise>
struct ConvOutputMomentsTerm {
  const T *x, *w;
  T* y;  // [pixels, out_c], written once per (pixel, channel)
  G g;
  PETAL_HD Sum2 operator()(std::int64_t p, std::int64_t oc) const {
    using I = IndexOf<G>;
    const I o = I(p) * g.out_c + I(oc);
    T v;
    if constexpr (kDepthwise) {
      v = depthwise_output_element(x, w, g, o);
    } else {
      v = conv2d_direct_element(x, w, g, o);
    }
    y[o] = v;
    return {double(v), double(v) * double(v)};
  }
};

}  // namespace petal::cuda_body
