// libFuzzer entry point for ParseSafetensorsHeader: the input is a whole safetensors file. The
// parser must return a Status for anything (no crash, no out-of-bounds read, no exception, no UB).
// It does not exercise mmap or checkpoint resolution. Single-threaded, as libFuzzer calls it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "safetensors_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::StatusOr<attattr::engine::SafetensorsHeader> header =
      attattr::engine::ParseSafetensorsHeader(data, size, "fuzz.safetensors");
  if (header.ok()) {
    // Invariants promised by a successful parse.
    const std::size_t data_size = size - header->data_offset;
    for (const attattr::engine::TensorEntry& t : header->tensors) {
      if (t.begin > t.end || t.end > data_size) std::abort();
      std::size_t elements = 1;
      for (int64_t d : t.shape) {
        if (d < 0) std::abort();
        elements *= static_cast<std::size_t>(d);
      }
      if (elements * attattr::engine::DTypeSize(t.dtype) != t.end - t.begin) std::abort();
    }
  } else if (header.status().message().empty()) {
    std::abort();
  }
  return 0;
}
