// bench/gemm --device cuda (see gemm_cuda.hpp). Both sides multiply the same
// row-major float32 matrices living on the device: petal through ops::matmul
// (its cuBLAS path, with petal's allocation of the output and its checks),
// the reference through one cublasSgemm on raw pointers (C^T = B^T A^T in
// cuBLAS's column-major terms). FP32 math on both sides by default; --tf32
// switches both to TF32 tensor cores. Each timed sample runs enough calls to
// last about a millisecond and ends with a device synchronisation; the median
// of the samples is reported. The largest difference between the two results
// is printed as a sanity check.
#include "bench/gemm_cuda.hpp"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/bench_common.hpp"
#include "bench/gemm_shapes.hpp"
#include "core/error.hpp"
#include "core/tensor.hpp"
#include "kernels/cuda/cuda_runtime_api.hpp"
#include "kernels/ops.hpp"
#include "nn/device.hpp"

namespace petal::bench {
namespace {

std::vector<GemmShape> cuda_shapes(bool quick) {
  if (quick) {
    std::vector<GemmShape> small = square_gemm_shapes({1024});
    small.push_back(quick_mobilenet_v2_gemm_shape());
    return small;
  }
  return gemm_shapes({1024, 2048, 4096});
}

void check_cublas(cublasStatus_t status, const char* what) {
  PETAL_CHECK(status == CUBLAS_STATUS_SUCCESS, DeviceError, "gemm --device cuda: ", what, " failed (cuBLAS status ",
              static_cast<int>(status), ")");
}

void check_cuda(cudaError_t status, const char* what) {
  PETAL_CHECK(status == cudaSuccess, DeviceError, "gemm --device cuda: ", what, ": ", cudaGetErrorString(status));
}

// Seconds per call: median over `samples` of a batch of calls sized to last
// about a millisecond, each batch ended by `sync`.
template <class Call, class Sync>
double seconds_per_call(Call&& call, Sync&& sync, int samples) {
  call();
  sync();
  const double once = median_seconds([&] { call(); sync(); }, 3, 1);
  const int inner = std::clamp(static_cast<int>(1e-3 / std::max(once, 1e-7)), 1, 200);
  const double s = median_seconds(
      [&] {
        for (int i = 0; i < inner; ++i) call();
        sync();
      },
      samples, 1);
  return s / inner;
}

double max_abs_difference(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.to_vector<float>(), y = b.to_vector<float>();
  double worst = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::abs(static_cast<double>(x[i]) - y[i]));
  return worst;
}

}  // namespace

int gemm_cuda_main(int argc, char** argv) {
  const bool quick = has_flag(argc, argv, "--quick");
  const bool json = has_flag(argc, argv, "--json");
  const bool tf32 = has_flag(argc, argv, "--tf32");
  const int samples = std::max(1, std::atoi(flag_value(argc, argv, "--repeats", quick ? "3" : "9").c_str()));
  const std::string only = flag_value(argc, argv, "--only", "");
  const Device device = nn::usable_device(flag_value(argc, argv, "--device", "cuda"), "gemm");
  check_cuda(cudaSetDevice(device.index), "cudaSetDevice");
  cuda::set_tf32_enabled(tf32);
  cublasHandle_t handle = nullptr;
  check_cublas(cublasCreate(&handle), "cublasCreate");
  check_cublas(cublasSetMathMode(handle, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
  const std::string math = tf32 ? "tf32" : "fp32";
  if (!json)
    std::printf("sgemm on %s (%s), row-major C = A @ B, %s math; reference cublasSgemm\n%-20s %7s %5s %5s %12s %12s %7s %10s\n",
                device.str().c_str(), cuda::device_name(device.index).c_str(), math.c_str(), "name", "m", "k", "n",
                "petal GF/s", "cublas", "ratio", "max|diff|");
  int status = 0;
  for (const GemmShape& s : cuda_shapes(quick)) {
    if (!only.empty() && s.name.find(only) == std::string::npos) continue;
    Generator gen(12345);
    const Tensor a = uniform({s.m, s.k}, -0.5, 0.5, gen).to(device);
    const Tensor b = uniform({s.k, s.n}, -0.5, 0.5, gen).to(device);
    Tensor c_ref = zeros({s.m, s.n}, DType::Float32, device);
    Tensor c_petal;
    const float alpha = 1.0f, beta = 0.0f;
    auto petal_call = [&] { c_petal = ops::matmul(a, b); };
    auto petal_sync = [&] { cuda::synchronize(device.index); };
    auto cublas_call = [&] {
      check_cublas(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(s.n), static_cast<int>(s.m),
                               static_cast<int>(s.k), &alpha, b.data<float>(), static_cast<int>(s.n), a.data<float>(),
                               static_cast<int>(s.k), &beta, c_ref.data<float>(), static_cast<int>(s.n)),
                   "cublasSgemm");
    };
    auto cublas_sync = [&] { check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); };
    const double flop = 2.0 * static_cast<double>(s.m) * static_cast<double>(s.k) * static_cast<double>(s.n);
    // Alternate the sides and keep each one's best median (outside load hits both alike).
    double ours = 0.0, ref = 0.0;
    for (int round = 0; round < 2; ++round) {
      ours = std::max(ours, flop / seconds_per_call(petal_call, petal_sync, samples) * 1e-9);
      ref = std::max(ref, flop / seconds_per_call(cublas_call, cublas_sync, samples) * 1e-9);
    }
    const double diff = max_abs_difference(c_petal, c_ref);
    // Inputs in [-0.5, 0.5]: |C| stays below k / 4; float32 sums of k terms agree to ~1e-6 * k.
    const double allowed = (tf32 ? 2e-3 : 2e-5) * static_cast<double>(s.k);
    if (!(diff <= allowed)) {
      std::fprintf(stderr, "gemm: %s: petal and cuBLAS differ by %g (allowed %g)\n", s.name.c_str(), diff, allowed);
      status = 1;
    }
    if (json) {
      JsonRow row;
      row.set("bench", "gemm").set("name", s.name).set("m", static_cast<long long>(s.m))
          .set("k", static_cast<long long>(s.k)).set("n", static_cast<long long>(s.n)).set("threads", 1)
          .set("batch", 1).set("device", device.str()).set("math", math).set("unit", "GFLOP/s").set("petal", ours)
          .set("reference", ref).set("reference_name", "cublasSgemm").set("ratio", ours / ref)
          .set("max_abs_diff", diff);
      std::printf("%s\n", row.str().c_str());
    } else {
      std::printf("%-20s %7lld %5lld %5lld %12.1f %12.1f %7.2f %10.2g\n", s.name.c_str(), static_cast<long long>(s.m),
                  static_cast<long long>(s.k), static_cast<long long>(s.n), ours, ref, ours / ref, diff);
    }
    std::fflush(stdout);
  }
  cublasDestroy(handle);
  return status;
}

}  // namespace petal::bench
