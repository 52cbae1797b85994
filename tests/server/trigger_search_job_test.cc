// TRIGGER_SEARCH jobs end to end: the real attattr-server on a loopback port with a --data-root.
// A small job (a few inline mining examples, the first dev examples as evaluation set, m = 2)
// gives the same patterns and per-class accuracies as the engine's RunTriggerSearch; progress
// names the "mining" stage and cancellation stops a running search; bad specs (top_k out of range,
// negative threshold, evaluation labels the model does not have, sentence-pair mining data with
// single-sentence evaluation data, a target or layers) are INVALID_ARGUMENT naming the field.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "attattr/engine/dataset.h"
#include "attattr/engine/model.h"
#include "attattr/engine/trigger_search.h"
#include "support/job_rpc.h"
#include "support/server_process.h"
#include "support/test_paths.h"

namespace {

namespace v1 = attattr::v1;
namespace engine = attattr::engine;
namespace fs = std::filesystem;
using ::attattr::testing::Cancel;
using ::attattr::testing::Connect;
using ::attattr::testing::DatasetSource;
using ::attattr::testing::ExpectStatus;
using ::attattr::testing::Get;
using ::attattr::testing::ReadResult;
using ::attattr::testing::ServerProcess;
using ::attattr::testing::Sst2ModelDir;
using ::attattr::testing::Submit;
using ::attattr::testing::WaitDone;
using ::attattr::testing::WaitForProgress;
using ::attattr::testing::WaitForState;

constexpr char kModel[] = "sst2";
constexpr int kEvaluationExamples = 40;
constexpr int kSteps = 2;
const std::vector<std::string> kMining = {"a gorgeous , witty , seductive movie .",
                                          "the story is bogus and its characters tissue-thin .",
                                          "it 's a charming and often affecting journey .",
                                          "unflinchingly bleak and desperate",
                                          "the acting is awful and the plot makes no sense .",
                                          "one of the greatest films of the year ."};

v1::JobSpec TriggerJob() {
  v1::JobSpec spec;
  spec.set_model(kModel);
  auto* t = spec.mutable_trigger_search();
  auto* mining = t->mutable_mining_set()->mutable_inline_();
  for (const auto& text : kMining) mining->add_examples()->set_text(text);
  *t->mutable_evaluation_set() = DatasetSource("sst2-dev.tsv", kEvaluationExamples);
  t->set_top_k(2);
  t->set_seed(5);
  t->mutable_attribution()->set_steps(kSteps);
  return spec;
}

class TriggerSearchJobTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!::attattr::testing::PathExists(Sst2ModelDir())) return;
    root_ = new std::string(::attattr::testing::MakeTempDir("attattr-triggers"));
    fs::create_directories(*root_ + "/data");
    fs::copy_file(::attattr::testing::SharedDir() + "/data/sst2/dev.tsv",
                  *root_ + "/data/sst2-dev.tsv");
    // Labels 0..2: a three-class dataset the binary SST-2 model does not have.
    std::ofstream three(*root_ + "/data/three-class.tsv");
    three << "sentence\tlabel\ngood film .\t0\nbad film .\t1\nan okay film .\t2\n";
    three.close();
    server_ = new ServerProcess({{kModel, Sst2ModelDir()}},
                                {"--data-root=" + *root_ + "/data", "--job-runners=2"});
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    if (root_) fs::remove_all(*root_);
    delete root_;
    root_ = nullptr;
  }
  void SetUp() override {
    ATTATTR_SKIP_IF_MISSING(Sst2ModelDir());
    ASSERT_TRUE(server_ && server_->ok());
    stub_ = Connect(server_->address());
  }
  static ServerProcess* server_;
  static std::string* root_;
  std::unique_ptr<v1::Attattr::Stub> stub_;
};

ServerProcess* TriggerSearchJobTest::server_ = nullptr;
std::string* TriggerSearchJobTest::root_ = nullptr;

TEST_F(TriggerSearchJobTest, PatternsAndAccuraciesEqualTheEngine) {
  v1::Job job;
  ASSERT_TRUE(Submit(*stub_, TriggerJob(), &job).ok());
  EXPECT_EQ(job.kind(), v1::TRIGGER_SEARCH);
  const v1::Job done = WaitDone(*stub_, job.name(), 300);
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.error_message();
  auto streamed = ReadResult(*stub_, job.name());
  ASSERT_TRUE(streamed.status.ok()) << streamed.status.error_message();
  ASSERT_TRUE(streamed.result.has_trigger_search());
  const v1::TriggerSearchResult& r = streamed.result.trigger_search();

  auto model = engine::Model::Load(Sst2ModelDir());
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<engine::Encoding> mining, eval;
  std::vector<int> labels;
  for (const auto& text : kMining)
    mining.push_back(*(*model)->Encode(engine::Example{text, {}, -1}));
  auto ds = engine::ReadDataset(::attattr::testing::SharedDir() + "/data/sst2/dev.tsv",
                                kEvaluationExamples);
  ASSERT_TRUE(ds.ok());
  for (const auto& e : ds->examples) {
    eval.push_back(*(*model)->Encode(e));
    labels.push_back(e.label);
  }
  engine::TriggerSearchOptions options;
  options.attribution.steps = kSteps;
  options.top_k = 2;
  options.seed = 5;
  auto want = engine::RunTriggerSearch(**model, mining, eval, labels, options);
  ASSERT_TRUE(want.ok()) << want.status();
  EXPECT_EQ(r.mined_examples(), static_cast<int>(kMining.size()));
  EXPECT_EQ(r.patterns_above_threshold(), want->patterns_above_threshold);
  ASSERT_EQ(r.patterns_size(), static_cast<int>(want->patterns.size()));
  ASSERT_GE(r.patterns_size(), 1);
  for (int p = 0; p < r.patterns_size(); ++p) {
    SCOPED_TRACE(p);
    const auto& got = r.patterns(p);
    const auto& w = want->patterns[p];
    ASSERT_EQ(got.tokens_size(), static_cast<int>(w.pattern.tokens.size()));
    for (int k = 0; k < got.tokens_size(); ++k) {
      EXPECT_EQ(got.tokens(k), w.pattern.tokens[k].token);
      EXPECT_EQ(got.segments(k), 0);
      EXPECT_DOUBLE_EQ(got.relative_positions(k), w.pattern.tokens[k].relative_position);
    }
    EXPECT_EQ(got.source(), w.pattern.source);
    EXPECT_EQ(got.layer(), w.pattern.layer);
    EXPECT_EQ(got.head(), w.pattern.head);
    EXPECT_NEAR(got.score(), w.pattern.score, 1e-4);
    ASSERT_EQ(got.clean_size(), static_cast<int>(w.clean.size()));
    int examples = 0;
    for (int c = 0; c < got.clean_size(); ++c) {
      EXPECT_EQ(got.clean(c).label(), w.clean[c].name);
      EXPECT_DOUBLE_EQ(got.clean(c).accuracy(), w.clean[c].accuracy);
      EXPECT_DOUBLE_EQ(got.attacked(c).accuracy(), w.attacked[c].accuracy);
      EXPECT_DOUBLE_EQ(got.control(c).accuracy(), w.control[c].accuracy);
      examples += got.clean(c).examples();
    }
    EXPECT_EQ(examples, kEvaluationExamples);
  }
}

TEST_F(TriggerSearchJobTest, ProgressNamesTheStageAndCancelStops) {
  v1::JobSpec spec = TriggerJob();
  auto* t = spec.mutable_trigger_search();
  *t->mutable_mining_set() = DatasetSource("sst2-dev.tsv", 0);  // limit 0: the first 500
  t->mutable_attribution()->set_steps(32);
  v1::Job job;
  ASSERT_TRUE(Submit(*stub_, spec, &job).ok());
  WaitForState(*stub_, job.name(), v1::RUNNING);
  const v1::Job seen = WaitForProgress(*stub_, job.name(), "mining");
  EXPECT_EQ(seen.progress().stage(), "mining");
  EXPECT_EQ(seen.progress().total(), 500);
  ASSERT_TRUE(Cancel(*stub_, job.name()).ok());
  const v1::Job done = WaitDone(*stub_, job.name());
  EXPECT_EQ(done.state(), v1::CANCELLED) << done.error_message();
}

TEST_F(TriggerSearchJobTest, BadSpecsAreInvalidArgumentNamingTheField) {
  v1::Job job;
  auto expect = [&](const v1::JobSpec& spec, grpc::StatusCode code, const std::string& text) {
    SCOPED_TRACE(text);
    ExpectStatus(Submit(*stub_, spec, &job), code, text);
  };
  const v1::JobSpec good = TriggerJob();
  v1::JobSpec spec = good;
  spec.mutable_trigger_search()->set_top_k(101);
  expect(spec, grpc::StatusCode::INVALID_ARGUMENT,
         "spec.trigger_search.top_k: 101 is not in [1, 100]");
  spec = good;
  spec.mutable_trigger_search()->set_top_k(-1);
  expect(spec, grpc::StatusCode::INVALID_ARGUMENT, "spec.trigger_search.top_k");
  spec = good;
  spec.mutable_trigger_search()->set_threshold(-0.5);
  expect(spec, grpc::StatusCode::INVALID_ARGUMENT, "spec.trigger_search.threshold");
  spec = good;
  *spec.mutable_trigger_search()->mutable_evaluation_set() = DatasetSource("three-class.tsv", 0);
  expect(spec, grpc::StatusCode::INVALID_ARGUMENT,
         "spec.trigger_search.evaluation_set.dataset.path: examples[2].label: 2 is not one of the "
         "model's classes");
  spec = good;
  auto* list = spec.mutable_trigger_search()->mutable_evaluation_set()->mutable_inline_();
  list->add_examples()->set_text("a fine film .");
  list->mutable_examples(0)->set_label(-1);
  expect(spec, grpc::StatusCode::INVALID_ARGUMENT,
         "spec.trigger_search.evaluation_set.inline.examples[0].label: missing");
  spec = good;
  auto* pair =
      spec.mutable_trigger_search()->mutable_mining_set()->mutable_inline_()->add_examples();
  pair->set_text("a premise .");
  pair->set_text_pair("a hypothesis .");
  expect(spec, grpc::StatusCode::INVALID_ARGUMENT, "spec.trigger_search.evaluation_set: example 0");
  spec = good;
  spec.mutable_trigger_search()->clear_mining_set();
  expect(spec, grpc::StatusCode::INVALID_ARGUMENT, "spec.trigger_search.mining_set");
  spec = good;
  *spec.mutable_trigger_search()->mutable_mining_set() = DatasetSource("sst2-dev.tsv", -2);
  expect(spec, grpc::StatusCode::INVALID_ARGUMENT, "spec.trigger_search.mining_set");
  spec = good;
  spec.mutable_trigger_search()->mutable_attribution()->add_layers(0);
  expect(spec, grpc::StatusCode::INVALID_ARGUMENT, "spec.trigger_search.attribution.layers");
  spec = good;
  spec.mutable_trigger_search()->mutable_attribution()->set_steps(-3);
  expect(spec, grpc::StatusCode::INVALID_ARGUMENT, "spec.trigger_search.attribution.steps");
}

}  // namespace
