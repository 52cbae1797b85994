// FileLock: an exclusive advisory lock (flock) on a file beside a single-process resource, held for
// the lock object's life and by no other open of that file — in this process or another — until
// it goes (or its process dies: the kernel lets go). SqliteJobStore takes one on "<db>.lock" so
// that two servers never open one SQLite store: the second would re-queue the first's running jobs
// as interrupted and run them twice. The lock file holds the holder's process id, for the message
// the next one gets. flock, not SQLite's own fcntl locks: those are per process, and SQLite takes
// and drops them per transaction. Thread-safe (immutable once acquired).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace attattr::store {

class FileLock {
 public:
  // Creates `path` when absent and locks it without waiting. FailedPrecondition "in use by
  // another process (pid N), which holds '<path>'" (or "already open in this process") followed by
  // `when_held` when another holder has it; the errno's status naming the path when it cannot be
  // opened or locked (ENOLCK: a filesystem without locks).
  static absl::StatusOr<FileLock> Acquire(const std::string& path, absl::string_view when_held);

  FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;  // open and locked; -1 once moved from
};

}  // namespace attattr::store
