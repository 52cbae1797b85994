// The attribution tree as SVG (see attribution_tree_render.h): tidy layout, one drawing for the
// HTML reports and the CLI's --tree-svg.
#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "attattr/report/attribution_tree_render.h"
#include "html_text.h"

namespace attattr::report {
namespace {

constexpr int kRowPx = 76;
constexpr int kNodePx = 26;
constexpr int kCharPx = 7;
constexpr int kMargin = 12;

struct Child {
  int position;
  int layer;
  double score;
};

struct Placed {
  double x = 0;
  int depth = 0;
};

// Escaped for SVG text and attributes; control characters (not allowed in XML 1.0) become '?'.
std::string SvgText(const std::string& text) {
  std::string clean = text;
  for (char& c : clean) {
    if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n') c = '?';
  }
  return EscapeHtml(clean);
}

// The drawing: the <svg> element and the nodes it could not place ("position token", escaped).
struct Drawing {
  std::string svg;  // without its closing tag
  std::vector<std::string> unplaced;
};

Drawing Draw(const engine::AttributionTree& tree, const std::string& svg_attributes) {
  std::map<int, std::string> tokens;
  std::map<int, int> joined;
  for (const auto& n : tree.nodes) {
    tokens[n.position] = n.token;
    joined[n.position] = n.layer;
  }
  if (!tokens.count(tree.root))
    tokens[tree.root] = tree.root_token.empty() ? "[CLS]" : tree.root_token;
  std::map<int, std::vector<Child>> children;
  std::set<int> has_parent;
  bool root_edge = false;
  for (const auto& e : tree.edges) {
    // [CLS] is never a child; a token has at most one parent.
    if (e.child == tree.root || has_parent.count(e.child)) continue;
    has_parent.insert(e.child);
    children[e.parent].push_back({e.child, e.layer, e.score});
    if (!tokens.count(e.child)) tokens[e.child] = "#" + std::to_string(e.child);
    root_edge = root_edge || (e.parent == tree.root && e.child == tree.top);
  }
  if (!root_edge && tree.top != tree.root && !has_parent.count(tree.top)) {
    const int top_layer = joined.count(tree.top) ? joined[tree.top] : -1;
    children[tree.root].push_back({tree.top, top_layer, tree.root_edge_score});
    has_parent.insert(tree.top);
    if (!tokens.count(tree.top)) tokens[tree.top] = "#" + std::to_string(tree.top);
  }
  for (auto& [parent, list] : children) {
    std::sort(list.begin(), list.end(),
              [](const Child& a, const Child& b) { return a.position < b.position; });
  }

  size_t longest = 4;
  for (const auto& [pos, token] : tokens)
    longest = std::max(longest, std::min<size_t>(token.size(), 16));
  const int slot = static_cast<int>(longest) * kCharPx + 24;

  // Tidy layout: leaves take consecutive slots in DFS order, parents sit over their children.
  std::map<int, Placed> placed;
  int next_leaf = 0;
  int max_depth = 0;
  std::function<double(int, int)> place = [&](int node, int depth) -> double {
    placed[node].depth = depth;
    max_depth = std::max(max_depth, depth);
    std::vector<double> xs;
    auto it = children.find(node);
    if (it != children.end()) {
      for (const auto& c : it->second) {
        if (placed.count(c.position)) continue;  // would close a cycle
        xs.push_back(place(c.position, depth + 1));
      }
    }
    const double x = xs.empty() ? next_leaf++ : (xs.front() + xs.back()) / 2;
    placed[node].x = x;
    return x;
  };
  place(tree.root, 0);

  const int width = std::max(1, next_leaf) * slot + 2 * kMargin;
  const int height = max_depth * kRowPx + kNodePx + 2 * kMargin;
  auto cx = [&](int node) { return kMargin + slot / 2 + static_cast<int>(placed[node].x * slot); };
  auto cy = [&](int node) { return kMargin + kNodePx / 2 + placed[node].depth * kRowPx; };

  Drawing d;
  d.svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"attribution-tree-svg\" width=\"%d\" "
      "height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" font-size=\"12\"%s><title>attribution tree "
      "(\u03c4 = %s)</title>",
      width, height, width, height, svg_attributes, FormatNumber(tree.tau));
  // Edges first, so nodes are drawn over them.
  for (const auto& [parent, list] : children) {
    if (!placed.count(parent)) continue;
    for (const auto& c : list) {
      if (!placed.count(c.position) || placed[c.position].depth != placed[parent].depth + 1)
        continue;
      const int x1 = cx(parent), y1 = cy(parent) + kNodePx / 2;
      const int x2 = cx(c.position), y2 = cy(c.position) - kNodePx / 2;
      absl::StrAppendFormat(
          &d.svg,
          "<g class=\"tree-edge\" data-parent=\"%d\" data-child=\"%d\"><line x1=\"%d\" y1=\"%d\" "
          "x2=\"%d\" y2=\"%d\" stroke=\"#777\" stroke-width=\"%.1f\"/><text x=\"%d\" y=\"%d\" "
          "text-anchor=\"middle\" font-size=\"10\" fill=\"#555\" stroke=\"#fff\" "
          "stroke-width=\"3\" paint-order=\"stroke\">%s</text></g>",
          parent, c.position, x1, y1, x2, y2, 1.0 + 2.0 * std::clamp(c.score, 0.0, 1.0),
          // Labels sit near the child end, where sibling edges have spread apart.
          x1 + (x2 - x1) * 3 / 4, y1 + (y2 - y1) * 3 / 4 + 3,
          SvgText(absl::StrCat(c.layer >= 0 ? absl::StrCat("L", c.layer, " ") : "",
                               absl::StrFormat("%.2f", c.score))));
    }
  }
  for (const auto& [pos, p] : placed) {
    const std::string& token = tokens[pos];
    std::string shown = ShortenLabel(token, 16);
    const int w = static_cast<int>(std::min<size_t>(token.size(), 17)) * kCharPx + 14;
    const char* kind = pos == tree.root ? " root" : (pos == tree.top ? " top" : "");
    absl::StrAppendFormat(
        &d.svg,
        "<g class=\"tree-node%s\" data-position=\"%d\"><title>position %d%s</title><rect x=\"%d\" "
        "y=\"%d\" width=\"%d\" height=\"%d\" rx=\"6\" fill=\"%s\" stroke=\"#345\"/><text x=\"%d\" "
        "y=\"%d\" text-anchor=\"middle\">%s</text></g>",
        kind, pos, pos,
        joined.count(pos) ? absl::StrCat(", joined at layer ", joined[pos]) : std::string(),
        cx(pos) - w / 2, cy(pos) - kNodePx / 2, w, kNodePx,
        *kind == ' ' ? (pos == tree.root ? "#dde6f0" : "#fbd9c9") : "#f4f4f4", cx(pos), cy(pos) + 4,
        SvgText(shown));
  }
  for (const auto& [pos, token] : tokens) {
    if (!placed.count(pos)) d.unplaced.push_back(absl::StrCat(pos, " ", SvgText(token)));
  }
  return d;
}

std::string UnplacedList(const std::vector<std::string>& unplaced) {
  std::string list = "Not reachable from the root: ";
  for (size_t i = 0; i < unplaced.size(); ++i) absl::StrAppend(&list, i ? ", " : "", unplaced[i]);
  return list;
}

}  // namespace

std::string AttributionTreeSvg(const engine::AttributionTree& tree) {
  Drawing d = Draw(tree, "");
  absl::StrAppend(&d.svg, "</svg>");
  if (!d.unplaced.empty()) {
    absl::StrAppend(&d.svg, "<p class=\"note tree-unplaced\">", UnplacedList(d.unplaced), "</p>");
  }
  return std::move(d.svg);
}

std::string AttributionTreeSvgDocument(const engine::AttributionTree& tree) {
  Drawing d = Draw(tree, " font-family=\"Helvetica, Arial, sans-serif\" style=\"background:#fff\"");
  if (!d.unplaced.empty()) absl::StrAppend(&d.svg, "<desc>", UnplacedList(d.unplaced), "</desc>");
  return absl::StrCat("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", d.svg, "</svg>\n");
}

}  // namespace attattr::report
