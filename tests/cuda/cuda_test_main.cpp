// main() of the GPU test executables: exit code 77 (meson's "skipped") when
// there is no CUDA device, since doctest cannot skip at run time.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "kernels/cuda/cuda_runtime_api.hpp"

int main(int argc, char** argv) {
  if (petal::cuda::device_count() == 0) {
    std::printf("no CUDA device: skipped\n");
    return 77;
  }
  std::printf("CUDA device 0: %s\n", petal::cuda::device_name(0).c_str());
  doctest::Context context(argc, argv);
  return context.run();
}
