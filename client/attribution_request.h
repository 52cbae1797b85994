// The attribution request as the CLI spells it, shared by `explain` and `submit`: flag strings
// ("class:1", "0,3") -> engine options, and a proto target back to that spelling. Conversions
// between engine types and the v1 protos are convert/'s (attattr/convert/attribution_convert.h).
// Pure functions; thread-safe. No gRPC calls here.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attattr/engine/attention_attribution.h"
#include "attattr/v1/attribution.pb.h"

namespace attattr::client {

// "predicted" | "class:K" | "logit:K" | "logprob:K" | "similarity:TEXT" | "next_token:TEXT" |
// "next_token_logprob:TEXT" | "next_token_logit:TEXT" | "sequence_logprob:TEXT"; K is a class
// index or label name (a token id on a language model), TEXT after next_token one token of a
// language model (" Paris"), after sequence_logprob a continuation scored teacher-forced.
absl::StatusOr<engine::AttributionTarget> ParseTarget(const std::string& spec,
                                                      const std::vector<std::string>& labels);
// True when `spec` names a class by label (class:positive), i.e. ParseTarget needs the labels.
bool TargetNeedsLabels(const std::string& spec);
// "0,3" -> {0, 3}; empty -> {}.
absl::StatusOr<std::vector<int>> ParseLayers(const std::string& spec);

// proto -> the CLI's spelling: "predicted", "class:K", "logit:K", "similarity:TEXT".
std::string TargetSpec(const v1::Target& target);

}  // namespace attattr::client
