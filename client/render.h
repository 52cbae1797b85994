// Renders attribution results for people and programs: the JSON object the CLI prints per example
// (the format README.md documents) and a terminal summary of the strongest connections per layer.
// Pure functions over engine result types; no I/O, thread-safe.
#pragma once

#include <string>

#include "attattr/engine/attention_attribution.h"
#include "attattr/engine/attribution_tree.h"
#include "nlohmann/json.hpp"

namespace attattr::client {

struct RenderContext {
  std::string model;   // model name or directory, as the user gave it
  std::string target;  // the target as given ("predicted", "class:1", "similarity:...")
  std::string rule;    // "gauss-legendre", ...
  int steps = 0;
  std::vector<std::string> labels;  // class names of the model (empty for encoder-only)
};

// {"model", "tokens", "prediction": {"label", "probabilities"}, "target", "rule", "steps",
//  "layers": [{"layer", "attribution": [heads][n][n], "completeness_gap", "target_at_full",
//  "target_at_zero"}]}. `prediction` is null for encoder-only models; "attribution" is left out
//  when the result carries no full matrices (a job that asked for top-k or head sums only).
//  With `tree`, also "tree": {"tau", "root", "top", "root_edge_score",
//  "nodes": [{"position", "token", "layer"}], "edges": [{"parent", "child", "layer", "score"}]}
//  (attattr/report/attribution_tree_render.h).
nlohmann::json AttributionToJson(const engine::ExampleAttribution& result, const RenderContext& ctx,
                                 const engine::AttributionTree* tree = nullptr);

// A few lines per layer: completeness, then the `top_k` strongest connections
// (head, query token ← key token, score); with `tree`, then the tree indented.
std::string AttributionToText(const engine::ExampleAttribution& result, const RenderContext& ctx,
                              int top_k = 5, const engine::AttributionTree* tree = nullptr);

// The tree for a terminal: a heading line with τ, then one indented line per token.
std::string TreeToText(const engine::AttributionTree& tree);

// `j` as one line of JSON text. Strings that are not UTF-8 (a flag value, a token of a byte-level
// tokenizer cut mid-character) get U+FFFD for their bad bytes instead of aborting the process, as
// nlohmann's default (strict) dump would.
std::string JsonText(const nlohmann::json& j);

}  // namespace attattr::client
