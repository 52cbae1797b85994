// safetensors writer (see safetensors_writer.h).
#include "safetensors_writer.h"

#include <fstream>

#include "nlohmann/json.hpp"

namespace attattr::engine {

bool WriteSafetensors(const std::string& path, const std::vector<RawTensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  header["__metadata__"] = {{"format", "pt"}};
  size_t offset = 0;
  for (const auto& t : tensors) {
    header[t.name] = {{"dtype", t.dtype},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  const std::string h = header.dump();
  const uint64_t n = h.size();
  std::ofstream out(path, std::ios::binary);
  if (!out) return false;
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xff));
  out << h;
  for (const auto& t : tensors) out << t.bytes;
  return static_cast<bool>(out);
}

}  // namespace attattr::engine
