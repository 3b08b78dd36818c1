// bench/gemm --device cuda: petal's matmul on a CUDA device against
// cublasSgemm called directly on the same device buffers, in the same run.
// Compiled only when petal is built with CUDA (gemm_cuda.cpp).
#pragma once

namespace petal::bench {

// The whole --device cuda run (flags as gemm's; see its --help). Exit code.
int gemm_cuda_main(int argc, char** argv);

}  // namespace petal::bench
