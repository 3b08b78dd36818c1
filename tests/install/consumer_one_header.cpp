// A program outside the petal tree that includes one part of petal rather
// than the umbrella, built with
//   c++ -std=c++20 consumer_one_header.cpp $(pkg-config --cflags --libs petal)
// Its header's own includes (core/tensor.hpp, ...) must resolve as installed,
// <petal/...>, with nothing but include/ on the path. It writes a safetensors
// file, reads it back and exits non-zero on a mismatch.
#include <petal/nn/safetensors.hpp>

#include <cstdio>
#include <filesystem>
#include <vector>

int main() {
  namespace fs = std::filesystem;
  const fs::path file = "consumer_one_header.safetensors";  // in the working folder (check_install.sh: its DESTDIR)
  const std::vector<float> values = {1.5f, -2.0f, 0.25f, 8.0f, 0.0f, -0.5f};
  petal::nn::write_safetensors(file, {{"dense/kernel", petal::from_vector(values, {2, 3})}},
                               {{"written_by", "consumer"}});
  const petal::nn::SafetensorsReader reader(file);
  const petal::Tensor kernel = reader.read("dense/kernel");
  std::printf("%s: dense/kernel %s, metadata written_by=%s\n", file.string().c_str(), kernel.str().c_str(),
              reader.metadata().at("written_by").c_str());
  fs::remove(file);
  if (kernel.shape() != petal::Shape{2, 3} || kernel.to_vector<float>() != values) {
    std::fprintf(stderr, "consumer_one_header: the tensor read back differs\n");
    return 1;
  }
  return 0;
}
