// TokenTable: the bearer tokens of --auth-tokens. The file holds one `principal<TAB>sha256` line
// per token (the token's SHA-256 in hex, so the file never holds a token itself; '#' starts a
// comment line; blank lines are skipped). Lookup hashes the presented token and compares it with
// every entry in constant time (CRYPTO_memcmp, no early exit), so neither timing nor the file
// reveals a token. ReloadIfChanged re-reads the file when its FileStamp changed (the server calls
// it every second from its timer thread, so no call's path ever touches the file); a new version
// that does not parse is refused and the previous table kept, so a bad edit never locks every
// caller out. Thread-safe.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "attattr/base/file_stamp.h"

namespace attattr::server {

class TokenTable {
 public:
  // What a re-read did: OK with the entry count, or why the new version was refused.
  using ReloadObserver = std::function<void(const absl::Status& status, size_t entries)>;

  // Reads `path`; InvalidArgument naming --auth-tokens and the line when it does not parse (a
  // missing file, a line without a tab, a digest that is not 64 hex digits, a principal with
  // spaces or control characters or longer than 128 bytes, a digest listed twice).
  static absl::StatusOr<std::unique_ptr<TokenTable>> Open(const std::string& path,
                                                          ReloadObserver on_reload = nullptr);

  // The principal `token` belongs to, or nullopt.
  std::optional<std::string> Lookup(absl::string_view token) const;

  // Re-reads the file now if its stamp changed since the last read.
  void ReloadIfChanged();

  size_t size() const;

 private:
  struct Entry {
    std::string principal;
    std::array<unsigned char, 32> digest{};
  };
  TokenTable(std::string path, ReloadObserver on_reload)
      : path_(std::move(path)), on_reload_(std::move(on_reload)) {}
  // The file's entries, or why they are refused.
  static absl::StatusOr<std::vector<Entry>> Read(const std::string& path);

  const std::string path_;
  const ReloadObserver on_reload_;
  mutable absl::Mutex mu_;
  std::vector<Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::optional<FileStamp> stamp_ ABSL_GUARDED_BY(mu_);  // of the version last tried
};

}  // namespace attattr::server
