// Errors that carry the field they are about as data. A library that finds a bad element (the
// 3rd label of the importance set) attaches the field's name and index to the Status as a
// payload; each boundary then names it in its own vocabulary — a CLI flag ("--eval-set: example
// 3: label ..."), a proto path ("spec.head_importance.evaluation_set...examples[3].label: ...")
// — without parsing or rewriting the message. The message itself stays readable on its own
// ("evaluation_labels[3]: 2 is not one of the model's classes ..."). Pure, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace attattr {

// What a field error is about. `name` is in the producer's vocabulary (an engine parameter such
// as "evaluation_labels"); `index` is the element, or -1 for the field as a whole.
struct ErrorField {
  std::string name;
  int64_t index = -1;
};

// A field error as its parts: the field and what is wrong with it, without the field prefix.
struct FieldErrorParts {
  ErrorField field;
  std::string what;
};

// "<name>[<index>]", or "<name>" without an index: how messages spell the field.
std::string FieldPath(const ErrorField& field);

// A Status with `code` and message "<name>[<index>]: <what>" ("<name>: <what>" without an index),
// carrying `field` and `what` as a payload.
absl::Status FieldError(absl::StatusCode code, const ErrorField& field, absl::string_view what);

// InvalidArgument field error, the common case.
absl::Status InvalidFieldError(const ErrorField& field, absl::string_view what);

// The field and the bare message of a status made by FieldError; nullopt for any other status
// (OK included).
std::optional<FieldErrorParts> GetFieldError(const absl::Status& status);

}  // namespace attattr
