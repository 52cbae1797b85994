// Exclusive advisory lock on a file (see file_lock.h).
#include "store/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace attattr::store {
namespace {

// The process id the holder wrote, or "" when the file does not hold one.
std::string HolderPid(int fd) {
  char buffer[32] = {};
  const ssize_t n = pread(fd, buffer, sizeof(buffer) - 1, 0);
  int pid = 0;
  if (n <= 0 || !absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::string_view(buffer, n)), &pid) ||
      pid <= 0) {
    return "";
  }
  return std::to_string(pid);
}

}  // namespace

absl::StatusOr<FileLock> FileLock::Acquire(const std::string& path, absl::string_view when_held) {
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int err = errno;
    return absl::ErrnoToStatus(err, absl::StrCat("cannot open the lock file '", path, "'"));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    const std::string pid = err == EWOULDBLOCK ? HolderPid(fd) : "";
    close(fd);
    if (err != EWOULDBLOCK) {
      return absl::ErrnoToStatus(err, absl::StrCat("cannot lock '", path, "'"));
    }
    if (pid == std::to_string(getpid())) {
      return absl::FailedPreconditionError(
          absl::StrCat("already open in this process (it holds '", path, "')", when_held));
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "in use by another process", pid.empty() ? "" : absl::StrCat(" (pid ", pid, ")"),
        ", which holds '", path, "'", when_held));
  }
  // Ours: say who holds it. Best effort: the lock, not the text, is what excludes; without it the
  // next process's message only lacks the pid.
  const std::string pid = absl::StrCat(getpid(), "\n");
  const bool written = ftruncate(fd, 0) == 0 &&
                       pwrite(fd, pid.data(), pid.size(), 0) == static_cast<ssize_t>(pid.size());
  (void)written;
  return FileLock(fd);
}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

FileLock::~FileLock() {
  if (fd_ >= 0) close(fd_);  // closing the last descriptor of the open file drops the flock
}

}  // namespace attattr::store
