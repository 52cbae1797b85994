// The attribution tree (attribution.proto AttributionTree: [CLS] root, the top node, edges that
// record the layer each token joined at) drawn as an inline SVG tree: one row per depth, leaves
// spread left to right in position order, parents centred over their children, each edge labelled
// with its layer and normalised score. A tree needs only this tidy layout; Graphviz (libgvc) would
// add a large dependency to the server and client for ~50 lines. Pure, thread-safe.
#pragma once

#include <string>

#include "attattr/v1/attribution.pb.h"

namespace attattr::report {

// An <svg class="attribution-tree-svg"> element; tokens are escaped. Nodes not reachable from the
// root are listed under the drawing rather than dropped; edges that would close a cycle are
// ignored.
std::string AttributionTreeSvg(const v1::AttributionTree& tree);

}  // namespace attattr::report
