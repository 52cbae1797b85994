// The attribution tree (the paper's Algorithm 1, made deterministic; DESIGN.md §1): how information
// flows between the tokens of one example, read off the per-layer attributions of every layer.
//   S^l = Σ_h Attr^l;  N^l = S^l / max over rows i ≥ 1 of S^l (no edges when that maximum is ≤ 0);
//   top node = argmax_{i≥1} Σ_{j≠i} max(T_ij, 0) with T = Σ_l S^l; it joins at layer L−1; then for
//   l = L−2 … 0 every token j ≥ 1 not yet in the tree joins under the parent i ≠ j (a token already
//   in the tree when layer l starts) with the largest N^l_ij > τ, ties to the smaller i.
// The root is the position F reads — [CLS] (position 0) for the encoders, the last token for a
// decoder (ExampleAttribution::scored_position) — and takes part in no layer's edges (neither
// parent nor child, as in the golden reference); "rows i ≥ 1", "j ≥ 1" above read "≠ root". Its one
// edge, to the top node, scores N^{L−1}_{root,top} (0 when the last layer has no positive entry —
// as for a model whose last layer is read at the root alone, which attributes nothing to the other
// query rows). Pure functions over plain structs, thread-safe, no torch.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "attattr/engine/attention_attribution.h"

namespace attattr::engine {

// τ, the paper's value.
inline constexpr double kDefaultTreeTau = 0.4;

// A token in the tree and the layer at which it joined (L−1 for the top node).
struct AttributionTreeNode {
  int position = 0;
  std::string token;
  int layer = 0;
};

// `child` joined under `parent` at `layer` with normalised score N^layer[parent][child].
struct AttributionTreeEdge {
  int parent = 0;
  int child = 0;
  int layer = 0;
  double score = 0;
};

struct AttributionTree {
  double tau = kDefaultTreeTau;
  int root = 0;                // the scored position: 0 ([CLS]) or a decoder's last token
  std::string root_token;      // the root's word piece, for renderers
  int top = 0;                 // the top node's position
  double root_edge_score = 0;  // N^{L−1}[root][top]; not listed in `edges`
  // Every token in the tree except the root, by ascending position.
  std::vector<AttributionTreeNode> nodes;
  // In the order they were found: by descending layer, then ascending child position. The root
  // edge (root → top) is implied and not listed.
  std::vector<AttributionTreeEdge> edges;
};

// InvalidArgument naming the field unless `tree` has the shape BuildAttributionTree gives a tree of
// `num_tokens` tokens: root and node positions among them, nodes distinct (the root may be listed
// as one), the top one of the nodes and not the root, every other node the child of exactly one
// edge whose parent is a node, and no cycle (every node reaches the top). For trees read from
// elsewhere (a reply, a stored result) before they are walked.
absl::Status CheckAttributionTree(const AttributionTree& tree, int num_tokens);

// InvalidArgument "<field>: ..." unless 0 < tau ≤ 1 (NaN is refused).
absl::Status ValidateTreeTau(double tau, const std::string& field = "tau");

// Builds the tree of one example of n = tokens.size() word pieces rooted at position `root`.
// `layers` must hold every layer 0..num_layers−1 in order (layers[l].layer == l), each with
// `attribution` of shape [H, n, n]. InvalidArgument naming "tau", "tokens", "root", "layers" or
// "layers[l].attribution".
absl::StatusOr<AttributionTree> BuildAttributionTree(const std::vector<std::string>& tokens,
                                                     const std::vector<LayerAttribution>& layers,
                                                     int num_layers, double tau, int root = 0);

// Same, from an engine result (tokens from its encoding, rooted at its scored_position).
absl::StatusOr<AttributionTree> BuildAttributionTree(const ExampleAttribution& example,
                                                     int num_layers, double tau);

}  // namespace attattr::engine
