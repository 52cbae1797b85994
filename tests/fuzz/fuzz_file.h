// ScratchFile: one temporary file a fuzz target rewrites with each input, for parsers that read a
// path (a --config file, a dataset, a vocabulary). Created once per process under $TMPDIR and
// removed at exit. Single-threaded, as libFuzzer calls a target.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

namespace attattr::fuzz {

class ScratchFile {
 public:
  explicit ScratchFile(const std::string& suffix) {
    const char* dir = std::getenv("TMPDIR");
    path_ = std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/attattr-fuzz-XXXXXX" +
            suffix;
    fd_ = mkstemps(path_.data(), static_cast<int>(suffix.size()));
    if (fd_ < 0) std::abort();
  }
  ~ScratchFile() {
    close(fd_);
    unlink(path_.c_str());
  }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;

  // Replaces the file's contents with `size` bytes at `data`.
  void Write(const uint8_t* data, size_t size) {
    if (ftruncate(fd_, 0) != 0) std::abort();
    size_t done = 0;
    while (done < size) {
      const ssize_t n = pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
      if (n <= 0) std::abort();
      done += static_cast<size_t>(n);
    }
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace attattr::fuzz
