// Trigger search on the shared SST-2 model (DESIGN.md §1, issue 5 part 2): mined patterns obey the
// mining rule (head, score = sum of the two top values, no special tokens, r in (0, 1]), progress
// and cancellation, the INVALID_ARGUMENT errors, and the real-data check — patterns mined from the
// first 500 training examples (Gauss–Legendre, m = 8, the default options), the top 3 evaluated on
// the whole dev set: the best pattern lowers accuracy on at least one gold class more than its
// random-token control. The table of patterns is printed (it goes into the closing note).
#include "attattr/engine/trigger_search.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <set>

#include "attattr/engine/dataset.h"
#include "support/test_paths.h"

namespace attattr::engine {
namespace {

using ::attattr::testing::SharedDir;
using ::attattr::testing::Sst2ModelDir;

// Pair patterns need pair examples: the first single-sentence evaluation example is named only when
// some mining example is a pair.
TEST(FirstUnplaceableExampleTest, OnlyPairMiningNeedsPairEvaluation) {
  const Example single{"a film .", std::nullopt, 1};
  const Example pair{"a premise .", "a hypothesis .", 0};
  EXPECT_EQ(FirstUnplaceableExample({single}, {single, single}), std::nullopt);
  EXPECT_EQ(FirstUnplaceableExample({single}, {pair}), std::nullopt);
  EXPECT_EQ(FirstUnplaceableExample({single, pair}, {pair, pair}), std::nullopt);
  EXPECT_EQ(FirstUnplaceableExample({single, pair}, {pair, single, single}),
            std::optional<size_t>(1));
  EXPECT_EQ(FirstUnplaceableExample({pair}, {single}), std::optional<size_t>(0));
}

class TriggerSearchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ATTATTR_SKIP_IF_MISSING(Sst2ModelDir());
    auto model = Model::Load(Sst2ModelDir());
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
    auto train = ReadDataset(SharedDir() + "/data/sst2/train.tsv", 500);
    ASSERT_TRUE(train.ok()) << train.status();
    for (const auto& e : train->examples) mining_.push_back(*model_->Encode(e));
    auto dev = ReadDataset(SharedDir() + "/data/sst2/dev.tsv");
    ASSERT_TRUE(dev.ok()) << dev.status();
    for (const auto& e : dev->examples) {
      dev_.push_back(*model_->Encode(e));
      labels_.push_back(e.label);
    }
  }
  std::unique_ptr<Model> model_;
  std::vector<Encoding> mining_;
  std::vector<Encoding> dev_;
  std::vector<int> labels_;
};

std::string Accuracies(const std::vector<ClassAccuracy>& v) {
  std::string s;
  for (const auto& c : v) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "%s%s %.4f (%d)", s.empty() ? "" : ", ", c.name.c_str(),
                  c.accuracy, c.examples);
    s += buf;
  }
  return s;
}

std::string Tokens(const TriggerPattern& p) {
  std::string s;
  for (const auto& t : p.tokens) {
    s += (s.empty() ? "" : " ") + t.token + (t.segment == 1 ? "[B]" : "");
    char buf[32];
    std::snprintf(buf, sizeof buf, "@%.2f", t.relative_position);
    s += buf;
  }
  return s;
}

TEST_F(TriggerSearchTest, MinedPatternsFollowTheRule) {
  const std::vector<Encoding> few(mining_.begin(), mining_.begin() + 12);
  TriggerSearchOptions o;
  o.attribution.steps = 4;
  o.mining_batch = 5;
  std::vector<Progress> seen;
  RunControl control;
  control.on_progress = [&](const Progress& p) { seen.push_back(p); };
  auto mined = MineTriggerPatterns(*model_, few, o, control);
  ASSERT_TRUE(mined.ok()) << mined.status();
  ASSERT_EQ(mined->size(), few.size());
  const auto& info = model_->info();
  for (size_t i = 0; i < mined->size(); ++i) {
    const auto& p = (*mined)[i];
    EXPECT_EQ(p.source, static_cast<int>(i));
    EXPECT_GE(p.layer, 0);
    EXPECT_LT(p.layer, info.num_layers);
    EXPECT_GE(p.head, 0);
    EXPECT_LT(p.head, info.num_heads);
    EXPECT_GT(p.score, 0);
    EXPECT_GE(p.connections.size(), 1u);
    EXPECT_FALSE(p.NeedsSentencePair());
    for (const auto& t : p.tokens) {
      EXPECT_NE(t.token, "[CLS]");
      EXPECT_NE(t.token, "[SEP]");
      EXPECT_EQ(t.token, few[i].tokens[t.source_position]);
      EXPECT_GT(t.relative_position, 0);
      EXPECT_LE(t.relative_position, 1);
    }
  }
  // Progress: "mining" 0/12, 5/12, 10/12, 12/12.
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen.back().stage, "mining");
  EXPECT_EQ(seen.back().done, 12);
  EXPECT_EQ(seen.back().total, 12);
  // Ranking: descending scores, at most K, all above the threshold, distinct token lists.
  o.top_k = 4;
  const auto ranked = RankAndFilter(*mined, o);
  ASSERT_LE(ranked.size(), 4u);
  for (size_t k = 1; k < ranked.size(); ++k) EXPECT_GE(ranked[k - 1].score, ranked[k].score);
  for (const auto& p : ranked) EXPECT_GE(p.score, o.threshold);
  // Cancellation.
  RunControl stop;
  stop.should_stop = [] { return true; };
  EXPECT_EQ(MineTriggerPatterns(*model_, few, o, stop).status().code(),
            absl::StatusCode::kCancelled);
}

TEST_F(TriggerSearchTest, InvalidInputsNameTheField) {
  const std::vector<Encoding> few(mining_.begin(), mining_.begin() + 3);
  const std::vector<Encoding> eval(dev_.begin(), dev_.begin() + 4);
  std::vector<int> labels(labels_.begin(), labels_.begin() + 4);
  TriggerSearchOptions o;
  o.attribution.steps = 2;
  for (int k : {0, 101}) {
    o.top_k = k;
    auto s = RunTriggerSearch(*model_, few, eval, labels, o);
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(s.status().message()).find("top_k"), std::string::npos) << s.status();
  }
  o.top_k = 3;
  labels[2] = 5;  // the model has classes 0 and 1
  auto bad = RunTriggerSearch(*model_, few, eval, labels, o);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(bad.status().message()).find("labels[2]"), std::string::npos);
  labels[2] = 1;
  EXPECT_EQ(RunTriggerSearch(*model_, {}, eval, labels, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A pattern mined from a sentence pair, evaluated on single sentences.
  auto pair = model_->Encode(Example{"a good film", std::string("a bad one"), 1});
  ASSERT_TRUE(pair.ok());
  auto pattern = MakeTriggerPattern(*pair, {{2, 6}});
  ASSERT_TRUE(pattern.ok()) << pattern.status();
  ASSERT_TRUE(pattern->NeedsSentencePair());
  auto refused = EvaluateTriggerPatterns(*model_, eval, labels, {*pattern}, o);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(refused.status().message()).find("patterns[0]"), std::string::npos);
}

// The law behind sharded searches: mining and evaluation over parts of their sets give the whole
// set's patterns (sources counted from each part's first example; scores within float rounding,
// as parts batch differently) and exactly its counts (the control draws per example).
TEST_F(TriggerSearchTest, SearchSplitIntoPartsEqualsTheWholeSearch) {
  const std::vector<Encoding> mining(mining_.begin(), mining_.begin() + 11);
  TriggerSearchOptions o;
  o.attribution.steps = 3;
  o.mining_batch = 4;
  o.eval_batch = 8;
  o.seed = 3;
  auto whole = MineTriggerPatterns(*model_, mining, o);
  ASSERT_TRUE(whole.ok()) << whole.status();
  std::vector<TriggerPattern> parts;
  for (auto [b, e] : std::vector<std::pair<int, int>>{{0, 3}, {3, 11}}) {
    auto part = MineTriggerPatterns(
        *model_, std::vector<Encoding>(mining.begin() + b, mining.begin() + e), o, {}, b);
    ASSERT_TRUE(part.ok()) << part.status();
    parts.insert(parts.end(), part->begin(), part->end());
  }
  ASSERT_EQ(parts.size(), whole->size());
  for (size_t i = 0; i < parts.size(); ++i) {
    EXPECT_EQ(parts[i].source, (*whole)[i].source);
    EXPECT_EQ(Tokens(parts[i]), Tokens((*whole)[i]));
    EXPECT_NEAR(parts[i].score, (*whole)[i].score, 1e-5);
  }

  o.top_k = 2;
  const auto best = RankAndFilter(*whole, o);
  ASSERT_FALSE(best.empty());
  const std::vector<Encoding> eval(dev_.begin(), dev_.begin() + 30);
  const std::vector<int> labels(labels_.begin(), labels_.begin() + 30);
  auto all = EvaluateTriggerPatterns(*model_, eval, labels, best, o);
  ASSERT_TRUE(all.ok()) << all.status();
  TriggerTallies tallies;
  for (auto [b, e] : std::vector<std::pair<int, int>>{{0, 9}, {9, 10}, {10, 30}}) {
    auto part = TallyTriggerPatterns(
        *model_, std::vector<Encoding>(eval.begin() + b, eval.begin() + e),
        std::vector<int>(labels.begin() + b, labels.begin() + e), best, o, {}, b);
    ASSERT_TRUE(part.ok()) << part.status();
    ASSERT_TRUE(AddTriggerTallies(tallies, *part).ok());
  }
  const auto split = FinishTriggerEvaluation(model_->info(), best, tallies);
  ASSERT_EQ(split.size(), all->size());
  for (size_t p = 0; p < split.size(); ++p) {
    EXPECT_EQ(Accuracies(split[p].clean), Accuracies((*all)[p].clean));
    EXPECT_EQ(Accuracies(split[p].attacked), Accuracies((*all)[p].attacked));
    EXPECT_EQ(Accuracies(split[p].control), Accuracies((*all)[p].control));
    EXPECT_EQ(split[p].truncated, (*all)[p].truncated);
  }
}

// Regression (job-spec review): mining slices and evaluation batches ignored the memory budget.
// With a budget of one byte each holds one example (evaluation reports one step per example and
// pass) and the patterns and counts stay the same.
TEST_F(TriggerSearchTest, ATinyMemoryBudgetBatchesExamplesAloneWithTheSameResults) {
  const std::vector<Encoding> mining(mining_.begin(), mining_.begin() + 5);
  TriggerSearchOptions wide;
  wide.attribution.steps = 3;
  wide.top_k = 2;
  TriggerSearchOptions tiny = wide;
  tiny.attribution.memory_budget_bytes = 1;
  auto a = MineTriggerPatterns(*model_, mining, wide);
  auto b = MineTriggerPatterns(*model_, mining, tiny);
  ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
  ASSERT_EQ(a->size(), b->size());
  for (size_t i = 0; i < a->size(); ++i) {
    EXPECT_EQ(Tokens((*b)[i]), Tokens((*a)[i]));
    EXPECT_NEAR((*b)[i].score, (*a)[i].score, 1e-5);
  }
  const auto best = RankAndFilter(*a, wide);
  ASSERT_FALSE(best.empty());
  const std::vector<Encoding> eval(dev_.begin(), dev_.begin() + 12);
  const std::vector<int> labels(labels_.begin(), labels_.begin() + 12);
  int64_t wide_total = 0, tiny_total = 0;
  RunControl wide_control, tiny_control;
  wide_control.on_progress = [&](const Progress& p) { wide_total = p.total; };
  tiny_control.on_progress = [&](const Progress& p) { tiny_total = p.total; };
  auto wide_eval = EvaluateTriggerPatterns(*model_, eval, labels, best, wide, wide_control);
  auto tiny_eval = EvaluateTriggerPatterns(*model_, eval, labels, best, tiny, tiny_control);
  ASSERT_TRUE(wide_eval.ok() && tiny_eval.ok()) << wide_eval.status() << tiny_eval.status();
  const auto passes = static_cast<int64_t>(1 + 2 * best.size());
  EXPECT_EQ(wide_total, passes);
  EXPECT_EQ(tiny_total, 12 * passes);
  for (size_t p = 0; p < best.size(); ++p) {
    EXPECT_EQ(Accuracies((*tiny_eval)[p].clean), Accuracies((*wide_eval)[p].clean));
    EXPECT_EQ(Accuracies((*tiny_eval)[p].attacked), Accuracies((*wide_eval)[p].attacked));
    EXPECT_EQ(Accuracies((*tiny_eval)[p].control), Accuracies((*wide_eval)[p].control));
  }
}

TEST_F(TriggerSearchTest, ControlIsSeededAndCleanMatchesPredict) {
  const std::vector<Encoding> eval(dev_.begin(), dev_.begin() + 40);
  const std::vector<int> labels(labels_.begin(), labels_.begin() + 40);
  auto pattern = MakeTriggerPattern(eval[0], {{1, 2}});
  ASSERT_TRUE(pattern.ok());
  TriggerSearchOptions o;
  o.seed = 11;
  o.eval_batch = 16;
  auto a = EvaluateTriggerPatterns(*model_, eval, labels, {*pattern}, o);
  auto b = EvaluateTriggerPatterns(*model_, eval, labels, {*pattern}, o);
  ASSERT_TRUE(a.ok() && b.ok()) << a.status();
  ASSERT_EQ(a->size(), 1u);
  for (size_t c = 0; c < (*a)[0].control.size(); ++c) {
    EXPECT_EQ((*a)[0].control[c].accuracy, (*b)[0].control[c].accuracy);
  }
  auto plain = model_->Predict(eval);
  ASSERT_TRUE(plain.ok());
  int correct = 0, total = 0;
  for (size_t i = 0; i < eval.size(); ++i) {
    if (labels[i] == 1) {
      ++total;
      correct += (*plain)[i].predicted == 1;
    }
  }
  const auto& positive = (*a)[0].clean.back();
  EXPECT_EQ(positive.label, 1);
  EXPECT_EQ(positive.examples, total);
  EXPECT_DOUBLE_EQ(positive.accuracy, static_cast<double>(correct) / total);
}

// The real-data check. Options: AttributionOptions defaults (Gauss–Legendre, m = 8, batches of 4,
// all 4 layers), threshold 0.02, top 3, seed 0.
TEST_F(TriggerSearchTest, BestMinedPatternBeatsRandomInsertionOnTheDevSet) {
  ASSERT_EQ(mining_.size(), 500u);
  TriggerSearchOptions o;
  const auto t0 = std::chrono::steady_clock::now();
  auto mined = MineTriggerPatterns(*model_, mining_, o);
  ASSERT_TRUE(mined.ok()) << mined.status();
  const auto t1 = std::chrono::steady_clock::now();
  const auto best = RankAndFilter(*mined, o);
  ASSERT_FALSE(best.empty()) << "no pattern scored >= " << o.threshold;
  auto results = EvaluateTriggerPatterns(*model_, dev_, labels_, best, o);
  ASSERT_TRUE(results.ok()) << results.status();
  const auto t2 = std::chrono::steady_clock::now();
  std::printf(
      "mining 500 train examples: %.1f s; evaluating %zu patterns on %zu dev examples: %.1f s\n",
      std::chrono::duration<double>(t1 - t0).count(), best.size(), dev_.size(),
      std::chrono::duration<double>(t2 - t1).count());
  int above = 0;
  for (const auto& p : *mined) above += p.score >= o.threshold && !p.tokens.empty();
  std::printf("patterns with score >= %.2f: %d of %zu\n", o.threshold, above, mined->size());
  for (size_t k = 0; k < results->size(); ++k) {
    const auto& r = (*results)[k];
    std::printf("#%zu tokens [%s] source %d layer %d head %d score %.4f truncated %d\n", k + 1,
                Tokens(r.pattern).c_str(), r.pattern.source, r.pattern.layer, r.pattern.head,
                r.pattern.score, r.truncated);
    std::printf("    clean    %s\n    attacked %s\n    control  %s\n", Accuracies(r.clean).c_str(),
                Accuracies(r.attacked).c_str(), Accuracies(r.control).c_str());
  }
  const auto& top = (*results)[0];
  bool beats = false;
  for (size_t c = 0; c < top.clean.size(); ++c) {
    const double attacked_drop = top.clean[c].accuracy - top.attacked[c].accuracy;
    const double control_drop = top.clean[c].accuracy - top.control[c].accuracy;
    beats = beats || attacked_drop > control_drop;
  }
  EXPECT_TRUE(beats) << "the best mined pattern is no better than random insertion";
}

}  // namespace
}  // namespace attattr::engine
