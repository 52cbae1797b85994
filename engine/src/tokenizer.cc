// Checks shared by every Tokenizer implementation (tokenizer.h).
#include "attattr/engine/tokenizer.h"

#include "attattr/base/field_error.h"

namespace attattr::engine {

absl::Status CheckSegmentsHaveTokens(const Encoding& encoding, bool pair) {
  bool a = false, b = false;
  for (const auto& span : encoding.offsets) {
    a = a || span.segment == 0;
    b = b || span.segment == 1;
  }
  constexpr absl::string_view kNone = "holds no tokens (only whitespace or control characters)";
  if (!a) return InvalidFieldError({"text", -1}, kNone);
  if (pair && !b) return InvalidFieldError({"text_pair", -1}, kNone);
  return absl::OkStatus();
}

}  // namespace attattr::engine
