// Loads ../shared/golden/sst2-bert-l4-h256.json (the independent reference, see its README) into
// plain structs for the engine tests.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace attattr::testing {

struct GoldenEdge {
  int parent = 0, child = 0, layer = 0;
  double score = 0;
};

struct GoldenExample {
  std::string text;
  std::optional<std::string> text_pair;
  std::vector<std::string> tokens;
  std::vector<int> input_ids, token_type_ids;
  std::vector<double> logits, probabilities;
  int predicted = 0;
  // [layer][head][i][j] flattened per layer: layer -> H*n*n values
  std::vector<std::vector<double>> attention, attribution;
  std::vector<double> target_at_full, target_at_zero, attribution_sum;
  int num_heads = 0;
  // tree_tau_0.4
  int tree_root = 0, tree_top = 0;
  double tree_root_edge_score = 0;
  std::vector<std::pair<int, int>> tree_nodes;  // (position, layer)
  std::vector<GoldenEdge> tree_edges;
};

struct Golden {
  int steps = 0;
  std::string rule;
  std::vector<GoldenExample> examples;
};

// Parses the golden file; aborts the test binary with a message when it is malformed.
Golden LoadGolden(const std::string& path);

}  // namespace attattr::testing
