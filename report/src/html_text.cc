// Escaping and formatting for the HTML reports (see html_text.h).
#include "html_text.h"

#include <cmath>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"

namespace attattr::report {

std::string EscapeHtml(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string ShortenLabel(const std::string& label, size_t max_bytes) {
  if (label.size() <= max_bytes) return label;
  size_t cut = max_bytes;  // do not split a UTF-8 sequence
  while (cut > 0 && (static_cast<unsigned char>(label[cut]) & 0xC0) == 0x80) --cut;
  return label.substr(0, cut) + "\u2026";
}

std::string FormatNumber(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  return absl::StrFormat("%.4g", value);
}

std::string FormatPercent(double fraction) {
  if (!std::isfinite(fraction)) return FormatNumber(fraction);
  return absl::StrFormat("%.2f %%", 100.0 * fraction);
}

std::string FormatUnixMs(int64_t unix_ms) {
  if (unix_ms == 0) return "\u2014";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromUnixMillis(unix_ms),
                          absl::UTCTimeZone());
}

}  // namespace attattr::report
