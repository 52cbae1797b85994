// The engine <-> proto conversions of convert/: fp16 tensors both ways, the enum maps (every
// engine value survives a round trip; unknown proto values are refused), attribution results and
// trees through proto and back, and what ResultOptions keep.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "attattr/convert/attribution_convert.h"
#include "attattr/convert/head_importance_convert.h"
#include "attattr/convert/tensor_convert.h"

namespace attattr::convert {
namespace {

TEST(TensorConvertTest, DecodesFp16LittleEndian) {
  v1::Tensor t;
  t.add_shape(3);
  t.set_f16(std::string("\x00\x3c\x00\xc0\x00\x38", 6));  // 1, -2, 0.5
  auto v = TensorValues(t, {3});
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, (std::vector<float>{1.0f, -2.0f, 0.5f}));
  EXPECT_EQ(TensorValues(t, {4}).status().code(), absl::StatusCode::kInvalidArgument);
  t.set_f16(std::string("\x00\x3c", 2));
  EXPECT_EQ(TensorValues(t).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(TensorConvertTest, Fp32AndFp16RoundTrip) {
  const std::vector<float> values = {0.5f, -1.25f, 3.0f, 0.0f, 2.0f, -0.125f};
  for (bool fp16 : {false, true}) {
    v1::Tensor t;
    TensorToProto(values.data(), values.size(), {2, 3}, fp16, &t);
    EXPECT_TRUE(HasValues(t));
    EXPECT_EQ(t.data_case(), fp16 ? v1::Tensor::kF16 : v1::Tensor::kF32);
    auto back = TensorValues(t, {2, 3});
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, values);  // all exactly representable in fp16
  }
}

TEST(TensorConvertTest, RefusesShapesThatDoNotFit) {
  v1::Tensor t;
  t.add_shape(-1);
  t.mutable_f32()->add_values(1);
  EXPECT_FALSE(TensorValues(t).ok());
  v1::Tensor huge;
  for (int i = 0; i < 3; ++i) huge.add_shape(1 << 20);
  huge.mutable_f32()->add_values(1);
  EXPECT_FALSE(TensorValues(huge).ok());
  v1::Tensor empty;
  empty.add_shape(2);
  EXPECT_FALSE(HasValues(empty));
  EXPECT_FALSE(TensorValues(empty).ok());
}

TEST(EnumConvertTest, EveryEngineValueRoundTrips) {
  for (auto rule : {engine::QuadratureRule::kLeftRiemann, engine::QuadratureRule::kTrapezoid,
                    engine::QuadratureRule::kGaussLegendre}) {
    EXPECT_EQ(RuleFromProto(RuleToProto(rule)), rule);
  }
  EXPECT_EQ(RuleFromProto(v1::QUADRATURE_RULE_UNSPECIFIED), engine::kDefaultQuadratureRule);
  EXPECT_FALSE(RuleFromProto(static_cast<v1::QuadratureRule>(99)).has_value());
  EXPECT_EQ(RuleName(v1::QUADRATURE_RULE_UNSPECIFIED), "gauss-legendre");
  EXPECT_EQ(RuleName(v1::LEFT_RIEMANN), "left-riemann");
  for (auto kind : {engine::TargetKind::kPredictedClassProb, engine::TargetKind::kClassProb,
                    engine::TargetKind::kClassLogit, engine::TargetKind::kEmbeddingSimilarity}) {
    EXPECT_EQ(TargetKindFromProto(TargetKindToProto(kind)), kind);
  }
  EXPECT_FALSE(TargetKindFromProto(static_cast<v1::Target::Kind>(99)).has_value());
  for (auto r : {engine::HeadRanking::kAttribution, engine::HeadRanking::kAttention,
                 engine::HeadRanking::kTaylor, engine::HeadRanking::kRandom}) {
    EXPECT_EQ(HeadRankingFromProto(HeadRankingToProto(r)), r);
  }
  EXPECT_FALSE(HeadRankingFromProto(v1::IMPORTANCE_METHOD_UNSPECIFIED).has_value());
}

engine::ExampleAttribution TwoLayerResult() {
  engine::ExampleAttribution r;
  r.encoding.tokens = {"[CLS]", "good", "[SEP]"};
  r.encoding.input_ids = {101, 2204, 102};
  r.encoding.token_type_ids = {0, 0, 0};
  r.prediction.logits = {-1.0f, 1.0f};
  r.prediction.probabilities = {0.12f, 0.88f};
  r.prediction.predicted = 1;
  r.target_class = 1;
  for (int l = 0; l < 2; ++l) {
    engine::LayerAttribution layer;
    layer.layer = l;
    layer.num_heads = 1;
    layer.attribution = {0.0f, 0.1f, 0.0f, 0.5f, 0.0f, 0.25f, 0.0f, 0.75f, 0.0f};
    layer.attention = std::vector<float>(9, 1.0f / 3);
    layer.target_at_full = 0.88;
    layer.completeness_gap = 1e-4;
    r.layers.push_back(layer);
  }
  return r;
}

TEST(AttributionConvertTest, ResultRoundTripsAndKeepsWhatWasAskedFor) {
  const engine::ExampleAttribution r = TwoLayerResult();
  v1::ResultOptions options;
  options.set_full_matrices(true);
  options.set_attention(true);
  options.set_head_summed(true);
  options.set_top_k(2);
  options.set_tree(true);
  v1::ExampleAttribution proto;
  AttributionToProto(r, options, {"negative", "positive"}, &proto);
  EXPECT_EQ(proto.prediction().label(), "positive");
  ASSERT_EQ(proto.layers_size(), 2);
  ASSERT_EQ(proto.layers(0).top_connections_size(), 2);
  EXPECT_EQ(proto.layers(0).top_connections(0).query(), 2);  // 0.75 at (2, 1)
  EXPECT_EQ(proto.layers(0).top_connections(0).key(), 1);
  EXPECT_TRUE(HasValues(proto.layers(1).head_summed()));
  ASSERT_TRUE(proto.has_tree());
  auto back = AttributionFromProto(proto);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->encoding.tokens, r.encoding.tokens);
  EXPECT_EQ(back->layers[1].attribution, r.layers[1].attribution);
  EXPECT_EQ(back->layers[1].attention, r.layers[1].attention);
  auto read = TreeFromProto(proto);
  ASSERT_TRUE(read.ok()) << read.status();
  const engine::AttributionTree& tree = *read;
  EXPECT_EQ(tree.root_token, "[CLS]");
  auto built = engine::BuildAttributionTree(r, 2, engine::kDefaultTreeTau);
  ASSERT_TRUE(built.ok()) << built.status();
  EXPECT_EQ(tree.top, built->top);
  EXPECT_EQ(tree.edges.size(), built->edges.size());

  v1::ResultOptions only_top;
  only_top.set_top_k(1);
  v1::ExampleAttribution small;
  AttributionToProto(r, only_top, {}, &small);
  EXPECT_FALSE(small.layers(0).has_attribution());
  EXPECT_FALSE(small.layers(0).has_attention());
  EXPECT_FALSE(small.has_tree());
}

// Regression (review): a tree read from a reply or a stored result was walked as it came, and the
// text renderer recursed forever on a cycle (a self-loop, or an edge back to the top). Every
// way of not being a tree of the example's tokens is refused, naming the field.
TEST(AttributionConvertTest, RefusesTreesThatAreNotTreesOfTheTokens) {
  // [CLS] good [SEP]: root 0, top 1, and 2 joined under the top.
  v1::ExampleAttribution good;
  for (const char* t : {"[CLS]", "good", "[SEP]"}) good.add_tokens(t);
  const int top = 1, other = 2;
  good.mutable_tree()->set_root(0);
  good.mutable_tree()->set_top(top);
  for (int p : {top, other}) good.mutable_tree()->add_nodes()->set_position(p);
  auto* joined = good.mutable_tree()->add_edges();
  joined->set_parent(top);
  joined->set_child(other);
  ASSERT_TRUE(TreeFromProto(good).ok()) << TreeFromProto(good).status();
  const auto expect_refused = [](const v1::ExampleAttribution& a, const std::string& field) {
    auto t = TreeFromProto(a);
    ASSERT_FALSE(t.ok()) << a.tree().DebugString();
    EXPECT_TRUE(absl::IsInvalidArgument(t.status()));
    EXPECT_EQ(std::string(t.status().message()).rfind(field, 0), 0u) << t.status();
  };
  v1::ExampleAttribution bad = good;
  bad.mutable_tree()->set_root(bad.tokens_size());
  expect_refused(bad, "tree.root: ");
  bad = good;
  bad.mutable_tree()->mutable_nodes(0)->set_position(-3);
  expect_refused(bad, "tree.nodes[0].position: ");
  bad = good;
  bad.mutable_tree()->set_top(bad.tree().root());
  expect_refused(bad, "tree.top: ");
  bad = good;  // a self-loop
  bad.mutable_tree()->clear_edges();
  auto* loop = bad.mutable_tree()->add_edges();
  loop->set_parent(other);
  loop->set_child(other);
  expect_refused(bad, "tree.edges");
  bad = good;  // an edge into the top: top -> other -> top
  bad.mutable_tree()->clear_edges();
  auto* down = bad.mutable_tree()->add_edges();
  down->set_parent(top);
  down->set_child(other);
  auto* up = bad.mutable_tree()->add_edges();
  up->set_parent(other);
  up->set_child(top);
  expect_refused(bad, "tree.edges[1]: ");
  bad = good;  // a node no edge joins
  bad.mutable_tree()->clear_edges();
  expect_refused(bad, "tree.edges: node ");
}

// Regression (review): `attattr get` indexed a head-importance result by l·H + h in int with the
// server's num_layers/num_heads (1.5e9 heads wrapped the index negative; 2^31 layers allocated a
// label per layer): the shape is checked before anything renders it.
TEST(HeadImportanceConvertTest, ShapesThatAreNoModelsAreRefused) {
  v1::HeadImportanceResult r;
  r.set_num_layers(2);
  r.set_num_heads(3);
  auto* m = r.add_methods();
  for (int i = 0; i < 6; ++i) m->add_importance(0.1f * i);
  EXPECT_TRUE(CheckHeadImportanceShape(r).ok());
  m->add_importance(1.0f);
  absl::Status extra = CheckHeadImportanceShape(r);
  EXPECT_TRUE(absl::IsInvalidArgument(extra));
  EXPECT_NE(std::string(extra.message()).find("methods[0].importance holds 7 values, not 6"),
            std::string::npos)
      << extra;
  for (auto [layers, heads] :
       std::vector<std::pair<int, int>>{{3, 1500000000}, {2147483647, 1}, {-1, 3}, {2000, 2000}}) {
    r.set_num_layers(layers);
    r.set_num_heads(heads);
    EXPECT_TRUE(absl::IsInvalidArgument(CheckHeadImportanceShape(r))) << layers << " x " << heads;
  }
}

TEST(AttributionConvertTest, RefusesMatricesOfTheWrongSize) {
  v1::ExampleAttribution proto;
  AttributionToProto(
      TwoLayerResult(),
      [] {
        v1::ResultOptions o;
        o.set_full_matrices(true);
        return o;
      }(),
      {}, &proto);
  proto.mutable_layers(1)->set_num_heads(2);
  auto back = AttributionFromProto(proto);
  ASSERT_FALSE(back.ok());
  EXPECT_NE(back.status().message().find("layers[1].attribution"), std::string::npos)
      << back.status();
}

}  // namespace
}  // namespace attattr::convert
