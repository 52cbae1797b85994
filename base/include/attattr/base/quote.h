// Input quoted in an error message, bounded: a caller's value is echoed to help them find it, never
// whole (a 1 MiB model name must not become a 1 MiB grpc-message or log line). Pure, thread-safe.
#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace attattr {

// How much of an input value messages show by default.
inline constexpr size_t kQuotedPrefixBytes = 64;

// `value` with control characters shown as \n, \t, \r, \x01, … (one line, no terminal escapes);
// cut to at most `max_bytes` bytes (never inside a UTF-8 sequence) followed by "…(N bytes)" when
// longer. For values written to logs.
std::string EscapeForLog(absl::string_view value, size_t max_bytes);

// The same cut, unescaped: for sinks that escape on their own (JSON).
std::string ClipForLog(absl::string_view value, size_t max_bytes);

// 'value' when it is at most `max_bytes` long; otherwise 'its first max_bytes bytes…' (N bytes).
// The cut never splits a UTF-8 sequence; control characters are shown as \n, \t, \x01, …
std::string QuoteInput(absl::string_view value, size_t max_bytes = kQuotedPrefixBytes);

}  // namespace attattr
