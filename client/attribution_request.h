// The attribution request as the CLI spells it, shared by `explain` and `submit`: flag strings
// ("class:1", "0,3") -> engine options, engine options -> the v1 protos, and v1 results -> the
// engine's plain result type (fp32 or fp16 matrices), so every command renders through render.h.
// Pure functions; thread-safe. No gRPC calls here.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attattr/engine/attention_attribution.h"
#include "attattr/engine/attribution_tree.h"
#include "attattr/v1/attribution.pb.h"

namespace attattr::client {

// "predicted" | "class:K" | "logit:K" | "similarity:TEXT"; K is a class index or label name.
absl::StatusOr<engine::AttributionTarget> ParseTarget(const std::string& spec,
                                                      const std::vector<std::string>& labels);
// True when `spec` names a class by label (class:positive), i.e. ParseTarget needs the labels.
bool TargetNeedsLabels(const std::string& spec);
// "0,3" -> {0, 3}; empty -> {}.
absl::StatusOr<std::vector<int>> ParseLayers(const std::string& spec);

// engine -> proto: target, rule, steps and layers.
v1::QuadratureRule RuleToProto(engine::QuadratureRule rule);
void OptionsToProto(const engine::AttributionOptions& options, v1::AttributionOptions* out);

// proto -> the CLI's spelling: "predicted", "class:K", "logit:K", "similarity:TEXT".
std::string TargetSpec(const v1::Target& target);
// "gauss-legendre" (also for UNSPECIFIED, the server's default), "left-riemann", "trapezoid".
std::string RuleName(v1::QuadratureRule rule);

// A result from the server as the engine's type. Matrices ([H, n, n] attribution and attention)
// are decoded from fp32 or fp16 when present and left empty otherwise. InvalidArgument when a
// tensor's size does not match its shape.
absl::StatusOr<engine::ExampleAttribution> AttributionFromProto(const v1::ExampleAttribution& a);

// The attribution tree a result carries (ExampleAttribution.tree) as the engine's type; the root's
// token is taken from the result's tokens.
engine::AttributionTree TreeFromProto(const v1::ExampleAttribution& a);

// Values of a tensor (fp32, or IEEE fp16 little-endian), row-major.
absl::StatusOr<std::vector<float>> TensorValues(const v1::Tensor& tensor);

}  // namespace attattr::client
