// Opening and reading the files of a model folder (config.json, tokenizer_config.json,
// tokenizer.json, vocab.txt, the sharded index, the checkpoints). A model folder is input like any
// other: a FIFO in it must be an error, not a load that blocks forever in open() (the server loads
// every model before it serves), and a symlink to /dev/zero must be an error, not a read that ends
// in bad_alloc. So every file is opened without blocking, must be a regular file (a symlink to one
// is fine: the Hugging Face cache is made of them), and a whole-file read stops at a cap per kind
// of file. Plain POSIX because std::ifstream can neither open without blocking nor fstat what it
// opened. Thread-safe (no shared state).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/statusor.h"

namespace attattr::engine {

// Whole-file read caps, per kind of file. Real files are far smaller (a config.json with 20 000
// labels is under 1 MiB, the largest vocab.txt a few MiB, an index of 100 000 tensors ~10 MiB).
// tokenizer.json has its own (HfTokenizer::kMaxFileBytes); checkpoints are memory-mapped
// (safetensors) or read record by record (pytorch_model.bin), never read whole.
inline constexpr std::size_t kMaxConfigJsonBytes = std::size_t{16}
                                                   << 20;  // config, tokenizer_config
inline constexpr std::size_t kMaxVocabularyBytes = std::size_t{64} << 20;  // vocab.txt
inline constexpr std::size_t kMaxIndexJsonBytes = std::size_t{64} << 20;   // *.index.json

// A regular file of a model folder, open read-only; the descriptor is closed on destruction.
class ModelFile {
 public:
  // Opens `path` (O_RDONLY | O_NONBLOCK | O_CLOEXEC, following symlinks) and checks that it is a
  // regular file. Errors name the path: NotFound when it does not exist, PermissionDenied,
  // InvalidArgument for anything but a regular file (saying what it is: a FIFO, a character
  // device, a directory, ...), Internal for other failures.
  static absl::StatusOr<ModelFile> Open(const std::string& path);

  ModelFile(ModelFile&& other) noexcept;
  ModelFile& operator=(ModelFile&& other) noexcept;
  ModelFile(const ModelFile&) = delete;
  ModelFile& operator=(const ModelFile&) = delete;
  ~ModelFile();

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }  // as fstat saw it at Open

  // The whole file. InvalidArgument naming the file and `max_bytes` when it is larger (checked
  // before anything is read, and again while reading, for a file that grows).
  absl::StatusOr<std::string> ReadAll(std::size_t max_bytes) const;

 private:
  ModelFile(int fd, std::string path, uint64_t size)
      : fd_(fd), path_(std::move(path)), size_(size) {}
  int fd_ = -1;
  std::string path_;
  uint64_t size_ = 0;
};

// ModelFile::Open(path), then ReadAll(max_bytes).
absl::StatusOr<std::string> ReadModelFile(const std::string& path, std::size_t max_bytes);

}  // namespace attattr::engine
