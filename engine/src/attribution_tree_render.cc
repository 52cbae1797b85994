// Renderers of the attribution tree (see attribution_tree_render.h).
#include "attattr/engine/attribution_tree_render.h"

#include <algorithm>
#include <cstddef>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace attattr::engine {
namespace {

// Tree structure by position: children by ascending position, the edge each node joined by.
struct Structure {
  std::map<int, std::vector<int>> children;      // parent -> children
  std::map<int, const AttributionTreeEdge*> in;   // child -> its edge
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

int LayerAt(const AttributionTree& tree, const Structure& s, int position) {
  auto it = s.node.find(position);
  return it == s.node.end() ? -1 : it->second->layer;
}

double ScoreInto(const AttributionTree& tree, const Structure& s, int position) {
  if (position == tree.top) return tree.root_edge_score;
  auto it = s.in.find(position);
  return it == s.in.end() ? 0.0 : it->second->score;
}

std::string XmlEscape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // Control characters are not allowed in XML 1.0 text.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n') {
          out += "?";
        } else {
          out += c;
        }
    }
  }
  return out;
}

// A DOT quoted-string body: quotes and backslashes escaped; &, <, > as the HTML entities
// Graphviz decodes in labels, so no token can end the string or be misread as an entity.
std::string DotEscape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      default: out += c;
    }
  }
  return out;
}

// Display width of UTF-8 text in code points (continuation bytes do not count).
int CodePoints(const std::string& text) {
  int count = 0;
  for (char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++count;
  }
  return count;
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

// SVG layout: node boxes sized by their token, subtrees placed side by side, parents centred.
constexpr double kCharWidth = 7.5;
constexpr double kBoxPad = 12;
constexpr double kBoxHeight = 34;
constexpr double kRowHeight = 78;
constexpr double kGap = 14;
constexpr double kMargin = 16;

struct Placed {
  double x = 0;  // centre
  double y = 0;  // top
  double w = 0;
};

double BoxWidth(const AttributionTree& tree, const Structure& s, int position) {
  const std::string sub = absl::StrCat("#", position, " L", LayerAt(tree, s, position));
  const int chars = std::max(CodePoints(TokenAt(tree, s, position)), CodePoints(sub));
  return std::max(40.0, chars * kCharWidth + 2 * kBoxPad);
}

double SubtreeWidth(const AttributionTree& tree, const Structure& s, int position,
                    std::map<int, double>* widths) {
  double kids_width = 0;
  auto it = s.children.find(position);
  if (it != s.children.end()) {
    for (size_t k = 0; k < it->second.size(); ++k) {
      if (k > 0) kids_width += kGap;
      kids_width += SubtreeWidth(tree, s, it->second[k], widths);
    }
  }
  const double w = std::max(BoxWidth(tree, s, position), kids_width);
  (*widths)[position] = w;
  return w;
}

void Place(const AttributionTree& tree, const Structure& s, int position, double left, int depth,
           const std::map<int, double>& widths, std::map<int, Placed>* placed, int* max_depth) {
  const double w = widths.at(position);
  (*placed)[position] = {left + w / 2, kMargin + depth * kRowHeight, BoxWidth(tree, s, position)};
  *max_depth = std::max(*max_depth, depth);
  auto it = s.children.find(position);
  if (it == s.children.end()) return;
  double kids_width = 0;
  for (size_t k = 0; k < it->second.size(); ++k) {
    kids_width += (k > 0 ? kGap : 0) + widths.at(it->second[k]);
  }
  double x = left + (w - kids_width) / 2;
  for (int c : it->second) {
    Place(tree, s, c, x, depth + 1, widths, placed, max_depth);
    x += widths.at(c) + kGap;
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
  nlohmann::json j = {{"tau", tree.tau},
                      {"root", tree.root},
                      {"top", tree.top},
                      {"root_edge_score", tree.root_edge_score},
                      {"nodes", std::move(nodes)},
                      {"edges", std::move(edges)}};
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

std::string AttributionTreeToSvg(const AttributionTree& tree) {
  const Structure s = MakeStructure(tree);
  std::map<int, double> widths;
  const double total = SubtreeWidth(tree, s, tree.root, &widths);
  std::map<int, Placed> placed;
  int max_depth = 0;
  Place(tree, s, tree.root, kMargin, 0, widths, &placed, &max_depth);
  const double width = total + 2 * kMargin;
  const double height = 2 * kMargin + max_depth * kRowHeight + kBoxHeight;

  std::string out = absl::StrFormat(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
      "viewBox=\"0 0 %.0f %.0f\" font-family=\"Helvetica, Arial, sans-serif\">\n",
      width, height, width, height);
  absl::StrAppend(&out, "<title>", XmlEscape(absl::StrFormat(
                                        "Attribution tree (tau = %g)", tree.tau)),
                  "</title>\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
  // Edges first, so boxes cover their ends.
  for (const auto& [parent, kids] : s.children) {
    const Placed& p = placed.at(parent);
    for (int c : kids) {
      const Placed& q = placed.at(c);
      const double x1 = p.x, y1 = p.y + kBoxHeight, x2 = q.x, y2 = q.y;
      absl::StrAppend(&out, absl::StrFormat("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                                            "stroke=\"#888\" stroke-width=\"1.2\"/>\n",
                                            x1, y1, x2, y2));
      const std::string label = parent == tree.root
                                    ? absl::StrFormat("%.3f", tree.root_edge_score)
                                    : absl::StrFormat("L%d %.3f", LayerAt(tree, s, c),
                                                      ScoreInto(tree, s, c));
      absl::StrAppend(&out, absl::StrFormat("<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" "
                                            "fill=\"#555\" text-anchor=\"middle\">",
                                            (x1 + x2) / 2, (y1 + y2) / 2 + 3),
                      XmlEscape(label), "</text>\n");
    }
  }
  for (const auto& [position, p] : placed) {
    const bool emphasised = position == tree.root || position == tree.top;
    absl::StrAppend(
        &out,
        absl::StrFormat("<g><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.0f\" rx=\"6\" "
                        "fill=\"%s\" stroke=\"#333\" stroke-width=\"%s\"/>",
                        p.x - p.w / 2, p.y, p.w, kBoxHeight, emphasised ? "#fde9c9" : "#eef3fb",
                        emphasised ? "2" : "1"),
        absl::StrFormat("<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" text-anchor=\"middle\">",
                        p.x, p.y + 15),
        XmlEscape(TokenAt(tree, s, position)), "</text>");
    if (position != tree.root) {
      absl::StrAppend(&out,
                      absl::StrFormat("<text x=\"%.1f\" y=\"%.1f\" font-size=\"9\" fill=\"#666\" "
                                      "text-anchor=\"middle\">#%d L%d</text>",
                                      p.x, p.y + 28, position, LayerAt(tree, s, position)));
    }
    out += "</g>\n";
  }
  out += "</svg>\n";
  return out;
}

std::string AttributionTreeToText(const AttributionTree& tree) {
  const Structure s = MakeStructure(tree);
  std::string out = absl::StrCat(tree.root_token, "\n");
  TextLines(tree, s, tree.root, "", &out);
  return out;
}

}  // namespace attattr::engine
