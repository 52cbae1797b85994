// Opening and reading a model folder's files without blocking on, or drowning in, what is not a
// regular file (see model_file.h).
#include "model_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace attattr::engine {
namespace {

absl::Status ErrnoStatus(int err, absl::string_view what, absl::string_view path) {
  const std::string message = absl::StrCat(path, ": cannot ", what, ": ", std::strerror(err));
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    default:
      return absl::InternalError(message);
  }
}

// What a file that is not a regular file is, for the message.
const char* KindOf(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

absl::Status TooLarge(const std::string& path, uint64_t size, std::size_t max_bytes) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", size, " bytes, more than the ",
                                                 max_bytes, " this kind of file may have"));
}

}  // namespace

absl::StatusOr<ModelFile> ModelFile::Open(const std::string& path) {
  // O_NONBLOCK: opening a FIFO without a writer returns at once (and is refused below) instead of
  // waiting for one; it has no effect on reads of regular files.
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoStatus(errno, "open", path);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return ErrnoStatus(err, "stat", path);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": is ", KindOf(st.st_mode), ", not a regular file"));
  }
  return ModelFile(fd, path, static_cast<uint64_t>(st.st_size));
}

ModelFile::ModelFile(ModelFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)), size_(other.size_) {}

ModelFile& ModelFile::operator=(ModelFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    size_ = other.size_;
  }
  return *this;
}

ModelFile::~ModelFile() {
  if (fd_ >= 0) ::close(fd_);
}

absl::StatusOr<std::string> ModelFile::ReadAll(std::size_t max_bytes) const {
  if (size_ > max_bytes) return TooLarge(path_, size_, max_bytes);
  std::string out(static_cast<std::size_t>(size_), '\0');
  std::size_t done = 0;
  for (;;) {
    // Reads one byte past the cap at most: a file that grew since fstat is refused, not read on.
    if (done == out.size()) {
      if (out.size() > max_bytes) return TooLarge(path_, out.size(), max_bytes);
      out.resize(std::min(max_bytes + 1, std::max<std::size_t>(out.size() * 2, 4096)));
    }
    const ssize_t n = ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read", path_);
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  if (done > max_bytes) return TooLarge(path_, done, max_bytes);
  out.resize(done);
  return out;
}

absl::StatusOr<std::string> ReadModelFile(const std::string& path, std::size_t max_bytes) {
  absl::StatusOr<ModelFile> file = ModelFile::Open(path);
  if (!file.ok()) return file.status();
  return file->ReadAll(max_bytes);
}

}  // namespace attattr::engine
