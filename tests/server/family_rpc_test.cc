// Every model family through the service (a real in-process server on loopback, the generated
// stubs): the tiny BERT, DistilBERT, ELECTRA, RoBERTa (byte-level BPE), XLM-RoBERTa (Unigram),
// DeBERTa-v2 (disentangled attention) and ModernBERT (RoPE, GeGLU, sliding windows, mean pooling)
// checkpoints Hugging Face saved for the family oracle (tests/oracle, CTest fixture
// `oracle_checkpoints`) are listed with their family and tokenizer, Explain equals the engine on
// each, and on DistilBERT, RoBERTa, DeBERTa and ModernBERT every job kind runs — ATTRIBUTION,
// HEAD_IMPORTANCE (rankings and curves; the pruned export lands in the family's layout for
// DistilBERT and RoBERTa, and is refused at submission for DeBERTa and ModernBERT, naming the field
// and the family) and TRIGGER_SEARCH — and the HTML report renders each result. The causal-LM
// checkpoints (llama-lm, gpt2-lm) answer next-token targets through Explain and jobs, and refuse
// the jobs whose gold labels are classes.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <iterator>
#include <map>
#include <memory>
#include <numeric>
#include <string>

#include "attattr/engine/attention_attribution.h"
#include "attattr/engine/model.h"
#include "attattr/report/html_report.h"
#include "attattr/v1/attattr_service.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "server.h"
#include "spdlog/sinks/null_sink.h"
#include "spdlog/spdlog.h"
#include "support/job_rpc.h"
#include "support/oracle_dir.h"
#include "support/test_paths.h"

namespace attattr::server {
namespace {

namespace fs = std::filesystem;
using ::attattr::testing::DatasetSource;
using ::attattr::testing::ExpectStatus;
using ::attattr::testing::ReadResult;
using ::attattr::testing::Submit;
using ::attattr::testing::WaitDone;

using ::attattr::testing::OracleDir;

constexpr const char* kFamilies[] = {"bert",       "distilbert",  "electra",
                                     "roberta",    "xlm-roberta", "deberta-v2",
                                     "modernbert", "llama",       "gpt2"};

bool IsDecoder(const std::string& family) { return family == "llama" || family == "gpt2"; }

class FamilyRpcTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::string(::attattr::testing::MakeTempDir("attattr-families"));
    fs::create_directories(*root_ + "/models");
    fs::create_directories(*root_ + "/data");
    fs::create_directories(*root_ + "/exports");
    for (const char* family : kFamilies) {
      fs::create_directory_symlink(OracleDir(family), *root_ + "/models/tiny-" + family);
    }
    for (const char* family : {"llama-lm", "gpt2-lm"}) {
      fs::create_directory_symlink(OracleDir(family), *root_ + "/models/tiny-" + family);
    }
    fs::copy_file(::attattr::testing::SharedDir() + "/data/sst2/dev.tsv",
                  *root_ + "/data/sst2-dev.tsv");
    ServerConfig config;
    config.models_dir = *root_ + "/models";
    config.data_root = *root_ + "/data";
    config.export_root = *root_ + "/exports";
    config.store = *root_ + "/jobs.db";
    config.listen = "127.0.0.1:0";
    config.metrics_listen = "";
    auto log =
        std::make_shared<spdlog::logger>("t", std::make_shared<spdlog::sinks::null_sink_mt>());
    auto server = Server::Start(config, log);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    if (root_ != nullptr) fs::remove_all(*root_);
    delete root_;
    root_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    stub_ = ::attattr::testing::Connect("127.0.0.1:" + std::to_string(server_->port()));
  }

  static Server* server_;
  static std::string* root_;
  std::unique_ptr<v1::Attattr::Stub> stub_;
};

Server* FamilyRpcTest::server_ = nullptr;
std::string* FamilyRpcTest::root_ = nullptr;

TEST_F(FamilyRpcTest, ModelsReportTheirFamilyAndTokenizer) {
  grpc::ClientContext ctx;
  v1::ListModelsResponse list;
  ASSERT_TRUE(stub_->ListModels(&ctx, {}, &list).ok());
  ASSERT_EQ(list.models_size(), static_cast<int>(std::size(kFamilies)) + 2);  // + the causal LMs
  const std::map<std::string, std::pair<std::string, std::string>> expected = {
      {"bert", {"wordpiece", "BertForSequenceClassification"}},
      {"distilbert", {"wordpiece", "DistilBertForSequenceClassification"}},
      {"electra", {"wordpiece", "ElectraForSequenceClassification"}},
      {"roberta", {"bpe", "RobertaForSequenceClassification"}},
      {"xlm-roberta", {"unigram", "XLMRobertaForSequenceClassification"}},
      {"deberta-v2", {"unigram", "DebertaV2ForSequenceClassification"}},
      {"modernbert", {"bpe", "ModernBertForSequenceClassification"}},
      {"llama", {"bpe", "LlamaForSequenceClassification"}},
      {"gpt2", {"bpe", "GPT2ForSequenceClassification"}}};
  for (const auto& m : list.models()) {
    SCOPED_TRACE(m.name());
    if (m.language_model()) continue;  // CausalLanguageModelsAnswerNextTokenTargets
    EXPECT_EQ("tiny-" + m.family(), m.name());
    ASSERT_EQ(expected.count(m.family()), 1u);
    EXPECT_EQ(m.tokenizer(), expected.at(m.family()).first);
    EXPECT_EQ(m.architecture(), expected.at(m.family()).second);
    EXPECT_EQ(m.num_layers(), 3);
    EXPECT_EQ(m.heads_per_layer_size(), 3);
    for (int h : m.heads_per_layer()) EXPECT_EQ(h, 4);
    EXPECT_EQ(m.labels_size(), 3);
    EXPECT_EQ(m.num_classes(), 3);
    EXPECT_EQ(m.max_length(), 128);  // RoBERTa's 130 positions start at pad_token_id + 1 = 2
    EXPECT_EQ(m.decoder(), IsDecoder(m.family()));
    // Llama's grouped-query attention: 2 KV heads for 4.
    EXPECT_EQ(m.num_key_value_heads(), m.family() == "llama" ? 2 : 4);
  }
}

TEST_F(FamilyRpcTest, ExplainEqualsTheEngineForEveryFamily) {
  for (const std::string family : kFamilies) {
    SCOPED_TRACE(family);
    v1::ExplainRequest req;
    req.set_model("tiny-" + family);
    req.mutable_example()->set_text("a gorgeous , witty , seductive movie .");
    req.mutable_options()->set_rule(v1::GAUSS_LEGENDRE);
    req.mutable_options()->set_steps(8);
    req.mutable_result()->set_full_matrices(true);
    grpc::ClientContext ctx;
    v1::ExplainResponse resp;
    const grpc::Status s = stub_->Explain(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();

    auto model = engine::Model::Load(OracleDir(family));
    ASSERT_TRUE(model.ok()) << model.status();
    engine::AttributionOptions o;
    o.rule = engine::QuadratureRule::kGaussLegendre;
    o.steps = 8;
    auto local = engine::AttributeExamples(**model, {{req.example().text(), std::nullopt, -1}}, o);
    ASSERT_TRUE(local.ok()) << local.status();
    const auto& a = resp.attribution();
    const bool roberta = family == "roberta" || family == "xlm-roberta";
    // GPT-2's tokenizer adds no BOS: the text's first piece leads.
    EXPECT_EQ(a.tokens(0), family == "llama"  ? "<|begin_of_text|>"
                           : family == "gpt2" ? "a"
                           : roberta          ? "<s>"
                                              : "[CLS]");
    ASSERT_EQ(a.layers_size(), 3);
    for (int l = 0; l < 3; ++l) {
      const auto& want = (*local)[0].layers[l].attribution;
      const auto& got = a.layers(l).attribution().f32().values();
      ASSERT_EQ(static_cast<size_t>(got.size()), want.size());
      for (size_t k = 0; k < want.size(); ++k) EXPECT_NEAR(got[k], want[k], 1e-6);
    }
  }
}

// Every job kind on the family's tiny checkpoint, each to SUCCEEDED with its result.
void RunEveryJobKind(v1::Attattr::Stub& stub, const std::string& family,
                     const std::string& exports) {
  SCOPED_TRACE(family);
  const std::string model = "tiny-" + family;
  v1::Job attribution;
  ASSERT_TRUE(Submit(stub, ::attattr::testing::ReviewsJob(model, 4, 4), &attribution).ok());

  v1::JobSpec heads;
  heads.set_model(model);
  auto* h = heads.mutable_head_importance();
  *h->mutable_importance_set() = DatasetSource("sst2-dev.tsv", 8);
  *h->mutable_evaluation_set() = DatasetSource("sst2-dev.tsv", 16);
  h->add_methods(v1::IMPORTANCE_METHOD_ATTRIBUTION);
  h->add_methods(v1::IMPORTANCE_METHOD_ATTENTION);
  h->add_ratios(0);
  h->add_ratios(50);
  h->mutable_attribution()->set_steps(2);

  // Families whose Hugging Face classes read pruned_heads export the pruned checkpoint; the others
  // are refused at submission, naming the field.
  const bool exportable = family != "deberta-v2" && family != "modernbert" && !IsDecoder(family);
  h->set_export_path("pruned/" + model);
  h->set_export_ratio(50);
  if (!exportable) {
    v1::Job refused;
    ExpectStatus(Submit(stub, heads, &refused), grpc::StatusCode::INVALID_ARGUMENT,
                 "spec.head_importance.export_path: model '" + model +
                     "': pruned checkpoints are exported for bert, distilbert, electra, roberta "
                     "and xlm-roberta models (whose Hugging Face classes read pruned_heads); this "
                     "one is " +
                     family);
    EXPECT_FALSE(fs::exists(exports + "/pruned/" + model));
    h->clear_export_path();
    h->clear_export_ratio();
  }
  v1::Job study;
  ASSERT_TRUE(Submit(stub, heads, &study).ok());

  v1::JobSpec triggers;
  triggers.set_model(model);
  auto* t = triggers.mutable_trigger_search();
  auto* mining = t->mutable_mining_set()->mutable_inline_();
  for (const char* text : {"a gorgeous , witty , seductive movie .",
                           "the story is bogus and its characters tissue-thin .",
                           "it 's a charming and often affecting journey ."}) {
    mining->add_examples()->set_text(text);
  }
  *t->mutable_evaluation_set() = DatasetSource("sst2-dev.tsv", 12);
  t->set_top_k(2);
  // A random tiny model's attributions are small: a threshold just above 0 keeps patterns to
  // check (the default 0.02 kept none for some families, and the token check below checked none).
  t->set_threshold(1e-9);
  t->mutable_attribution()->set_steps(2);
  v1::Job search;
  ASSERT_TRUE(Submit(stub, triggers, &search).ok());

  for (const v1::Job* job : {&attribution, &study, &search}) {
    const v1::Job done = WaitDone(stub, job->name(), 300);
    ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.name() << ": " << done.error_message();
    const auto result = ReadResult(stub, job->name());
    ASSERT_TRUE(result.status.ok()) << result.status.error_message();
    // The HTML report renders every kind, with the family's own tokens.
    auto html = report::RenderJobReport(done, &result.result);
    ASSERT_TRUE(html.ok()) << html.status();
    if (job == &attribution && family != "gpt2") {  // GPT-2 adds no special token to find
      const bool roberta = family == "roberta" || family == "xlm-roberta";
      EXPECT_NE(html->find(family == "llama" ? "&lt;|begin_of_text|&gt;"
                           : roberta         ? "&lt;s&gt;"
                                             : "[CLS]"),
                std::string::npos);
    }
  }
  const auto a = ReadResult(stub, attribution.name()).result;
  ASSERT_TRUE(a.has_attribution());
  EXPECT_EQ(a.attribution().examples_size(), 4);
  const auto s = ReadResult(stub, study.name()).result;
  ASSERT_TRUE(s.has_head_importance());
  if (exportable) {  // half of the 12 heads removed, in the family's own layout
    auto pruned = engine::Model::Load(exports + "/pruned/" + model);
    ASSERT_TRUE(pruned.ok()) << pruned.status();
    EXPECT_EQ(pruned->get()->info().family, family);
    const auto& kept = pruned->get()->info().heads_per_layer;
    EXPECT_EQ(std::accumulate(kept.begin(), kept.end(), 0), 6);
  }
  EXPECT_EQ(s.head_importance().num_layers(), 3);
  EXPECT_EQ(s.head_importance().methods_size(), 2);
  const auto t_result = ReadResult(stub, search.name()).result;
  ASSERT_TRUE(t_result.has_trigger_search());
  EXPECT_EQ(t_result.trigger_search().mined_examples(), 3);
  // Every pattern's tokens are the family's own pieces, never its special tokens.
  ASSERT_GT(t_result.trigger_search().patterns_size(), 0);
  for (const auto& p : t_result.trigger_search().patterns()) {
    ASSERT_GT(p.tokens_size(), 0);
    for (const auto& token : p.tokens()) {
      EXPECT_TRUE(token != "<s>" && token != "</s>" && token != "[CLS]" && token != "[SEP]" &&
                  token != "<|begin_of_text|>" && token != "<|end_of_text|>")
          << token;
    }
  }
}

TEST_F(FamilyRpcTest, EveryJobKindRunsOnDistilBert) {
  RunEveryJobKind(*stub_, "distilbert", *root_ + "/exports");
}

TEST_F(FamilyRpcTest, EveryJobKindRunsOnRoberta) {
  RunEveryJobKind(*stub_, "roberta", *root_ + "/exports");
}

TEST_F(FamilyRpcTest, EveryJobKindRunsOnDeberta) {
  RunEveryJobKind(*stub_, "deberta-v2", *root_ + "/exports");
}

TEST_F(FamilyRpcTest, EveryJobKindRunsOnModernBert) {
  RunEveryJobKind(*stub_, "modernbert", *root_ + "/exports");
}

TEST_F(FamilyRpcTest, EveryJobKindRunsOnLlama) {
  RunEveryJobKind(*stub_, "llama", *root_ + "/exports");
}

TEST_F(FamilyRpcTest, EveryJobKindRunsOnGpt2) {
  RunEveryJobKind(*stub_, "gpt2", *root_ + "/exports");
}

// The tree of a decoder's example (rooted at the scored last token): the root in no edge, every
// edge from a later query to an earlier key (a causal model attends backwards only).
void ExpectCausalTree(const v1::ExampleAttribution& a) {
  const int n = a.tokens_size();
  EXPECT_EQ(a.scored_position(), n - 1);
  ASSERT_TRUE(a.has_tree());
  EXPECT_EQ(a.tree().root(), n - 1);
  EXPECT_NE(a.tree().top(), n - 1);
  for (const auto& node : a.tree().nodes()) EXPECT_NE(node.position(), n - 1);
  for (const auto& e : a.tree().edges()) {
    EXPECT_GT(e.parent(), e.child()) << e.ShortDebugString();
    EXPECT_NE(e.parent(), n - 1);
  }
}

// A job that ran to SUCCEEDED, with its result.
struct Finished {
  v1::Job job;
  ::attattr::testing::StreamedResult result;
};

// Submits `spec` and waits for it; a job that fails or a result that cannot be read fails the test
// (the result is then empty).
Finished RunToSuccess(v1::Attattr::Stub& stub, const v1::JobSpec& spec) {
  Finished out;
  v1::Job job;
  const grpc::Status submitted = Submit(stub, spec, &job);
  EXPECT_TRUE(submitted.ok()) << submitted.error_message();
  if (!submitted.ok()) return out;
  out.job = WaitDone(stub, job.name(), 300);
  EXPECT_EQ(out.job.state(), v1::SUCCEEDED) << out.job.error_message();
  out.result = ReadResult(stub, job.name());
  EXPECT_TRUE(out.result.status.ok()) << out.result.status.error_message();
  return out;
}

// A decoder's attributions are lower-triangular, and its attribution trees are rooted at the last
// token, which its classifier reads, in Explain and in ATTRIBUTION jobs alike.
TEST_F(FamilyRpcTest, DecodersAttributeCausallyAndRootTreesAtTheLastToken) {
  v1::ExplainRequest req;
  req.mutable_example()->set_text("a gorgeous , witty , seductive movie .");
  req.mutable_options()->set_steps(4);
  req.mutable_result()->set_full_matrices(true);
  req.mutable_result()->set_tree(true);
  req.mutable_result()->set_tree_tau(0.1);
  for (const char* model : {"tiny-gpt2", "tiny-llama"}) {
    SCOPED_TRACE(model);
    req.set_model(model);
    grpc::ClientContext ctx;
    v1::ExplainResponse resp;
    const grpc::Status s = stub_->Explain(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    const auto& a = resp.attribution();
    const int n = a.tokens_size();
    for (const auto& layer : a.layers()) {
      const auto& values = layer.attribution().f32().values();
      ASSERT_EQ(values.size(), 4 * n * n);
      for (int h = 0; h < 4; ++h) {
        for (int i = 0; i < n; ++i) {
          for (int j = i + 1; j < n; ++j) EXPECT_EQ(values[(h * n + i) * n + j], 0.0f);
        }
      }
    }
    ExpectCausalTree(a);
  }
  v1::JobSpec spec = ::attattr::testing::ReviewsJob("tiny-gpt2", 2, 2);
  spec.mutable_attribution()->mutable_result()->set_tree(true);
  const auto result = RunToSuccess(*stub_, spec).result;
  ASSERT_EQ(result.result.attribution().examples_size(), 2);
  for (const auto& a : result.result.attribution().examples()) ExpectCausalTree(a);
}

// Explain tokenizes on its own (to tell an over-long text): a decoder classifier's text ending
// with pad_token_id is scored, as transformers scores it, at the rightmost other token — the
// response's tokens end there and its logits are transformers' (oracle.json "pad_scored").
TEST_F(FamilyRpcTest, ExplainScoresADecoderClassifierAtTheRightmostNonPadToken) {
  for (const char* family : {"llama", "gpt2"}) {
    SCOPED_TRACE(family);
    const nlohmann::json oracle = ::attattr::testing::ReadOracleJson(family);
    ASSERT_TRUE(oracle.contains("pad_scored"));
    const auto& c = oracle["pad_scored"];
    const auto hf_ids = c["ids"].get<std::vector<int32_t>>();
    v1::ExplainRequest req;
    req.set_model(std::string("tiny-") + family);
    req.mutable_example()->set_text(c["text"].get<std::string>());
    req.mutable_options()->set_steps(2);
    grpc::ClientContext ctx;
    v1::ExplainResponse resp;
    const grpc::Status s = stub_->Explain(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    const auto& a = resp.attribution();
    ASSERT_EQ(static_cast<size_t>(a.input_ids_size()), hf_ids.size() - 2);
    for (int i = 0; i < a.input_ids_size(); ++i) EXPECT_EQ(a.input_ids(i), hf_ids[i]) << i;
    EXPECT_EQ(a.scored_position(), a.input_ids_size() - 1);
    const auto hf_logits = c["logits"].get<std::vector<float>>();
    ASSERT_EQ(static_cast<size_t>(a.prediction().logits_size()), hf_logits.size());
    for (size_t k = 0; k < hf_logits.size(); ++k) {
      EXPECT_NEAR(a.prediction().logits(static_cast<int>(k)), hf_logits[k], 1e-4) << k;
    }
  }
}

// A causal LM is listed as one (its classes the vocabulary, no labels); Explain answers next-token
// targets — by token id or by text, probability or log-probability — equal to the engine in
// process, its prediction the ten most probable next tokens; an ATTRIBUTION job with a next-token
// target succeeds and its report shows them; text that is not one token, a next-token target on a
// classifier and the jobs whose gold labels are classes are refused, naming the field.
TEST_F(FamilyRpcTest, CausalLanguageModelsAnswerNextTokenTargets) {
  for (const char* family : {"llama-lm", "gpt2-lm"}) {
    SCOPED_TRACE(family);
    const std::string name = std::string("tiny-") + family;
    auto engine_model = engine::Model::Load(OracleDir(family));
    ASSERT_TRUE(engine_model.ok()) << engine_model.status();
    const engine::Model& model = **engine_model;
    {
      grpc::ClientContext ctx;
      v1::GetModelRequest req;
      req.set_name(name);
      v1::Model m;
      ASSERT_TRUE(stub_->GetModel(&ctx, req, &m).ok());
      EXPECT_TRUE(m.language_model());
      EXPECT_TRUE(m.has_classifier());
      EXPECT_EQ(m.num_classes(), model.info().vocab_size);
      EXPECT_EQ(m.labels_size(), 0);
      EXPECT_EQ(m.architecture(),
                std::string(family) == "gpt2-lm" ? "GPT2LMHeadModel" : "LlamaForCausalLM");
    }
    const std::string text = "a gorgeous , witty , seductive movie";
    v1::ExplainRequest req;
    req.set_model(name);
    req.mutable_example()->set_text(text);
    req.mutable_options()->set_steps(4);
    const auto explain = [&](const v1::ExplainRequest& r, v1::ExplainResponse* out) {
      grpc::ClientContext ctx;
      return stub_->Explain(&ctx, r, out);
    };
    v1::ExplainResponse greedy;
    ASSERT_TRUE(explain(req, &greedy).ok());
    const auto& p = greedy.attribution().prediction();
    ASSERT_EQ(p.top_tokens_size(), engine::kTopTokens);
    EXPECT_EQ(p.probabilities_size(), 0);
    EXPECT_EQ(p.predicted(), p.top_tokens(0).id());
    EXPECT_EQ(p.label(), p.top_tokens(0).token());
    EXPECT_EQ(greedy.attribution().target_class(), p.predicted());
    // The log-probability of the second most probable token, by id.
    const auto second = p.top_tokens(1);
    req.mutable_options()->mutable_target()->set_kind(v1::Target::CLASS_LOG_PROB);
    req.mutable_options()->mutable_target()->set_class_index(second.id());
    v1::ExplainResponse by_id;
    ASSERT_TRUE(explain(req, &by_id).ok());
    EXPECT_EQ(by_id.attribution().target_class(), second.id());
    engine::AttributionOptions o;
    o.steps = 4;
    o.target.kind = engine::TargetKind::kClassLogProb;
    o.target.class_index = second.id();
    auto local = engine::AttributeExamples(model, {engine::Example{text, std::nullopt, -1}}, o);
    ASSERT_TRUE(local.ok()) << local.status();
    ASSERT_EQ(by_id.attribution().layers_size(), static_cast<int>((*local)[0].layers.size()));
    for (int l = 0; l < by_id.attribution().layers_size(); ++l) {
      const auto& got = by_id.attribution().layers(l);
      EXPECT_NEAR(got.target_at_full(), std::log(second.probability()), 1e-4);
      EXPECT_NEAR(got.target_at_full(), (*local)[0].layers[l].target_at_full, 1e-6);
      EXPECT_NEAR(got.attribution_sum(), (*local)[0].layers[l].attribution_sum, 1e-5);
    }
    // By text: " the" is one token of these byte-level BPE vocabularies.
    const auto the = model.tokenizer().TokenToId("\xC4\xA0the");
    ASSERT_TRUE(the.has_value());
    req.mutable_options()->mutable_target()->set_kind(v1::Target::CLASS_PROB);
    req.mutable_options()->mutable_target()->set_class_index(0);
    req.mutable_options()->mutable_target()->set_next_token(" the");
    v1::ExplainResponse by_text;
    ASSERT_TRUE(explain(req, &by_text).ok());
    EXPECT_EQ(by_text.attribution().target_class(), *the);
    // Refused: two tokens; an id outside the vocabulary.
    req.mutable_options()->mutable_target()->set_next_token(" the film");
    v1::ExplainResponse refused;
    ExpectStatus(explain(req, &refused), grpc::StatusCode::INVALID_ARGUMENT,
                 "options.target.next_token: ' the film' is 2 tokens; it must be exactly one");
    req.mutable_options()->mutable_target()->clear_next_token();
    req.mutable_options()->mutable_target()->set_class_index(model.info().vocab_size);
    ExpectStatus(explain(req, &refused), grpc::StatusCode::INVALID_ARGUMENT,
                 "options.target.class_index: " + std::to_string(model.info().vocab_size) +
                     " is not a token id of this model");
    // A continuation's log-probability, teacher-forced: its tokens end the input.
    req.mutable_options()->mutable_target()->Clear();
    req.mutable_options()->mutable_target()->set_kind(v1::Target::SEQUENCE_LOG_PROB);
    req.mutable_options()->mutable_target()->set_continuation(" and it is a good film .");
    v1::ExplainResponse sequence;
    ASSERT_TRUE(explain(req, &sequence).ok());
    auto cont = engine::ContinuationIds(model, " and it is a good film .");
    ASSERT_TRUE(cont.ok()) << cont.status();
    const auto& sa = sequence.attribution();
    EXPECT_EQ(sa.continuation_start(), sa.tokens_size() - static_cast<int>(cont->size()));
    EXPECT_EQ(sa.input_ids(sa.tokens_size() - 1), cont->back());
    EXPECT_EQ(sa.target_class(), -1);
    engine::AttributionOptions so;
    so.steps = 4;
    so.target.kind = engine::TargetKind::kSequenceLogProb;
    so.target.continuation = " and it is a good film .";
    auto seq_local =
        engine::AttributeExamples(model, {engine::Example{text, std::nullopt, -1}}, so);
    ASSERT_TRUE(seq_local.ok()) << seq_local.status();
    EXPECT_NEAR(sa.layers(0).target_at_full(), (*seq_local)[0].layers[0].target_at_full, 1e-5);
    EXPECT_LT(sa.layers(0).target_at_full(), 0.0);
    // Regression (review): a job whose text, truncated to the model's maximum length, leaves no
    // room for the continuation was accepted and failed only when it ran. Refused at submission,
    // naming the example.
    {
      v1::JobSpec long_job;
      long_job.set_model(name);
      auto* list = long_job.mutable_attribution()->mutable_examples()->mutable_inline_();
      list->add_examples()->set_text(text);
      std::string very_long;
      for (int i = 0; i < model.info().max_length; ++i) very_long += " movie";
      list->add_examples()->set_text(very_long);
      auto* target = long_job.mutable_attribution()->mutable_options()->mutable_target();
      target->set_kind(v1::Target::SEQUENCE_LOG_PROB);
      target->set_continuation(" and it is a good film .");
      v1::Job refused_long;
      ExpectStatus(Submit(*stub_, long_job, &refused_long), grpc::StatusCode::INVALID_ARGUMENT,
                   "spec.attribution.examples.inline.examples[1]: " +
                       std::to_string(model.info().max_length) + " tokens of text and " +
                       std::to_string(cont->size()) + " of continuation");
    }
    // A job with a next-token target; its report shows the next tokens.
    v1::JobSpec spec = ::attattr::testing::ReviewsJob(name, 2, 2);
    spec.mutable_attribution()->mutable_options()->mutable_target()->set_kind(
        v1::Target::CLASS_LOG_PROB);
    spec.mutable_attribution()->mutable_options()->mutable_target()->set_next_token(" the");
    const auto [done, result] = RunToSuccess(*stub_, spec);
    ASSERT_EQ(result.result.attribution().examples_size(), 2);
    for (const auto& a : result.result.attribution().examples()) {
      EXPECT_EQ(a.target_class(), *the);
      EXPECT_EQ(a.prediction().top_tokens_size(), engine::kTopTokens);
      EXPECT_LT(a.layers(0).target_at_full(), 0.0);  // a log-probability
    }
    auto html = report::RenderJobReport(done, &result.result);
    ASSERT_TRUE(html.ok()) << html.status();
    EXPECT_NE(html->find("next token"), std::string::npos);
    // Head importance: gold labels are classes, not next tokens.
    v1::JobSpec heads;
    heads.set_model(name);
    *heads.mutable_head_importance()->mutable_importance_set() = DatasetSource("sst2-dev.tsv", 4);
    *heads.mutable_head_importance()->mutable_evaluation_set() = DatasetSource("sst2-dev.tsv", 4);
    v1::Job refused_job;
    ExpectStatus(Submit(*stub_, heads, &refused_job), grpc::StatusCode::INVALID_ARGUMENT,
                 "spec.model: '" + name + "': head importance needs a classifier checkpoint");
  }
  // A next-token target on a classifier.
  v1::ExplainRequest req;
  req.set_model("tiny-llama");
  req.mutable_example()->set_text("a gorgeous movie");
  req.mutable_options()->mutable_target()->set_kind(v1::Target::CLASS_PROB);
  req.mutable_options()->mutable_target()->set_next_token(" the");
  grpc::ClientContext ctx;
  v1::ExplainResponse resp;
  ExpectStatus(stub_->Explain(&ctx, req, &resp), grpc::StatusCode::INVALID_ARGUMENT,
               "options.target.next_token: model is not a language model "
               "(LlamaForSequenceClassification)");
}

}  // namespace
}  // namespace attattr::server
