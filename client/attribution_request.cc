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
  if ((kind == "class" || kind == "logit" || kind == "logprob") && !value.empty()) {
    ATTATTR_ASSIGN_OR_RETURN(auto k, ParseClass(value, labels, spec));
    t.kind = kind == "class"   ? engine::TargetKind::kClassProb
             : kind == "logit" ? engine::TargetKind::kClassLogit
                               : engine::TargetKind::kClassLogProb;
    t.class_index = k;
    return t;
  }
  if ((kind == "next_token" || kind == "next_token_logprob" || kind == "next_token_logit") &&
      !value.empty()) {
    t.kind = kind == "next_token"           ? engine::TargetKind::kClassProb
             : kind == "next_token_logprob" ? engine::TargetKind::kClassLogProb
                                            : engine::TargetKind::kClassLogit;
    t.next_token = value;  // the model checks it is one token (engine::NextTokenId)
    return t;
  }
  if (kind == "sequence_logprob" && !value.empty()) {
    t.kind = engine::TargetKind::kSequenceLogProb;
    t.continuation = value;
    return t;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--target: '", spec,
                   "' is not one of predicted, class:K, logit:K, logprob:K, similarity:TEXT, "
                   "next_token:TEXT, next_token_logprob:TEXT, next_token_logit:TEXT, "
                   "sequence_logprob:TEXT"));
}

bool TargetNeedsLabels(const std::string& spec) {
  const auto colon = spec.find(':');
  if (colon == std::string::npos) return false;
  const std::string kind = spec.substr(0, colon);
  int k = 0;
  return (kind == "class" || kind == "logit" || kind == "logprob") && colon + 1 < spec.size() &&
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
  const bool token = !t.next_token().empty();
  switch (t.kind()) {
    case v1::Target::CLASS_PROB:
      return token ? absl::StrCat("next_token:", t.next_token())
                   : absl::StrCat("class:", t.class_index());
    case v1::Target::CLASS_LOG_PROB:
      return token ? absl::StrCat("next_token_logprob:", t.next_token())
                   : absl::StrCat("logprob:", t.class_index());
    case v1::Target::CLASS_LOGIT:
      return token ? absl::StrCat("next_token_logit:", t.next_token())
                   : absl::StrCat("logit:", t.class_index());
    case v1::Target::EMBEDDING_SIMILARITY:
      return absl::StrCat("similarity:", t.reference_text());
    case v1::Target::SEQUENCE_LOG_PROB:
      return absl::StrCat("sequence_logprob:", t.continuation());
    default:
      return "predicted";
  }
}

}  // namespace attattr::client
