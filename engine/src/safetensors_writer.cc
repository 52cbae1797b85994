// safetensors writer (see safetensors_writer.h). Plain POSIX writes: every write() and the close()
// are checked, so a full disk or a file-size limit (RLIMIT_FSIZE, with SIGXFSZ ignored) is a
// failure here, not bytes an ofstream's destructor drops silently after reporting success.
#include "safetensors_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <exception>
#include <string_view>

#include "nlohmann/json.hpp"

namespace attattr::engine {
namespace {

// Writes all of `data` to `fd`, resuming after short writes and EINTR; false on any error.
bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

bool WriteSafetensors(const std::string& path, const std::vector<RawTensor>& tensors) {
  std::string h;
  try {
    nlohmann::json header = nlohmann::json::object();
    header["__metadata__"] = {{"format", "pt"}};
    size_t offset = 0;
    for (const auto& t : tensors) {
      header[t.name] = {{"dtype", t.dtype},
                        {"shape", t.shape},
                        {"data_offsets", {offset, offset + t.bytes.size()}}};
      offset += t.bytes.size();
    }
    h = header.dump();  // three levels deep, built here: not untrusted
  } catch (const std::exception&) {
    return false;  // a name that is not UTF-8, bad_alloc
  }
  std::string length(8, '\0');
  for (int i = 0; i < 8; ++i) length[i] = static_cast<char>((uint64_t{h.size()} >> (8 * i)) & 0xff);

  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  bool ok = WriteAll(fd, length) && WriteAll(fd, h);
  for (const auto& t : tensors) {
    if (!ok) break;
    ok = WriteAll(fd, t.bytes);
  }
  // close() reports write-back errors some file systems (NFS) defer to it.
  if (::close(fd) != 0) ok = false;
  return ok;
}

}  // namespace attattr::engine
