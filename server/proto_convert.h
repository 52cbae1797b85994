// Requests validated against the model and the server's limits and turned into native engine
// types as early as possible (STYLE.md §2.5), with messages that name the field ("example.text:
// empty", "options.layers[1]: ...") and, for a server limit, its flag. The plain mappings (enums,
// results back to protos) are convert/'s; this file adds what only the server knows. Pure
// functions, thread-safe.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "attattr/engine/attention_attribution.h"
#include "attattr/engine/model.h"
#include "attattr/v1/attattr_service.pb.h"
#include "server_config.h"

namespace attattr::server {

// A validated Explain call.
struct ExplainCall {
  const engine::Model* model = nullptr;
  engine::Encoding encoding;
  engine::AttributionOptions options;
  v1::ResultOptions result;
};

// InvalidArgument naming `field` and --max-text-bytes when `text` is longer than the server takes;
// checked before any tokenizing.
absl::Status CheckTextBytes(absl::string_view text, const ServerConfig& config,
                            const std::string& field);

// The most connections per layer a result may ask for (ResultOptions.top_k), Explain and jobs.
inline constexpr int kMaxResultTopK = 10000;

// Validates `request` against `model` and the server limits (text length, options, result
// options with top_k at most kMaxResultTopK). InvalidArgument naming the field. The cost checks
// that need the job layer's estimates follow in CheckExplainCost (jobs/attribution_job.h).
absl::StatusOr<ExplainCall> ExplainFromProto(const v1::ExplainRequest& request,
                                             const engine::Model& model,
                                             const ServerConfig& config);

// Validates and converts AttributionOptions (field names are prefixed with `field`).
absl::StatusOr<engine::AttributionOptions> AttributionOptionsFromProto(
    const v1::AttributionOptions& options, const engine::Model& model, const ServerConfig& config,
    const std::string& field);

// ResultOptions with the defaults applied: an unset message (`has_result` false) means the top 10
// connections per layer and no matrices; with `tree`, tree_tau 0 means 0.4. InvalidArgument naming
// `field`.top_k when top_k is negative or above `max_top_k`, `field`.tree_tau when set and not in
// (0, 1].
absl::StatusOr<v1::ResultOptions> ResultOptionsFromProto(const v1::ResultOptions& result,
                                                         bool has_result, int max_top_k,
                                                         const std::string& field);

// An attribution tree needs every layer attributed: InvalidArgument naming `layers_field` when
// `result` asks for a tree and `options` attributes only some of the model's layers.
absl::Status CheckTreeLayers(const engine::AttributionOptions& options,
                             const v1::ResultOptions& result, const engine::ModelInfo& info,
                             const std::string& layers_field);

}  // namespace attattr::server
