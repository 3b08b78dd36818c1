#include "core/atomic_file.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <string>
#include <system_error>

#include "core/error.hpp"

namespace petal {

namespace {

constexpr std::string_view kTempInfix = ".tmp.";

std::filesystem::path folder_of(const std::filesystem::path& target) {
  std::filesystem::path folder = target.parent_path();
  return folder.empty() ? std::filesystem::path(".") : folder;
}

// A rename is durable only once the folder's entry is on disk. Filesystems
// that cannot fsync a folder (EINVAL) have nothing more to flush.
void fsync_folder(const std::filesystem::path& folder, const std::filesystem::path& target) {
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  PETAL_CHECK(fd >= 0, IOError, "cannot open folder ", folder.string(), " to flush the rename of ", target.string(),
              ": ", std::strerror(errno));
  const int rc = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  PETAL_CHECK(rc == 0 || error == EINVAL || error == ENOTSUP, IOError, "cannot flush folder ", folder.string(),
              " after writing ", target.string(), ": ", std::strerror(error));
}

bool process_exists(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

// Owns the temporary file until it is renamed into place.
class TempFile {
 public:
  explicit TempFile(const std::filesystem::path& target) : target_(target), tmp_(atomic_temporary_path(target)) {
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    PETAL_CHECK(fd_ >= 0, IOError, "cannot create ", tmp_.string(), " (for ", target_.string(), "): ",
                std::strerror(errno));
  }
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  void append(const void* data, std::size_t size) {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
      const ssize_t n = ::write(fd_, p, size);
      if (n < 0 && errno == EINTR) continue;
      PETAL_CHECK(n > 0, IOError, "cannot write ", tmp_.string(), " (for ", target_.string(), "): ",
                  n == 0 ? "no progress" : std::strerror(errno));
      p += n;
      size -= static_cast<std::size_t>(n);
    }
  }

  void commit() {
    PETAL_CHECK(::fsync(fd_) == 0, IOError, "cannot flush ", tmp_.string(), ": ", std::strerror(errno));
    const int rc = ::close(fd_);
    fd_ = -1;
    PETAL_CHECK(rc == 0, IOError, "cannot close ", tmp_.string(), ": ", std::strerror(errno));
    PETAL_CHECK(::rename(tmp_.c_str(), target_.c_str()) == 0, IOError, "cannot rename ", tmp_.string(), " to ",
                target_.string(), ": ", std::strerror(errno));
    committed_ = true;
    fsync_folder(folder_of(target_), target_);
  }

 private:
  std::filesystem::path target_;
  std::filesystem::path tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace

std::filesystem::path atomic_temporary_path(const std::filesystem::path& target) {
  std::filesystem::path tmp = target;
  tmp += std::string(kTempInfix) + std::to_string(::getpid());
  return tmp;
}

std::size_t remove_stale_temporaries(const std::filesystem::path& target) {
  const std::string prefix = target.filename().string() + std::string(kTempInfix);
  std::error_code ec;
  std::filesystem::directory_iterator it(folder_of(target), ec), end;
  std::size_t removed = 0;
  // Best effort: a folder that cannot be listed or a file that cannot be
  // removed must not stop the write that comes next.
  for (; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    const char* first = name.data() + prefix.size();
    const char* last = name.data() + name.size();
    long long pid = 0;
    const auto [ptr, parse_error] = std::from_chars(first, last, pid);
    if (parse_error != std::errc() || ptr != last || pid <= 0 || static_cast<pid_t>(pid) != pid) continue;
    if (process_exists(static_cast<pid_t>(pid))) continue;
    std::error_code remove_error;
    if (std::filesystem::remove(it->path(), remove_error)) ++removed;
  }
  return removed;
}

void write_file_atomic(const std::filesystem::path& path, const std::function<void(const AppendBytes&)>& write) {
  remove_stale_temporaries(path);
  TempFile file(path);
  write([&](const void* data, std::size_t size) { file.append(data, size); });
  file.commit();
}

void write_file_atomic(const std::filesystem::path& path, std::string_view bytes) {
  write_file_atomic(path, [&](const AppendBytes& append) { append(bytes.data(), bytes.size()); });
}

void write_text_file_atomic(const std::filesystem::path& path, std::string_view text) {
  write_file_atomic(path, text);
}

}  // namespace petal
