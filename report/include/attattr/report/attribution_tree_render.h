// The renderings of an attribution tree (engine/attribution_tree.h; DESIGN.md §1) — the one place
// they are drawn, for the CLI (local or remote results) and the HTML reports alike: JSON (the
// schema README documents), Graphviz DOT, indented text for a terminal, and SVG — one layout,
// as an element inline in an HTML report or as a standalone .svg document. Tokens are escaped
// for each format. Pure functions, thread-safe.
#pragma once

#include <string>

#include "attattr/engine/attribution_tree.h"

namespace attattr::report {

// {"tau", "root", "top", "root_edge_score", "nodes": [{"position", "token", "layer"}],
//  "edges": [{"parent", "child", "layer", "score"}]} on one line. The root is not among "nodes"
// and the root edge (score "root_edge_score") not among "edges".
std::string AttributionTreeToJson(const engine::AttributionTree& tree);

// A `digraph` with one box per token (label: token, position and joining layer) and one labelled
// arrow per edge, the root edge included.
std::string AttributionTreeToDot(const engine::AttributionTree& tree);

// One line per token, children indented under their parent by ascending position:
//   [CLS]
//   └─ journey #9 (L3, 0.000)
//      ├─ and #6 (L2, 0.508)
//      └─ . #10 (L2, 0.611)
std::string AttributionTreeToText(const engine::AttributionTree& tree);

// The tree drawn as SVG: one row per depth, leaves spread left to right in position order,
// parents centred over their children, each edge labelled with its layer and normalised score
// (the root edge with its score only) and drawn thicker for stronger edges. The tree may come
// from a remote result, so it is drawn defensively: edges into [CLS], second parents and edges
// that would close a cycle are ignored, and nodes not reachable from the root are listed rather
// than dropped. Hand-drawn: a tree needs only this tidy layout, and Graphviz (libgvc) would add
// a large dependency for ~50 lines.
//
// An <svg class="attribution-tree-svg"> element for an HTML page (unreachable nodes in a
// <p class="note tree-unplaced"> after it).
std::string AttributionTreeSvg(const engine::AttributionTree& tree);
// The same drawing as a standalone SVG document (XML declaration, white background, unreachable
// nodes in its <desc>), for a .svg file a person opens.
std::string AttributionTreeSvgDocument(const engine::AttributionTree& tree);

}  // namespace attattr::report
