#include "nn/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "core/error.hpp"

namespace petal::nn {

namespace {

// Owns the temporary file until it is renamed into place.
class TempFile {
 public:
  explicit TempFile(const std::filesystem::path& target) : target_(target) {
    tmp_ = target.string() + ".tmp." + std::to_string(::getpid());
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    PETAL_CHECK(fd_ >= 0, IOError, "cannot create ", tmp_, ": ", std::strerror(errno));
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
      ssize_t n = ::write(fd_, p, size);
      if (n < 0 && errno == EINTR) continue;
      PETAL_CHECK(n > 0, IOError, "cannot write ", tmp_, " (for ", target_.string(), "): ", std::strerror(errno));
      p += n;
      size -= static_cast<std::size_t>(n);
    }
  }

  void commit() {
    PETAL_CHECK(::fsync(fd_) == 0, IOError, "cannot flush ", tmp_, ": ", std::strerror(errno));
    int rc = ::close(fd_);
    fd_ = -1;
    PETAL_CHECK(rc == 0, IOError, "cannot close ", tmp_, ": ", std::strerror(errno));
    PETAL_CHECK(::rename(tmp_.c_str(), target_.c_str()) == 0, IOError, "cannot rename ", tmp_, " to ",
                target_.string(), ": ", std::strerror(errno));
    committed_ = true;
  }

 private:
  std::filesystem::path target_;
  std::string tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace

void write_file_atomic(const std::filesystem::path& path, const std::function<void(const AppendBytes&)>& write) {
  TempFile file(path);
  write([&](const void* data, std::size_t size) { file.append(data, size); });
  file.commit();
}

void write_text_file_atomic(const std::filesystem::path& path, std::string_view text) {
  write_file_atomic(path, [&](const AppendBytes& append) { append(text.data(), text.size()); });
}

}  // namespace petal::nn
