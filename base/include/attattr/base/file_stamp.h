// FileStamp: what tells a file's new version from its old one without reading it — device, inode,
// size and modification time in nanoseconds. A file replaced by rename (how cert-manager and
// Kubernetes Secret volumes update, through a symlink swap) gets a new inode; one rewritten in
// place gets a new mtime or size. Used by whatever re-reads files on change (tokens, certificates).
// Pure value type.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace attattr {

struct FileStamp {
  uint64_t device = 0;
  uint64_t inode = 0;
  int64_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const FileStamp& o) const {
    return device == o.device && inode == o.inode && size == o.size && mtime_ns == o.mtime_ns;
  }
  bool operator!=(const FileStamp& o) const { return !(*this == o); }
};

// The stamp of `path` (following symlinks); nullopt when it cannot be stat'ed.
std::optional<FileStamp> StampOf(const std::string& path);

}  // namespace attattr
