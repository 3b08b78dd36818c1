// Benchmark `pipeline`: images/s of petal's input pipeline (read + CRC +
// parse + JPEG decode + batch) over all flowers shards, with 1 and 2 map
// threads and uint8 / float32 batches, against the raw single-thread
// libjpeg-turbo decode rate measured in the same run (reference = threads x
// raw rate: a pipeline can at best decode in parallel with no overhead).
#include <sys/resource.h>
#include <turbojpeg.h>

#include <algorithm>
#include <chrono>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "bench/bench_common.hpp"
#include "core/assets.hpp"
#include "data/dataset.hpp"
#include "data/example.hpp"
#include "data/file_list.hpp"
#include "data/tfrecord.hpp"

namespace {

constexpr const char* kUsage =
    "Usage: pipeline [--data DIR] [--batch N] [--repeats N] [--json] [--help]\n"
    "\n"
    "Measures images/s of petal's Dataset over every record of the flowers-192\n"
    "shards (TFRecord read + CRC + Example parse + JPEG decode + batching) with\n"
    "1 and 2 map threads, uint8 and float32 batches, next to the raw single-thread\n"
    "libjpeg-turbo decode rate of the same JPEGs measured in the same run.\n"
    "reference = threads x raw rate; ratio = petal / reference (> 1: petal is better).\n"
    "\n"
    "  --data DIR    the flowers-192 folder (default: found through PETAL_ASSETS,\n"
    "                the source tree's assets/, ./assets)\n"
    "  --batch N     batch size (default 64)\n"
    "  --repeats N   timed epochs per configuration, medians reported (default 5)\n"
    "  --json        one JSON object per line in the shared benchmark format\n";

// The JPEGs of every record, in memory, for the raw reference.
std::vector<std::string> load_jpegs(const std::vector<std::filesystem::path>& files) {
  std::vector<std::string> jpegs;
  std::string payload;
  for (const auto& f : files) {
    petal::data::TFRecordReader reader(f);
    while (reader.read(payload)) jpegs.push_back(petal::data::decode_example(payload).bytes("image"));
  }
  return jpegs;
}

// Process CPU time (all threads), to show overhead independently of how
// busy the machine is.
double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Plain TurboJPEG calls, none of petal's code: the rate to compare with.
class RawDecoder {
 public:
  explicit RawDecoder(const std::vector<std::string>& jpegs) : jpegs_(jpegs), handle_(tjInitDecompress()) {}
  ~RawDecoder() { tjDestroy(handle_); }
  void decode_all() {
    for (const auto& jpeg : jpegs_) {
      const auto* data = reinterpret_cast<const unsigned char*>(jpeg.data());
      int w = 0, h = 0, sub = 0, cs = 0;
      if (tjDecompressHeader3(handle_, data, jpeg.size(), &w, &h, &sub, &cs) != 0)
        throw petal::FormatError("raw decode: bad header");
      pixels_.resize(static_cast<std::size_t>(w) * h * 3);
      if (tjDecompress2(handle_, data, jpeg.size(), pixels_.data(), w, w * 3, h, TJPF_RGB, 0) != 0)
        throw petal::FormatError(std::string("raw decode: ") + tjGetErrorStr2(handle_));
    }
  }

 private:
  const std::vector<std::string>& jpegs_;
  tjhandle handle_;
  std::vector<unsigned char> pixels_;
};

struct Timing {
  double wall = 0;
  double cpu = 0;
};

template <class Fn>
Timing measure(Fn&& fn) {
  const double w0 = wall_seconds(), c0 = cpu_seconds();
  fn();
  return {wall_seconds() - w0, cpu_seconds() - c0};
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct Comparison {
  double petal_rate = 0;      // img/s
  double raw_rate = 0;        // img/s of one thread
  double petal_cpu_ms = 0;    // CPU ms per image, all threads
  double raw_cpu_ms = 0;
  std::int64_t images = 0;
};

// Alternates raw decoding and a full pipeline epoch `repeats` times (after a
// warm-up of each), so both see the same machine load; medians of each.
Comparison compare(const std::vector<std::filesystem::path>& files, RawDecoder& raw, std::size_t count,
                   petal::DType dtype, int threads, std::int64_t batch_size, int repeats) {
  using namespace petal::data;
  Dataset ds = Dataset::from_tfrecords(files);
  ds.batch(batch_size).num_parallel_calls(threads).num_parallel_reads(4).prefetch(2).deterministic(false);
  if (dtype == petal::DType::Float32) ds.output_float(PixelScale::MinusOneOne);
  Comparison result;
  auto epoch = [&] {
    std::int64_t images = 0;
    ds.begin_epoch();
    while (auto batch = ds.next()) images += batch->size();
    result.images = images;
  };
  epoch();
  raw.decode_all();
  std::vector<double> petal_wall, petal_cpu, raw_wall, raw_cpu;
  for (int r = 0; r < std::max(1, repeats); ++r) {
    const Timing t_raw = measure([&] { raw.decode_all(); });
    const Timing t_petal = measure(epoch);
    raw_wall.push_back(t_raw.wall);
    raw_cpu.push_back(t_raw.cpu);
    petal_wall.push_back(t_petal.wall);
    petal_cpu.push_back(t_petal.cpu);
  }
  const auto n = static_cast<double>(count);
  result.raw_rate = n / median(raw_wall);
  result.petal_rate = static_cast<double>(result.images) / median(petal_wall);
  result.raw_cpu_ms = 1e3 * median(raw_cpu) / n;
  result.petal_cpu_ms = 1e3 * median(petal_cpu) / static_cast<double>(result.images);
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  using petal::bench::flag_value;
  if (petal::bench::has_flag(argc, argv, "--help") || petal::bench::has_flag(argc, argv, "-h")) {
    std::cout << kUsage;
    return 0;
  }
  try {
    const bool json = petal::bench::has_flag(argc, argv, "--json");
    const std::int64_t batch_size = std::stoll(flag_value(argc, argv, "--batch", "64"));
    const int repeats = std::stoi(flag_value(argc, argv, "--repeats", "5"));
    const auto dir = petal::find_asset("flowers-192", flag_value(argc, argv, "--data", ""));
    const auto files = petal::data::glob_files((dir / "*.tfrec").string());

    const std::vector<std::string> jpegs = load_jpegs(files);
    RawDecoder raw(jpegs);
    if (!json) {
      std::printf("flowers-192: %zu images in %zu files, batch %lld; reference = threads x raw single-thread\n"
                  "libjpeg-turbo decode rate, measured alternately with each configuration\n\n",
                  jpegs.size(), files.size(), static_cast<long long>(batch_size));
      std::printf("%-12s %7s %12s %11s %12s %7s %15s\n", "name", "threads", "petal img/s", "raw img/s",
                  "reference", "ratio", "cpu ms/img p/r");
    }
    for (const auto dtype : {petal::DType::UInt8, petal::DType::Float32}) {
      for (const int threads : {1, 2}) {
        const Comparison c = compare(files, raw, jpegs.size(), dtype, threads, batch_size, repeats);
        if (c.images != static_cast<std::int64_t>(jpegs.size()))
          throw petal::Error(petal::str_cat("pipeline delivered ", c.images, " images, expected ", jpegs.size()));
        const double reference = threads * c.raw_rate;
        const double ratio = c.petal_rate / reference;
        const std::string name = petal::str_cat(dtype == petal::DType::UInt8 ? "uint8" : "float32", "_t", threads);
        if (json) {
          petal::bench::JsonRow row;
          row.set("bench", "pipeline")
              .set("name", name)
              .set("threads", threads)
              .set("batch", static_cast<long long>(batch_size))
              .set("dtype", petal::dtype_name(dtype))
              .set("images", static_cast<long long>(c.images))
              .set("device", "cpu")
              .set("unit", "img/s")
              .set("petal", c.petal_rate)
              .set("reference", reference)
              .set("reference_name", "libjpeg-turbo raw decode x threads")
              .set("ratio", ratio)
              .set("raw_decode_img_s", c.raw_rate)
              .set("petal_cpu_ms_per_img", c.petal_cpu_ms)
              .set("raw_cpu_ms_per_img", c.raw_cpu_ms);
          std::cout << row.str() << std::endl;
        } else {
          std::printf("%-12s %7d %12.0f %11.0f %12.0f %7.3f %7.3f/%.3f\n", name.c_str(), threads, c.petal_rate,
                      c.raw_rate, reference, ratio, c.petal_cpu_ms, c.raw_cpu_ms);
        }
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "pipeline: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
