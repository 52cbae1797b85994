// Writes safetensors files for tests (the engine only reads them): header JSON with dtype, shape and
// data_offsets per tensor, then the raw bytes in order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace attattr::testing {

struct RawTensor {
  std::string name;
  std::string dtype;  // "F32", "F16", "BF16", "I64", ...
  std::vector<int64_t> shape;
  std::string bytes;  // little-endian data
};

// Returns false when the file cannot be written.
bool WriteSafetensors(const std::string& path, const std::vector<RawTensor>& tensors);

}  // namespace attattr::testing
