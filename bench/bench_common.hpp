// Helpers shared by the benchmark executables: robust timing (median of
// several runs), the shared one-JSON-object-per-line output format, and
// running a reference (OpenBLAS, PyTorch) in a child process with its own
// environment.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace petal::bench {

// Runs fn `warmup` times, then `repeats` times, and returns the median
// wall-clock seconds of one call.
// With min_warmup_seconds > 0 the warm-up also goes on until that much time
// has passed (see kSteadyWarmupSeconds).
double median_seconds(const std::function<void()>& fn, int repeats = 5, int warmup = 1,
                      double min_warmup_seconds = 0.0);

// Warm-up before timing a sub-millisecond kernel: on these VMs a core that
// sat idle comes back at a low clock and the first ~10 calls of a 0.3 ms
// layer ran 2-3x slower than the steady state (the PyTorch child, whose
// threads busy-wait, did not see it). Both sides of a comparison use it.
inline constexpr double kSteadyWarmupSeconds = 0.05;

// One row of the shared benchmark format. Fields print in insertion order;
// strings are escaped by nn/json.hpp's quote.
class JsonRow {
 public:
  JsonRow& set(const std::string& key, const std::string& value);   // quoted string
  JsonRow& set(const std::string& key, const char* value) { return set(key, std::string(value)); }
  JsonRow& set(const std::string& key, double value);
  JsonRow& set(const std::string& key, long long value);
  JsonRow& set(const std::string& key, int value) { return set(key, static_cast<long long>(value)); }
  JsonRow& set_raw(const std::string& key, const std::string& json);  // e.g. "[1,2,3]"
  std::string str() const;  // {"bench": "gemm", ...}

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

// Runs argv with extra environment variables, captures stdout; returns the
// exit code (or -1 when the program could not be started).
int run_child(const std::vector<std::string>& argv, const std::map<std::string, std::string>& extra_env,
              std::string& stdout_text);

// Path of the running executable (for re-executing it as a reference child).
std::string self_executable();

// True when argv contains flag (e.g. "--json").
bool has_flag(int argc, char** argv, const std::string& flag);
// Value after "--name" (or "--name=value"), or fallback.
std::string flag_value(int argc, char** argv, const std::string& name, const std::string& fallback);
// The items of a comma-separated list ("a,b,c"), empty items dropped.
std::vector<std::string> split_list(const std::string& list);

// The source tree (for the reference scripts under bench/), from the assets
// path compiled in.
std::string source_dir();

// The Python interpreter of the references: --python PATH when given, else
// the git-ignored .venv-bench/bin/python of the source tree when it exists
// (scripts/install_bench_venv.sh), else Debian's /usr/bin/python3.
std::string reference_python(int argc, char** argv);

// Whether /proc/cpuinfo lists this flag ("avx512f", "avx2", ...) for the CPU.
bool cpu_has(const std::string& flag);
// "AMD EPYC ..." / "Intel(R) Xeon(R) ..." from /proc/cpuinfo ("" when unknown).
std::string cpu_model();
// AVX-512 with the F, BW, DQ and VL subsets (what OpenBLAS's SkylakeX kernels
// and ATen's avx512 capability need).
bool cpu_has_avx512();

// The environment guards chosen from the CPU actually present (DESIGN.md,
// "How we measure"): OPENBLAS_CORETYPE=SkylakeX on AVX-512 CPUs and Haswell
// on AVX2-only ones (Debian's OpenBLAS 0.3.21 misdetects newer CPUs and falls
// back to generic kernels), ATEN_CPU_CAPABILITY=avx512|avx2 likewise, nothing
// on other CPUs. Empty when PETAL_BENCH_NO_GUARDS is set.
std::map<std::string, std::string> cpu_guards();

// The environment of a reference child: cpu_guards(), OMP_NUM_THREADS =
// threads, OPENBLAS_NUM_THREADS = blas_threads and, with tuned_malloc, glibc
// malloc kept from returning memory to the system (faster for the timed rows;
// never for the memory rows, which must see default malloc).
std::map<std::string, std::string> reference_environment(int threads, int blas_threads, bool tuned_malloc);

// reference_environment(threads, threads, true).
std::map<std::string, std::string> torch_environment(int threads);

// The guards as a JSON object ({"OPENBLAS_CORETYPE": "SkylakeX", ...}).
std::string guards_json();

}  // namespace petal::bench
