// HEAD_IMPORTANCE jobs end to end: the real attattr-server on a loopback port with a --data-root
// and an --export-root. The job's rankings and curves equal the engine's own computation on the
// same examples; the pruned checkpoint lands under the export root with pruned_heads; progress
// names each stage; cancellation stops a running study without writing anything; and every bad
// spec is refused with INVALID_ARGUMENT (or NOT_FOUND / ALREADY_EXISTS) naming the field, with
// nothing written.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "attattr/engine/dataset.h"
#include "attattr/engine/head_importance.h"
#include "attattr/engine/model.h"
#include "attattr/engine/rank_correlation.h"
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
constexpr int kImportanceExamples = 16;
constexpr int kEvaluationExamples = 48;
constexpr int kSteps = 4;
constexpr int kAgreementExamples = 32;

v1::JobSpec HeadsJob(std::vector<v1::ImportanceMethod> methods, std::vector<double> ratios) {
  v1::JobSpec spec;
  spec.set_model(kModel);
  auto* h = spec.mutable_head_importance();
  *h->mutable_importance_set() = DatasetSource("sst2-dev.tsv", kImportanceExamples);
  *h->mutable_evaluation_set() = DatasetSource("sst2-dev.tsv", kEvaluationExamples);
  for (auto m : methods) h->add_methods(m);
  for (double r : ratios) h->add_ratios(r);
  h->mutable_attribution()->set_steps(kSteps);
  h->set_seed(7);
  return spec;
}

class HeadImportanceJobTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!::attattr::testing::PathExists(Sst2ModelDir())) return;
    root_ = new std::string(::attattr::testing::MakeTempDir("attattr-heads"));
    fs::create_directories(*root_ + "/data");
    fs::create_directories(*root_ + "/exports");
    fs::create_directories(*root_ + "/outside");
    fs::copy_file(::attattr::testing::SharedDir() + "/data/sst2/dev.tsv",
                  *root_ + "/data/sst2-dev.tsv");
    // Labels 0..2: a three-class dataset the binary SST-2 model does not have.
    std::ofstream three(*root_ + "/data/three-class.tsv");
    three << "sentence\tlabel\ngood film .\t0\nbad film .\t1\nan okay film .\t2\n";
    three.close();
    // Dev examples 200..231: a set disjoint from the importance set, for agreement.
    {
      std::ifstream dev(::attattr::testing::SharedDir() + "/data/sst2/dev.tsv");
      std::ofstream later(*root_ + "/data/sst2-dev-later.tsv");
      std::string line;
      for (int row = 0; std::getline(dev, line) && row <= 200 + kAgreementExamples; ++row) {
        if (row == 0 || row > 200) later << line << "\n";  // the header, then examples 200..
      }
    }
    fs::create_directory_symlink(*root_ + "/outside", *root_ + "/exports/escape");
    server_ = new ServerProcess({{kModel, Sst2ModelDir()}},
                                {"--data-root=" + *root_ + "/data",
                                 "--export-root=" + *root_ + "/exports", "--job-runners=2"});
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
  static std::string Exports() { return *root_ + "/exports"; }

  // The first `count` dev examples, encoded by the engine itself, with their labels.
  static void DevSet(const engine::Model& model, int count,
                     std::vector<engine::Encoding>* encodings, std::vector<int>* labels) {
    auto ds = engine::ReadDataset(::attattr::testing::SharedDir() + "/data/sst2/dev.tsv");
    ASSERT_TRUE(ds.ok()) << ds.status();
    for (int i = 0; i < count; ++i) {
      auto e = model.Encode(ds->examples[i]);
      ASSERT_TRUE(e.ok());
      encodings->push_back(*e);
      labels->push_back(ds->examples[i].label);
    }
  }

  static ServerProcess* server_;
  static std::string* root_;
  std::unique_ptr<v1::Attattr::Stub> stub_;
};

ServerProcess* HeadImportanceJobTest::server_ = nullptr;
std::string* HeadImportanceJobTest::root_ = nullptr;

TEST_F(HeadImportanceJobTest, RankingsCurvesAndExportEqualTheEngine) {
  v1::JobSpec spec = HeadsJob({v1::IMPORTANCE_METHOD_ATTRIBUTION, v1::IMPORTANCE_METHOD_ATTENTION,
                               v1::IMPORTANCE_METHOD_RANDOM},
                              {0, 25, 50, 100});
  spec.mutable_head_importance()->set_export_path("pruned/sst2-half");
  spec.mutable_head_importance()->set_export_ratio(50);
  v1::Job job;
  ASSERT_TRUE(Submit(*stub_, spec, &job).ok());
  EXPECT_EQ(job.kind(), v1::HEAD_IMPORTANCE);
  const v1::Job done = WaitDone(*stub_, job.name(), 300);
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.error_message();
  auto streamed = ReadResult(*stub_, job.name());
  ASSERT_TRUE(streamed.status.ok()) << streamed.status.error_message();
  ASSERT_TRUE(streamed.result.has_head_importance());
  const v1::HeadImportanceResult& r = streamed.result.head_importance();

  auto model = engine::Model::Load(Sst2ModelDir());
  ASSERT_TRUE(model.ok()) << model.status();
  const int L = (*model)->info().num_layers, H = (*model)->info().num_heads;
  EXPECT_EQ(r.num_layers(), L);
  EXPECT_EQ(r.num_heads(), H);
  std::vector<engine::Encoding> imp, eval;
  std::vector<int> imp_labels, eval_labels;
  DevSet(**model, kImportanceExamples, &imp, &imp_labels);
  DevSet(**model, kEvaluationExamples, &eval, &eval_labels);
  engine::HeadImportanceOptions options;
  options.attribution.steps = kSteps;
  options.seed = 7;
  const std::vector<engine::HeadRanking> rankings = {engine::HeadRanking::kAttribution,
                                                     engine::HeadRanking::kAttention,
                                                     engine::HeadRanking::kRandom};
  ASSERT_EQ(r.methods_size(), 3);
  for (int m = 0; m < 3; ++m) {
    SCOPED_TRACE(engine::HeadRankingName(rankings[m]));
    auto table = engine::ComputeHeadImportance(**model, imp, imp_labels, rankings[m], options);
    ASSERT_TRUE(table.ok()) << table.status();
    ASSERT_EQ(r.methods(m).importance_size(), L * H);
    for (int l = 0; l < L; ++l) {
      for (int h = 0; h < H; ++h) {
        const double want = (*table)[l][h];
        EXPECT_NEAR(r.methods(m).importance(l * H + h), want, 1e-5 * std::max(1.0, std::abs(want)))
            << "layer " << l << " head " << h;
      }
    }
    auto curve = engine::PruningCurve(**model, *table, eval, eval_labels, {0, 25, 50, 100});
    ASSERT_TRUE(curve.ok()) << curve.status();
    ASSERT_EQ(r.methods(m).curve_size(), 4);
    for (int p = 0; p < 4; ++p) {
      EXPECT_EQ(r.methods(m).curve(p).ratio(), (*curve)[p].ratio_percent);
      EXPECT_EQ(r.methods(m).curve(p).heads_pruned(), (*curve)[p].heads_pruned);
      EXPECT_NEAR(r.methods(m).curve(p).accuracy(), (*curve)[p].accuracy, 1e-9);
      EXPECT_NEAR(r.methods(m).curve(p).mean_gold_probability(), (*curve)[p].mean_gold_probability,
                  1e-5);
    }
  }
  EXPECT_GT(r.methods(0).curve(0).accuracy(), 0.6);  // the unpruned model is a real classifier
  // Every pair, in method order.
  ASSERT_EQ(r.correlations_size(), 3);
  EXPECT_EQ(r.correlations(0).a(), v1::IMPORTANCE_METHOD_ATTRIBUTION);
  EXPECT_EQ(r.correlations(0).b(), v1::IMPORTANCE_METHOD_ATTENTION);
  EXPECT_EQ(r.correlations(2).a(), v1::IMPORTANCE_METHOD_ATTENTION);
  EXPECT_EQ(r.correlations(2).b(), v1::IMPORTANCE_METHOD_RANDOM);
  for (const auto& c : r.correlations()) {
    EXPECT_GE(c.spearman(), -1.0);
    EXPECT_LE(c.spearman(), 1.0);
  }
  // The export: half the heads gone by the ATTRIBUTION ranking, recorded as Hugging Face does.
  EXPECT_EQ(r.export_path(), "pruned/sst2-half");
  EXPECT_EQ(r.export_heads_removed(), L * H / 2);
  const std::string dir = Exports() + "/pruned/sst2-half";
  ASSERT_TRUE(fs::exists(dir + "/model.safetensors"));
  EXPECT_EQ(static_cast<int64_t>(fs::file_size(dir + "/model.safetensors")),
            r.export_weights_bytes());
  std::ifstream config(dir + "/config.json");
  const auto json = nlohmann::json::parse(config);
  int pruned = 0;
  for (const auto& [layer, heads] : json.at("pruned_heads").items()) pruned += heads.size();
  EXPECT_EQ(pruned, L * H / 2);
  auto exported = engine::Model::Load(dir);
  ASSERT_TRUE(exported.ok()) << exported.status();
  EXPECT_LT((*exported)->info().parameter_count, (*model)->info().parameter_count);

  // The same export path again: refused at submission, nothing overwritten.
  v1::Job again;
  ExpectStatus(Submit(*stub_, spec, &again), grpc::StatusCode::ALREADY_EXISTS,
               "spec.head_importance.export_path");
}

// With an agreement set every ranking but RANDOM is computed again on it and compared with the
// importance set's: the job's correlations equal the engine's on the same two sets.
TEST_F(HeadImportanceJobTest, AgreementSetCorrelatesEachRankingWithItself) {
  v1::JobSpec spec = HeadsJob({v1::IMPORTANCE_METHOD_ATTRIBUTION, v1::IMPORTANCE_METHOD_TAYLOR,
                               v1::IMPORTANCE_METHOD_RANDOM},
                              {0});
  *spec.mutable_head_importance()->mutable_agreement_set() = DatasetSource("sst2-dev-later.tsv", 0);
  v1::Job job;
  ASSERT_TRUE(Submit(*stub_, spec, &job).ok());
  const v1::Job done = WaitDone(*stub_, job.name(), 300);
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.error_message();
  auto streamed = ReadResult(*stub_, job.name());
  ASSERT_TRUE(streamed.status.ok()) << streamed.status.error_message();
  const v1::HeadImportanceResult& r = streamed.result.head_importance();
  ASSERT_EQ(r.methods_size(), 3);

  auto model = engine::Model::Load(Sst2ModelDir());
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<engine::Encoding> imp, later;
  std::vector<int> imp_labels, later_labels;
  DevSet(**model, kImportanceExamples, &imp, &imp_labels);
  auto ds = engine::ReadDataset(*root_ + "/data/sst2-dev-later.tsv");
  ASSERT_TRUE(ds.ok()) << ds.status();
  ASSERT_EQ(ds->examples.size(), static_cast<size_t>(kAgreementExamples));
  for (const auto& e : ds->examples) {
    later.push_back(*(*model)->Encode(e));
    later_labels.push_back(e.label);
  }
  engine::HeadImportanceOptions options;
  options.attribution.steps = kSteps;
  options.seed = 7;
  auto flat = [](const engine::HeadTable& t) {
    std::vector<double> v;
    for (const auto& row : t) v.insert(v.end(), row.begin(), row.end());
    return v;
  };
  for (int m = 0; m < 2; ++m) {
    const auto ranking = m == 0 ? engine::HeadRanking::kAttribution : engine::HeadRanking::kTaylor;
    SCOPED_TRACE(engine::HeadRankingName(ranking));
    ASSERT_TRUE(r.methods(m).has_agreement());
    EXPECT_EQ(r.methods(m).agreement().a(), r.methods(m).method());
    EXPECT_EQ(r.methods(m).agreement().b(), r.methods(m).method());
    auto a = engine::ComputeHeadImportance(**model, imp, imp_labels, ranking, options);
    auto b = engine::ComputeHeadImportance(**model, later, later_labels, ranking, options);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_NEAR(r.methods(m).agreement().pearson(), *engine::PearsonCorrelation(flat(*a), flat(*b)),
                1e-6);
    EXPECT_NEAR(r.methods(m).agreement().spearman(),
                *engine::SpearmanCorrelation(flat(*a), flat(*b)), 1e-6);
    // Different examples, so not trivially identical tables.
    EXPECT_LT(r.methods(m).agreement().pearson(), 1.0 - 1e-9);
  }
  EXPECT_FALSE(r.methods(2).has_agreement());  // RANDOM does not depend on the examples
}

TEST_F(HeadImportanceJobTest, ProgressNamesEachStageAndCancelStopsWithoutExport) {
  v1::JobSpec spec = HeadsJob({v1::IMPORTANCE_METHOD_ATTRIBUTION}, {0, 50});
  auto* h = spec.mutable_head_importance();
  *h->mutable_importance_set() = DatasetSource("sst2-dev.tsv", 400);
  h->mutable_attribution()->set_steps(32);
  h->set_export_path("cancelled");
  h->set_export_ratio(50);
  v1::Job job;
  ASSERT_TRUE(Submit(*stub_, spec, &job).ok());
  WaitForState(*stub_, job.name(), v1::RUNNING);
  // The importance stage reports examples done of the importance set.
  const v1::Job seen = WaitForProgress(*stub_, job.name(), "importance: attribution");
  EXPECT_EQ(seen.progress().stage(), "importance: attribution");
  EXPECT_EQ(seen.progress().total(), 400);
  ASSERT_TRUE(Cancel(*stub_, job.name()).ok());
  const v1::Job done = WaitDone(*stub_, job.name());
  EXPECT_EQ(done.state(), v1::CANCELLED) << done.error_message();
  EXPECT_FALSE(fs::exists(Exports() + "/cancelled"));
}

TEST_F(HeadImportanceJobTest, BadSpecsAreRefusedNamingTheFieldAndWriteNothing) {
  const auto before = std::distance(fs::directory_iterator(Exports()), fs::directory_iterator());
  v1::Job job;
  auto expect = [&](const v1::JobSpec& spec, grpc::StatusCode code, const std::string& text) {
    SCOPED_TRACE(text);
    ExpectStatus(Submit(*stub_, spec, &job), code, text);
  };
  const v1::JobSpec good = HeadsJob({v1::IMPORTANCE_METHOD_ATTENTION}, {0, 50});
  v1::JobSpec spec = good;
  spec.mutable_head_importance()->set_methods(0, static_cast<v1::ImportanceMethod>(9));
  expect(spec, grpc::StatusCode::INVALID_ARGUMENT,
         "spec.head_importance.methods[0]: unknown method 9");
  spec = good;
  spec.mutable_head_importance()->add_methods(v1::IMPORTANCE_METHOD_ATTENTION);
  expect(spec, grpc::StatusCode::INVALID_ARGUMENT, "spec.head_importance.methods[1]");
  spec = good;
  spec.mutable_head_importance()->add_ratios(100.5);
  expect(spec, grpc::StatusCode::INVALID_ARGUMENT,
         "spec.head_importance.ratios[2]: 100.5 is not in [0, 100]");
  spec = good;
  spec.mutable_head_importance()->set_ratios(0, -10);
  expect(spec, grpc::StatusCode::INVALID_ARGUMENT, "spec.head_importance.ratios[0]");
  spec = good;
  spec.mutable_head_importance()->clear_importance_set();
  expect(spec, grpc::StatusCode::INVALID_ARGUMENT,
         "spec.head_importance.importance_set: inline or dataset is required");
  spec = good;
  spec.mutable_head_importance()->mutable_evaluation_set()->mutable_inline_();
  expect(spec, grpc::StatusCode::INVALID_ARGUMENT, "spec.head_importance.evaluation_set");
  // Labels the model does not have, inline and from a dataset.
  spec = good;
  auto* list = spec.mutable_head_importance()->mutable_importance_set()->mutable_inline_();
  list->add_examples()->set_text("a fine film .");
  list->mutable_examples(0)->set_label(1);
  list->add_examples()->set_text("no label here .");
  list->mutable_examples(1)->set_label(-1);
  expect(spec, grpc::StatusCode::INVALID_ARGUMENT,
         "spec.head_importance.importance_set.inline.examples[1].label: missing");
  spec = good;
  *spec.mutable_head_importance()->mutable_evaluation_set() = DatasetSource("three-class.tsv", 0);
  expect(spec, grpc::StatusCode::INVALID_ARGUMENT,
         "spec.head_importance.evaluation_set.dataset.path: examples[2].label: 2 is not one of the "
         "model's classes");
  spec = good;
  *spec.mutable_head_importance()->mutable_agreement_set() = DatasetSource("three-class.tsv", 0);
  expect(spec, grpc::StatusCode::INVALID_ARGUMENT,
         "spec.head_importance.agreement_set.dataset.path: examples[2].label: 2 is not one of the "
         "model's classes");
  spec = good;
  spec.mutable_head_importance()->mutable_attribution()->set_steps(-3);
  expect(spec, grpc::StatusCode::INVALID_ARGUMENT, "spec.head_importance.attribution.steps");
  spec = good;
  spec.mutable_head_importance()->mutable_attribution()->add_layers(1);
  expect(spec, grpc::StatusCode::INVALID_ARGUMENT, "spec.head_importance.attribution.layers");
  spec = good;
  spec.mutable_head_importance()->mutable_attribution()->mutable_target()->set_kind(
      v1::Target::CLASS_PROB);
  expect(spec, grpc::StatusCode::INVALID_ARGUMENT, "spec.head_importance.attribution.target");
  // Export paths that leave the export root, and a ratio without a path or out of range.
  for (const std::string bad : {"../outside/x", "/tmp/x", "escape/x", "a/../../x"}) {
    spec = good;
    spec.mutable_head_importance()->set_export_path(bad);
    spec.mutable_head_importance()->set_export_ratio(50);
    expect(spec, grpc::StatusCode::INVALID_ARGUMENT, "spec.head_importance.export_path");
  }
  spec = good;
  spec.mutable_head_importance()->set_export_ratio(50);
  expect(spec, grpc::StatusCode::INVALID_ARGUMENT,
         "spec.head_importance.export_ratio: set without export_path");
  spec = good;
  spec.mutable_head_importance()->set_export_path("fine");
  spec.mutable_head_importance()->set_export_ratio(150);
  expect(spec, grpc::StatusCode::INVALID_ARGUMENT, "spec.head_importance.export_ratio: 150");
  spec = good;
  *spec.mutable_head_importance()->mutable_importance_set() = DatasetSource("missing.tsv", 0);
  expect(spec, grpc::StatusCode::NOT_FOUND, "spec.head_importance.importance_set.dataset.path");
  EXPECT_EQ(std::distance(fs::directory_iterator(Exports()), fs::directory_iterator()), before);
  EXPECT_TRUE(fs::is_empty(*root_ + "/outside"));
}

TEST_F(HeadImportanceJobTest, ExportsAreRefusedWithoutAnExportRoot) {
  ServerProcess plain({{kModel, Sst2ModelDir()}}, {"--data-root=" + *root_ + "/data"});
  ASSERT_TRUE(plain.ok());
  auto stub = Connect(plain.address());
  v1::JobSpec spec = HeadsJob({v1::IMPORTANCE_METHOD_RANDOM}, {0});
  spec.mutable_head_importance()->set_export_path("x");
  v1::Job job;
  ExpectStatus(Submit(*stub, spec, &job), grpc::StatusCode::INVALID_ARGUMENT,
               "no --export-root configured");
}

}  // namespace
