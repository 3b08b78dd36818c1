// The CUDA runtime pieces: copies between host and device (pageable and
// pinned), strided device views, the caching allocator's counters,
// empty_cache, the out-of-memory error, and errors across devices.
#include <doctest/doctest.h>

#include <limits>
#include <string>

#include "core/tensor.hpp"
#include "kernels/cuda/cuda_runtime_api.hpp"
#include "kernels/ops.hpp"
#include "tests/cuda/cuda_test_support.hpp"

using namespace petal;
using petal::test::kCuda;

TEST_CASE("tensors round-trip between host and device") {
  Generator gen(1);
  for (DType dtype : {DType::Float32, DType::Float64, DType::Int64, DType::UInt8}) {
    const Tensor host = dtype == DType::UInt8 || dtype == DType::Int64 ? arange(0.0, 37.0, 1.0, DType::Float64).to(dtype)
                                                                       : test::random_tensor({37}, gen, dtype);
    const Tensor dev = host.to(kCuda);
    CHECK(dev.device() == kCuda);
    CHECK(dev.to(Device::cpu()).to_vector<double>() == host.to_vector<double>());
    // Device -> device clone.
    CHECK(dev.clone().to(Device::cpu()).to_vector<double>() == host.to_vector<double>());
  }
}

TEST_CASE("pinned host batches copy to the device asynchronously and their buffers are reused safely") {
  constexpr std::int64_t n = 1 << 22;  // 16 MiB: the transfer takes a while
  const void* first_buffer = nullptr;
  Tensor dev;
  {
    Tensor pinned = Tensor::empty_pinned({n});
    first_buffer = pinned.raw_data();
    for (std::int64_t i = 0; i < n; ++i) pinned.data<float>()[i] = static_cast<float>(i % 1000);
    dev = pinned.to(kCuda);
  }
  // The next batch of the same size reuses the buffer (after the copy read it).
  Tensor next = Tensor::empty_pinned({n});
  CHECK(next.raw_data() == first_buffer);
  for (std::int64_t i = 0; i < n; ++i) next.data<float>()[i] = -1.0f;
  const std::vector<float> back = dev.to_vector<float>();
  bool same = true;
  for (std::int64_t i = 0; i < n && same; ++i) same = back[i] == static_cast<float>(i % 1000);
  CHECK(same);
  CHECK(next.to(kCuda).to_vector<float>() == std::vector<float>(n, -1.0f));
}

TEST_CASE("strided device views become contiguous on the device") {
  Generator gen(2);
  const Tensor host = test::random_tensor({3, 4, 5}, gen);
  const Tensor dev = host.to(kCuda);
  const Tensor views[][2] = {
      {host.transpose(0, 2), dev.transpose(0, 2)},
      {host.slice(1, 1, 4, 2), dev.slice(1, 1, 4, 2)},
      {host.permute({1, 2, 0}).select(0, 3), dev.permute({1, 2, 0}).select(0, 3)},
      {host.select(2, 0).unsqueeze(0).expand({2, 3, 4}), dev.select(2, 0).unsqueeze(0).expand({2, 3, 4})},
  };
  for (const auto& pair : views) {
    const Tensor c = pair[1].contiguous();
    CHECK(c.is_contiguous());
    CHECK(c.device() == kCuda);
    CHECK(c.to_vector<float>() == pair[0].contiguous().to_vector<float>());
    // to(cpu) of a strided view packs it on the device first.
    CHECK(pair[1].to(Device::cpu()).to_vector<float>() == pair[0].to_vector<float>());
  }
}

TEST_CASE("fill_, zeros and full on the device") {
  CHECK(full({3}, 2.5, DType::Float32, kCuda).to_vector<float>() == std::vector<float>(3, 2.5f));
  Tensor t = zeros({2, 2}, DType::Float64, kCuda);
  t.fill_(-1.0);
  CHECK(t.to_vector<double>() == std::vector<double>(4, -1.0));
}

TEST_CASE("the caching allocator counts, reuses and empties its cache") {
  cuda::synchronize();
  cuda::empty_cache();
  const AllocatorStats before = cuda::memory_stats();
  CHECK(before.cached_bytes == 0);
  {
    Tensor a = Tensor::empty({1 << 20}, DType::Float32, kCuda);  // 4 MiB
    const AllocatorStats during = cuda::memory_stats();
    CHECK(during.in_use_bytes >= before.in_use_bytes + (std::size_t{4} << 20));
    CHECK(during.peak_bytes >= during.in_use_bytes);
  }
  const AllocatorStats after_free = cuda::memory_stats();
  CHECK(after_free.in_use_bytes == before.in_use_bytes);
  CHECK(after_free.cached_bytes >= (std::size_t{4} << 20));
  {
    Tensor again = Tensor::empty({1 << 20}, DType::Float32, kCuda);
    CHECK(cuda::memory_stats().cache_hits > after_free.cache_hits);
  }
  cuda::empty_cache();
  CHECK(cuda::memory_stats().cached_bytes == 0);
  cuda::reset_peak_memory();
  CHECK(cuda::memory_stats().peak_bytes == cuda::memory_stats().in_use_bytes);
}

TEST_CASE("running out of device memory is a DeviceError naming the request") {
  // 2^50 bytes: no GPU has a petabyte.
  const std::int64_t huge = std::int64_t{1} << 48;
  try {
    Tensor t = Tensor::empty({huge}, DType::Float32, kCuda);
    FAIL("allocation of 2^50 bytes succeeded");
  } catch (const DeviceError& e) {
    const std::string msg = e.what();
    CHECK(msg.find(std::to_string(huge * 4)) != std::string::npos);
    CHECK(msg.find("cuda:0") != std::string::npos);
    CHECK(msg.find("CUDA error") != std::string::npos);
  }
  // The device still works afterwards.
  CHECK(ones({3}, DType::Float32, kCuda).to_vector<float>() == std::vector<float>(3, 1.0f));
}

TEST_CASE("ops on tensors of different devices are a DeviceError") {
  const Tensor host = ones({2, 3});
  const Tensor dev = ones({2, 3}, DType::Float32, kCuda);
  CHECK_THROWS_AS(ops::add(host, dev), DeviceError);
  CHECK_THROWS_AS(ops::matmul(dev, host.transpose(0, 1)), DeviceError);
  try {
    ops::mul(dev, host);
    FAIL("mul of a cuda:0 and a cpu tensor did not throw");
  } catch (const DeviceError& e) {
    const std::string msg = e.what();
    CHECK(msg.find("mul") != std::string::npos);
    CHECK(msg.find("cuda:0") != std::string::npos);
    CHECK(msg.find("[2, 3]") != std::string::npos);
  }
  CHECK_THROWS_AS(Tensor::empty({2}, DType::Float32, Device::cuda(cuda::device_count())), DeviceError);
}

TEST_CASE("TF32 mode is a switch, off by default") {
  CHECK_FALSE(cuda::tf32_is_enabled());
  cuda::set_tf32_enabled(true);
  CHECK(cuda::tf32_is_enabled());
  cuda::set_tf32_enabled(false);
  CHECK_FALSE(cuda::tf32_is_enabled());
}
