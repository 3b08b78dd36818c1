// Benchmark `pipeline`: images/s of petal's input pipeline (read + CRC +
// parse + JPEG decode + batch) over all flowers shards, with 1 and 2 map
// threads and uint8 / float32 batches, against the raw single-thread
// libjpeg-turbo decode rate measured in the same run (reference = threads x
// raw rate: a pipeline can at best decode in parallel with no overhead).
#include <turbojpeg.h>

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
    "  --repeats N   timed epochs per configuration, median reported (default 3)\n"
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

// Plain TurboJPEG calls, none of petal's code: the rate to compare with.
double raw_decode_seconds(const std::vector<std::string>& jpegs, int repeats) {
  tjhandle handle = tjInitDecompress();
  std::vector<unsigned char> pixels;
  const double seconds = petal::bench::median_seconds(
      [&] {
        for (const auto& jpeg : jpegs) {
          const auto* data = reinterpret_cast<const unsigned char*>(jpeg.data());
          int w = 0, h = 0, sub = 0, cs = 0;
          if (tjDecompressHeader3(handle, data, jpeg.size(), &w, &h, &sub, &cs) != 0) throw petal::FormatError("raw decode: bad header");
          pixels.resize(static_cast<std::size_t>(w) * h * 3);
          if (tjDecompress2(handle, data, jpeg.size(), pixels.data(), w, w * 3, h, TJPF_RGB, 0) != 0)
            throw petal::FormatError(std::string("raw decode: ") + tjGetErrorStr2(handle));
        }
      },
      repeats, 1);
  tjDestroy(handle);
  return seconds;
}

struct PipelineRun {
  double seconds = 0;
  std::int64_t images = 0;
};

PipelineRun time_pipeline(const std::vector<std::filesystem::path>& files, petal::DType dtype, int threads,
                          std::int64_t batch_size, int repeats) {
  using namespace petal::data;
  Dataset ds = Dataset::from_tfrecords(files);
  ds.batch(batch_size).num_parallel_calls(threads).num_parallel_reads(4).prefetch(2).deterministic(false);
  if (dtype == petal::DType::Float32) ds.output_float(PixelScale::MinusOneOne);
  PipelineRun run;
  run.seconds = petal::bench::median_seconds(
      [&] {
        std::int64_t images = 0;
        ds.begin_epoch();
        while (auto batch = ds.next()) images += batch->size();
        run.images = images;
      },
      repeats, 1);
  return run;
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
    const int repeats = std::stoi(flag_value(argc, argv, "--repeats", "3"));
    const auto dir = petal::find_asset("flowers-192", flag_value(argc, argv, "--data", ""));
    const auto files = petal::data::glob_files((dir / "*.tfrec").string());

    const std::vector<std::string> jpegs = load_jpegs(files);
    const double raw_rate = static_cast<double>(jpegs.size()) / raw_decode_seconds(jpegs, repeats);
    if (!json) {
      std::printf("flowers-192: %zu images in %zu files, batch %lld\n", jpegs.size(), files.size(),
                  static_cast<long long>(batch_size));
      std::printf("raw libjpeg-turbo decode, 1 thread: %.0f img/s\n\n", raw_rate);
      std::printf("%-12s %8s %12s %14s %7s\n", "name", "threads", "petal img/s", "reference", "ratio");
    }
    for (const auto dtype : {petal::DType::UInt8, petal::DType::Float32}) {
      for (const int threads : {1, 2}) {
        const PipelineRun run = time_pipeline(files, dtype, threads, batch_size, repeats);
        if (run.images != static_cast<std::int64_t>(jpegs.size()))
          throw petal::Error(petal::str_cat("pipeline delivered ", run.images, " images, expected ", jpegs.size()));
        const double rate = static_cast<double>(run.images) / run.seconds;
        const double reference = threads * raw_rate;
        const std::string name = petal::str_cat(dtype == petal::DType::UInt8 ? "uint8" : "float32", "_t", threads);
        if (json) {
          petal::bench::JsonRow row;
          row.set("bench", "pipeline")
              .set("name", name)
              .set("threads", threads)
              .set("batch", static_cast<long long>(batch_size))
              .set("dtype", petal::dtype_name(dtype))
              .set("images", static_cast<long long>(run.images))
              .set("device", "cpu")
              .set("unit", "img/s")
              .set("petal", rate)
              .set("reference", reference)
              .set("reference_name", "libjpeg-turbo raw decode x threads")
              .set("ratio", rate / reference);
          std::cout << row.str() << std::endl;
        } else {
          std::printf("%-12s %8d %12.0f %14.0f %7.3f\n", name.c_str(), threads, rate, reference, rate / reference);
        }
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "pipeline: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
