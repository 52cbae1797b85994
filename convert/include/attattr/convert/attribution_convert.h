// Attribution between the engine and the public contract (attribution.proto): the quadrature-rule
// and target enums both ways (the one mapping of each), options to proto, results both ways
// (honouring ResultOptions: full matrices, head sums, attention, top-k, fp16, the tree), and
// model descriptions. Shared by the server (requests in, results out) and the CLI (requests out,
// results in). No validation against server limits: that is the server's (server/proto_convert.h).
// Pure functions, thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attattr/engine/attention_attribution.h"
#include "attattr/engine/attribution_tree.h"
#include "attattr/engine/model.h"
#include "attattr/v1/attattr_service.pb.h"
#include "attattr/v1/attribution.pb.h"

namespace attattr::convert {

// QUADRATURE_RULE_UNSPECIFIED is the engine's default rule; nullopt for a value outside the enum.
std::optional<engine::QuadratureRule> RuleFromProto(v1::QuadratureRule rule);
v1::QuadratureRule RuleToProto(engine::QuadratureRule rule);
// The CLI's spelling of a proto rule: "gauss-legendre" (also for UNSPECIFIED), "left-riemann",
// "trapezoid"; "unknown" outside the enum.
std::string RuleName(v1::QuadratureRule rule);

// UNSPECIFIED is `default_precision` (the server's); nullopt for a value outside the enum.
std::optional<engine::Precision> PrecisionFromProto(v1::Precision precision,
                                                    engine::Precision default_precision);
v1::Precision PrecisionToProto(engine::Precision precision);

// KIND_UNSPECIFIED is PREDICTED_CLASS_PROB; nullopt for a value outside the enum.
std::optional<engine::TargetKind> TargetKindFromProto(v1::Target::Kind kind);
v1::Target::Kind TargetKindToProto(engine::TargetKind kind);

// Rule, steps, layers, target (kind, class index, reference text, next token, continuation)
// and precision.
void AttributionOptionsToProto(const engine::AttributionOptions& options,
                               v1::AttributionOptions* out);

// Fills `out` as `options` asks; with options.tree also the attribution tree, built from every
// layer of `result` (callers make sure all layers were attributed) with tree_tau (0 = the default
// τ). `labels` name the predicted class.
void AttributionToProto(const engine::ExampleAttribution& result, const v1::ResultOptions& options,
                        const std::vector<std::string>& labels, v1::ExampleAttribution* out);

// A result as the engine's type. Matrices ([H, n, n] attribution and attention) are decoded from
// fp32 or fp16 when present and left empty otherwise. InvalidArgument naming the layer when a
// tensor does not hold H·n·n values.
absl::StatusOr<engine::ExampleAttribution> AttributionFromProto(const v1::ExampleAttribution& a);

void TreeToProto(const engine::AttributionTree& tree, v1::AttributionTree* out);
// The tree `a` carries, as the engine's type; the root's token is taken from a's tokens.
// InvalidArgument "tree.<field>: …" when it is not a tree of a's tokens
// (engine::CheckAttributionTree): renderers walk it, so a reply or a stored result that holds a
// cycle or a position outside the tokens is refused here.
absl::StatusOr<engine::AttributionTree> TreeFromProto(const v1::ExampleAttribution& a);

void ModelToProto(const std::string& name, const engine::ModelInfo& info, v1::Model* out);
// What a served model's description says of it (the fields ModelToProto fills).
engine::ModelInfo ModelInfoFromProto(const v1::Model& model);

}  // namespace attattr::convert
