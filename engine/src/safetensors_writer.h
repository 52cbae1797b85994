// Writes safetensors files: an 8-byte little-endian header length, the header JSON (dtype, shape
// and data_offsets per tensor, plus __metadata__), then the raw bytes in order. Used by the pruned-
// checkpoint export and by tests that build fixtures. Written here because no safetensors library
// is packaged for C++; the format is a header and a byte copy. Private to the engine (and tests).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace attattr::engine {

struct RawTensor {
  std::string name;
  std::string dtype;  // "F32", "F16", "BF16", "I64", ...
  std::vector<int64_t> shape;
  std::string bytes;  // little-endian data
};

// Writes `path` (created or truncated). Returns false when any part of it cannot be written (a
// full disk, a file-size limit, an I/O error reported by close()): a true result means every byte
// reached the kernel. It does not fsync: a caller that publishes the file (the pruned export)
// syncs it before the rename that publishes it.
bool WriteSafetensors(const std::string& path, const std::vector<RawTensor>& tensors);

}  // namespace attattr::engine
