// The attribution tree (DESIGN.md §1) on hand-built matrices — τ, ties, the [CLS] row left out of
// the maximum, layers without positive entries, parents fixed per layer, bad input — its four
// renderings, and the trees of the golden reference built from the golden attributions.
#include "attattr/engine/attribution_tree.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "attattr/engine/attribution_tree_render.h"
#include "nlohmann/json.hpp"
#include "support/golden.h"
#include "support/golden_tree.h"
#include "support/test_paths.h"

namespace attattr::engine {
namespace {

using Matrix = std::vector<std::vector<double>>;  // n×n, one head

// One layer with a single head holding `m`.
LayerAttribution Layer(int layer, const Matrix& m) {
  LayerAttribution la;
  la.layer = layer;
  la.num_heads = 1;
  for (const auto& row : m) {
    for (double v : row) la.attribution.push_back(static_cast<float>(v));
  }
  return la;
}

Matrix Zeros(int n) { return Matrix(n, std::vector<double>(n, 0.0)); }

std::vector<std::string> Tokens(int n) {
  std::vector<std::string> t = {"[CLS]"};
  for (int i = 1; i < n; ++i) t.push_back("t" + std::to_string(i));
  return t;
}

// A last layer that makes `top` the top node (large outgoing mass) and has no other say.
Matrix TopMaker(int n, int top) {
  Matrix m = Zeros(n);
  for (int j = 0; j < n; ++j) {
    if (j != top) m[top][j] = 10.0;
  }
  return m;
}

TEST(AttributionTreeTest, ThresholdAndNormalisation) {
  // n = 4, L = 2: top = 1 (from layer 1); layer 0 decides the children of 1.
  Matrix l0 = Zeros(4);
  l0[1][2] = 2.0;   // N = 0.5 > 0.4: joins
  l0[1][3] = 1.0;   // N = 0.25: stays out
  l0[3][1] = 4.0;   // the row maximum (4), but 3 is no parent
  auto tree = BuildAttributionTree(Tokens(4), {Layer(0, l0), Layer(1, TopMaker(4, 1))}, 2, 0.4);
  ASSERT_TRUE(tree.ok()) << tree.status();
  EXPECT_EQ(tree->root, 0);
  EXPECT_EQ(tree->root_token, "[CLS]");
  EXPECT_EQ(tree->top, 1);
  ASSERT_EQ(tree->edges.size(), 1u);
  EXPECT_EQ(tree->edges[0].parent, 1);
  EXPECT_EQ(tree->edges[0].child, 2);
  EXPECT_EQ(tree->edges[0].layer, 0);
  EXPECT_NEAR(tree->edges[0].score, 0.5, 1e-7);
  ASSERT_EQ(tree->nodes.size(), 2u);
  EXPECT_EQ(tree->nodes[0].position, 1);
  EXPECT_EQ(tree->nodes[0].layer, 1);
  EXPECT_EQ(tree->nodes[1].position, 2);
  EXPECT_EQ(tree->nodes[1].token, "t2");
  EXPECT_EQ(tree->nodes[1].layer, 0);
  // Lower τ lets 3 in; N must be strictly above τ.
  auto low = BuildAttributionTree(Tokens(4), {Layer(0, l0), Layer(1, TopMaker(4, 1))}, 2, 0.25);
  ASSERT_TRUE(low.ok());
  EXPECT_EQ(low->edges.size(), 1u) << "N = 0.25 is not > τ = 0.25";
  auto lower = BuildAttributionTree(Tokens(4), {Layer(0, l0), Layer(1, TopMaker(4, 1))}, 2, 0.24);
  ASSERT_TRUE(lower.ok());
  EXPECT_EQ(lower->edges.size(), 2u);
}

TEST(AttributionTreeTest, ClsRowIsLeftOutOfTheMaximum) {
  Matrix l0 = Zeros(3);
  l0[0][2] = 100.0;  // [CLS] row: would dwarf everything if it counted
  l0[1][2] = 1.0;    // the maximum over rows ≥ 1: N = 1
  auto tree = BuildAttributionTree(Tokens(3), {Layer(0, l0), Layer(1, TopMaker(3, 1))}, 2, 0.4);
  ASSERT_TRUE(tree.ok()) << tree.status();
  ASSERT_EQ(tree->edges.size(), 1u);
  EXPECT_EQ(tree->edges[0].parent, 1) << "the root is never a parent inside a layer";
  EXPECT_NEAR(tree->edges[0].score, 1.0, 1e-7);
}

TEST(AttributionTreeTest, TiesGoToTheSmallerParent) {
  // L = 3, n = 5. Layer 2 makes 3 the top; layer 1 brings 1 in under 3; layer 0: token 4 is
  // claimed equally by 1 and 3 → parent 1.
  Matrix l1 = Zeros(5);
  l1[3][1] = 1.0;
  Matrix l0 = Zeros(5);
  l0[1][4] = 1.0;
  l0[3][4] = 1.0;
  auto tree = BuildAttributionTree(
      Tokens(5), {Layer(0, l0), Layer(1, l1), Layer(2, TopMaker(5, 3))}, 3, 0.4);
  ASSERT_TRUE(tree.ok()) << tree.status();
  EXPECT_EQ(tree->top, 3);
  ASSERT_EQ(tree->edges.size(), 2u);
  EXPECT_EQ(tree->edges[0].parent, 3);
  EXPECT_EQ(tree->edges[0].child, 1);
  EXPECT_EQ(tree->edges[0].layer, 1);
  EXPECT_EQ(tree->edges[1].parent, 1);
  EXPECT_EQ(tree->edges[1].child, 4);
  EXPECT_EQ(tree->edges[1].layer, 0);
}

TEST(AttributionTreeTest, TopNodeTiesGoToTheSmallerPosition) {
  // Every row has the same outgoing mass: the top is position 1.
  Matrix m = Zeros(4);
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) m[i][j] = i == j ? 0.0 : 1.0;
  }
  auto tree = BuildAttributionTree(Tokens(4), {Layer(0, m)}, 1, 0.4);
  ASSERT_TRUE(tree.ok()) << tree.status();
  EXPECT_EQ(tree->top, 1);
  EXPECT_TRUE(tree->edges.empty()) << "a one-layer model has only the root edge";
  EXPECT_NEAR(tree->root_edge_score, 1.0, 1e-7);
}

TEST(AttributionTreeTest, NegativeMassDoesNotMakeATop) {
  // Row 1 has a large negative sum, row 2 a small positive one.
  Matrix m = Zeros(3);
  m[1][2] = -50.0;
  m[1][0] = 1.0;
  m[2][1] = 2.0;
  auto tree = BuildAttributionTree(Tokens(3), {Layer(0, m)}, 1, 0.4);
  ASSERT_TRUE(tree.ok());
  EXPECT_EQ(tree->top, 2);
}

TEST(AttributionTreeTest, LayerWithoutPositiveEntriesHasNoEdges) {
  // Layer 0 has only negative entries in rows ≥ 1 (and a positive [CLS] row): no edges, although
  // dividing by its negative maximum would give N = 1 everywhere. The last layer has only its
  // [CLS] row, so the root edge scores 0.
  Matrix neg(4, std::vector<double>(4, -1.0));
  neg[0] = {0.0, 5.0, 5.0, 5.0};
  Matrix top = Zeros(4);
  top[1][0] = 10.0;  // makes 1 the top, gives layer 1 a positive maximum but no child above τ
  Matrix last = Zeros(4);
  last[0][1] = 3.0;  // only the [CLS] row, as in a classifier's last layer
  auto tree = BuildAttributionTree(Tokens(4), {Layer(0, neg), Layer(1, top), Layer(2, last)}, 3,
                                   0.4);
  ASSERT_TRUE(tree.ok()) << tree.status();
  EXPECT_EQ(tree->top, 1);
  EXPECT_TRUE(tree->edges.empty());
  EXPECT_EQ(tree->root_edge_score, 0.0);
  ASSERT_EQ(tree->nodes.size(), 1u);
  EXPECT_EQ(tree->nodes[0].layer, 2);
}

TEST(AttributionTreeTest, ATokenJoiningAtLayerLIsNoParentInLayerL) {
  // L = 2, n = 4, top = 1. Layer 0: 1 → 2 strongly, 2 → 3 strongly, 1 → 3 below τ. Token 3 must
  // stay out: 2 only joins at layer 0.
  Matrix l0 = Zeros(4);
  l0[1][2] = 1.0;
  l0[2][3] = 1.0;
  l0[1][3] = 0.1;
  auto tree = BuildAttributionTree(Tokens(4), {Layer(0, l0), Layer(1, TopMaker(4, 1))}, 2, 0.4);
  ASSERT_TRUE(tree.ok()) << tree.status();
  ASSERT_EQ(tree->edges.size(), 1u);
  EXPECT_EQ(tree->edges[0].child, 2);
  for (const auto& n : tree->nodes) EXPECT_NE(n.position, 3);
}

TEST(AttributionTreeTest, EachTokenHasAtMostOneParentAndKeepsItsFirstLayer) {
  // L = 3, n = 4, top = 1. Layer 1: 1 → 2. Layer 0: 1 → 2 again and 1 → 3; 2 keeps layer 1.
  Matrix l1 = Zeros(4);
  l1[1][2] = 1.0;
  Matrix l0 = Zeros(4);
  l0[1][2] = 1.0;
  l0[1][3] = 1.0;
  l0[2][3] = 0.9;
  auto tree = BuildAttributionTree(
      Tokens(4), {Layer(0, l0), Layer(1, l1), Layer(2, TopMaker(4, 1))}, 3, 0.4);
  ASSERT_TRUE(tree.ok()) << tree.status();
  ASSERT_EQ(tree->edges.size(), 2u);
  EXPECT_EQ(tree->edges[0].child, 2);
  EXPECT_EQ(tree->edges[0].layer, 1);
  EXPECT_EQ(tree->edges[1].child, 3);
  EXPECT_EQ(tree->edges[1].parent, 1) << "1 beats 2 (1.0 > 0.9)";
  EXPECT_EQ(tree->nodes[1].layer, 1);
}

TEST(AttributionTreeTest, HeadsAreSummed) {
  // Two heads that each stay below τ but sum above it.
  LayerAttribution l0;
  l0.layer = 0;
  l0.num_heads = 2;
  l0.attribution.assign(2 * 9, 0.0f);
  l0.attribution[0 * 9 + 1 * 3 + 1] = 1.0f;  // head 0: (1,1), the layer's maximum (1)
  l0.attribution[0 * 9 + 1 * 3 + 2] = 0.25f;  // head 0: (1,2)
  l0.attribution[1 * 9 + 1 * 3 + 2] = 0.25f;  // head 1: (1,2); S = 0.5 → N = 0.5
  auto tree = BuildAttributionTree(Tokens(3), {l0, Layer(1, TopMaker(3, 1))}, 2, 0.4);
  ASSERT_TRUE(tree.ok()) << tree.status();
  ASSERT_EQ(tree->edges.size(), 1u);
  EXPECT_NEAR(tree->edges[0].score, 0.5, 1e-7);
}

TEST(AttributionTreeTest, RefusesBadInput) {
  const std::vector<LayerAttribution> ok = {Layer(0, Zeros(3)), Layer(1, TopMaker(3, 1))};
  for (double tau : {0.0, -0.1, 1.5, std::nan("")}) {
    auto t = BuildAttributionTree(Tokens(3), ok, 2, tau);
    ASSERT_FALSE(t.ok()) << tau;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(t.status().message().find("tau"), std::string::npos) << t.status();
  }
  EXPECT_TRUE(BuildAttributionTree(Tokens(3), ok, 2, 1.0).ok());
  EXPECT_TRUE(ValidateTreeTau(0.4, "result.tree_tau").ok());
  EXPECT_NE(ValidateTreeTau(2, "result.tree_tau").message().find("result.tree_tau"),
            std::string::npos);

  auto missing = BuildAttributionTree(Tokens(3), {ok[1]}, 2, 0.4);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("layers"), std::string::npos) << missing.status();
  auto subset = BuildAttributionTree(Tokens(3), {ok[1], ok[0]}, 2, 0.4);  // out of order
  ASSERT_FALSE(subset.ok());
  EXPECT_NE(subset.status().message().find("layers[0]"), std::string::npos) << subset.status();
  auto shape = BuildAttributionTree(Tokens(4), ok, 2, 0.4);  // 3×3 matrices, 4 tokens
  ASSERT_FALSE(shape.ok());
  EXPECT_NE(shape.status().message().find("layers[0].attribution"), std::string::npos)
      << shape.status();
  auto tiny = BuildAttributionTree({"[CLS]"}, {Layer(0, Zeros(1))}, 1, 0.4);
  ASSERT_FALSE(tiny.ok());
  EXPECT_NE(tiny.status().message().find("tokens"), std::string::npos);
}

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
      if (ent != "&amp;" && ent != "&lt;" && ent != "&gt;" && ent != "&quot;" && ent != "&apos;") {
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
    const std::string name = tag.substr(tag[0] == '/' ? 1 : 0, tag.find_first_of(" \t\n/", 1) -
                                                                  (tag[0] == '/' ? 1 : 0));
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
  const std::string svg = AttributionTreeToSvg(NastyTree());
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

std::vector<LayerAttribution> GoldenLayers(const ::attattr::testing::GoldenExample& g) {
  std::vector<LayerAttribution> layers;
  for (size_t l = 0; l < g.attribution.size(); ++l) {
    LayerAttribution la;
    la.layer = static_cast<int>(l);
    la.num_heads = g.num_heads;
    la.attribution.assign(g.attribution[l].begin(), g.attribution[l].end());
    layers.push_back(std::move(la));
  }
  return layers;
}

TEST(AttributionTreeGoldenTest, GoldenAttributionsGiveTheGoldenTrees) {
  ATTATTR_SKIP_IF_MISSING(::attattr::testing::GoldenPath());
  const auto golden = ::attattr::testing::LoadGolden(::attattr::testing::GoldenPath());
  ASSERT_FALSE(golden.examples.empty());
  for (const auto& g : golden.examples) {
    SCOPED_TRACE(g.text);
    const auto layers = GoldenLayers(g);
    auto tree = BuildAttributionTree(g.tokens, layers, static_cast<int>(layers.size()),
                                     kDefaultTreeTau);
    ASSERT_TRUE(tree.ok()) << tree.status();
    ::attattr::testing::ExpectTreeMatchesGolden(*tree, g);
    // The renderings of a real tree hold together.
    const auto j = nlohmann::json::parse(AttributionTreeToJson(*tree));
    EXPECT_EQ(j["edges"].size(), g.tree_edges.size());
    std::string why;
    EXPECT_TRUE(WellFormedXml(AttributionTreeToSvg(*tree), &why)) << why;
    const std::string text = AttributionTreeToText(*tree);
    EXPECT_EQ(static_cast<size_t>(std::count(text.begin(), text.end(), '\n')),
              g.tree_nodes.size() + 1);
  }
}

}  // namespace
}  // namespace attattr::engine
