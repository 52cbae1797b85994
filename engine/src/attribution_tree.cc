// The attribution tree (see attribution_tree.h and DESIGN.md §1).
#include "attattr/engine/attribution_tree.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "absl/strings/str_cat.h"
#include "attattr/base/status_macros.h"

namespace attattr::engine {
namespace {

absl::Status Invalid(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

// S^l = Σ_h Attr^l, n×n row-major, accumulated in double.
std::vector<double> HeadSum(const LayerAttribution& layer, size_t n) {
  const size_t nn = n * n;
  std::vector<double> s(nn, 0.0);
  for (int h = 0; h < layer.num_heads; ++h) {
    const float* a = layer.attribution.data() + static_cast<size_t>(h) * nn;
    for (size_t c = 0; c < nn; ++c) s[c] += a[c];
  }
  return s;
}

}  // namespace

absl::Status ValidateTreeTau(double tau, const std::string& field) {
  if (!(tau > 0.0 && tau <= 1.0)) {
    return Invalid(field, absl::StrCat(tau, " is not in (0, 1] (the paper uses 0.4)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<AttributionTree> BuildAttributionTree(const std::vector<std::string>& tokens,
                                                     const std::vector<LayerAttribution>& layers,
                                                     int num_layers, double tau, int root) {
  ATTATTR_RETURN_IF_ERROR(ValidateTreeTau(tau));
  const size_t n = tokens.size();
  if (n < 2) {
    return Invalid("tokens",
                   absl::StrCat(n, " tokens; the tree needs its root and at least one more"));
  }
  if (root < 0 || static_cast<size_t>(root) >= n) {
    return Invalid("root", absl::StrCat(root, " is not a position of the ", n, " tokens"));
  }
  const size_t r = static_cast<size_t>(root);
  if (num_layers < 1) return Invalid("num_layers", absl::StrCat(num_layers, " must be >= 1"));
  if (static_cast<int>(layers.size()) != num_layers) {
    return Invalid("layers", absl::StrCat("the tree needs every layer 0..", num_layers - 1,
                                          " attributed; got ", layers.size(), " layers"));
  }
  for (int l = 0; l < num_layers; ++l) {
    const LayerAttribution& la = layers[l];
    if (la.layer != l) {
      return Invalid(
          absl::StrCat("layers[", l, "].layer"),
          absl::StrCat(la.layer, "; the tree needs layers 0..", num_layers - 1, " in order"));
    }
    if (la.num_heads < 1 || la.attribution.size() != static_cast<size_t>(la.num_heads) * n * n) {
      return Invalid(absl::StrCat("layers[", l, "].attribution"),
                     absl::StrCat(la.attribution.size(), " values do not match [", la.num_heads,
                                  ", ", n, ", ", n, "]"));
    }
  }

  // Normalised head sums N^l; an empty vector marks a layer without edges (max ≤ 0).
  std::vector<std::vector<double>> norm(num_layers);
  std::vector<double> total(n * n, 0.0);  // T = Σ_l S^l
  for (int l = 0; l < num_layers; ++l) {
    std::vector<double> s = HeadSum(layers[l], n);
    for (size_t c = 0; c < s.size(); ++c) total[c] += s[c];
    double max = -INFINITY;
    for (size_t c = 0; c < s.size(); ++c) {
      if (c / n != r) max = std::max(max, s[c]);  // rows i ≠ root
    }
    if (max > 0) {
      for (double& v : s) v /= max;
      norm[l] = std::move(s);
    }
  }

  AttributionTree tree;
  tree.tau = tau;
  tree.root = root;
  tree.root_token = tokens[r];
  // Top node: the largest positive outgoing mass, ties to the smaller position.
  double best = -INFINITY;
  for (size_t i = 0; i < n; ++i) {
    if (i == r) continue;
    double mass = 0;
    for (size_t j = 0; j < n; ++j) {
      if (j != i) mass += std::max(total[i * n + j], 0.0);
    }
    if (mass > best) {
      best = mass;
      tree.top = static_cast<int>(i);
    }
  }
  const size_t top = static_cast<size_t>(tree.top);
  const auto& last = norm[num_layers - 1];
  tree.root_edge_score = last.empty() ? 0.0 : last[r * n + top];

  std::vector<int> joined_at(n, -1);  // layer at which each token joined; -1: not in the tree
  joined_at[top] = num_layers - 1;
  for (int l = num_layers - 2; l >= 0; --l) {
    const auto& nl = norm[l];
    if (nl.empty()) continue;
    std::vector<size_t> parents;  // fixed when the layer starts
    for (size_t i = 0; i < n; ++i) {
      if (i != r && joined_at[i] >= 0) parents.push_back(i);
    }
    for (size_t j = 0; j < n; ++j) {
      if (j == r || joined_at[j] >= 0) continue;
      int parent = -1;
      double score = tau;         // strictly above τ
      for (size_t i : parents) {  // ascending: a tie keeps the smaller i
        if (i != j && nl[i * n + j] > score) {
          score = nl[i * n + j];
          parent = static_cast<int>(i);
        }
      }
      if (parent < 0) continue;
      joined_at[j] = l;
      tree.edges.push_back({parent, static_cast<int>(j), l, score});
    }
  }
  for (size_t i = 0; i < n; ++i) {
    if (i != r && joined_at[i] >= 0) {
      tree.nodes.push_back({static_cast<int>(i), tokens[i], joined_at[i]});
    }
  }
  return tree;
}

absl::Status CheckAttributionTree(const AttributionTree& tree, int num_tokens) {
  const auto invalid = [](const std::string& field, const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
  };
  if (tree.root < 0 || tree.root >= num_tokens) {
    return invalid("root",
                   absl::StrCat(tree.root, " is not a position of the ", num_tokens, " tokens"));
  }
  std::vector<char> is_node(static_cast<size_t>(num_tokens), 0);
  for (size_t i = 0; i < tree.nodes.size(); ++i) {
    const int p = tree.nodes[i].position;
    if (p < 0 || p >= num_tokens || is_node[p]) {
      return invalid(absl::StrCat("nodes[", i, "].position"),
                     absl::StrCat(p, " is outside the tokens or listed twice"));
    }
    is_node[p] = 1;
  }
  if (tree.nodes.empty()) {
    return tree.edges.empty() ? absl::OkStatus() : invalid("edges", "present without nodes");
  }
  if (tree.top < 0 || tree.top >= num_tokens || tree.top == tree.root || !is_node[tree.top]) {
    return invalid("top", absl::StrCat(tree.top, " is not one of the nodes"));
  }
  std::vector<int> parent(static_cast<size_t>(num_tokens), -1);
  for (size_t i = 0; i < tree.edges.size(); ++i) {
    const auto& e = tree.edges[i];
    const bool ok = e.parent >= 0 && e.parent < num_tokens && is_node[e.parent] && e.child >= 0 &&
                    e.child < num_tokens && is_node[e.child] && e.child != tree.top &&
                    e.child != tree.root && parent[e.child] < 0;
    if (!ok) {
      return invalid(absl::StrCat("edges[", i, "]"),
                     absl::StrCat(e.parent, " -> ", e.child, " does not join a node to the tree"));
    }
    parent[e.child] = e.parent;
  }
  for (const auto& n : tree.nodes) {
    // Up from each node: the top (or the root) within as many steps as there are nodes, or a
    // cycle or an orphan.
    int at = n.position;
    for (size_t steps = 0; at != tree.top && at != tree.root; ++steps) {
      if (parent[at] < 0 || steps > tree.nodes.size()) {
        return invalid("edges", absl::StrCat("node ", n.position, " does not lead to the top"));
      }
      at = parent[at];
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<AttributionTree> BuildAttributionTree(const ExampleAttribution& example,
                                                     int num_layers, double tau) {
  return BuildAttributionTree(example.encoding.tokens, example.layers, num_layers, tau,
                              example.scored_position);
}

}  // namespace attattr::engine
