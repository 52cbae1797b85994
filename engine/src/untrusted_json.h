// JSON from a model folder (config.json, tokenizer_config.json), parsed with its nesting capped
// and shown in messages without being serialised. nlohmann's parser and destructor are iterative
// (3.11), but dump(), copies and comparisons recurse: `"num_hidden_layers": [[[…300 000…]]]` in a
// 600 KB file overflowed the stack as soon as an error message dumped the value. Capping the depth
// at parse time means no deep tree ever exists; describing values by kind means no message ever
// walks one. (The safetensors header and the sharded index are not parsed into trees at all:
// safetensors_reader.cc reads them with SAX handlers.) Thread-safe (no shared state).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace attattr::engine {

// Deeper than any real config (they nest 3 or 4 levels).
inline constexpr int kMaxJsonDepth = 64;

// Parses `text` (a whole file; `label` names it in errors). InvalidArgument: not JSON (the
// parser's message, cut to a short line), or arrays/objects nested more than kMaxJsonDepth deep.
absl::StatusOr<nlohmann::json> ParseUntrustedJson(std::string_view text, const std::string& label);

// `value` for an error message, bounded and without recursion: a number, boolean or null as JSON
// spells it; a string JSON-quoted, at most 64 bytes of it; an array or object by its kind and size
// ("an array of 3 elements").
std::string DescribeJson(const nlohmann::json& value);
// A string as DescribeJson shows one: "\"F8\"".
std::string DescribeJsonString(std::string_view text);

}  // namespace attattr::engine
