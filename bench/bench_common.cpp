#include "bench/bench_common.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
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

std::map<std::string, std::string> torch_environment(int threads) {
  return {{"OPENBLAS_CORETYPE", "SkylakeX"},
          {"ATEN_CPU_CAPABILITY", "avx512"},
          {"OPENBLAS_NUM_THREADS", "1"},
          {"MALLOC_MMAP_MAX_", "0"},
          {"MALLOC_TRIM_THRESHOLD_", "17179869184"},
          {"OMP_NUM_THREADS", std::to_string(threads)}};
}

}  // namespace petal::bench
