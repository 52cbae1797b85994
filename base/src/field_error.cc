// Field errors as Status payloads (see field_error.h). The payload is "<index>\n<name>\n<what>"
// under one type URL; a status without it is not a field error.
#include "attattr/base/field_error.h"

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace attattr {
namespace {

constexpr absl::string_view kPayloadUrl = "type.attattr.dev/attattr.FieldError";

}  // namespace

std::string FieldPath(const ErrorField& field) {
  return field.index >= 0 ? absl::StrCat(field.name, "[", field.index, "]") : field.name;
}

absl::Status FieldError(absl::StatusCode code, const ErrorField& field, absl::string_view what) {
  absl::Status status(code, absl::StrCat(FieldPath(field), ": ", what));
  status.SetPayload(kPayloadUrl,
                    absl::Cord(absl::StrCat(field.index, "\n", field.name, "\n", what)));
  return status;
}

absl::Status InvalidFieldError(const ErrorField& field, absl::string_view what) {
  return FieldError(absl::StatusCode::kInvalidArgument, field, what);
}

std::optional<FieldErrorParts> GetFieldError(const absl::Status& status) {
  if (status.ok()) return std::nullopt;
  const auto payload = status.GetPayload(kPayloadUrl);
  if (!payload) return std::nullopt;
  const std::string text(*payload);
  const size_t first = text.find('\n');
  const size_t second = first == std::string::npos ? first : text.find('\n', first + 1);
  if (second == std::string::npos) return std::nullopt;
  FieldErrorParts parts;
  if (!absl::SimpleAtoi(text.substr(0, first), &parts.field.index)) return std::nullopt;
  parts.field.name = text.substr(first + 1, second - first - 1);
  parts.what = text.substr(second + 1);
  return parts;
}

}  // namespace attattr
