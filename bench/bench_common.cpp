#include "bench/bench_common.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "nn/json.hpp"

namespace petal::bench {

double median_seconds(const std::function<void()>& fn, int repeats, int warmup, double min_warmup_seconds) {
  const auto warmup_start = std::chrono::steady_clock::now();
  for (int i = 0; i < warmup ||
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - warmup_start).count() <
                      min_warmup_seconds;
       ++i)
    fn();
  std::vector<double> times;
  for (int i = 0; i < std::max(1, repeats); ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    const auto t1 = std::chrono::steady_clock::now();
    times.push_back(std::chrono::duration<double>(t1 - t0).count());
  }
  std::sort(times.begin(), times.end());
  const std::size_t n = times.size();
  return n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
}

JsonRow& JsonRow::set(const std::string& key, const std::string& value) {
  fields_.emplace_back(key, nn::json::quote(value));
  return *this;
}

JsonRow& JsonRow::set(const std::string& key, double value) {
  if (!std::isfinite(value)) {
    fields_.emplace_back(key, "null");
    return *this;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", value);
  fields_.emplace_back(key, buf);
  return *this;
}

JsonRow& JsonRow::set(const std::string& key, long long value) {
  fields_.emplace_back(key, std::to_string(value));
  return *this;
}

JsonRow& JsonRow::set_raw(const std::string& key, const std::string& json) {
  fields_.emplace_back(key, json);
  return *this;
}

std::string JsonRow::str() const {
  std::string out = "{";
  for (std::size_t i = 0; i < fields_.size(); ++i) {
    if (i) out += ", ";
    out += nn::json::quote(fields_[i].first) + ": " + fields_[i].second;
  }
  return out + "}";
}

int run_child(const std::vector<std::string>& argv, const std::map<std::string, std::string>& extra_env,
              std::string& stdout_text) {
  int pipefd[2];
  if (pipe(pipefd) != 0) return -1;
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    dup2(pipefd[1], STDOUT_FILENO);
    close(pipefd[0]);
    close(pipefd[1]);
    for (const auto& [k, v] : extra_env) setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(pipefd[1]);
  stdout_text.clear();
  std::array<char, 4096> buf;
  ssize_t got;
  while ((got = read(pipefd[0], buf.data(), buf.size())) > 0) stdout_text.append(buf.data(), got);
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return -1;
}

std::string self_executable() {
  std::array<char, 4096> buf{};
  const ssize_t n = readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  return n > 0 ? std::string(buf.data(), n) : std::string();
}

std::vector<std::string> split_list(const std::string& list) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= list.size()) {
    const std::size_t comma = std::min(list.find(',', pos), list.size());
    if (comma > pos) out.push_back(list.substr(pos, comma - pos));
    pos = comma + 1;
  }
  return out;
}

bool has_flag(int argc, char** argv, const std::string& flag) {
  for (int i = 1; i < argc; ++i)
    if (flag == argv[i]) return true;
  return false;
}

std::string flag_value(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == name && i + 1 < argc) return argv[i + 1];
    if (a.rfind(name + "=", 0) == 0) return a.substr(name.size() + 1);
  }
  return fallback;
}

std::string source_dir() {
  std::string assets = PETAL_SOURCE_ASSETS_DIR;
  const std::size_t slash = assets.rfind('/');
  return slash == std::string::npos ? std::string(".") : assets.substr(0, slash);
}

std::string reference_python(int argc, char** argv) {
  const std::string given = flag_value(argc, argv, "--python", "");
  if (!given.empty()) return given;
  const std::string venv = source_dir() + "/.venv-bench/bin/python";
  if (access(venv.c_str(), X_OK) == 0) return venv;
  return "/usr/bin/python3";
}

namespace {

// The first "flags" and "model name" lines of /proc/cpuinfo.
const std::pair<std::string, std::string>& cpuinfo() {
  static const std::pair<std::string, std::string> info = [] {
    std::pair<std::string, std::string> out;
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    auto value = [&] {
      const std::size_t colon = line.find(':');
      const std::size_t start = colon == std::string::npos ? colon : line.find_first_not_of(" \t", colon + 1);
      return start == std::string::npos ? std::string() : line.substr(start);
    };
    while (std::getline(in, line) && (out.first.empty() || out.second.empty())) {
      if (out.first.empty() && line.rfind("flags", 0) == 0) {
        out.first.assign(1, ' ');  // padded, so that cpu_has finds " flag "
        out.first += value();
        out.first += ' ';
      }
      if (out.second.empty() && line.rfind("model name", 0) == 0) out.second = value();
    }
    return out;
  }();
  return info;
}

}  // namespace

bool cpu_has(const std::string& flag) { return cpuinfo().first.find(" " + flag + " ") != std::string::npos; }

std::string cpu_model() { return cpuinfo().second; }

bool cpu_has_avx512() {
  return cpu_has("avx512f") && cpu_has("avx512bw") && cpu_has("avx512dq") && cpu_has("avx512vl");
}

std::map<std::string, std::string> cpu_guards() {
  if (std::getenv("PETAL_BENCH_NO_GUARDS") != nullptr) return {};
  if (cpu_has_avx512()) return {{"OPENBLAS_CORETYPE", "SkylakeX"}, {"ATEN_CPU_CAPABILITY", "avx512"}};
  if (cpu_has("avx2") && cpu_has("fma")) return {{"OPENBLAS_CORETYPE", "Haswell"}, {"ATEN_CPU_CAPABILITY", "avx2"}};
  return {};
}

std::map<std::string, std::string> reference_environment(int threads, int blas_threads, bool tuned_malloc) {
  std::map<std::string, std::string> env = cpu_guards();
  env.insert_or_assign("OMP_NUM_THREADS", std::to_string(threads));
  env.insert_or_assign("OPENBLAS_NUM_THREADS", std::to_string(blas_threads));
  if (tuned_malloc) {  // (insert_or_assign of std::string: GCC 12 warns, wrongly, on = "literal")
    env.insert_or_assign("MALLOC_MMAP_MAX_", std::string("0"));
    env.insert_or_assign("MALLOC_TRIM_THRESHOLD_", std::string("17179869184"));
  }
  return env;
}

std::map<std::string, std::string> torch_environment(int threads) { return reference_environment(threads, threads, true); }

std::string guards_json() {
  std::string out = "{";
  for (const auto& [k, v] : cpu_guards()) {
    if (out.size() > 1) out += ", ";
    out += nn::json::quote(k) + ": " + nn::json::quote(v);
  }
  return out + "}";
}

}  // namespace petal::bench
