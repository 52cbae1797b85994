// The paper's two uses of attribution checked on a real pretrained classifier, as DESIGN.md §3
// asks:
// ../shared/models/sst2-minilm-l6 (all-MiniLM-L6-v2 fine-tuned on SST-2, 6 layers × 12 heads; the
// 4-layer model trained from scratch is too robust to pruning for rankings to separate).
// - Head pruning (Hao et al. §4.1): masking the heads with the lowest attribution scores keeps the
//   model's accuracy far longer than masking by attention scores, and longer than random masks.
//   Importance from the first 200 dev examples, accuracy on the first 400 (the CLI's `attattr heads
//   --importance-limit 200 --eval-limit 400`); measured here (2-core AMD EPYC, default options):
//   of 0.903 unpruned, 30 % of the heads masked: attribution 0.895, attention 0.530, random (mean
//   of three seeds) 0.879; 50 %: 0.888, 0.520, 0.830; 70 %: 0.868, 0.520, 0.773.
// - Adversarial triggers (§4.3): a pattern mined from 300 training examples, inserted into every
//   dev example, lowers a class's accuracy far below the random-token control at the same
//   positions; measured: "very little" takes positive examples from 89.9 % to 61.3 % (control
//   86.3 %).
// Bounds asserted are well inside the measured gaps; the tables are printed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "attattr/engine/dataset.h"
#include "attattr/engine/head_importance.h"
#include "attattr/engine/model.h"
#include "attattr/engine/trigger_search.h"
#include "support/test_paths.h"

namespace attattr::engine {
namespace {

using ::attattr::testing::SharedDir;

std::string MiniLmClassifierDir() { return SharedDir() + "/models/sst2-minilm-l6"; }

class PaperClaimsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ATTATTR_SKIP_IF_MISSING(MiniLmClassifierDir());
    auto model = Model::Load(MiniLmClassifierDir());
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
  }
  // The first `limit` examples of `file` (0 = all), encoded, and their gold labels.
  void Read(const std::string& file, int limit, std::vector<Encoding>* encodings,
            std::vector<int>* labels) const {
    auto data = ReadDataset(SharedDir() + "/data/sst2/" + file, limit);
    ASSERT_TRUE(data.ok()) << data.status();
    for (const auto& e : data->examples) {
      auto encoding = model_->Encode(e);
      ASSERT_TRUE(encoding.ok()) << encoding.status();
      encodings->push_back(*std::move(encoding));
      labels->push_back(e.label);
    }
  }
  std::unique_ptr<Model> model_;
};

TEST_F(PaperClaimsTest, PruningByAttributionKeepsAccuracyWhereAttentionAndRandomDoNot) {
  std::vector<Encoding> importance_set, evaluation_set;
  std::vector<int> importance_labels, evaluation_labels;
  Read("dev.tsv", 200, &importance_set, &importance_labels);
  Read("dev.tsv", 400, &evaluation_set, &evaluation_labels);
  const std::vector<double> ratios = {0, 30, 50, 70};
  const auto curve_of = [&](HeadRanking ranking, uint64_t seed) {
    HeadImportanceOptions options;  // Gauss–Legendre, m = 8
    options.seed = seed;
    auto table =
        ComputeHeadImportance(*model_, importance_set, importance_labels, ranking, options);
    EXPECT_TRUE(table.ok()) << table.status();
    auto curve = PruningCurve(*model_, *table, evaluation_set, evaluation_labels, ratios);
    EXPECT_TRUE(curve.ok()) << curve.status();
    std::printf("%-12s", (std::string(HeadRankingName(ranking)) +
                          (ranking == HeadRanking::kRandom ? "-" + std::to_string(seed) : ""))
                             .c_str());
    for (const auto& p : *curve) {
      std::printf("  %3.0f%%: %.4f (%.4f)", p.ratio_percent, p.accuracy, p.mean_gold_probability);
    }
    std::printf("\n");
    return *curve;
  };
  const auto attribution = curve_of(HeadRanking::kAttribution, 0);
  const auto attention = curve_of(HeadRanking::kAttention, 0);
  std::vector<double> random_mean(ratios.size(), 0.0);
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    const auto random = curve_of(HeadRanking::kRandom, seed);
    for (size_t i = 0; i < ratios.size(); ++i) random_mean[i] += random[i].accuracy / 3;
  }
  const double unpruned = attribution[0].accuracy;
  for (size_t i = 1; i < ratios.size(); ++i) {
    SCOPED_TRACE(::testing::Message() << ratios[i] << " % of the heads masked");
    // Far above attention's ranking (measured 0.35–0.37 above); above random masks once they
    // bite (0.06 and 0.09 above at 50 % and 70 %; 0.016 at 30 %, too close to assert); at half
    // the heads still within 0.05 of the unpruned model (measured 0.015).
    EXPECT_GT(attribution[i].accuracy, attention[i].accuracy + 0.15);
    if (ratios[i] >= 50) {
      EXPECT_GT(attribution[i].accuracy, random_mean[i] + 0.03);
    }
    if (ratios[i] <= 50) {
      EXPECT_GT(attribution[i].accuracy, unpruned - 0.05);
    }
  }
}

TEST_F(PaperClaimsTest, MinedTriggersLowerAccuracyFarBelowRandomTokens) {
  std::vector<Encoding> mining, evaluation;
  std::vector<int> mining_labels, labels;
  Read("train.tsv", 300, &mining, &mining_labels);
  Read("dev.tsv", 0, &evaluation, &labels);
  TriggerSearchOptions options;  // Gauss–Legendre, m = 8; threshold 0.02; top 3; seed 0
  auto report = RunTriggerSearch(*model_, mining, evaluation, labels, options);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_FALSE(report->patterns.empty());
  double widest = 0;  // the largest (control − attacked) accuracy over patterns and classes
  for (const auto& p : report->patterns) {
    std::string tokens;
    for (const auto& t : p.pattern.tokens) tokens += (tokens.empty() ? "" : " ") + t.token;
    std::printf("[%s] layer %d head %d score %.4f\n", tokens.c_str(), p.pattern.layer,
                p.pattern.head, p.pattern.score);
    for (size_t c = 0; c < p.clean.size(); ++c) {
      std::printf("  %-10s n %4d  clean %.4f  attacked %.4f  control %.4f\n",
                  p.clean[c].name.c_str(), p.clean[c].examples, p.clean[c].accuracy,
                  p.attacked[c].accuracy, p.control[c].accuracy);
      widest = std::max(widest, p.control[c].accuracy - p.attacked[c].accuracy);
    }
  }
  // Measured 0.25 (positive examples with "very little" inserted).
  EXPECT_GT(widest, 0.10) << "no mined pattern lowers a class's accuracy 10 points below random "
                             "tokens at the same positions";
}

}  // namespace
}  // namespace attattr::engine
