// Renders an AttributionTree (attribution_tree.h) for programs and people: JSON (the schema the
// CLI and README document), Graphviz DOT, a self-drawn SVG (layered tree layout, no Graphviz needed
// at runtime) and indented text for a terminal. Tokens are escaped for each format. Pure functions,
// thread-safe.
#pragma once

#include <string>

#include "attattr/engine/attribution_tree.h"

namespace attattr::engine {

// {"tau", "root", "top", "root_edge_score", "nodes": [{"position", "token", "layer"}],
//  "edges": [{"parent", "child", "layer", "score"}]} on one line. The root is not among "nodes"
// and the root edge (score "root_edge_score") not among "edges".
std::string AttributionTreeToJson(const AttributionTree& tree);

// A `digraph` with one box per token (label: token, position and joining layer) and one labelled
// arrow per edge, the root edge included.
std::string AttributionTreeToDot(const AttributionTree& tree);

// A standalone SVG document: the root on top, each child one row below its parent, subtrees side
// by side; edges carry their layer and score.
std::string AttributionTreeToSvg(const AttributionTree& tree);

// One line per token, children indented under their parent by ascending position:
//   [CLS]
//   └─ journey #9 (L3, 0.000)
//      ├─ and #6 (L2, 0.508)
//      └─ . #10 (L2, 0.611)
std::string AttributionTreeToText(const AttributionTree& tree);

}  // namespace attattr::engine
