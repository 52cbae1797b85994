// The attribution tree end to end on the shared SST-2 model: the engine's own LEFT_RIEMANN m = 20
// attributions (the golden rule) must give the golden reference's trees for every golden example.
#include <gtest/gtest.h>

#include "attattr/engine/attention_attribution.h"
#include "attattr/engine/attribution_tree.h"
#include "attattr/engine/model.h"
#include "support/golden.h"
#include "support/golden_tree.h"
#include "support/test_paths.h"

namespace attattr::engine {
namespace {

using ::attattr::testing::GoldenPath;
using ::attattr::testing::Sst2ModelDir;

TEST(AttributionTreeModelTest, EngineAttributionsGiveTheGoldenTrees) {
  ATTATTR_SKIP_IF_MISSING(Sst2ModelDir());
  ATTATTR_SKIP_IF_MISSING(GoldenPath());
  auto model = Model::Load(Sst2ModelDir());
  ASSERT_TRUE(model.ok()) << model.status();
  const auto golden = ::attattr::testing::LoadGolden(GoldenPath());
  ASSERT_EQ(golden.rule, "left-riemann");
  AttributionOptions options;
  options.rule = QuadratureRule::kLeftRiemann;
  options.steps = golden.steps;
  options.keep_attention = false;
  std::vector<Example> examples;
  for (const auto& g : golden.examples) examples.push_back({g.text, g.text_pair, -1});
  auto results = AttributeExamples(**model, examples, options);
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->size(), golden.examples.size());
  for (size_t k = 0; k < golden.examples.size(); ++k) {
    const auto& g = golden.examples[k];
    SCOPED_TRACE(g.text);
    ASSERT_EQ((*results)[k].encoding.tokens, g.tokens);
    auto tree = BuildAttributionTree((*results)[k], (*model)->info().num_layers, kDefaultTreeTau);
    ASSERT_TRUE(tree.ok()) << tree.status();
    ::attattr::testing::ExpectTreeMatchesGolden(*tree, g);
  }
}

}  // namespace
}  // namespace attattr::engine
