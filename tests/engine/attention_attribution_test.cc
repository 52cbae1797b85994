// AttentionAttribution against the independent reference (../shared/golden), the completeness
// axiom for every rule and target, and the laws the fast path must keep: batched == unbatched,
// chunked == unchunked, fast == the authors' scheme, a layer subset == the same layers of a full
// run.
#include "attattr/engine/attention_attribution.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "attattr/base/field_error.h"
#include "attattr/engine/dataset.h"
#include "support/golden.h"
#include "support/test_paths.h"

namespace attattr::engine {
namespace {

using ::attattr::testing::GoldenPath;
using ::attattr::testing::LoadGolden;
using ::attattr::testing::Sst2ModelDir;

class AttributionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!::attattr::testing::PathExists(Sst2ModelDir())) return;
    auto m = Model::Load(Sst2ModelDir());
    ASSERT_TRUE(m.ok()) << m.status();
    model_ = m->release();
  }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }
  void SetUp() override {
    ATTATTR_SKIP_IF_MISSING(Sst2ModelDir());
    ATTATTR_SKIP_IF_MISSING(GoldenPath());
  }
  static std::vector<Example> DevSentences(int count) {
    auto ds = ReadDataset(::attattr::testing::SharedDir() + "/data/sst2/dev.tsv", count);
    EXPECT_TRUE(ds.ok()) << ds.status();
    return ds.ok() ? ds->examples : std::vector<Example>{};
  }
  static Model* model_;
};
Model* AttributionTest::model_ = nullptr;

double MaxAbs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, static_cast<double>(std::fabs(x)));
  return m;
}

// max |a − b| / max |a|.
double RelDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double d = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    d = std::max(d, static_cast<double>(std::fabs(a[i] - b[i])));
  }
  return d / std::max(MaxAbs(a), 1e-30);
}

TEST_F(AttributionTest, MatchesGoldenReferenceLeftRiemann20) {
  const auto golden = LoadGolden(GoldenPath());
  ASSERT_EQ(golden.rule, "left-riemann");
  AttributionOptions options;
  options.rule = QuadratureRule::kLeftRiemann;
  options.steps = golden.steps;
  for (const auto& g : golden.examples) {
    SCOPED_TRACE(g.text);
    auto results = AttributeExamples(*model_, {Example{g.text, g.text_pair, -1}}, options);
    ASSERT_TRUE(results.ok()) << results.status();
    const auto& r = (*results)[0];
    ASSERT_EQ(r.encoding.tokens, g.tokens);
    ASSERT_EQ(std::vector<int>(r.encoding.input_ids.begin(), r.encoding.input_ids.end()),
              g.input_ids);
    ASSERT_EQ(std::vector<int>(r.encoding.token_type_ids.begin(), r.encoding.token_type_ids.end()),
              g.token_type_ids);
    EXPECT_EQ(r.prediction.predicted, g.predicted);
    EXPECT_EQ(r.target_class, g.predicted);
    for (size_t c = 0; c < g.logits.size(); ++c) {
      EXPECT_NEAR(r.prediction.logits[c], g.logits[c], 1e-4);
      EXPECT_NEAR(r.prediction.probabilities[c], g.probabilities[c], 1e-4);
    }
    ASSERT_EQ(r.layers.size(), g.attribution.size());
    for (size_t l = 0; l < r.layers.size(); ++l) {
      const auto& got = r.layers[l];
      ASSERT_EQ(got.attribution.size(), g.attribution[l].size());
      double max_ref = 0, max_attr_err = 0, max_att_err = 0;
      for (double v : g.attribution[l]) max_ref = std::max(max_ref, std::fabs(v));
      for (size_t k = 0; k < got.attribution.size(); ++k) {
        max_attr_err = std::max(max_attr_err, std::fabs(got.attribution[k] - g.attribution[l][k]));
        max_att_err = std::max(max_att_err, std::fabs(got.attention[k] - g.attention[l][k]));
      }
      EXPECT_LE(max_attr_err, 1e-4 * max_ref) << "layer " << l;
      EXPECT_LE(max_att_err, 1e-4) << "layer " << l;
      EXPECT_NEAR(got.target_at_full, g.target_at_full[l], 1e-4) << "layer " << l;
      EXPECT_NEAR(got.target_at_zero, g.target_at_zero[l], 1e-4) << "layer " << l;
      EXPECT_NEAR(got.attribution_sum, g.attribution_sum[l], 1e-4 * std::max(1.0, max_ref))
          << "layer " << l;
    }
  }
}

TEST_F(AttributionTest, GaussLegendreSatisfiesCompletenessOnGolden) {
  const auto golden = LoadGolden(GoldenPath());
  for (int m : {8, 20}) {
    AttributionOptions options;
    options.rule = QuadratureRule::kGaussLegendre;
    options.steps = m;
    std::vector<Example> examples;
    for (const auto& g : golden.examples) examples.push_back({g.text, g.text_pair, -1});
    auto results = AttributeExamples(*model_, examples, options);
    ASSERT_TRUE(results.ok()) << results.status();
    for (const auto& r : *results) {
      for (const auto& layer : r.layers) {
        EXPECT_LT(layer.completeness_gap, 1e-3) << "m=" << m << " layer " << layer.layer;
      }
    }
  }
}

TEST_F(AttributionTest, LeftRiemannGapIsVisibleAndShrinksWithSteps) {
  // The rule's error is real (the paper's m = 20 misses completeness by percents) and shrinks with
  // m.
  const auto examples = DevSentences(3);
  double gap20 = 0, gap200 = 0;
  for (int m : {20, 200}) {
    AttributionOptions options;
    options.rule = QuadratureRule::kLeftRiemann;
    options.steps = m;
    options.layers = {0};
    auto results = AttributeExamples(*model_, examples, options);
    ASSERT_TRUE(results.ok()) << results.status();
    for (const auto& r : *results) (m == 20 ? gap20 : gap200) += r.layers[0].completeness_gap;
  }
  EXPECT_GT(gap20, 1e-2);
  EXPECT_LT(gap200, gap20 / 5);
}

TEST_F(AttributionTest, TrapezoidConvergesToGaussLegendre) {
  const auto examples = DevSentences(2);
  AttributionOptions gl;
  gl.steps = 20;
  AttributionOptions tr = gl;
  tr.rule = QuadratureRule::kTrapezoid;
  tr.steps = 64;
  auto a = AttributeExamples(*model_, examples, gl);
  auto b = AttributeExamples(*model_, examples, tr);
  ASSERT_TRUE(a.ok() && b.ok());
  for (size_t e = 0; e < examples.size(); ++e) {
    for (size_t l = 0; l < (*a)[e].layers.size(); ++l) {
      EXPECT_LT(RelDiff((*a)[e].layers[l].attribution, (*b)[e].layers[l].attribution), 5e-3);
      EXPECT_LT((*b)[e].layers[l].completeness_gap, 5e-3);
    }
  }
}

TEST_F(AttributionTest, BatchingAndChunkingDoNotChangeResults) {
  const auto examples = DevSentences(9);
  AttributionOptions one;
  one.max_batch_examples = 1;
  one.memory_budget_bytes = 1;  // one α-point per chunk
  auto base = AttributeExamples(*model_, examples, one);
  ASSERT_TRUE(base.ok()) << base.status();
  for (int batch : {4, 9}) {
    for (int64_t budget : {int64_t{1}, int64_t{1} << 32}) {
      AttributionOptions o;
      o.max_batch_examples = batch;
      o.memory_budget_bytes = budget;
      auto got = AttributeExamples(*model_, examples, o);
      ASSERT_TRUE(got.ok()) << got.status();
      ASSERT_EQ(got->size(), examples.size());
      for (size_t e = 0; e < examples.size(); ++e) {
        ASSERT_EQ((*got)[e].encoding.tokens, (*base)[e].encoding.tokens);
        ASSERT_EQ((*got)[e].layers.size(), (*base)[e].layers.size());
        ASSERT_EQ((*got)[e].layers.size(), static_cast<size_t>(model_->info().num_layers));
        for (size_t l = 0; l < (*got)[e].layers.size(); ++l) {
          EXPECT_LT(RelDiff((*base)[e].layers[l].attribution, (*got)[e].layers[l].attribution),
                    1e-5)
              << "batch " << batch << " budget " << budget << " example " << e << " layer " << l;
          EXPECT_NEAR((*base)[e].layers[l].target_at_zero, (*got)[e].layers[l].target_at_zero,
                      1e-6);
        }
      }
    }
  }
}

TEST_F(AttributionTest, FastPathEqualsAuthorsScheme) {
  const auto examples = DevSentences(2);
  std::vector<Encoding> encodings;
  for (const auto& e : examples) encodings.push_back(*model_->Encode(e));
  AttributionOptions o;
  o.rule = QuadratureRule::kLeftRiemann;
  o.steps = 6;
  auto fast = AttributeEncodings(*model_, encodings, o);
  auto ref = AttributeEncodingsReference(*model_, encodings, o, /*pad_to=*/128);
  ASSERT_TRUE(fast.ok()) << fast.status();
  ASSERT_TRUE(ref.ok()) << ref.status();
  ASSERT_EQ(fast->size(), encodings.size());
  ASSERT_EQ(ref->size(), encodings.size());
  for (size_t e = 0; e < encodings.size(); ++e) {
    ASSERT_EQ((*fast)[e].layers.size(), (*ref)[e].layers.size());
    ASSERT_EQ((*fast)[e].layers.size(), static_cast<size_t>(model_->info().num_layers));
    for (size_t l = 0; l < (*fast)[e].layers.size(); ++l) {
      EXPECT_LT(RelDiff((*ref)[e].layers[l].attribution, (*fast)[e].layers[l].attribution), 1e-4);
      EXPECT_NEAR((*ref)[e].layers[l].target_at_zero, (*fast)[e].layers[l].target_at_zero, 1e-5);
    }
  }
}

TEST_F(AttributionTest, LayerSubsetEqualsSameLayersOfFullRun) {
  const auto examples = DevSentences(2);
  AttributionOptions all;
  AttributionOptions sub;
  sub.layers = {1, 3};
  auto a = AttributeExamples(*model_, examples, all);
  auto b = AttributeExamples(*model_, examples, sub);
  ASSERT_TRUE(a.ok() && b.ok());
  for (size_t e = 0; e < examples.size(); ++e) {
    ASSERT_EQ((*b)[e].layers.size(), 2u);
    EXPECT_EQ((*b)[e].layers[0].layer, 1);
    EXPECT_EQ((*b)[e].layers[1].layer, 3);
    EXPECT_LT(RelDiff((*a)[e].layers[1].attribution, (*b)[e].layers[0].attribution), 1e-6);
    EXPECT_LT(RelDiff((*a)[e].layers[3].attribution, (*b)[e].layers[1].attribution), 1e-6);
  }
}

// A [CLS] classifier reads only the first token of the last layer, so the engine computes that
// layer for query row 0 alone: every other query row's attribution there is exactly zero, and the
// row it does compute still satisfies completeness and equals the full computation (the authors'
// scheme, unpadded, which runs every row of every layer) to 1e-6.
TEST_F(AttributionTest, LastLayerIsAttributedAtTheClsRowOnly) {
  std::vector<Encoding> encodings;
  for (const auto& e : DevSentences(3)) encodings.push_back(*model_->Encode(e));
  AttributionOptions o;
  o.steps = 20;
  auto r = AttributeEncodings(*model_, encodings, o);
  ASSERT_TRUE(r.ok()) << r.status();
  auto full = AttributeEncodingsReference(*model_, encodings, o, /*pad_to=*/0);
  ASSERT_TRUE(full.ok()) << full.status();
  for (size_t e = 0; e < encodings.size(); ++e) {
    EXPECT_LT(RelDiff((*full)[e].layers.back().attribution, (*r)[e].layers.back().attribution),
              1e-6);
  }
  for (const auto& ex : *r) {
    const auto& last = ex.layers.back();
    const size_t n = ex.encoding.size();
    double cls_row = 0;
    for (int h = 0; h < last.num_heads; ++h) {
      for (size_t i = 0; i < n; ++i) {
        for (size_t j = 0; j < n; ++j) {
          const float v = last.attribution[(h * n + i) * n + j];
          if (i == 0) {
            cls_row += std::fabs(v);
          } else {
            ASSERT_EQ(v, 0.0f) << "head " << h << ", query " << i << ", key " << j;
          }
        }
      }
    }
    EXPECT_GT(cls_row, 0);
    EXPECT_LT(last.completeness_gap, 1e-3);
  }
}

TEST_F(AttributionTest, EveryClassifierTargetSatisfiesCompleteness) {
  const auto examples = DevSentences(2);
  for (TargetKind kind : {TargetKind::kClassProb, TargetKind::kClassLogit}) {
    for (int cls : {0, 1}) {
      AttributionOptions o;
      o.steps = 20;
      o.target.kind = kind;
      o.target.class_index = cls;
      auto results = AttributeExamples(*model_, examples, o);
      ASSERT_TRUE(results.ok()) << results.status();
      for (const auto& r : *results) {
        EXPECT_EQ(r.target_class, cls);
        for (const auto& layer : r.layers) {
          EXPECT_LT(layer.completeness_gap, 1e-3)
              << "kind " << static_cast<int>(kind) << " class " << cls << " layer " << layer.layer;
        }
      }
    }
  }
  // F(A) of the logit target is the clean logit.
  AttributionOptions o;
  o.target.kind = TargetKind::kClassLogit;
  o.target.class_index = 1;
  o.layers = {2};
  auto r = AttributeExamples(*model_, examples, o);
  ASSERT_TRUE(r.ok());
  EXPECT_NEAR((*r)[0].layers[0].target_at_full, (*r)[0].prediction.logits[1], 1e-4);
}

TEST_F(AttributionTest, SentencePairsAreAttributed) {
  AttributionOptions o;
  o.steps = 20;
  auto r = AttributeExamples(*model_, {Example{"a gripping film .", "the plot is thin .", -1}}, o);
  ASSERT_TRUE(r.ok()) << r.status();
  const auto& enc = (*r)[0].encoding;
  EXPECT_EQ(std::count(enc.tokens.begin(), enc.tokens.end(), "[SEP]"), 2);
  EXPECT_EQ(enc.token_type_ids.back(), 1);
  for (const auto& layer : (*r)[0].layers) EXPECT_LT(layer.completeness_gap, 1e-3);
}

TEST_F(AttributionTest, RejectsBadOptionsNamingTheField) {
  // The message starts with the field, and the status carries it as a field error (what the
  // server turns into the request's path: options.layers[1]).
  auto expect_error = [&](AttributionOptions o, const std::string& field) {
    auto r = AttributeExamples(*model_, {Example{"fine", std::nullopt, -1}}, o);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(std::string(r.status().message()).rfind(field + ": ", 0), 0u) << r.status().message();
    const auto parts = GetFieldError(r.status());
    ASSERT_TRUE(parts.has_value()) << r.status();
    const ErrorField& f = parts->field;
    EXPECT_EQ(f.index >= 0 ? absl::StrCat(f.name, "[", f.index, "]") : f.name, field);
    EXPECT_EQ(absl::StrCat(field, ": ", parts->what), r.status().message());
  };
  AttributionOptions o;
  o.steps = 0;
  expect_error(o, "steps");
  o = {};
  o.steps = kMaxQuadratureSteps + 1;
  expect_error(o, "steps");
  o = {};
  o.layers = {4};
  expect_error(o, "layers[0]");
  o = {};
  o.layers = {2, 1};
  expect_error(o, "layers[1]");
  o = {};
  o.target.kind = TargetKind::kClassProb;
  o.target.class_index = 2;
  expect_error(o, "target.class_index");
  o = {};
  o.target.kind = TargetKind::kEmbeddingSimilarity;
  expect_error(o, "target.reference_text");
  o = {};
  o.max_batch_examples = 0;
  expect_error(o, "max_batch_examples");
  auto empty = AttributeExamples(*model_, {Example{"", std::nullopt, -1}}, AttributionOptions{});
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(std::string(empty.status().message()).find("examples[0].text"), std::string::npos)
      << empty.status().message();
}

TEST_F(AttributionTest, CancellationStopsBetweenBatchesAndProgressIsReported) {
  const auto examples = DevSentences(6);
  AttributionOptions o;
  o.max_batch_examples = 2;
  std::vector<Progress> seen;
  RunControl control;
  control.on_progress = [&](const Progress& p) { seen.push_back(p); };
  control.should_stop = [&] { return seen.size() >= 3; };
  auto r = AttributeExamples(*model_, examples, o, control);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen.back().total, 6 * 4);

  seen.clear();
  control.should_stop = nullptr;
  r = AttributeExamples(*model_, examples, o, control);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(seen.back().done, seen.back().total);
}

// Admission's estimate counts a language model's vocabulary-wide head at every position a
// sequence target reads it, as the engine's chunk planner does (it counted one position before).
TEST(AttributionBytesPerPointTest, ALanguageModelsHeadCountsAtEveryScoredPosition) {
  ModelInfo info;
  info.num_layers = 2;
  info.num_heads = 4;
  info.hidden_size = 64;
  info.intermediate_size = 256;
  info.language_model = true;
  info.num_classes = 150000;
  const AttributionOptions options;
  const int64_t one = AttributionBytesPerPoint(info, 32, options);
  EXPECT_EQ(AttributionBytesPerPoint(info, 32, options, 1), one);
  const int64_t eight = AttributionBytesPerPoint(info, 32, options, 8);
  EXPECT_EQ(eight - one, 7 * int64_t{4 * 3 * 150000});  // logits, softmax, gradient in fp32
  info.language_model = false;
  info.num_classes = 2;
  EXPECT_EQ(AttributionBytesPerPoint(info, 32, options, 8),
            AttributionBytesPerPoint(info, 32, options, 1));
}

TEST(MiniLmAttributionTest, EmbeddingSimilaritySatisfiesCompleteness) {
  const std::string dir = ::attattr::testing::MiniLmDir();
  ATTATTR_SKIP_IF_MISSING(dir);
  auto model = Model::Load(dir);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_FALSE((*model)->info().has_classifier);
  EXPECT_EQ((*model)->info().num_layers, 6);
  EXPECT_EQ((*model)->info().num_heads, 12);
  // A real pretrained encoder: paraphrases are closer than unrelated sentences.
  auto a = (*model)->Encode({"A man is playing a guitar.", std::nullopt, -1});
  auto b = (*model)->Encode({"Someone is playing an instrument.", std::nullopt, -1});
  auto c = (*model)->Encode({"The stock market fell sharply today.", std::nullopt, -1});
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  auto emb = (*model)->Embed({*a, *b, *c});
  ASSERT_TRUE(emb.ok());
  auto cos = [](const std::vector<float>& x, const std::vector<float>& y) {
    double dot = 0, nx = 0, ny = 0;
    for (size_t i = 0; i < x.size(); ++i) dot += x[i] * y[i], nx += x[i] * x[i], ny += y[i] * y[i];
    return dot / std::sqrt(nx * ny);
  };
  EXPECT_GT(cos((*emb)[0], (*emb)[1]), cos((*emb)[0], (*emb)[2]) + 0.2);

  AttributionOptions o;
  o.steps = 20;
  o.target.kind = TargetKind::kEmbeddingSimilarity;
  o.target.reference_text = "Someone is playing an instrument.";
  auto r = AttributeEncodings(**model, {*a}, o);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ((*r)[0].layers.size(), 6u);
  EXPECT_EQ((*r)[0].prediction.predicted, -1);
  EXPECT_NEAR((*r)[0].layers[0].target_at_full, cos((*emb)[0], (*emb)[1]), 1e-4);
  for (const auto& layer : (*r)[0].layers) {
    EXPECT_LT(layer.completeness_gap, 1e-3) << "layer " << layer.layer;
  }
  // Predicted-class targets make no sense without a classifier.
  AttributionOptions bad;
  auto err = AttributeEncodings(**model, {*a}, bad);
  ASSERT_FALSE(err.ok());
  EXPECT_EQ(err.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace attattr::engine
