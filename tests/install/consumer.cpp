// A program outside the petal tree, built against an installed petal with
//   c++ -std=c++20 consumer.cpp $(pkg-config --cflags --libs petal)
// It checks its own results and exits non-zero on a mismatch.
#include <petal.hpp>

#include <cstdio>
#include <vector>

int main() {
  using namespace petal;
  // [2, 3] @ [3, 2] through the public ops API.
  const Tensor a = from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor b = a.transpose(0, 1);  // a strided view, no copy
  const Tensor product = ops::matmul(a, b);
  const Tensor total = ops::sum(ops::add(product, ones({2, 2})));
  const std::vector<float> values = product.to_vector<float>();
  std::printf("a @ a^T = %s\nsum(a @ a^T + 1) = %g\n", product.str().c_str(), total.item<double>());
  const std::vector<float> expected = {14, 32, 32, 77};
  if (values != expected || total.item<float>() != 159.0f) {
    std::fprintf(stderr, "consumer: wrong result\n");
    return 1;
  }
  // A gradient through the installed autograd tape: d/dw sum(w * w) = 2 w.
  ag::Variable w(from_vector(std::vector<float>{1, -2, 3}), /*requires_grad=*/true);
  ag::sum(ag::mul(w, w)).backward();
  const std::vector<float> grad = w.grad().to_vector<float>();
  std::printf("d/dw sum(w*w) = %s\n", w.grad().str().c_str());
  if (grad != std::vector<float>{2, -4, 6}) {
    std::fprintf(stderr, "consumer: wrong gradient\n");
    return 1;
  }
  try {
    ops::matmul(a, a);
    std::fprintf(stderr, "consumer: matmul of [2, 3] by [2, 3] did not throw\n");
    return 1;
  } catch (const ShapeError& e) {
    std::printf("expected error: %s\n", e.what());
  }
  return 0;
}
