// SubmitJob validation (server/jobs/job_spec.h, server/jobs/attribution_job.h) on the shared SST-2
// model: inline and dataset examples become the model's own encodings, and every refusal carries
// its exact code and names the field (and the server flag, for limits). Dataset paths are confined
// to a temporary --data-root.
#include "jobs/job_spec.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "attattr/engine/dataset.h"
#include "attattr/engine/pruned_export.h"
#include "jobs/attribution_job.h"
#include "jobs/head_importance_job.h"
#include "jobs/trigger_search_job.h"
#include "proto_convert.h"
#include "support/test_paths.h"

namespace attattr::server {
namespace {

namespace fs = std::filesystem;

class JobSpecTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!::attattr::testing::PathExists(::attattr::testing::Sst2ModelDir())) return;
    models_dir_ = new std::string(::attattr::testing::MakeTempDir("attattr-jobspec-models"));
    fs::create_directory_symlink(::attattr::testing::Sst2ModelDir(), *models_dir_ + "/sst2");
    auto registry = ModelRegistry::Load(*models_dir_);
    ASSERT_TRUE(registry.ok()) << registry.status();
    registry_ = registry->release();
  }
  static void TearDownTestSuite() {
    delete registry_;
    registry_ = nullptr;
    if (models_dir_ != nullptr) fs::remove_all(*models_dir_);
    delete models_dir_;
    models_dir_ = nullptr;
  }
  void SetUp() override {
    ATTATTR_SKIP_IF_MISSING(::attattr::testing::Sst2ModelDir());
    ASSERT_NE(registry_, nullptr);
    model_ = *registry_->Find("sst2");
    data_root_ = ::attattr::testing::MakeTempDir("attattr-jobspec-data");
    fs::create_directory(data_root_ + "/sst2");
    // The header and the first kDevLines examples of the shared SST-2 dev set.
    std::ifstream in(::attattr::testing::SharedDir() + "/data/sst2/dev.tsv");
    std::ofstream out(data_root_ + "/sst2/dev.tsv");
    std::string line;
    for (int i = 0; i <= kDevLines && std::getline(in, line); ++i) out << line << "\n";
    ASSERT_TRUE(out.good());
    config_.data_root = data_root_;
  }
  void TearDown() override {
    if (!data_root_.empty()) fs::remove_all(data_root_);
  }

  static v1::JobSpec Spec(const std::vector<std::string>& texts) {
    v1::JobSpec spec;
    spec.set_model("sst2");
    auto* list = spec.mutable_attribution()->mutable_examples()->mutable_inline_();
    for (const auto& t : texts) list->add_examples()->set_text(t);
    return spec;
  }
  static v1::JobSpec DatasetSpec(const std::string& path, int limit = 0) {
    v1::JobSpec spec;
    spec.set_model("sst2");
    auto* ref = spec.mutable_attribution()->mutable_examples()->mutable_dataset();
    ref->set_path(path);
    ref->set_limit(limit);
    return spec;
  }
  absl::StatusOr<AttributionJob> Prepare(const v1::JobSpec& spec) const {
    return PrepareAttributionJob(spec, *registry_, config_);
  }
  // The spec is refused with `code`, and the message contains every one of `parts`.
  void ExpectError(const v1::JobSpec& spec, absl::StatusCode code,
                   std::initializer_list<std::string> parts) const {
    auto job = Prepare(spec);
    ASSERT_FALSE(job.ok()) << "accepted: " << spec.DebugString();
    EXPECT_EQ(job.status().code(), code) << job.status();
    for (const auto& part : parts) {
      EXPECT_NE(job.status().message().find(part), std::string::npos)
          << "'" << part << "' not in: " << job.status().message();
    }
  }
  void ExpectDatasetError(const std::string& path, absl::StatusCode code,
                          std::initializer_list<std::string> parts) const {
    ExpectError(DatasetSpec(path), code, parts);
  }

  static constexpr int kDevLines = 5;
  static constexpr const char* kPathField = "spec.attribution.examples.dataset.path";
  static ModelRegistry* registry_;
  static std::string* models_dir_;
  const engine::Model* model_ = nullptr;
  std::string data_root_;
  ServerConfig config_;
};
ModelRegistry* JobSpecTest::registry_ = nullptr;
std::string* JobSpecTest::models_dir_ = nullptr;

void ExpectSameEncoding(const engine::Encoding& got, const engine::Encoding& want) {
  EXPECT_EQ(got.tokens, want.tokens);
  EXPECT_EQ(got.input_ids, want.input_ids);
  EXPECT_EQ(got.token_type_ids, want.token_type_ids);
}

std::string LongText(int words) {
  std::string text;
  for (int i = 0; i < words; ++i) text += (i % 2 == 0) ? "wonderful " : "movie ";
  return text;
}

TEST_F(JobSpecTest, InlineExamplesBecomeTheModelsEncodings) {
  v1::JobSpec spec = Spec({"a charming and often affecting journey .", "unflinchingly bleak"});
  auto* pair = spec.mutable_attribution()->mutable_examples()->mutable_inline_()->add_examples();
  pair->set_text("the premise");
  pair->set_text_pair("the hypothesis");
  pair->set_label(1);
  spec.set_priority(-10);
  spec.set_timeout_ms(5000);
  auto job = Prepare(spec);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->model, model_);
  ASSERT_EQ(job->encodings.size(), 3u);
  const engine::Example examples[] = {{"a charming and often affecting journey .", {}, -1},
                                      {"unflinchingly bleak", {}, -1},
                                      {"the premise", "the hypothesis", 1}};
  for (size_t i = 0; i < 3; ++i) {
    auto want = model_->Encode(examples[i]);
    ASSERT_TRUE(want.ok()) << want.status();
    ExpectSameEncoding(job->encodings[i], *want);
  }
  EXPECT_EQ(job->encodings[2].token_type_ids.back(), 1);  // the pair is segment B
  EXPECT_EQ(job->options.memory_budget_bytes, config_.memory_budget_bytes);
  EXPECT_EQ(job->options.steps, 8);
  EXPECT_EQ(job->options.rule, engine::QuadratureRule::kGaussLegendre);
  EXPECT_EQ(job->result.top_k(), 10);  // unset ResultOptions: the default
  EXPECT_FALSE(job->result.full_matrices());
  EXPECT_EQ(
      job->result_bytes_estimate,
      EstimateAttributionResultBytes(model_->info(), job->encodings, job->options, job->result));
  EXPECT_GT(job->result_bytes_estimate, 0);
}

// A stored spec says which precision it runs at, so replicas with other --default-precision
// values (and every shard) compute alike; a precision the caller chose is kept.
TEST(PinDefaultPrecisionTest, AnUnsetPrecisionBecomesTheServersDefault) {
  ServerConfig config;
  config.default_precision = engine::Precision::kBf16;
  v1::JobSpec attribution;
  attribution.mutable_attribution();
  EXPECT_EQ(PinDefaultPrecision(attribution, config).attribution().options().precision(), v1::BF16);
  attribution.mutable_attribution()->mutable_options()->set_precision(v1::FP32);
  EXPECT_EQ(PinDefaultPrecision(attribution, config).attribution().options().precision(), v1::FP32);
  v1::JobSpec heads;
  heads.mutable_head_importance();
  EXPECT_EQ(PinDefaultPrecision(heads, config).head_importance().attribution().precision(),
            v1::BF16);
  v1::JobSpec triggers;
  triggers.mutable_trigger_search();
  config.default_precision = engine::Precision::kFp32;
  EXPECT_EQ(PinDefaultPrecision(triggers, config).trigger_search().attribution().precision(),
            v1::FP32);
  EXPECT_FALSE(PinDefaultPrecision(v1::JobSpec(), config).has_attribution());
}

TEST_F(JobSpecTest, LongTextIsTruncatedToTheModelMaximum) {
  auto job = Prepare(Spec({LongText(300)}));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(static_cast<int>(job->encodings[0].size()), model_->info().max_length);
}

TEST_F(JobSpecTest, GivenResultOptionsAreKept) {
  v1::JobSpec spec = Spec({"good"});
  auto* result = spec.mutable_attribution()->mutable_result();
  result->set_head_summed(true);
  result->set_top_k(0);
  spec.mutable_attribution()->mutable_options()->add_layers(3);
  spec.mutable_attribution()->mutable_options()->set_steps(20);
  spec.mutable_attribution()->mutable_options()->set_rule(v1::LEFT_RIEMANN);
  auto job = Prepare(spec);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->result.top_k(), 0);
  EXPECT_TRUE(job->result.head_summed());
  EXPECT_EQ(job->options.layers, std::vector<int>{3});
  EXPECT_EQ(job->options.steps, 20);
  EXPECT_EQ(job->options.rule, engine::QuadratureRule::kLeftRiemann);
}

TEST_F(JobSpecTest, ResultEstimateFollowsTheRequestedTensors) {
  auto encoding = model_->Encode({"a charming and often affecting journey .", {}, -1});
  ASSERT_TRUE(encoding.ok());
  const int64_t n = static_cast<int64_t>(encoding->size());
  const int64_t h = model_->info().num_heads;
  engine::AttributionOptions options;
  options.layers = {1, 2};
  v1::ResultOptions result;
  result.set_full_matrices(true);
  result.set_head_summed(true);
  result.set_attention(true);
  result.set_top_k(5);
  const int64_t per_layer = 64 + 2 * h * n * n * 4 + n * n * 4 + 5 * 24;
  // Per example: headers, 16 bytes a token, a probability and a logit per class.
  const int64_t example = 64 + 16 * n + 8 * model_->info().num_classes;
  EXPECT_EQ(EstimateAttributionResultBytes(model_->info(), {*encoding}, options, result),
            example + 2 * per_layer);
  result.set_fp16(true);
  const int64_t per_layer_fp16 = 64 + 2 * h * n * n * 2 + n * n * 2 + 5 * 24;
  EXPECT_EQ(EstimateAttributionResultBytes(model_->info(), {*encoding, *encoding}, options, result),
            2 * (example + 2 * per_layer_fp16));
  options.layers.clear();  // all four layers; top_k beyond H·n² counts only H·n² connections
  v1::ResultOptions top;
  top.set_top_k(1000000);
  EXPECT_EQ(EstimateAttributionResultBytes(model_->info(), {*encoding}, options, top),
            example + model_->info().num_layers * (64 + h * n * n * 24));
}

TEST_F(JobSpecTest, DatasetUnderTheDataRootWithLimit) {
  auto job = Prepare(DatasetSpec("sst2/dev.tsv", 3));
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_EQ(job->encodings.size(), 3u);
  auto oracle = engine::ReadDataset(::attattr::testing::SharedDir() + "/data/sst2/dev.tsv", 3);
  ASSERT_TRUE(oracle.ok()) << oracle.status();
  for (size_t i = 0; i < 3; ++i) {
    auto want = model_->Encode(oracle->examples[i]);
    ASSERT_TRUE(want.ok());
    ExpectSameEncoding(job->encodings[i], *want);
  }
  // Labels are kept; no limit reads every line.
  auto examples =
      LoadExamples(DatasetSpec("./sst2/dev.tsv").attribution().examples(), config_, "examples");
  ASSERT_TRUE(examples.ok()) << examples.status();
  ASSERT_EQ(examples->size(), static_cast<size_t>(kDevLines));
  EXPECT_EQ((*examples)[0].text, oracle->examples[0].text);
  EXPECT_EQ((*examples)[0].label, 1);
  EXPECT_EQ((*examples)[1].label, 0);
}

// Regression (hostile-input review): repeated slashes count as one, so a long path (up to the
// system's limit, 4 KiB) resolves to a real file, and the dataset's errors echoed it whole.
TEST_F(JobSpecTest, ADatasetsErrorsQuoteItsPathCut) {
  config_.max_dataset_bytes = 64;  // the file is larger: refused, naming it
  const std::string path = "sst2" + std::string(3000, '/') + "dev.tsv";
  auto examples =
      LoadExamples(DatasetSpec(path).attribution().examples(), config_, "spec.examples");
  ASSERT_TRUE(absl::IsInvalidArgument(examples.status()))
      << examples.status().message().substr(0, 300);
  const std::string message(examples.status().message());
  EXPECT_LT(message.size(), 400u) << message.substr(0, 300);
  EXPECT_NE(message.find("(--max-dataset-mib)"), std::string::npos) << message;
  EXPECT_EQ(message.rfind("spec.examples.dataset.path: 'sst2////", 0), 0u) << message;
}

// Regression (hostile-input review): the example count of an inline list was read only after
// every example was copied (a 32 MiB request holds 16 million empty ones). It is now read first,
// for every source of every job kind, naming the source.
TEST_F(JobSpecTest, InlineExampleCountsAreReadFromTheSpecForEverySource) {
  config_.max_job_examples = 3;
  v1::JobSpec spec;
  spec.set_model("sst2");
  auto* h = spec.mutable_head_importance();
  for (int i = 0; i < 3; ++i) h->mutable_importance_set()->mutable_inline_()->add_examples();
  EXPECT_TRUE(CheckInlineExampleCounts(spec, config_).ok());
  for (int i = 0; i < 4; ++i) h->mutable_evaluation_set()->mutable_inline_()->add_examples();
  absl::Status status = CheckInlineExampleCounts(spec, config_);
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_EQ(status.message(),
            "spec.head_importance.evaluation_set: more than 3 examples (server limit "
            "--max-job-examples); split the job or set dataset.limit");
  // LoadExamples says the same (it counts before copying).
  auto loaded = LoadExamples(h->evaluation_set(), config_, "spec.head_importance.evaluation_set");
  EXPECT_EQ(loaded.status(), status);
}

TEST_F(JobSpecTest, ResolveDataPathStaysUnderTheRoot) {
  auto path = ResolveDataPath(data_root_, "sst2/dev.tsv", "f");
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(*path, fs::canonical(data_root_ + "/sst2/dev.tsv").string());
  // A symlink that stays inside the root is followed.
  fs::create_directory_symlink(data_root_ + "/sst2", data_root_ + "/alias");
  path = ResolveDataPath(data_root_, "alias/dev.tsv", "f");
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(*path, fs::canonical(data_root_ + "/sst2/dev.tsv").string());
  // The root itself may be reached through a symlink.
  const std::string link_root = ::attattr::testing::MakeTempDir("attattr-jobspec-link") + "/root";
  fs::create_directory_symlink(data_root_, link_root);
  EXPECT_TRUE(ResolveDataPath(link_root, "sst2/dev.tsv", "f").ok());
  fs::remove_all(fs::path(link_root).parent_path());
  // A sibling directory sharing the root's name as a prefix is outside.
  const std::string sibling = data_root_ + "-evil";
  fs::create_directory(sibling);
  std::ofstream(sibling + "/x.tsv") << "sentence\tlabel\nbad\t0\n";
  fs::create_symlink(sibling + "/x.tsv", data_root_ + "/sibling.tsv");
  auto outside = ResolveDataPath(data_root_, "sibling.tsv", "f");
  EXPECT_EQ(outside.status().code(), absl::StatusCode::kInvalidArgument) << outside.status();
  fs::remove_all(sibling);
  // The root must exist.
  auto gone = ResolveDataPath(data_root_ + "/missing-root", "x.tsv", "f");
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kFailedPrecondition) << gone.status();
}

// An export directory must be new or empty at submission; when the job runs again it may also
// hold that job's own earlier export (which the run replaces), never another's.
TEST_F(JobSpecTest, ResolveExportPathAcceptsOnlyTheRunningJobsOwnEarlierExport) {
  const std::string root = ::attattr::testing::MakeTempDir("attattr-jobspec-export");
  EXPECT_TRUE(ResolveExportPath(root, "new", "f").ok());
  fs::create_directory(root + "/empty");
  EXPECT_TRUE(ResolveExportPath(root, "empty", "f").ok());
  fs::create_directory(root + "/done");
  std::ofstream(root + "/done/model.safetensors") << "x";
  std::ofstream(root + "/done/" + engine::kPrunedExportOwnerFile) << "jobs/a";
  EXPECT_EQ(ResolveExportPath(root, "done", "f").status().code(),
            absl::StatusCode::kAlreadyExists);                       // at submission
  EXPECT_TRUE(ResolveExportPath(root, "done", "f", "jobs/a").ok());  // job a, run again
  auto other = ResolveExportPath(root, "done", "f.export_path", "jobs/b");
  EXPECT_EQ(other.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(other.status().message().find("f.export_path"), std::string::npos);
  fs::remove_all(root);
}

// Regression (job-spec review): --max-job-work counted only the integration points, so a trigger
// search with a large evaluation set and top_k 100, or a head-importance study of RANDOM rankings
// over many ratios, was admitted as almost free and then ran for a day of forward passes.
TEST_F(JobSpecTest, JobWorkCountsTheForwardPassesOfEvaluationsCurvesAndRankings) {
  engine::AttributionOptions options;
  options.steps = 2;
  options.layers = {0};
  engine::ModelInfo info;
  info.num_layers = 4;
  ServerConfig c = config_;
  c.max_job_work = 100;
  EXPECT_TRUE(CheckJobWork(10, options, info, c, "f", 20).ok());  // 10*2*1 + 20*4 = 100
  auto over = CheckJobWork(10, options, info, c, "spec.x", 21);   // 104
  EXPECT_EQ(over.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(over.message().find("21 example forward passes"), std::string::npos) << over;
  EXPECT_NE(over.message().find("--max-job-work"), std::string::npos) << over;
  EXPECT_EQ(over.message().find("spec.x: "), 0u) << over;

  const auto labelled = [](v1::ExampleSource* source, int n) {
    for (int i = 0; i < n; ++i) {
      auto* e = source->mutable_inline_()->add_examples();
      e->set_text("a fine film .");
      e->set_label(i % 2);
    }
  };
  // The shared model has 4 layers. Trigger search: 1 mined example x 1 step x 4 layers, plus the
  // evaluation's 5 examples x (1 + 2 top_k) passes x 4 layers.
  c.max_job_work = 1000;
  v1::JobSpec triggers;
  triggers.set_model("sst2");
  auto* t = triggers.mutable_trigger_search();
  labelled(t->mutable_mining_set(), 1);
  labelled(t->mutable_evaluation_set(), 5);
  t->mutable_attribution()->set_steps(1);
  t->set_top_k(1);  // 4 + 5*3*4 = 64
  EXPECT_TRUE(PrepareTriggerSearchJob(triggers, *registry_, c).ok());
  t->set_top_k(100);  // 4 + 5*201*4 = 4024
  auto refused = PrepareTriggerSearchJob(triggers, *registry_, c);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
  EXPECT_NE(refused.status().message().find("--max-job-work"), std::string::npos)
      << refused.status();
  // Head importance without the ATTRIBUTION ranking: 25 ratios x 1 method x 10 evaluation
  // examples x 4 layers = 1000, then ATTENTION's 10 importance passes more.
  v1::JobSpec heads;
  heads.set_model("sst2");
  auto* h = heads.mutable_head_importance();
  labelled(h->mutable_importance_set(), 10);
  labelled(h->mutable_evaluation_set(), 10);
  h->add_methods(v1::IMPORTANCE_METHOD_RANDOM);
  for (int r = 0; r < 25; ++r) h->add_ratios(4 * r);
  EXPECT_TRUE(PrepareHeadImportanceJob(heads, *registry_, c).ok());
  h->clear_methods();
  h->add_methods(v1::IMPORTANCE_METHOD_ATTENTION);
  auto ranked = PrepareHeadImportanceJob(heads, *registry_, c);
  EXPECT_EQ(ranked.status().code(), absl::StatusCode::kInvalidArgument) << ranked.status();
}

// Each kind's result estimate is what its job reserves against the owner's stored-bytes quota
// while it waits and runs: an attribution job's is the one checked against --max-result-mib, and a
// study's or a search's is at least the largest result its spec can produce.
TEST_F(JobSpecTest, EachKindsResultEstimateCoversItsResult) {
  v1::JobSpec spec = Spec({"good", LongText(20)});
  spec.mutable_attribution()->mutable_result()->set_full_matrices(true);
  auto attribution = Prepare(spec);
  ASSERT_TRUE(attribution.ok()) << attribution.status();
  EXPECT_GT(attribution->result_bytes(), 2 * 4 * 8 * 22 * 22 * 4 / 2);
  EXPECT_EQ(attribution->result_bytes(), attribution->result_bytes_estimate);

  const auto labelled = [](v1::ExampleSource* source, int n) {
    for (int i = 0; i < n; ++i) {
      auto* e = source->mutable_inline_()->add_examples();
      e->set_text("a fine film .");
      e->set_label(i % 2);
    }
  };
  const auto& info = model_->info();
  v1::JobSpec heads;
  heads.set_model("sst2");
  auto* h = heads.mutable_head_importance();
  labelled(h->mutable_importance_set(), 2);
  labelled(h->mutable_evaluation_set(), 2);
  for (auto m : {v1::IMPORTANCE_METHOD_ATTRIBUTION, v1::IMPORTANCE_METHOD_ATTENTION,
                 v1::IMPORTANCE_METHOD_TAYLOR, v1::IMPORTANCE_METHOD_RANDOM}) {
    h->add_methods(m);
  }
  for (int r = 0; r <= 100; r += 10) h->add_ratios(r);
  auto study = PrepareHeadImportanceJob(heads, *registry_, config_);
  ASSERT_TRUE(study.ok()) << study.status();
  v1::JobResult largest;
  auto* hr = largest.mutable_head_importance();
  hr->set_num_layers(info.num_layers);
  hr->set_num_heads(info.num_heads);
  for (int m = 0; m < 4; ++m) {
    auto* method = hr->add_methods();
    method->set_method(v1::IMPORTANCE_METHOD_TAYLOR);
    for (int k = 0; k < info.num_layers * info.num_heads; ++k) method->add_importance(0.1 + k);
    for (int r = 0; r <= 100; r += 10) {
      auto* point = method->add_curve();
      point->set_ratio(r + 0.5);
      point->set_accuracy(0.25);
      point->set_mean_gold_probability(0.75);
      point->set_heads_pruned(1 << 20);
    }
    method->mutable_agreement()->set_pearson(0.5);
    method->mutable_agreement()->set_spearman(0.5);
    method->mutable_agreement()->set_a(v1::IMPORTANCE_METHOD_TAYLOR);
    method->mutable_agreement()->set_b(v1::IMPORTANCE_METHOD_TAYLOR);
  }
  for (int c = 0; c < 6; ++c) {
    auto* pair = hr->add_correlations();
    pair->set_a(v1::IMPORTANCE_METHOD_TAYLOR);
    pair->set_b(v1::IMPORTANCE_METHOD_TAYLOR);
    pair->set_pearson(0.5);
    pair->set_spearman(0.5);
  }
  hr->set_export_heads_removed(1 << 20);
  hr->set_export_weights_bytes(int64_t{1} << 40);
  hr->set_export_parameter_count(int64_t{1} << 40);
  EXPECT_GE(study->result_bytes(), static_cast<int64_t>(largest.ByteSizeLong()));

  v1::JobSpec triggers;
  triggers.set_model("sst2");
  auto* t = triggers.mutable_trigger_search();
  labelled(t->mutable_mining_set(), 2);
  labelled(t->mutable_evaluation_set(), 2);
  t->set_top_k(5);
  auto search = PrepareTriggerSearchJob(triggers, *registry_, config_);
  ASSERT_TRUE(search.ok()) << search.status();
  largest.Clear();
  auto* tr = largest.mutable_trigger_search();
  tr->set_mined_examples(1 << 20);
  tr->set_patterns_above_threshold(1 << 20);
  for (int p = 0; p < 5; ++p) {
    auto* pattern = tr->add_patterns();
    for (int k = 0; k < 8; ++k) {
      pattern->add_tokens("##token");
      pattern->add_segments(1);
      pattern->add_relative_positions(0.125 * k);
    }
    pattern->set_source(1 << 20);
    pattern->set_layer(3);
    pattern->set_head(7);
    pattern->set_score(0.5);
    pattern->set_truncated_examples(1 << 20);
    for (const std::string& label : info.labels) {
      for (auto* list : {pattern->add_clean(), pattern->add_attacked(), pattern->add_control()}) {
        list->set_label(label);
        list->set_accuracy(0.5);
        list->set_examples(1 << 20);
      }
    }
  }
  EXPECT_GE(search->result_bytes(), static_cast<int64_t>(largest.ByteSizeLong()));
  t->set_top_k(50);
  auto larger = PrepareTriggerSearchJob(triggers, *registry_, config_);
  ASSERT_TRUE(larger.ok()) << larger.status();
  EXPECT_EQ(larger->result_bytes(), 10 * search->result_bytes() - 9 * 64);
}

TEST_F(JobSpecTest, UnknownModelIsNotFound) {
  v1::JobSpec spec = Spec({"good"});
  spec.set_model("no-such-model");
  ExpectError(spec, absl::StatusCode::kNotFound, {"spec.model", "no-such-model"});
  spec.set_model("");
  ExpectError(spec, absl::StatusCode::kInvalidArgument, {"spec.model: required"});
}

TEST_F(JobSpecTest, PriorityAndTimeoutRanges) {
  v1::JobSpec spec = Spec({"good"});
  for (int ok : {-10, 0, 10}) {
    spec.set_priority(ok);
    EXPECT_TRUE(Prepare(spec).ok()) << ok;
  }
  for (int bad : {-11, 11}) {
    spec.set_priority(bad);
    ExpectError(spec, absl::StatusCode::kInvalidArgument,
                {"spec.priority: " + std::to_string(bad), "[-10, 10]"});
  }
  spec.set_priority(0);
  for (int64_t ok : {int64_t{0}, int64_t{1}, kMaxJobTimeoutMs}) {
    spec.set_timeout_ms(ok);
    EXPECT_TRUE(Prepare(spec).ok()) << ok;
  }
  // Regression (review): INT64_MAX overflowed create_time + timeout_ms into a deadline in the
  // past's negative range, which switched off --max-job-seconds as well.
  for (int64_t bad : {int64_t{-1}, kMaxJobTimeoutMs + 1, std::numeric_limits<int64_t>::max()}) {
    spec.set_timeout_ms(bad);
    ExpectError(spec, absl::StatusCode::kInvalidArgument,
                {"spec.timeout_ms: " + std::to_string(bad) + " is not in [0, 31536000000]"});
  }
}

// Regression (review): Explain took any top_k up to INT_MAX and had neither the activation
// memory check nor the result-size check a job of the same example gets.
TEST_F(JobSpecTest, ExplainIsHeldToTheLimitsOfAJob) {
  v1::ExplainRequest request;
  request.set_model("sst2");
  request.mutable_example()->set_text(LongText(28));
  auto call = ExplainFromProto(request, *model_, config_);
  ASSERT_TRUE(call.ok()) << call.status();
  EXPECT_TRUE(CheckExplainCost(*call, config_).ok());
  request.mutable_result()->set_top_k(kMaxResultTopK + 1);
  auto too_many = ExplainFromProto(request, *model_, config_);
  ASSERT_FALSE(too_many.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(too_many.status()));
  EXPECT_NE(too_many.status().message().find("result.top_k: 10001 is above the limit of 10000"),
            std::string::npos)
      << too_many.status();
  request.mutable_result()->set_top_k(kMaxResultTopK);
  request.mutable_result()->set_full_matrices(true);
  call = ExplainFromProto(request, *model_, config_);
  ASSERT_TRUE(call.ok()) << call.status();
  ServerConfig small = config_;
  small.memory_budget_bytes = int64_t{1} << 16;
  absl::Status memory = CheckExplainCost(*call, small);
  EXPECT_TRUE(absl::IsInvalidArgument(memory)) << memory;
  EXPECT_NE(memory.message().find("example.text: 30 word pieces need"), std::string::npos)
      << memory;
  EXPECT_NE(memory.message().find("--memory-budget-mib"), std::string::npos) << memory;
  small = config_;
  small.max_result_bytes = int64_t{1} << 16;  // full fp32 matrices: 4 layers of 8·30²·4 bytes
  absl::Status size = CheckExplainCost(*call, small);
  EXPECT_TRUE(absl::IsInvalidArgument(size)) << size;
  EXPECT_NE(size.message().find("result: the response would be about"), std::string::npos) << size;
  EXPECT_NE(size.message().find("--max-result-mib"), std::string::npos) << size;
}

TEST_F(JobSpecTest, KindIsRequiredAndMustBeAttribution) {
  v1::JobSpec spec;
  spec.set_model("sst2");
  ExpectError(spec, absl::StatusCode::kInvalidArgument, {"spec.kind:"});
  spec.mutable_head_importance();
  ExpectError(spec, absl::StatusCode::kInvalidArgument, {"spec.attribution: required"});
}

TEST_F(JobSpecTest, ExamplesAreRequiredAndNonEmpty) {
  v1::JobSpec spec;
  spec.set_model("sst2");
  spec.mutable_attribution();
  ExpectError(spec, absl::StatusCode::kInvalidArgument,
              {"spec.attribution.examples: inline or dataset is required"});
  ExpectError(Spec({}), absl::StatusCode::kInvalidArgument,
              {"spec.attribution.examples.inline.examples:"});
  ExpectError(Spec({"good", "bad", "", "ugly"}), absl::StatusCode::kInvalidArgument,
              {"spec.attribution.examples.inline.examples[2].text: empty"});
  v1::JobSpec pair = Spec({"good", "bad"});
  pair.mutable_attribution()
      ->mutable_examples()
      ->mutable_inline_()
      ->mutable_examples(1)
      ->set_text_pair("");
  ExpectError(pair, absl::StatusCode::kInvalidArgument,
              {"spec.attribution.examples.inline.examples[1].text_pair: empty"});
}

TEST_F(JobSpecTest, TooManyExamplesNamesTheFlag) {
  config_.max_job_examples = 3;
  EXPECT_TRUE(Prepare(Spec({"a", "b", "c"})).ok());
  ExpectError(Spec({"a", "b", "c", "d"}), absl::StatusCode::kInvalidArgument,
              {"spec.attribution.examples", "more than 3", "--max-job-examples"});
  ExpectError(DatasetSpec("sst2/dev.tsv"), absl::StatusCode::kInvalidArgument,
              {"spec.attribution.examples", "more than 3", "--max-job-examples"});
  EXPECT_TRUE(Prepare(DatasetSpec("sst2/dev.tsv", 3)).ok());
}

TEST_F(JobSpecTest, AJobAboveTheWorkCapNamesTheProductAndTheFlag) {
  const int layers = model_->info().num_layers;
  // 3 examples x 10 steps x every layer is exactly the cap: accepted.
  config_.max_job_work = 3 * 10 * layers;
  v1::JobSpec spec = Spec({"a", "b", "c"});
  spec.mutable_attribution()->mutable_options()->set_steps(10);
  EXPECT_TRUE(Prepare(spec).ok());
  // One more step is over it, and the message says what to change.
  spec.mutable_attribution()->mutable_options()->set_steps(11);
  ExpectError(spec, absl::StatusCode::kInvalidArgument,
              {"spec.attribution: 3 examples x 11 steps x " + std::to_string(layers) + " layers",
               "--max-job-work", "fewer steps or layers"});
  // Attributing fewer layers brings the same job back under the cap.
  spec.mutable_attribution()->mutable_options()->add_layers(0);
  EXPECT_TRUE(Prepare(spec).ok());
}

TEST_F(JobSpecTest, DatasetWithoutDataRootIsRefused) {
  config_.data_root.clear();
  ExpectDatasetError("sst2/dev.tsv", absl::StatusCode::kInvalidArgument,
                     {kPathField, "no --data-root configured"});
}

TEST_F(JobSpecTest, DatasetPathsThatEscapeTheRootAreRefused) {
  ExpectDatasetError("", absl::StatusCode::kInvalidArgument, {kPathField, "empty"});
  ExpectDatasetError(data_root_ + "/sst2/dev.tsv", absl::StatusCode::kInvalidArgument,
                     {kPathField, "absolute"});
  ExpectDatasetError("/etc/passwd", absl::StatusCode::kInvalidArgument, {kPathField, "absolute"});
  ExpectDatasetError("../x", absl::StatusCode::kInvalidArgument, {kPathField, "'..'"});
  ExpectDatasetError("sst2/../../x", absl::StatusCode::kInvalidArgument, {kPathField, "'..'"});
  // A symlink inside the root pointing outside it (to the shared dev set itself).
  fs::create_symlink(::attattr::testing::SharedDir() + "/data/sst2/dev.tsv",
                     data_root_ + "/escape.tsv");
  ExpectDatasetError("escape.tsv", absl::StatusCode::kInvalidArgument,
                     {kPathField, "outside --data-root"});
  fs::create_directory_symlink(::attattr::testing::SharedDir() + "/data", data_root_ + "/shared");
  ExpectDatasetError("shared/sst2/dev.tsv", absl::StatusCode::kInvalidArgument,
                     {kPathField, "outside --data-root"});
}

TEST_F(JobSpecTest, MissingOrUnreadableDatasets) {
  ExpectDatasetError("sst2/nope.tsv", absl::StatusCode::kNotFound, {kPathField, "sst2/nope.tsv"});
  ExpectDatasetError("sst2", absl::StatusCode::kInvalidArgument,
                     {kPathField, "not a regular file"});
  ExpectError(DatasetSpec("sst2/dev.tsv", -1), absl::StatusCode::kInvalidArgument,
              {"spec.attribution.examples.dataset.limit: must be >= 0"});
  // Parse errors keep the engine's code, name the field and show the relative path (quoted, as
  // given), not the root.
  std::ofstream(data_root_ + "/bad.tsv") << "sentence\tlabel\ngood\tnot-a-number\n";
  auto job = Prepare(DatasetSpec("bad.tsv"));
  ASSERT_FALSE(job.ok());
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument) << job.status();
  EXPECT_NE(job.status().message().find(std::string(kPathField) + ": 'bad.tsv':2: label"),
            std::string::npos)
      << job.status();
  EXPECT_EQ(job.status().message().find(data_root_), std::string::npos) << job.status();
  std::ofstream(data_root_ + "/header-only.tsv") << "sentence\tlabel\n";
  ExpectDatasetError("header-only.tsv", absl::StatusCode::kInvalidArgument,
                     {kPathField, "holds no examples"});
}

TEST_F(JobSpecTest, AttributionOptionsAreValidated) {
  v1::JobSpec spec = Spec({"good"});
  spec.mutable_attribution()->mutable_options()->set_steps(config_.max_steps + 1);
  ExpectError(spec, absl::StatusCode::kInvalidArgument,
              {"spec.attribution.options.steps", "--max-steps"});
  spec = Spec({"good"});
  spec.mutable_attribution()->mutable_options()->add_layers(model_->info().num_layers);
  ExpectError(spec, absl::StatusCode::kInvalidArgument,
              {"spec.attribution.options.layers[0]", "is not a layer"});
  spec = Spec({"good"});
  spec.mutable_attribution()->mutable_result()->set_top_k(10001);
  ExpectError(spec, absl::StatusCode::kInvalidArgument, {"spec.attribution.result.top_k", "10000"});
  spec.mutable_attribution()->mutable_result()->set_top_k(-1);
  ExpectError(spec, absl::StatusCode::kInvalidArgument, {"spec.attribution.result.top_k"});
  spec.mutable_attribution()->mutable_result()->set_top_k(10000);
  EXPECT_TRUE(Prepare(spec).ok());
}

TEST_F(JobSpecTest, ExampleAboveTheMemoryBudgetIsRefused) {
  config_.memory_budget_bytes = int64_t{1} << 20;
  EXPECT_TRUE(Prepare(Spec({"good"})).ok());
  ExpectError(
      Spec({"good", LongText(100)}), absl::StatusCode::kInvalidArgument,
      {"spec.attribution.examples.inline.examples[1]:", "MiB", "1.0 MiB", "--memory-budget-mib"});
  // A dataset example is named by its index in file order.
  std::ofstream(data_root_ + "/long.tsv") << "sentence\tlabel\ngood\t1\n"
                                          << LongText(100) << "\t0\n";
  ExpectDatasetError("long.tsv", absl::StatusCode::kInvalidArgument,
                     {std::string(kPathField) + ": examples[1]:", "--memory-budget-mib"});
}

// Regression (job-spec review): a TAYLOR ranking backpropagates each example through every layer
// (an α-point's activations at layer 0) but only ATTRIBUTION's examples were held to the budget.
TEST_F(JobSpecTest, TaylorRankingsExamplesAreHeldToTheMemoryBudget) {
  ServerConfig c = config_;
  c.memory_budget_bytes = int64_t{1} << 20;
  v1::JobSpec heads;
  heads.set_model("sst2");
  auto* h = heads.mutable_head_importance();
  for (const std::string& text : {std::string("a fine film ."), LongText(100)}) {
    auto* e = h->mutable_importance_set()->mutable_inline_()->add_examples();
    e->set_text(text);
    e->set_label(1);
  }
  auto* e = h->mutable_evaluation_set()->mutable_inline_()->add_examples();
  e->set_text("a fine film .");
  e->set_label(0);
  h->add_methods(v1::IMPORTANCE_METHOD_RANDOM);
  h->add_methods(v1::IMPORTANCE_METHOD_ATTENTION);  // batches within the budget: admitted
  EXPECT_TRUE(PrepareHeadImportanceJob(heads, *registry_, c).ok());
  h->add_methods(v1::IMPORTANCE_METHOD_TAYLOR);
  auto refused = PrepareHeadImportanceJob(heads, *registry_, c);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
  EXPECT_NE(refused.status().message().find("importance_set.inline.examples[1]"), std::string::npos)
      << refused.status();
  EXPECT_NE(refused.status().message().find("--memory-budget-mib"), std::string::npos)
      << refused.status();
}

TEST_F(JobSpecTest, ResultAboveTheLimitIsRefused) {
  config_.max_result_bytes = int64_t{1} << 20;
  // n = 30: full fp32 matrices are 8·30²·4 bytes per layer, 115 KiB per example of 4 layers.
  v1::JobSpec spec = Spec(std::vector<std::string>(20, LongText(28)));
  auto* result = spec.mutable_attribution()->mutable_result();
  result->set_full_matrices(true);
  ExpectError(spec, absl::StatusCode::kInvalidArgument,
              {"spec.attribution.result", "about 2.2 MiB", "limit of 1.0 MiB", "--max-result-mib"});
  result->set_fp16(true);  // still above: 1.1 MiB
  ExpectError(spec, absl::StatusCode::kInvalidArgument, {"about 1.1 MiB", "--max-result-mib"});
  // The same job fits as head sums, or with fewer examples.
  result->set_full_matrices(false);
  result->set_head_summed(true);
  auto summed = Prepare(spec);
  ASSERT_TRUE(summed.ok()) << summed.status();
  EXPECT_LE(summed->result_bytes_estimate, config_.max_result_bytes);
  EXPECT_TRUE(Prepare(Spec(std::vector<std::string>(5, LongText(28)))).ok());
}

}  // namespace
}  // namespace attattr::server
