// The attribution tree (DESIGN.md §1) on hand-built matrices — τ, ties, the [CLS] row left out of
// the maximum, layers without positive entries, parents fixed per layer, bad input — and the trees
// of the golden reference built from the golden attributions. Its renderings are tested with
// them in tests/report/attribution_tree_render_test.cc.
#include "attattr/engine/attribution_tree.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>
#include <string>
#include <tuple>
#include <vector>

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
  l0[1][2] = 2.0;  // N = 0.5 > 0.4: joins
  l0[1][3] = 1.0;  // N = 0.25: stays out
  l0[3][1] = 4.0;  // the row maximum (4), but 3 is no parent
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
  auto tree = BuildAttributionTree(Tokens(5),
                                   {Layer(0, l0), Layer(1, l1), Layer(2, TopMaker(5, 3))}, 3, 0.4);
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
  auto tree =
      BuildAttributionTree(Tokens(4), {Layer(0, neg), Layer(1, top), Layer(2, last)}, 3, 0.4);
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
  auto tree = BuildAttributionTree(Tokens(4),
                                   {Layer(0, l0), Layer(1, l1), Layer(2, TopMaker(4, 1))}, 3, 0.4);
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
  l0.attribution[0 * 9 + 1 * 3 + 1] = 1.0f;   // head 0: (1,1), the layer's maximum (1)
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

// A tree rooted at position r (a decoder's last token) is the tree rooted at 0 of the example with
// positions 0 and r swapped — in the tokens and in every matrix's rows and columns —, relabelled.
TEST(AttributionTreeTest, RootedElsewhereEqualsRootedAtZeroWithPositionsSwapped) {
  const int n = 7, layers = 3, r = n - 1;
  uint64_t state = 20261206;
  const auto uniform = [&state] {  // deterministic, in [-0.5, 1)
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<double>(state >> 11) / static_cast<double>(1ULL << 53) * 1.5 - 0.5;
  };
  const auto swap = [r](int i) { return i == 0 ? r : i == r ? 0 : i; };
  std::vector<LayerAttribution> at_zero, at_r;
  for (int l = 0; l < layers; ++l) {
    Matrix m = Zeros(n), swapped = Zeros(n);
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j < n; ++j) m[i][j] = uniform();
    }
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j < n; ++j) swapped[swap(i)][swap(j)] = m[i][j];
    }
    at_zero.push_back(Layer(l, m));
    at_r.push_back(Layer(l, swapped));
  }
  std::vector<std::string> tokens = Tokens(n), swapped_tokens(n);
  for (int i = 0; i < n; ++i) swapped_tokens[swap(i)] = tokens[i];
  auto want = BuildAttributionTree(tokens, at_zero, layers, 0.2, 0);
  auto got = BuildAttributionTree(swapped_tokens, at_r, layers, 0.2, r);
  ASSERT_TRUE(want.ok()) << want.status();
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_GE(want->edges.size(), 2u);  // the example has a tree worth comparing
  EXPECT_EQ(got->root, r);
  EXPECT_EQ(got->root_token, "[CLS]");
  EXPECT_EQ(got->top, swap(want->top));
  EXPECT_DOUBLE_EQ(got->root_edge_score, want->root_edge_score);
  std::set<std::tuple<int, int, int>> want_edges, got_edges;
  for (const auto& e : want->edges) want_edges.insert({swap(e.parent), swap(e.child), e.layer});
  for (const auto& e : got->edges) got_edges.insert({e.parent, e.child, e.layer});
  EXPECT_EQ(got_edges, want_edges);
  std::set<std::pair<int, int>> want_nodes, got_nodes;
  for (const auto& v : want->nodes) want_nodes.insert({swap(v.position), v.layer});
  for (const auto& v : got->nodes) got_nodes.insert({v.position, v.layer});
  EXPECT_EQ(got_nodes, want_nodes);
  for (const auto& v : got->nodes) EXPECT_NE(v.position, r);
  // A root outside the tokens is refused, naming it.
  auto bad = BuildAttributionTree(tokens, at_zero, layers, 0.4, n);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("root"), std::string::npos) << bad.status();
}

TEST(AttributionTreeGoldenTest, GoldenAttributionsGiveTheGoldenTrees) {
  ATTATTR_SKIP_IF_MISSING(::attattr::testing::GoldenPath());
  const auto golden = ::attattr::testing::LoadGolden(::attattr::testing::GoldenPath());
  ASSERT_FALSE(golden.examples.empty());
  for (const auto& g : golden.examples) {
    SCOPED_TRACE(g.text);
    const auto layers = ::attattr::testing::GoldenLayers(g);
    auto tree =
        BuildAttributionTree(g.tokens, layers, static_cast<int>(layers.size()), kDefaultTreeTau);
    ASSERT_TRUE(tree.ok()) << tree.status();
    ::attattr::testing::ExpectTreeMatchesGolden(*tree, g);
  }
}

}  // namespace
}  // namespace attattr::engine
