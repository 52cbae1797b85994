// Bounded quoting of input in messages (see quote.h).
#include "attattr/base/quote.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace attattr {

namespace {

// The length of `value`'s prefix of at most `max_bytes` that ends on a UTF-8 sequence boundary.
size_t CutAt(absl::string_view value, size_t max_bytes) {
  if (value.size() <= max_bytes) return value.size();
  size_t cut = max_bytes;
  // Back up to the start of a UTF-8 sequence (continuation bytes are 10xxxxxx).
  while (cut > 0 && (static_cast<unsigned char>(value[cut]) & 0xC0) == 0x80) --cut;
  return cut;
}

void AppendEscaped(absl::string_view text, std::string* out) {
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      *out += "\\n";
    } else if (c == '\t') {
      *out += "\\t";
    } else if (c == '\r') {
      *out += "\\r";
    } else if (u < 0x20 || u == 0x7F) {
      *out += absl::StrFormat("\\x%02x", u);
    } else {
      *out += c;
    }
  }
}

}  // namespace

std::string EscapeForLog(absl::string_view value, size_t max_bytes) {
  const size_t cut = CutAt(value, max_bytes);
  std::string out;
  out.reserve(cut + 16);
  AppendEscaped(value.substr(0, cut), &out);
  if (cut < value.size()) absl::StrAppend(&out, "\u2026(", value.size(), " bytes)");
  return out;
}

std::string ClipForLog(absl::string_view value, size_t max_bytes) {
  const size_t cut = CutAt(value, max_bytes);
  if (cut == value.size()) return std::string(value);
  return absl::StrCat(value.substr(0, cut), "\u2026(", value.size(), " bytes)");
}

std::string QuoteInput(absl::string_view value, size_t max_bytes) {
  const size_t cut = CutAt(value, max_bytes);
  std::string out = "'";
  AppendEscaped(value.substr(0, cut), &out);
  if (cut < value.size()) return absl::StrCat(out, "\u2026' (", value.size(), " bytes)");
  return out + "'";
}

}  // namespace attattr
