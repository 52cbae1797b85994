// The one rule for gold labels: a label is one of the classifier's classes. Used wherever labels
// enter — the head-importance study, trigger search, the server's job validation and the CLI —
// so every surface refuses the same labels with the same words; each names the field in its own
// vocabulary (errors carry it as data: attattr/base/field_error.h). Pure, thread-safe.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "attattr/engine/example.h"
#include "attattr/engine/model.h"

namespace attattr::engine {

// The classes for messages: "0 = negative, 1 = positive".
std::string ClassList(const ModelInfo& info);

// OK when `label` is one of the model's classes; otherwise InvalidArgument with a message that
// names no field: "missing; every example needs a gold label (0 = negative, 1 = positive)" for a
// negative label, "2 is not one of the model's classes (0 = negative, 1 = positive)" above the
// range (with "; is this dataset for another task?"), "the model has no classifier, so there are no
// classes to label" without one.
absl::Status CheckGoldLabel(const ModelInfo& info, int label);

// The first of `labels` failing CheckGoldLabel, as the field error {field, index}
// ("<field>[i]: <what>").
absl::Status CheckGoldLabels(const ModelInfo& info, absl::Span<const int> labels,
                             absl::string_view field);

// The gold labels of `examples`, in order (-1 where unknown).
std::vector<int> GoldLabels(const std::vector<Example>& examples);

}  // namespace attattr::engine
