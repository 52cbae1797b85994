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

// Returns false when the file cannot be written.
bool WriteSafetensors(const std::string& path, const std::vector<RawTensor>& tensors);

}  // namespace attattr::engine
