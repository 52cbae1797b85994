// Text pieces of the HTML reports: escaping every user-supplied string (tokens, labels, messages,
// job names) for HTML text and attribute values, number and time formatting. Hand-written because
// no HTML templating library is packaged for C++ in Debian 12; escaping the five significant
// characters is all HTML needs inside text and quoted attributes. Pure functions, thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace attattr::report {

// & < > " ' replaced by character references; safe in text and in quoted attribute values.
std::string EscapeHtml(absl::string_view text);

// `label` cut to at most `max_bytes` bytes, never inside a UTF-8 sequence, with "…" when cut:
// for tokens drawn in SVG, whose text must stay valid UTF-8.
std::string ShortenLabel(const std::string& label, size_t max_bytes);

// %.4g, "NaN"/"inf" spelled out.
std::string FormatNumber(double value);
// "12.5 %" from a fraction.
std::string FormatPercent(double fraction);
// "2026-11-26 19:40:03 UTC" from Unix milliseconds; "—" for 0 (unset).
std::string FormatUnixMs(int64_t unix_ms);

}  // namespace attattr::report
