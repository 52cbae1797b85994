// The attribution request as the CLI spells it (see attribution_request.h).
#include "attribution_request.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "attattr/base/status_macros.h"

namespace attattr::client {
namespace {

absl::StatusOr<int> ParseClass(const std::string& value, const std::vector<std::string>& labels,
                               const std::string& spec) {
  int k = 0;
  if (absl::SimpleAtoi(value, &k)) return k;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] == value) return static_cast<int>(i);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--target: '", spec, "': '", value, "' is neither a class index nor a label"));
}

}  // namespace

absl::StatusOr<engine::AttributionTarget> ParseTarget(const std::string& spec,
                                                      const std::vector<std::string>& labels) {
  engine::AttributionTarget t;
  if (spec == "predicted") return t;
  const auto colon = spec.find(':');
  const std::string kind = spec.substr(0, colon);
  const std::string value = colon == std::string::npos ? "" : spec.substr(colon + 1);
  if (kind == "similarity" && colon != std::string::npos && !value.empty()) {
    t.kind = engine::TargetKind::kEmbeddingSimilarity;
    t.reference_text = value;
    return t;
  }
  if ((kind == "class" || kind == "logit") && !value.empty()) {
    ATTATTR_ASSIGN_OR_RETURN(auto k, ParseClass(value, labels, spec));
    t.kind = kind == "class" ? engine::TargetKind::kClassProb : engine::TargetKind::kClassLogit;
    t.class_index = k;
    return t;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--target: '", spec, "' is not one of predicted, class:K, logit:K, similarity:TEXT"));
}

bool TargetNeedsLabels(const std::string& spec) {
  const auto colon = spec.find(':');
  if (colon == std::string::npos) return false;
  const std::string kind = spec.substr(0, colon);
  int k = 0;
  return (kind == "class" || kind == "logit") && colon + 1 < spec.size() &&
         !absl::SimpleAtoi(spec.substr(colon + 1), &k);
}

absl::StatusOr<std::vector<int>> ParseLayers(const std::string& spec) {
  std::vector<int> layers;
  if (spec.empty()) return layers;
  for (absl::string_view part : absl::StrSplit(spec, ',')) {
    int l = 0;
    if (!absl::SimpleAtoi(part, &l)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--layers: '", std::string(part), "' is not a layer index"));
    }
    layers.push_back(l);
  }
  return layers;
}

std::string TargetSpec(const v1::Target& t) {
  switch (t.kind()) {
    case v1::Target::CLASS_PROB:
      return absl::StrCat("class:", t.class_index());
    case v1::Target::CLASS_LOGIT:
      return absl::StrCat("logit:", t.class_index());
    case v1::Target::EMBEDDING_SIMILARITY:
      return absl::StrCat("similarity:", t.reference_text());
    default:
      return "predicted";
  }
}

}  // namespace attattr::client
