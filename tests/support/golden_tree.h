// Compares an attribution tree with the golden reference's "tree_tau_0.4" (../shared/golden): same
// top, nodes and edges in the same order, scores within 1e-4 (the golden README's tolerance). Also
// reads the tree back from the CLI's JSON, so CLI and RPC tests use the same check, and gives the
// golden attributions as per-layer engine results to build trees from. Header-only.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <utility>
#include <vector>

#include "attattr/engine/attention_attribution.h"
#include "attattr/engine/attribution_tree.h"
#include "nlohmann/json.hpp"
#include "support/golden.h"

namespace attattr::testing {

// The golden attributions of `g` as the engine's per-layer results (one per layer, in order), the
// input of BuildAttributionTree.
inline std::vector<engine::LayerAttribution> GoldenLayers(const GoldenExample& g) {
  std::vector<engine::LayerAttribution> layers;
  for (size_t l = 0; l < g.attribution.size(); ++l) {
    engine::LayerAttribution la;
    la.layer = static_cast<int>(l);
    la.num_heads = g.num_heads;
    la.attribution.assign(g.attribution[l].begin(), g.attribution[l].end());
    layers.push_back(std::move(la));
  }
  return layers;
}

inline void ExpectTreeMatchesGolden(const engine::AttributionTree& tree, const GoldenExample& g) {
  EXPECT_EQ(tree.root, g.tree_root);
  EXPECT_EQ(tree.top, g.tree_top);
  EXPECT_NEAR(tree.root_edge_score, g.tree_root_edge_score, 1e-4);
  ASSERT_EQ(tree.nodes.size(), g.tree_nodes.size());
  for (size_t k = 0; k < g.tree_nodes.size(); ++k) {
    EXPECT_EQ(tree.nodes[k].position, g.tree_nodes[k].first) << "node " << k;
    EXPECT_EQ(tree.nodes[k].layer, g.tree_nodes[k].second) << "node " << k;
    EXPECT_EQ(tree.nodes[k].token, g.tokens.at(g.tree_nodes[k].first)) << "node " << k;
  }
  ASSERT_EQ(tree.edges.size(), g.tree_edges.size());
  for (size_t k = 0; k < g.tree_edges.size(); ++k) {
    EXPECT_EQ(tree.edges[k].parent, g.tree_edges[k].parent) << "edge " << k;
    EXPECT_EQ(tree.edges[k].child, g.tree_edges[k].child) << "edge " << k;
    EXPECT_EQ(tree.edges[k].layer, g.tree_edges[k].layer) << "edge " << k;
    EXPECT_NEAR(tree.edges[k].score, g.tree_edges[k].score, 1e-4) << "edge " << k;
  }
}

// The tree of the documented JSON schema ({"tau","root","top","root_edge_score","nodes","edges"}).
inline engine::AttributionTree TreeFromJson(const nlohmann::json& j) {
  engine::AttributionTree t;
  t.tau = j.value("tau", 0.0);
  t.root = j.at("root").get<int>();
  t.top = j.at("top").get<int>();
  t.root_edge_score = j.value("root_edge_score", 0.0);
  for (const auto& n : j.at("nodes")) {
    t.nodes.push_back(
        {n.at("position").get<int>(), n.at("token").get<std::string>(), n.at("layer").get<int>()});
  }
  for (const auto& e : j.at("edges")) {
    t.edges.push_back({e.at("parent").get<int>(), e.at("child").get<int>(),
                       e.at("layer").get<int>(), e.at("score").get<double>()});
  }
  return t;
}

}  // namespace attattr::testing
