// Bounded quoting of input in messages (see quote.h).
#include "attattr/base/quote.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace attattr {

std::string QuoteInput(absl::string_view value, size_t max_bytes) {
  size_t cut = value.size();
  if (cut > max_bytes) {
    cut = max_bytes;
    // Back up to the start of a UTF-8 sequence (continuation bytes are 10xxxxxx).
    while (cut > 0 && (static_cast<unsigned char>(value[cut]) & 0xC0) == 0x80) --cut;
  }
  std::string out = "'";
  for (char c : value.substr(0, cut)) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (u < 0x20 || u == 0x7F) {
      out += absl::StrFormat("\\x%02x", u);
    } else {
      out += c;
    }
  }
  if (cut < value.size()) return absl::StrCat(out, "\u2026' (", value.size(), " bytes)");
  return out + "'";
}

}  // namespace attattr
