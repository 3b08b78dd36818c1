// Storage ownership and the device-backend hooks, exercised with a fake
// device whose "device memory" is ordinary host memory. This is the path a
// CUDA backend plugs into.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "core/storage.hpp"
#include "core/tensor.hpp"
#include "tests/doctest_skip.hpp"
#include "tests/fake_device.hpp"

using namespace petal;

TEST_CASE("storage over external memory runs its deleter exactly once") {
  int deleted = 0;
  std::vector<float> buffer(4, 1.0f);
  {
    auto storage = std::make_shared<Storage>(buffer.data(), buffer.size() * sizeof(float), Device::cpu(),
                                             [&](void* p) {
                                               CHECK(p == buffer.data());
                                               ++deleted;
                                             });
    Tensor t(storage, {2, 2}, {2, 1}, 0, DType::Float32);
    Tensor view = t.transpose(0, 1);
    CHECK(view.to_vector<float>() == std::vector<float>(4, 1.0f));
    buffer[1] = 5.0f;
    CHECK(t.select(0, 0).to_vector<float>() == std::vector<float>{1.0f, 5.0f});
    CHECK(deleted == 0);
  }
  CHECK(deleted == 1);
  // No deleter: nothing happens on destruction.
  { Storage borrowed(buffer.data(), 16, Device::cpu(), nullptr); }
}

TEST_CASE("without a backend, device tensors are a DeviceError that says how to get one" *
          doctest::skip(test::skip_because(test::kBuiltWithCuda, "built with CUDA: the backend exists"))) {
  REQUIRE_FALSE(has_device_backend(DeviceType::CUDA));
  CHECK(has_device_backend(DeviceType::CPU));
  try {
    device_backend(DeviceType::CUDA);
    FAIL("no DeviceError");
  } catch (const DeviceError& e) {
    const std::string msg = e.what();
    CHECK(msg.find("cuda") != std::string::npos);
    CHECK(msg.find("-Dcuda=enabled") != std::string::npos);
  }
  CHECK_THROWS_AS(Tensor::empty({2}, DType::Float32, Device::cuda()), DeviceError);
  CHECK_THROWS_AS(ones({2}).to(Device::cuda()), DeviceError);
}

TEST_CASE("a registered backend supplies device memory and copies in both directions" *
          doctest::skip(test::skip_because(test::kBuiltWithCuda,
                                           "built with CUDA: the fake backend would replace the real one"))) {
  REQUIRE_FALSE(has_device_backend(DeviceType::CUDA));
  test::CudaBackendScope scope;
  REQUIRE(has_device_backend(DeviceType::CUDA));
  CHECK(device_backend(DeviceType::CUDA).device_count() == 1);
  CHECK(&allocator_for(Device::cuda()) == &test::fake_allocator());
  CHECK(&allocator_for(Device::cpu()) == &cpu_allocator());

  const std::size_t in_use = test::fake_allocator().stats().in_use_bytes;
  {
    Tensor host = arange(6).to(DType::Float32).reshape({2, 3});
    test::fake_device_state().copies = 0;
    Tensor dev = host.transpose(0, 1).to(Device::cuda());  // packed on the host, then one copy
    CHECK(dev.device() == Device::cuda());
    CHECK(dev.shape() == Shape{3, 2});
    CHECK(dev.is_contiguous());
    CHECK(test::fake_device_state().copies == 1);
    CHECK(test::fake_allocator().stats().in_use_bytes == in_use + 24);
    CHECK(dev.to_vector<float>() == std::vector<float>{0, 3, 1, 4, 2, 5});  // back through the backend
    CHECK(dev.to(Device::cuda()).storage() == dev.storage());                // same device: no copy

    // Factories on the device fill on the host and copy.
    CHECK(full({3}, 2.5, DType::Float64, Device::cuda()).to_vector<double>() == std::vector<double>(3, 2.5));
    Tensor z = zeros({2, 2}, DType::Float32, Device::cuda());
    z.fill_(7.0);
    CHECK(z.to_vector<float>() == std::vector<float>(4, 7.0f));

    // copy_ from a strided host tensor into a device tensor.
    Tensor target = Tensor::empty({3, 2}, DType::Float32, Device::cuda());
    target.copy_(host.transpose(0, 1));
    CHECK(target.to_vector<float>() == std::vector<float>{0, 3, 1, 4, 2, 5});
    Tensor back = Tensor::empty({3, 2});
    back.copy_(target);
    CHECK(back.to_vector<float>() == std::vector<float>{0, 3, 1, 4, 2, 5});

    // Between devices, dtypes must match; dtype conversion happens on the host.
    Tensor ints = Tensor::empty({3, 2}, DType::Int64, Device::cuda());
    CHECK_THROWS_AS(ints.copy_(back), DTypeError);
    CHECK_THROWS_AS(target.to(DType::Float64), DeviceError);
    CHECK(target.to(Device::cpu()).to(DType::Float64).to_vector<double>() ==
          std::vector<double>{0, 3, 1, 4, 2, 5});
  }
  // Every device buffer went back to the device allocator.
  CHECK(test::fake_allocator().stats().in_use_bytes == in_use);
}
