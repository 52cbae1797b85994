// Renderers of the attribution tree (see attribution_tree_render.h).
#include "attattr/report/attribution_tree_render.h"

#include <algorithm>
#include <cstddef>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "nlohmann/json.hpp"

namespace attattr::report {

using engine::AttributionTree;
using engine::AttributionTreeEdge;
using engine::AttributionTreeNode;
namespace {

// Tree structure by position: children by ascending position, the edge each node joined by.
struct Structure {
  std::map<int, std::vector<int>> children;        // parent -> children
  std::map<int, const AttributionTreeEdge*> in;    // child -> its edge
  std::map<int, const AttributionTreeNode*> node;  // position -> node
};

Structure MakeStructure(const AttributionTree& tree) {
  Structure s;
  for (const auto& n : tree.nodes) s.node[n.position] = &n;
  for (const auto& e : tree.edges) {
    s.children[e.parent].push_back(e.child);
    s.in[e.child] = &e;
  }
  if (s.node.count(tree.top) > 0) s.children[tree.root].push_back(tree.top);
  for (auto& [parent, kids] : s.children) std::sort(kids.begin(), kids.end());
  return s;
}

std::string TokenAt(const AttributionTree& tree, const Structure& s, int position) {
  if (position == tree.root) return tree.root_token;
  auto it = s.node.find(position);
  return it == s.node.end() ? std::string() : it->second->token;
}

int LayerAt(const AttributionTree& /*tree*/, const Structure& s, int position) {
  auto it = s.node.find(position);
  return it == s.node.end() ? -1 : it->second->layer;
}

double ScoreInto(const AttributionTree& tree, const Structure& s, int position) {
  if (position == tree.top) return tree.root_edge_score;
  auto it = s.in.find(position);
  return it == s.in.end() ? 0.0 : it->second->score;
}

// A DOT quoted-string body: quotes and backslashes escaped; &, <, > as the HTML entities
// Graphviz decodes in labels, so no token can end the string or be misread as an entity.
std::string DotEscape(const std::string& text) {
  return absl::StrReplaceAll(text, {{"\"", "\\\""},
                                    {"\\", "\\\\"},
                                    {"\n", "\\n"},
                                    {"&", "&amp;"},
                                    {"<", "&lt;"},
                                    {">", "&gt;"}});
}

void TextLines(const AttributionTree& tree, const Structure& s, int position,
               const std::string& prefix, std::string* out) {
  auto it = s.children.find(position);
  if (it == s.children.end()) return;
  const auto& kids = it->second;
  for (size_t k = 0; k < kids.size(); ++k) {
    const bool last = k + 1 == kids.size();
    const int c = kids[k];
    absl::StrAppend(out, prefix, last ? "└─ " : "├─ ", TokenAt(tree, s, c), " #", c,
                    absl::StrFormat(" (L%d, %.3f)\n", LayerAt(tree, s, c), ScoreInto(tree, s, c)));
    TextLines(tree, s, c, prefix + (last ? "   " : "│  "), out);
  }
}

}  // namespace

std::string AttributionTreeToJson(const AttributionTree& tree) {
  nlohmann::json nodes = nlohmann::json::array();
  for (const auto& n : tree.nodes) {
    nodes.push_back({{"position", n.position}, {"token", n.token}, {"layer", n.layer}});
  }
  nlohmann::json edges = nlohmann::json::array();
  for (const auto& e : tree.edges) {
    edges.push_back(
        {{"parent", e.parent}, {"child", e.child}, {"layer", e.layer}, {"score", e.score}});
  }
  nlohmann::json j = {{"tau", tree.tau},           {"root", tree.root},
                      {"top", tree.top},           {"root_edge_score", tree.root_edge_score},
                      {"nodes", std::move(nodes)}, {"edges", std::move(edges)}};
  // Tokens are arbitrary bytes; replace invalid UTF-8 rather than throw.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string AttributionTreeToDot(const AttributionTree& tree) {
  const Structure s = MakeStructure(tree);
  std::string out =
      "digraph attribution_tree {\n"
      "  rankdir=TB;\n"
      "  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n"
      "  edge [fontname=\"Helvetica\", fontsize=10];\n";
  absl::StrAppend(&out, "  n", tree.root, " [label=\"", DotEscape(tree.root_token),
                  "\", style=\"rounded,bold\"];\n");
  for (const auto& n : tree.nodes) {
    absl::StrAppend(&out, "  n", n.position, " [label=\"", DotEscape(n.token), "\\n#", n.position,
                    " L", n.layer, "\"", n.position == tree.top ? ", style=\"rounded,bold\"" : "",
                    "];\n");
  }
  if (s.node.count(tree.top) > 0) {
    absl::StrAppend(&out, "  n", tree.root, " -> n", tree.top,
                    absl::StrFormat(" [label=\"%.3f\"];\n", tree.root_edge_score));
  }
  for (const auto& e : tree.edges) {
    absl::StrAppend(&out, "  n", e.parent, " -> n", e.child,
                    absl::StrFormat(" [label=\"L%d %.3f\"];\n", e.layer, e.score));
  }
  out += "}\n";
  return out;
}

std::string AttributionTreeToText(const AttributionTree& tree) {
  const Structure s = MakeStructure(tree);
  std::string out = absl::StrCat(tree.root_token, "\n");
  TextLines(tree, s, tree.root, "", &out);
  return out;
}

}  // namespace attattr::report
