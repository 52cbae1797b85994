// Checks shared by every Tokenizer implementation (tokenizer.h).
#include "attattr/engine/tokenizer.h"

#include "attattr/base/field_error.h"

namespace attattr::engine {

absl::Status CheckSegmentsHaveTokens(const Encoding& encoding, bool pair, absl::string_view why) {
  bool a = false, b = false;
  for (const auto& span : encoding.offsets) {
    a = a || span.segment == 0;
    b = b || span.segment == 1;
  }
  if (!a) return InvalidFieldError({"text", -1}, why);
  if (pair && !b) return InvalidFieldError({"text_pair", -1}, why);
  return absl::OkStatus();
}

}  // namespace attattr::engine
