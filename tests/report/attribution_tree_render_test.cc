// The renderings of an attribution tree (JSON, DOT, text, SVG element and document): the schema,
// escaping in every format, well-formed SVG, defensive drawing of malformed trees, and the golden
// reference's trees rendered in every format.
#include "attattr/report/attribution_tree_render.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "attattr/engine/attribution_tree.h"
#include "nlohmann/json.hpp"
#include "support/golden.h"
#include "support/golden_tree.h"
#include "support/test_paths.h"

namespace attattr::report {
namespace {

using engine::AttributionTree;

// A tree with tokens that need escaping in every format.
AttributionTree NastyTree() {
  AttributionTree t;
  t.tau = 0.4;
  t.root = 0;
  t.root_token = "[CLS]";
  t.top = 2;
  t.root_edge_score = 0.25;
  t.nodes = {{1, "<b>", 1}, {2, "say \"hi\"", 2}, {3, "a&b", 0}, {4, "x\\y", 1}};
  t.edges = {{2, 1, 1, 0.75}, {2, 4, 1, 0.5}, {1, 3, 0, 0.625}};
  return t;
}

TEST(AttributionTreeRenderTest, JsonHasTheSchema) {
  const auto j = nlohmann::json::parse(AttributionTreeToJson(NastyTree()));
  EXPECT_EQ(j.at("root"), 0);
  EXPECT_EQ(j.at("top"), 2);
  EXPECT_DOUBLE_EQ(j.at("tau").get<double>(), 0.4);
  EXPECT_DOUBLE_EQ(j.at("root_edge_score").get<double>(), 0.25);
  ASSERT_EQ(j.at("nodes").size(), 4u);
  EXPECT_EQ(j["nodes"][1]["position"], 2);
  EXPECT_EQ(j["nodes"][1]["token"], "say \"hi\"");
  EXPECT_EQ(j["nodes"][1]["layer"], 2);
  ASSERT_EQ(j.at("edges").size(), 3u);
  EXPECT_EQ(j["edges"][2]["parent"], 1);
  EXPECT_EQ(j["edges"][2]["child"], 3);
  EXPECT_EQ(j["edges"][2]["layer"], 0);
  EXPECT_DOUBLE_EQ(j["edges"][2]["score"].get<double>(), 0.625);
  for (const auto& [key, value] : j.items()) {
    EXPECT_TRUE(key == "tau" || key == "root" || key == "top" || key == "root_edge_score" ||
                key == "nodes" || key == "edges")
        << key;
  }
}

TEST(AttributionTreeRenderTest, DotEscapesTokens) {
  const std::string dot = AttributionTreeToDot(NastyTree());
  EXPECT_EQ(dot.rfind("digraph attribution_tree {", 0), 0u) << dot;
  EXPECT_NE(dot.find("say \\\"hi\\\""), std::string::npos) << dot;
  EXPECT_NE(dot.find("&lt;b&gt;"), std::string::npos) << dot;
  EXPECT_NE(dot.find("a&amp;b"), std::string::npos) << dot;
  EXPECT_NE(dot.find("x\\\\y"), std::string::npos) << dot;
  EXPECT_EQ(dot.find("<b>"), std::string::npos);
  EXPECT_NE(dot.find("n0 -> n2"), std::string::npos) << dot;
  EXPECT_NE(dot.find("n1 -> n3"), std::string::npos) << dot;
  // Every quote is either escaped or one of an even number of delimiters per line.
  std::string line;
  for (char c : dot) {
    if (c != '\n') {
      line += c;
      continue;
    }
    int quotes = 0;
    for (size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '\\') {
        ++i;
      } else if (line[i] == '"') {
        ++quotes;
      }
    }
    EXPECT_EQ(quotes % 2, 0) << line;
    line.clear();
  }
}

// Minimal well-formedness check: tags balance and no raw '<' or '&' outside markup/entities.
bool WellFormedXml(const std::string& xml, std::string* why) {
  std::vector<std::string> open;
  size_t i = 0;
  while (i < xml.size()) {
    if (xml[i] == '&') {
      const size_t semi = xml.find(';', i);
      const std::string ent = xml.substr(i, semi == std::string::npos ? 8 : semi - i + 1);
      if (ent != "&amp;" && ent != "&lt;" && ent != "&gt;" && ent != "&quot;" && ent != "&apos;" &&
          ent != "&#39;") {
        *why = "bad entity " + ent;
        return false;
      }
      i = semi + 1;
      continue;
    }
    if (xml[i] != '<') {
      ++i;
      continue;
    }
    const size_t end = xml.find('>', i);
    if (end == std::string::npos) {
      *why = "unterminated tag";
      return false;
    }
    std::string tag = xml.substr(i + 1, end - i - 1);
    i = end + 1;
    if (tag.empty()) {
      *why = "empty tag";
      return false;
    }
    if (tag[0] == '?' || tag[0] == '!') continue;
    // Attribute values must not contain '<' (the tag would have been cut) and quotes must pair.
    if (std::count(tag.begin(), tag.end(), '"') % 2 != 0) {
      *why = "unbalanced quotes in <" + tag + ">";
      return false;
    }
    if (tag.back() == '/') continue;
    const std::string name =
        tag.substr(tag[0] == '/' ? 1 : 0, tag.find_first_of(" \t\n/", 1) - (tag[0] == '/' ? 1 : 0));
    if (tag[0] == '/') {
      if (open.empty() || open.back() != name) {
        *why = "mismatched </" + name + ">";
        return false;
      }
      open.pop_back();
    } else {
      open.push_back(name);
    }
  }
  if (!open.empty()) *why = "unclosed <" + open.back() + ">";
  return open.empty();
}

TEST(AttributionTreeRenderTest, SvgIsWellFormedAndEscapesTokens) {
  const std::string svg = AttributionTreeSvgDocument(NastyTree());
  std::string why;
  EXPECT_TRUE(WellFormedXml(svg, &why)) << why << "\n" << svg;
  EXPECT_NE(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
  EXPECT_NE(svg.find("&lt;b&gt;"), std::string::npos) << svg;
  EXPECT_NE(svg.find("say &quot;hi&quot;"), std::string::npos) << svg;
  EXPECT_NE(svg.find("a&amp;b"), std::string::npos) << svg;
  EXPECT_EQ(svg.find("<b>"), std::string::npos);
  // Five boxes (root + four nodes), four edges (root edge + three).
  size_t rects = 0, lines = 0;
  for (size_t p = svg.find("<rect x="); p != std::string::npos; p = svg.find("<rect x=", p + 1)) {
    ++rects;
  }
  for (size_t p = svg.find("<line "); p != std::string::npos; p = svg.find("<line ", p + 1)) {
    ++lines;
  }
  EXPECT_EQ(rects, 5u);
  EXPECT_EQ(lines, 4u);
}

TEST(AttributionTreeRenderTest, TextIsAnIndentedTree) {
  EXPECT_EQ(AttributionTreeToText(NastyTree()),
            "[CLS]\n"
            "└─ say \"hi\" #2 (L2, 0.250)\n"
            "   ├─ <b> #1 (L1, 0.750)\n"
            "   │  └─ a&b #3 (L0, 0.625)\n"
            "   └─ x\\y #4 (L1, 0.500)\n");
}

TEST(AttributionTreeRenderTest, SvgElementAndDocumentDrawTheSameTree) {
  const std::string element = AttributionTreeSvg(NastyTree());
  const std::string document = AttributionTreeSvgDocument(NastyTree());
  EXPECT_EQ(element.rfind("<svg ", 0), 0u) << element;
  EXPECT_EQ(document.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg ", 0), 0u);
  for (const char* hook :
       {"class=\"tree-node root\"", "class=\"tree-node top\"", "data-parent=\"0\" data-child=\"2\"",
        "data-parent=\"1\" data-child=\"3\""}) {
    EXPECT_NE(element.find(hook), std::string::npos) << hook;
    EXPECT_NE(document.find(hook), std::string::npos) << hook;
  }
}

TEST(AttributionTreeRenderTest, UnreachableNodesAreListedNotDropped) {
  engine::AttributionTree t = NastyTree();
  t.edges.push_back({7, 8, 0, 0.5});  // parent 7 is not in the tree
  const std::string element = AttributionTreeSvg(t);
  EXPECT_NE(element.find("tree-unplaced"), std::string::npos) << element;
  const std::string document = AttributionTreeSvgDocument(t);
  std::string why;
  EXPECT_TRUE(WellFormedXml(document, &why)) << why << "\n" << document;
  EXPECT_NE(document.find("<desc>Not reachable from the root: 8 #8</desc>"), std::string::npos)
      << document;
}

TEST(AttributionTreeRenderTest, GoldenTreesRenderInEveryFormat) {
  ATTATTR_SKIP_IF_MISSING(::attattr::testing::GoldenPath());
  const auto golden = ::attattr::testing::LoadGolden(::attattr::testing::GoldenPath());
  ASSERT_FALSE(golden.examples.empty());
  for (const auto& g : golden.examples) {
    SCOPED_TRACE(g.text);
    const auto layers = ::attattr::testing::GoldenLayers(g);
    auto tree = engine::BuildAttributionTree(g.tokens, layers, static_cast<int>(layers.size()),
                                             engine::kDefaultTreeTau);
    ASSERT_TRUE(tree.ok()) << tree.status();
    const auto j = nlohmann::json::parse(AttributionTreeToJson(*tree));
    EXPECT_EQ(j["edges"].size(), g.tree_edges.size());
    std::string why;
    EXPECT_TRUE(WellFormedXml(AttributionTreeSvgDocument(*tree), &why)) << why;
    const std::string text = AttributionTreeToText(*tree);
    EXPECT_EQ(static_cast<size_t>(std::count(text.begin(), text.end(), '\n')),
              g.tree_nodes.size() + 1);
  }
}

}  // namespace
}  // namespace attattr::report
