// Depth-capped parsing and bounded description of untrusted JSON (see untrusted_json.h).
#include "untrusted_json.h"

#include <exception>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "attattr/base/quote.h"

namespace attattr::engine {

using nlohmann::json;

absl::StatusOr<json> ParseUntrustedJson(std::string_view text, const std::string& label) {
  // The callback discards every array or object that would open below the cap, so the tree that is
  // built is never deeper than kMaxJsonDepth; the flag turns the discarded part into an error.
  bool too_deep = false;
  const json::parser_callback_t cap = [&too_deep](int depth, json::parse_event_t event, json&) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth >= kMaxJsonDepth) {
      too_deep = true;
      return false;
    }
    return true;
  };
  json value;
  try {
    value = json::parse(text.begin(), text.end(), cap, /*allow_exceptions=*/true);
  } catch (const json::exception& e) {
    // The message quotes the last token read, which can be most of the file: cut it.
    return absl::InvalidArgumentError(
        absl::StrCat(label, ": not valid JSON: ", EscapeForLog(e.what(), 160)));
  } catch (const std::exception& e) {  // bad_alloc
    return absl::ResourceExhaustedError(absl::StrCat(label, ": cannot be parsed: ", e.what()));
  }
  if (too_deep) {
    return absl::InvalidArgumentError(absl::StrCat(label, ": arrays or objects nested more than ",
                                                   kMaxJsonDepth, " levels deep"));
  }
  return value;
}

std::string DescribeJsonString(std::string_view text) {
  // Dumping a string is not recursive; `replace` keeps a cut that ClipForLog made whole anyway.
  return json(ClipForLog(absl::string_view(text.data(), text.size()), 64))
      .dump(-1, ' ', /*ensure_ascii=*/false, json::error_handler_t::replace);
}

std::string DescribeJson(const json& value) {
  switch (value.type()) {
    case json::value_t::string:
      return DescribeJsonString(value.get_ref<const std::string&>());
    case json::value_t::array:
      return absl::StrCat("an array of ", value.size(),
                          value.size() == 1 ? " element" : " elements");
    case json::value_t::object:
      return absl::StrCat("an object of ", value.size(), value.size() == 1 ? " key" : " keys");
    case json::value_t::binary:
      return "binary data";
    case json::value_t::discarded:
      return "nothing";
    default:  // null, boolean, numbers: dump() of a scalar is short and not recursive
      return value.dump();
  }
}

}  // namespace attattr::engine
