// TokenTable (see token_table.h): parsing, constant-time lookup, re-reading on change.
#include "auth/token_table.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "attattr/base/quote.h"

namespace attattr::server {
namespace {

constexpr size_t kMaxFileBytes = size_t{4} << 20;
constexpr size_t kMaxPrincipalBytes = 128;
// Longer presented tokens are refused without hashing (no real token is near this).
constexpr size_t kMaxTokenBytes = 4096;

absl::Status BadLine(const std::string& path, int line, const std::string& why) {
  return absl::InvalidArgumentError(
      absl::StrCat("--auth-tokens: ", path, " line ", line, ": ", why,
                   " (expected `principal<TAB>hex sha256 of the token`)"));
}

bool ValidPrincipal(absl::string_view name) {
  if (name.empty() || name.size() > kMaxPrincipalBytes) return false;
  for (unsigned char c : name) {
    if (c <= ' ' || c >= 0x7f) return false;
  }
  return true;
}

std::array<unsigned char, 32> Sha256(absl::string_view bytes) {
  std::array<unsigned char, 32> digest{};
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest.data(), &length, EVP_sha256(), nullptr);
  return digest;
}

}  // namespace

absl::StatusOr<std::vector<TokenTable::Entry>> TokenTable::Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("--auth-tokens: cannot read ", path));
  std::string text(kMaxFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxFileBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("--auth-tokens: ", path, " is larger than ", kMaxFileBytes >> 20, " MiB"));
  }
  std::vector<Entry> entries;
  std::set<std::array<unsigned char, 32>> seen;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    line = absl::StripTrailingAsciiWhitespace(line);
    if (absl::StripLeadingAsciiWhitespace(line).empty() || line.front() == '#') continue;
    const size_t tab = line.find('\t');
    if (tab == absl::string_view::npos) return BadLine(path, number, "no tab");
    const absl::string_view principal = line.substr(0, tab);
    const absl::string_view hex = absl::StripAsciiWhitespace(line.substr(tab + 1));
    if (!ValidPrincipal(principal)) {
      return BadLine(path, number,
                     absl::StrCat("principal ", QuoteInput(principal),
                                  " must be 1..128 printable ASCII characters without spaces"));
    }
    if (hex.size() != 64 || hex.find_first_not_of("0123456789abcdefABCDEF") != hex.npos) {
      return BadLine(path, number, "the digest is not 64 hex digits");
    }
    Entry entry;
    entry.principal = std::string(principal);
    const std::string raw = absl::HexStringToBytes(hex);
    std::copy(raw.begin(), raw.end(), entry.digest.begin());
    if (!seen.insert(entry.digest).second) {
      return BadLine(path, number, "this digest is already listed (one token, one principal)");
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

absl::StatusOr<std::unique_ptr<TokenTable>> TokenTable::Open(const std::string& path,
                                                             ReloadObserver on_reload) {
  std::unique_ptr<TokenTable> table(new TokenTable(path, std::move(on_reload)));
  const auto stamp = StampOf(path);
  auto entries = Read(path);
  if (!entries.ok()) return entries.status();
  absl::MutexLock lock(&table->mu_);
  table->entries_ = std::move(*entries);
  table->stamp_ = stamp;
  return table;
}

void TokenTable::ReloadIfChanged() {
  absl::Status status;
  size_t count = 0;
  {
    absl::MutexLock lock(&mu_);
    const auto stamp = StampOf(path_);
    if (!stamp.has_value() || stamp == stamp_) return;  // gone (kept) or unchanged
    stamp_ = stamp;
    auto entries = Read(path_);
    if (entries.ok()) {
      entries_ = std::move(*entries);
      count = entries_.size();
    } else {
      status = entries.status();
      count = entries_.size();
    }
  }
  if (on_reload_) on_reload_(status, count);
}

std::optional<std::string> TokenTable::Lookup(absl::string_view token) const {
  if (token.empty() || token.size() > kMaxTokenBytes) return std::nullopt;
  const auto digest = Sha256(token);
  absl::MutexLock lock(&mu_);
  const Entry* match = nullptr;
  for (const Entry& entry : entries_) {
    // Every entry is compared whatever matched before: the time does not depend on where.
    const bool equal = CRYPTO_memcmp(entry.digest.data(), digest.data(), digest.size()) == 0;
    if (equal) match = &entry;
  }
  if (match == nullptr) return std::nullopt;
  return match->principal;
}

size_t TokenTable::size() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

}  // namespace attattr::server
