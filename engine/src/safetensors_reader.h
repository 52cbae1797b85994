// Reads Hugging Face safetensors files: an 8-byte little-endian header length, a JSON header
// mapping tensor names to {dtype, shape, data_offsets}, then the raw little-endian data. The file
// is memory- mapped read-only; TensorViews point into the mapping and live as long as the
// SafetensorsFile. Also resolves sharded checkpoints (model.safetensors.index.json). No torch here:
// the checkpoint loader turns views into tensors. Immutable after Open(); safe to read from many
// threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace attattr::engine {

enum class SafetensorsDType { kF64, kF32, kF16, kBF16, kI64, kI32, kI16, kI8, kU8, kBool };

// Bytes per element of a dtype.
std::size_t DTypeSize(SafetensorsDType dtype);
// The safetensors spelling ("F32", "BF16", ...).
std::string_view DTypeName(SafetensorsDType dtype);

struct TensorEntry {
  std::string name;
  SafetensorsDType dtype = SafetensorsDType::kF32;
  std::vector<int64_t> shape;
  std::size_t begin = 0;  // byte offset into the data section
  std::size_t end = 0;    // one past the last byte
};

struct SafetensorsHeader {
  std::vector<TensorEntry> tensors;             // sorted by name
  std::map<std::string, std::string> metadata;  // "__metadata__", if present
  std::size_t data_offset = 0;  // where the data section starts in the file (8 + header length)
};

// Parses and validates the header of a complete safetensors file held in `data[0, size)`.
// `file_label` names the file in error messages. Rejects (InvalidArgument, message naming the file
// and, where there is one, the tensor): a file shorter than 8 bytes; a header length past the end;
// JSON that is not an object; an entry without dtype/shape/data_offsets or with one twice; an
// unknown dtype; negative or non-integer dimensions; offsets with begin > end or past the end of
// the data section; a byte count that does not match the shape and dtype; overlapping tensors; a
// name listed twice; more than 1 000 000 tensors; arrays or objects nested more than 64 deep. Never
// reads outside `data`; builds no JSON tree (memory is the entries kept) and never serialises a
// value into a message.
absl::StatusOr<SafetensorsHeader> ParseSafetensorsHeader(const uint8_t* data, std::size_t size,
                                                         std::string_view file_label);

struct TensorView {
  const TensorEntry* entry = nullptr;
  const uint8_t* data = nullptr;  // entry->end - entry->begin bytes
  std::size_t nbytes = 0;
};

class SafetensorsFile {
 public:
  // Memory-maps and validates `path`. NotFound when missing; InvalidArgument when malformed or not
  // a regular file.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const SafetensorsHeader& header() const { return header_; }
  // NotFound naming the tensor and file when absent.
  absl::StatusOr<TensorView> Find(std::string_view name) const;

 private:
  SafetensorsFile(std::string path, const uint8_t* map, std::size_t size, SafetensorsHeader header);
  std::string path_;
  const uint8_t* map_ = nullptr;
  std::size_t size_ = 0;
  SafetensorsHeader header_;
};

// A sharded checkpoint's index file in `dir` (model.safetensors.index.json, and the same format
// for pytorch_model.bin.index.json): its "weight_map" {tensor: shard file}, at most 64 MiB and
// 1 000 000 tensors, read without building a JSON tree. InvalidArgument naming the index (and the
// tensor) when it is malformed, has no "weight_map", or names a shard that is not a file in `dir`
// (empty, absolute, or with a ".." component); NotFound when it is missing.
absl::StatusOr<std::map<std::string, std::string>> ReadShardIndex(const std::string& dir,
                                                                  const std::string& index_file);

// All tensors of a checkpoint directory, whether one `model.safetensors` or shards listed by
// `model.safetensors.index.json` ({"weight_map": {tensor: file}}, at most 64 MiB). Errors: a shard
// listed in the index that is missing, a tensor the index names that its shard lacks, a tensor in
// two shards, more than 1 000 000 tensors in all; any of the files that is not a regular file (a
// FIFO, a device: model_file.h) is refused before it is read.
class SafetensorsCheckpoint {
 public:
  // `dir` holds model.safetensors or model.safetensors.index.json (index wins if both exist).
  // NotFound when neither exists.
  static absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> Open(const std::string& dir);
  ~SafetensorsCheckpoint();

  std::vector<std::string> TensorNames() const;  // sorted
  absl::StatusOr<TensorView> Find(std::string_view name) const;
  // The file that holds `name`, for error messages; empty when unknown.
  std::string FileOf(std::string_view name) const;

 private:
  SafetensorsCheckpoint() = default;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsFile*, std::less<>> index_;
};

}  // namespace attattr::engine
