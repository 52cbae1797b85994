// Gold-label checks (see gold_label.h).
#include "attattr/engine/gold_label.h"

#include "absl/strings/str_cat.h"
#include "attattr/base/field_error.h"

namespace attattr::engine {

std::string ClassList(const ModelInfo& info) {
  std::string names;
  for (size_t c = 0; c < info.labels.size(); ++c) {
    absl::StrAppend(&names, c ? ", " : "", c, " = ", info.labels[c]);
  }
  return names;
}

absl::Status CheckGoldLabel(const ModelInfo& info, int label) {
  const int classes = static_cast<int>(info.labels.size());
  if (classes == 0) {
    return absl::InvalidArgumentError(
        "the model has no classifier, so there are no classes to label");
  }
  if (label >= 0 && label < classes) return absl::OkStatus();
  if (label < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("missing; every example needs a gold label (", ClassList(info), ")"));
  }
  return absl::InvalidArgumentError(absl::StrCat(label, " is not one of the model's classes (",
                                                 ClassList(info),
                                                 "); is this dataset for another task?"));
}

absl::Status CheckGoldLabels(const ModelInfo& info, absl::Span<const int> labels,
                             absl::string_view field) {
  for (size_t i = 0; i < labels.size(); ++i) {
    if (absl::Status s = CheckGoldLabel(info, labels[i]); !s.ok()) {
      return InvalidFieldError({std::string(field), static_cast<int64_t>(i)}, s.message());
    }
  }
  return absl::OkStatus();
}

std::vector<int> GoldLabels(const std::vector<Example>& examples) {
  std::vector<int> labels;
  labels.reserve(examples.size());
  for (const auto& e : examples) labels.push_back(e.label);
  return labels;
}

}  // namespace attattr::engine
