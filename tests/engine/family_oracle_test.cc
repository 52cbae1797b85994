// Each model family against Hugging Face itself (tests/oracle): tiny random checkpoints that HF
// `transformers` built and saved (bert, distilbert, electra, roberta, xlm-roberta, deberta-v2
// with its disentangled relative-position attention, modernbert with rotary positions, GeGLU,
// sliding-window layers and mean pooling, and the decoders llama, mistral (sliding window) and
// qwen2 (q/k/v biases) with causal grouped-query attention, and gpt2 (learned positions, fused
// Conv1D projections, scores scaled by the inverse layer index); WordPiece, byte-level BPE and
// Unigram tokenizers from tokenizer.json), and what HF answered about them — token ids of 505
// strings, logits and every layer's attention probabilities, and self-attention attributions
// computed by an independent Python reference (HF's model with layer l's probabilities replaced,
// autograd, Gauss–Legendre m = 20). The engine must load each checkpoint as saved and agree: ids
// exactly, logits and probabilities within 1e-4, attributions within 1e-4 of each layer's largest
// value, F(A) and F(0) within 1e-5, the reference's completeness gap, and a gap below 1e-3 where
// the target is smooth in α (not DistilBERT, whose head has a ReLU).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "attattr/engine/attention_attribution.h"
#include "attattr/engine/attribution_agreement.h"
#include "attattr/engine/completeness_gap.h"
#include "attattr/engine/model.h"
#include "attattr/engine/pruned_export.h"
#include "attattr/engine/wordpiece_tokenizer.h"
#include "model_config.h"
#include "model_impl.h"
#include "nlohmann/json.hpp"
#include "rotary_embedding.h"
#include "support/float_tensors.h"
#include "support/hf_pruned_check.h"
#include "support/oracle_dir.h"
#include "support/test_paths.h"

namespace attattr::engine {
namespace {

using nlohmann::json;

using ::attattr::testing::OracleDir;

class FamilyOracleTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string dir = OracleDir(GetParam());
    oracle_ = ::attattr::testing::ReadOracleJson(GetParam());
    ASSERT_FALSE(oracle_.is_null());
    auto model = Model::Load(dir);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
    // "llama-lm", "gpt2-lm": the causal-LM checkpoints of those families.
    const bool lm = absl::EndsWith(GetParam(), "-lm");
    ASSERT_EQ(model_->info().family, lm ? GetParam().substr(0, GetParam().size() - 3) : GetParam());
    ASSERT_EQ(model_->info().language_model, lm);
  }

  Encoding EncodeIds(const json& ids) {
    Encoding e;
    for (const auto& id : ids) {
      e.input_ids.push_back(id.get<int32_t>());
      e.token_type_ids.push_back(0);
      e.tokens.push_back("?");
      e.offsets.push_back({-1, 0, 0});
    }
    return e;
  }

  json oracle_;
  std::unique_ptr<Model> model_;
};

std::vector<float> Flatten(const json& nested) {
  std::vector<float> out;
  if (nested.is_array()) {
    for (const auto& x : nested) {
      auto inner = Flatten(x);
      out.insert(out.end(), inner.begin(), inner.end());
    }
  } else {
    out.push_back(nested.get<float>());
  }
  return out;
}

// max |a − b| (and whether the sizes agree).
double MaxDiff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(double(a[i]) - double(b[i])));
  return d;
}

TEST_P(FamilyOracleTest, TokenIdsEqualHuggingFace) {
  const auto& cases = oracle_["tokens"];
  ASSERT_GE(cases.size(), 500u);
  int mismatches = 0;
  for (const auto& c : cases) {
    Example ex;
    ex.text = c["text"].get<std::string>();
    if (!c["text_pair"].is_null()) ex.text_pair = c["text_pair"].get<std::string>();
    auto enc = model_->Encode(ex);
    ASSERT_TRUE(enc.ok()) << enc.status() << " for '" << ex.text << "'";
    const auto expected = c["ids"].get<std::vector<int32_t>>();
    if (enc->input_ids != expected && ++mismatches <= 5) {
      ADD_FAILURE() << "ids differ for '" << ex.text << "'"
                    << (ex.text_pair ? " / '" + *ex.text_pair + "'" : "");
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << cases.size();
}

// The vocab.txt path (WordPieceTokenizer, for checkpoints without a tokenizer.json) stays exactly
// equal to Hugging Face on the WordPiece families' checkpoints, which ship both files.
TEST_P(FamilyOracleTest, VocabTxtWordPieceEqualsHuggingFace) {
  const std::string dir = OracleDir(GetParam());
  if (model_->tokenizer().kind() != "wordpiece") GTEST_SKIP() << "not a WordPiece vocabulary";
  ASSERT_EQ(model_->info().tokenizer, "wordpiece");
  TokenizerOptions options;  // the checkpoints are uncased, as tokenizer_config.json says
  auto vocab = WordPieceTokenizer::Load(dir + "/vocab.txt", options);
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  int mismatches = 0;
  for (const auto& c : oracle_["tokens"]) {
    const std::string text = c["text"].get<std::string>();
    std::optional<std::string> pair;
    if (!c["text_pair"].is_null()) pair = c["text_pair"].get<std::string>();
    auto enc = (*vocab)->Encode(text, pair, model_->info().max_length);
    ASSERT_TRUE(enc.ok()) << enc.status();
    auto hf = model_->tokenizer().Encode(text, pair, model_->info().max_length);
    ASSERT_TRUE(hf.ok()) << hf.status();
    const bool same = enc->input_ids == c["ids"].get<std::vector<int32_t>>() &&
                      enc->token_type_ids == hf->token_type_ids && enc->tokens == hf->tokens;
    if (!same && ++mismatches <= 5) ADD_FAILURE() << "vocab.txt path differs for '" << text << "'";
  }
  EXPECT_EQ(mismatches, 0);
}

TEST_P(FamilyOracleTest, LogitsAndAttentionProbabilitiesEqualHuggingFace) {
  const auto& impl = model_->impl();
  double worst_logits = 0, worst_probs = 0;
  for (const auto& c : oracle_["forward"]) {
    Example ex;
    ex.text = c["text"].get<std::string>();
    if (!c["text_pair"].is_null()) ex.text_pair = c["text_pair"].get<std::string>();
    auto enc = model_->Encode(ex);
    ASSERT_TRUE(enc.ok()) << enc.status();
    ASSERT_EQ(enc->input_ids, c["ids"].get<std::vector<int32_t>>()) << ex.text;
    torch::NoGradGuard no_grad;
    ForwardOptions fo;
    fo.capture_attention = true;
    const auto out = impl.encoder->Forward(MakeBatch({*enc}, {0}, impl.device), fo);
    const double logits_diff = MaxDiff(ToVector(out.logits[0]), Flatten(c["logits"]));
    EXPECT_LT(logits_diff, 1e-4) << ex.text;
    worst_logits = std::max(worst_logits, logits_diff);
    const auto& attentions = c["attentions"];
    ASSERT_EQ(out.attentions.size(), attentions.size());
    for (size_t l = 0; l < attentions.size(); ++l) {
      const double diff = MaxDiff(ToVector(out.attentions[l][0]), Flatten(attentions[l]));
      EXPECT_LT(diff, 1e-4) << ex.text << ", layer " << l;
      worst_probs = std::max(worst_probs, diff);
    }
  }
  // The agreement itself, for the record (README, closing notes).
  std::printf("%s: max |logit - HF| %.2e, max |probability - HF| %.2e over %zu inputs\n",
              GetParam().c_str(), worst_logits, worst_probs, oracle_["forward"].size());
}

// Padding changes nothing: a batch of examples of different lengths (so the shorter ones are
// padded, through every layer's mask, sliding windows and mean pooling) gives each example the
// logits and real-token probabilities it gets alone.
TEST_P(FamilyOracleTest, PaddedBatchEqualsEachExampleAlone) {
  const auto& impl = model_->impl();
  std::vector<Encoding> encodings;
  for (const auto& c : oracle_["forward"]) encodings.push_back(EncodeIds(c["ids"]));
  ASSERT_GE(encodings.size(), 3u);
  encodings.resize(3);
  std::vector<size_t> rows(encodings.size());
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = i;
  torch::NoGradGuard no_grad;
  ForwardOptions fo;
  fo.capture_attention = true;
  const auto batched = impl.encoder->Forward(MakeBatch(encodings, rows, impl.device), fo);
  for (size_t i = 0; i < encodings.size(); ++i) {
    const auto alone = impl.encoder->Forward(MakeBatch({encodings[i]}, {0}, impl.device), fo);
    const int64_t n = static_cast<int64_t>(encodings[i].input_ids.size());
    EXPECT_LT(MaxDiff(ToVector(batched.logits[i]), ToVector(alone.logits[0])), 1e-5) << i;
    for (size_t l = 0; l < alone.attentions.size(); ++l) {
      const auto real = batched.attentions[l][i].narrow(1, 0, n).narrow(2, 0, n);
      EXPECT_LT(MaxDiff(ToVector(real), ToVector(alone.attentions[l][0])), 1e-5)
          << "example " << i << ", layer " << l;
    }
  }
}

// The families whose Hugging Face classes read pruned_heads export a pruned checkpoint, laid out
// with their own tensor names and tokenizer files, whose logits equal the head-masked model's (a
// whole layer removed included); the others refuse, saying so.
TEST_P(FamilyOracleTest, PrunedExportEqualsTheMaskedModelOrIsRefused) {
  std::vector<std::vector<float>> mask(3, std::vector<float>(4, 1.0f));
  mask[0][1] = mask[0][3] = 0;
  mask[2] = {0, 0, 0, 0};
  ::attattr::testing::TempDir tmp("attattr-oracle-export");
  const std::string out = tmp.path() + "/pruned";
  const bool exportable =
      GetParam() != "deberta-v2" && GetParam() != "modernbert" && !model_->info().decoder;
  auto exported = ExportPrunedCheckpoint(*model_, mask, out);
  if (!exportable) {
    ASSERT_EQ(exported.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_NE(exported.status().message().find("this one is " + model_->info().family),
              std::string::npos)
        << exported.status();
    EXPECT_FALSE(::attattr::testing::PathExists(out));
    return;
  }
  ASSERT_TRUE(exported.ok()) << exported.status();
  EXPECT_EQ(exported->heads_removed, 6);
  // Nothing removed: exactly the tensor names Hugging Face saved.
  const std::string whole = tmp.path() + "/whole";
  ASSERT_TRUE(
      ExportPrunedCheckpoint(*model_, std::vector<std::vector<float>>(3, {1, 1, 1, 1}), whole)
          .ok());
  auto saved = SafetensorsCheckpoint::Open(OracleDir(GetParam()));
  auto written = SafetensorsCheckpoint::Open(whole);
  ASSERT_TRUE(saved.ok() && written.ok());
  EXPECT_EQ((*written)->TensorNames(), (*saved)->TensorNames());
  auto pruned = Model::Load(out);
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  // The layer that lost every head keeps its first, silenced (pruned_export.h).
  EXPECT_EQ(pruned->get()->info().heads_per_layer, (std::vector<int>{2, 4, 1}));
  EXPECT_EQ(pruned->get()->info().architecture, model_->info().architecture);
  EXPECT_EQ(pruned->get()->tokenizer().kind(), model_->tokenizer().kind());
  std::vector<Encoding> encodings;
  std::vector<std::vector<float>> masked_logits;
  for (const auto& c : oracle_["forward"]) {
    Example ex;
    ex.text = c["text"].get<std::string>();
    if (!c["text_pair"].is_null()) ex.text_pair = c["text_pair"].get<std::string>();
    auto enc = pruned->get()->Encode(ex);
    ASSERT_TRUE(enc.ok()) << enc.status();
    encodings.push_back(*enc);
    torch::NoGradGuard no_grad;
    ForwardOptions masked;
    masked.head_mask = torch::tensor(std::vector<float>{1, 0, 1, 0, 1, 1, 1, 1, 0, 0, 0, 0})
                           .view({3, 4})
                           .to(model_->impl().device);
    const auto& impl = model_->impl();
    const auto want = impl.encoder->Forward(MakeBatch({*enc}, {0}, impl.device), masked);
    const auto& pimpl = pruned->get()->impl();
    const auto got = pimpl.encoder->Forward(MakeBatch({*enc}, {0}, pimpl.device));
    EXPECT_LT(MaxDiff(ToVector(got.logits[0]), ToVector(want.logits[0])), 1e-5) << ex.text;
    masked_logits.push_back(ToVector(want.logits[0]));
  }
  // And Hugging Face transformers 4.x itself runs the export as the masked original.
  if (!::attattr::testing::HfPruneCheckInstalled()) {
    ATTATTR_MISSING_DEPENDENCY("no transformers 4.x at "
                               << ATTATTR_PRUNE_SITE
                               << " (scripts/setup.sh installs it) for the Hugging Face check");
  }
  const auto reply = ::attattr::testing::RunHfPrunedCheck(OracleDir(GetParam()), out, mask,
                                                          encodings, masked_logits, tmp.path());
  ASSERT_FALSE(reply.is_null());
  EXPECT_EQ(reply["heads_per_layer"], (std::vector<int>{2, 4, 1}));
  EXPECT_LT(reply["pruned_vs_masked"].get<double>(), 1e-5) << reply;
  EXPECT_LT(reply["pruned_vs_attattr"].get<double>(), 1e-4) << reply;
}

TEST_P(FamilyOracleTest, AttributionsEqualThePythonReference) {
  AttributionOptions options;
  options.rule = QuadratureRule::kGaussLegendre;
  options.steps = oracle_["steps"].get<int>();
  options.target.kind = TargetKind::kPredictedClassProb;
  std::vector<Encoding> encodings;
  for (const auto& c : oracle_["attribution"]) encodings.push_back(EncodeIds(c["ids"]));
  auto results = AttributeEncodings(*model_, encodings, options);
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->size(), oracle_["attribution"].size());
  double worst_relative = 0, worst_gap = 0;
  for (size_t e = 0; e < results->size(); ++e) {
    const auto& expected = oracle_["attribution"][e];
    const auto& got = (*results)[e];
    EXPECT_EQ(got.target_class, expected["target_class"].get<int>());
    ASSERT_EQ(got.layers.size(), expected["layers"].size());
    for (size_t l = 0; l < got.layers.size(); ++l) {
      const auto& want = expected["layers"][l];
      const auto reference = Flatten(want["attribution"]);
      double scale = 0;
      for (float x : reference) scale = std::max(scale, std::fabs(double(x)));
      ASSERT_GT(scale, 0);
      const double relative = MaxDiff(got.layers[l].attribution, reference) / scale;
      EXPECT_LT(relative, 1e-4) << "example " << e << ", layer " << l;
      worst_relative = std::max(worst_relative, relative);
      worst_gap = std::max(worst_gap, got.layers[l].completeness_gap);
      EXPECT_NEAR(got.layers[l].target_at_full, want["target_at_full"].get<double>(), 1e-5);
      EXPECT_NEAR(got.layers[l].target_at_zero, want["target_at_zero"].get<double>(), 1e-5);
      // The reference's own gap, from its numbers: the engine's must be the same (the quadrature
      // is the same), and below 1e-3 where F is smooth in α. DistilBERT's head has a ReLU
      // (pre_classifier), so F is only piecewise smooth and Gauss–Legendre with m = 20 leaves
      // gaps of 1e-3..1e-1 of a small F(A) − F(0) on the reference too (README: families).
      double reference_sum = 0;
      for (float x : reference) reference_sum += x;
      const double reference_gap =
          CompletenessGap(reference_sum, want["target_at_full"].get<double>(),
                          want["target_at_zero"].get<double>());
      EXPECT_NEAR(got.layers[l].completeness_gap, reference_gap, 1e-3 + 0.01 * reference_gap)
          << "example " << e << ", layer " << l;
      if (GetParam() != "distilbert") {
        EXPECT_LT(got.layers[l].completeness_gap, 1e-3) << "example " << e << ", layer " << l;
      }
    }
  }
  std::printf("%s: max |attribution - reference| / layer max %.2e, max completeness gap %.2e\n",
              GetParam().c_str(), worst_relative, worst_gap);
}

// The bf16 integrand (README "Precision") runs on every family — RoPE, grouped-query attention,
// DeBERTa's relative positions, GeGLU/SwiGLU, the LM heads — and stays near fp32 on these tiny
// random checkpoints; F(0) and F(A) are fp32 whatever the precision.
TEST_P(FamilyOracleTest, Bf16IntegrandStaysNearFp32) {
  AttributionOptions fp32;
  fp32.rule = QuadratureRule::kGaussLegendre;
  fp32.steps = oracle_["steps"].get<int>();
  std::vector<Encoding> encodings;
  for (const auto& c : oracle_["attribution"]) encodings.push_back(EncodeIds(c["ids"]));
  AttributionOptions bf16 = fp32;
  bf16.precision = Precision::kBf16;
  auto exact = AttributeEncodings(*model_, encodings, fp32);
  ASSERT_TRUE(exact.ok()) << exact.status();
  auto low = AttributeEncodings(*model_, encodings, bf16);
  ASSERT_TRUE(low.ok()) << low.status();
  double worst = 0, least_overlap = 1;
  for (size_t e = 0; e < encodings.size(); ++e) {
    EXPECT_EQ((*low)[e].precision, Precision::kBf16);
    auto agreement = CompareAttributions((*exact)[e], (*low)[e]);
    ASSERT_TRUE(agreement.ok()) << agreement.status();
    for (size_t l = 0; l < agreement->size(); ++l) {
      worst = std::max(worst, (*agreement)[l].relative_error);
      least_overlap = std::min(least_overlap, (*agreement)[l].top_k_overlap);
      EXPECT_EQ((*low)[e].layers[l].target_at_zero, (*exact)[e].layers[l].target_at_zero);
      EXPECT_EQ((*low)[e].layers[l].target_at_full, (*exact)[e].layers[l].target_at_full);
    }
  }
  // DistilBERT's head has a ReLU (pre_classifier): F is piecewise smooth in α and bf16's rounding
  // moves its kinks, so the integrand differs near them (1.6e-1 of a layer's max on this tiny
  // checkpoint; README "Precision"). Every other family: ~1e-2.
  EXPECT_LT(worst, GetParam() == "distilbert" ? 0.25 : 5e-2);
  EXPECT_GT(worst, 0);
  EXPECT_GE(least_overlap, 0.6);
  std::printf("%s bf16: max |bf16 - fp32| / layer max %.2e, least top-10 overlap %.2f\n",
              GetParam().c_str(), worst, least_overlap);
}

// Expects each layer's attribution within 1e-4 of the reference's largest value, F(A) and F(0)
// within `f_tolerance`, and a completeness gap below 1e-3; returns the worst relative difference.
double ExpectLayersEqualReference(const std::vector<LayerAttribution>& got, const json& layers,
                                  double f_tolerance) {
  EXPECT_EQ(got.size(), layers.size());
  double worst = 0;
  for (size_t l = 0; l < std::min(got.size(), layers.size()); ++l) {
    const auto& want = layers[l];
    const auto reference = Flatten(want["attribution"]);
    double scale = 0;
    for (float x : reference) scale = std::max(scale, std::fabs(double(x)));
    const double relative = MaxDiff(got[l].attribution, reference) / scale;
    EXPECT_LT(relative, 1e-4) << "layer " << l;
    worst = std::max(worst, relative);
    EXPECT_NEAR(got[l].target_at_full, want["target_at_full"].get<double>(), f_tolerance);
    EXPECT_NEAR(got[l].target_at_zero, want["target_at_zero"].get<double>(), f_tolerance);
    EXPECT_LT(got[l].completeness_gap, 1e-3) << "layer " << l;
  }
  return worst;
}

// A causal LM's next-token targets: the log-probability of a token that is not the greedy one
// equals the Python reference (as above), whether named by id or by its text; the prediction keeps
// the kTopTokens most probable tokens, as HF ranks them; text that is not one token is refused.
TEST_P(FamilyOracleTest, NextTokenLogProbEqualsThePythonReference) {
  if (!oracle_.contains("attribution_log_prob")) GTEST_SKIP() << "not a causal LM";
  const auto& expected = oracle_["attribution_log_prob"];
  const int token = expected["target_class"].get<int>();
  AttributionOptions options;
  options.rule = QuadratureRule::kGaussLegendre;
  options.steps = oracle_["steps"].get<int>();
  options.target.kind = TargetKind::kClassLogProb;
  options.target.class_index = token;
  const std::vector<Encoding> encodings = {EncodeIds(expected["ids"])};
  auto by_id = AttributeEncodings(*model_, encodings, options);
  ASSERT_TRUE(by_id.ok()) << by_id.status();
  const auto& got = (*by_id)[0];
  EXPECT_EQ(got.target_class, token);
  EXPECT_NE(got.prediction.predicted, token);
  const double worst = ExpectLayersEqualReference(got.layers, expected["layers"], 1e-4);
  std::printf("%s: log-probability of token %d: max |attribution - reference| / layer max %.2e\n",
              GetParam().c_str(), token, worst);
  // By text: a byte-level piece "Ġword" is the text " word".
  const std::string piece = expected["token"].get<std::string>();
  const std::string text = absl::StartsWith(piece, "\xC4\xA0") ? " " + piece.substr(2) : piece;
  auto id = NextTokenId(*model_, text);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, token) << "'" << text << "'";
  options.target.class_index = -1;
  options.target.next_token = text;
  auto by_text = AttributeEncodings(*model_, encodings, options);
  ASSERT_TRUE(by_text.ok()) << by_text.status();
  EXPECT_EQ((*by_text)[0].target_class, token);
  EXPECT_EQ(MaxDiff((*by_text)[0].layers[0].attribution, got.layers[0].attribution), 0.0);
  // Two words are two tokens: refused, naming the field.
  auto two = NextTokenId(*model_, " the film");
  EXPECT_EQ(two.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(two.status().message(), "target.next_token: ")) << two.status();
  // The prediction: the ten most probable tokens, in HF's order, with their probabilities.
  const auto& forward = oracle_["forward"][0];
  auto predictions = model_->Predict({EncodeIds(forward["ids"])});
  ASSERT_TRUE(predictions.ok()) << predictions.status();
  const auto& p = (*predictions)[0];
  EXPECT_TRUE(p.logits.empty() && p.probabilities.empty());
  ASSERT_EQ(p.top_tokens.size(), static_cast<size_t>(kTopTokens));
  const auto hf = torch::tensor(Flatten(forward["logits"]));
  const auto hf_top = std::get<1>(hf.topk(kTopTokens));
  const auto hf_probs = torch::softmax(hf, 0);
  for (int k = 0; k < kTopTokens; ++k) {
    EXPECT_EQ(p.top_tokens[k].id, hf_top[k].item<int64_t>()) << k;
    EXPECT_NEAR(p.top_tokens[k].probability, hf_probs[p.top_tokens[k].id].item<float>(), 1e-5);
    EXPECT_EQ(p.top_tokens[k].token, model_->tokenizer().IdToToken(p.top_tokens[k].id));
  }
  EXPECT_EQ(p.predicted, p.top_tokens[0].id);
  EXPECT_FLOAT_EQ(p.predicted_probability, p.top_tokens[0].probability);
}

// A causal LM's sequence target: the teacher-forced log-probability of a continuation, its tokens
// appended to the input, equals the Python reference (F summed over the continuation's positions),
// from token ids or from text alike; the result says where the continuation starts.
TEST_P(FamilyOracleTest, SequenceLogProbEqualsThePythonReference) {
  if (!oracle_.contains("attribution_sequence")) {
    // A classifier has no next-token distribution to score a continuation with.
    AttributionOptions options;
    options.target.kind = TargetKind::kSequenceLogProb;
    options.target.continuation = " and it is a good film .";
    const auto s = ValidateAttributionOptions(*model_, options);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StartsWith(s.message(), "target.continuation: model is not a language model"))
        << s;
    return;
  }
  const auto& expected = oracle_["attribution_sequence"];
  const auto prompt = expected["prompt_ids"].get<std::vector<int32_t>>();
  const auto continuation = expected["continuation_ids"].get<std::vector<int32_t>>();
  AttributionOptions options;
  options.rule = QuadratureRule::kGaussLegendre;
  options.steps = oracle_["steps"].get<int>();
  options.target.kind = TargetKind::kSequenceLogProb;
  options.target.continuation = expected["continuation"].get<std::string>();
  auto ids = ContinuationIds(*model_, options.target.continuation);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(*ids, continuation);
  auto results = AttributeEncodings(*model_, {EncodeIds(expected["prompt_ids"])}, options);
  ASSERT_TRUE(results.ok()) << results.status();
  const auto& got = (*results)[0];
  std::vector<int32_t> whole = prompt;
  whole.insert(whole.end(), continuation.begin(), continuation.end());
  EXPECT_EQ(got.encoding.input_ids, whole);
  EXPECT_EQ(got.continuation_start, static_cast<int>(prompt.size()));
  EXPECT_EQ(got.scored_position, static_cast<int>(whole.size()) - 2);
  EXPECT_EQ(got.target_class, -1);
  const double worst = ExpectLayersEqualReference(got.layers, expected["layers"], 2e-4);
  std::printf(
      "%s: log p(continuation of %zu tokens): max |attribution - reference| / layer max "
      "%.2e\n",
      GetParam().c_str(), continuation.size(), worst);
  // From text: the prompt encoded by the model, then the same continuation.
  auto from_text = AttributeExamples(
      *model_, {Example{expected["text"].get<std::string>(), std::nullopt, -1}}, options);
  ASSERT_TRUE(from_text.ok()) << from_text.status();
  EXPECT_EQ((*from_text)[0].encoding.input_ids, whole);
  EXPECT_EQ((*from_text)[0].layers[0].attribution_sum, got.layers[0].attribution_sum);
}

// A copy of the tiny checkpoint of `family` with its config.json rewritten by `edit_config` and its
// tensors by `edit` (name -> tensor), in `dir`.
void RewriteCheckpoint(const std::string& family, const std::string& dir,
                       const std::function<void(json&)>& edit_config,
                       const std::function<void(std::map<std::string, torch::Tensor>&)>& edit) {
  const std::string from = OracleDir(family);
  for (const char* file : {"tokenizer.json", "tokenizer_config.json"}) {
    std::filesystem::copy_file(from + "/" + file, dir + "/" + file);
  }
  json config = json::parse(std::ifstream(from + "/config.json"));
  edit_config(config);
  std::ofstream(dir + "/config.json") << config.dump();
  auto tensors = ::attattr::testing::ReadFloatTensors(from);
  edit(tensors);
  ASSERT_TRUE(::attattr::testing::WriteFloatTensors(dir + "/model.safetensors", tensors));
}

// The last hidden state of `model` for the oracle's first forward input.
torch::Tensor LastHidden(const Model& model, const json& oracle) {
  Example ex;
  ex.text = oracle["forward"][0]["text"].get<std::string>();
  auto enc = model.Encode(ex);
  EXPECT_TRUE(enc.ok()) << enc.status();
  torch::NoGradGuard no_grad;
  const auto& impl = model.impl();
  return impl.encoder->Forward(MakeBatch({*enc}, {0}, impl.device)).last_hidden;
}

// ModernBERT configs as transformers 4.x saved them (global_attn_every_n_layers, global_rope_theta,
// local_rope_theta; no layer_types or rope_parameters) load as the same model; a masked-LM
// checkpoint (prediction head and decoder, no classifier) loads as the encoder.
TEST(ModernBertCheckpointTest, OldConfigKeysAndMaskedLmLayoutLoad) {
  json oracle = json::parse(std::ifstream(OracleDir("modernbert") + "/oracle.json"));
  auto reference = Model::Load(OracleDir("modernbert"));
  ASSERT_TRUE(reference.ok()) << reference.status();
  const auto want = LastHidden(**reference, oracle);

  ::attattr::testing::TempDir old_keys("attattr-modernbert-4x");
  RewriteCheckpoint(
      "modernbert", old_keys.path(),
      [](json& c) {
        ASSERT_EQ(c["layer_types"],
                  json({"full_attention", "sliding_attention", "full_attention"}));
        c["global_rope_theta"] = c["rope_parameters"]["full_attention"]["rope_theta"];
        c["local_rope_theta"] = c["rope_parameters"]["sliding_attention"]["rope_theta"];
        c["global_attn_every_n_layers"] = 2;
        c.erase("layer_types");
        c.erase("rope_parameters");
      },
      [](auto&) {});
  auto old_model = Model::Load(old_keys.path());
  ASSERT_TRUE(old_model.ok()) << old_model.status();
  EXPECT_EQ(MaxDiff(ToVector(LastHidden(**old_model, oracle)), ToVector(want)), 0.0);
  // Another base for the sliding layer's rotary positions changes the result: the key is read.
  ::attattr::testing::TempDir other_theta("attattr-modernbert-theta");
  RewriteCheckpoint(
      "modernbert", other_theta.path(),
      [](json& c) { c["rope_parameters"]["sliding_attention"]["rope_theta"] = 500.0; },
      [](auto&) {});
  auto other = Model::Load(other_theta.path());
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_GT(MaxDiff(ToVector(LastHidden(**other, oracle)), ToVector(want)), 1e-3);

  ::attattr::testing::TempDir mlm("attattr-modernbert-mlm");
  RewriteCheckpoint(
      "modernbert", mlm.path(),
      [](json& c) { c["architectures"] = json({"ModernBertForMaskedLM"}); },
      [](std::map<std::string, torch::Tensor>& t) {
        const int64_t vocab = t["model.embeddings.tok_embeddings.weight"].size(0);
        t.erase("classifier.weight");
        t.erase("classifier.bias");
        t["decoder.bias"] = torch::zeros({vocab});
      });
  auto encoder_only = Model::Load(mlm.path());
  ASSERT_TRUE(encoder_only.ok()) << encoder_only.status();
  EXPECT_FALSE(encoder_only->get()->info().has_classifier);
  EXPECT_EQ(encoder_only->get()->info().architecture, "ModernBertModel");
  EXPECT_EQ(MaxDiff(ToVector(LastHidden(**encoder_only, oracle)), ToVector(want)), 0.0);
}

// Replaces the post-processor of `dir`'s tokenizer.json.
void RewritePostProcessor(const std::string& dir, const json& post_processor) {
  json tokenizer = json::parse(std::ifstream(dir + "/tokenizer.json"));
  tokenizer["post_processor"] = post_processor;
  std::ofstream(dir + "/tokenizer.json") << tokenizer.dump();
}

// A checkpoint whose tokenizer gives what its embeddings cannot look up is refused per request with
// the reason, never indexed (on a GPU an out-of-range index breaks every later call): RoBERTa has
// one token type, and a template that gives the second text type 1; a template that repeats the
// text, which outgrows the positions.
TEST(HostileCheckpointTest, TokensTheEmbeddingsCannotLookUpAreRefusedPerRequest) {
  const json special = {{"<s>", {{"id", "<s>"}, {"ids", {0}}, {"tokens", {"<s>"}}}},
                        {"</s>", {{"id", "</s>"}, {"ids", {2}}, {"tokens", {"</s>"}}}}};
  auto piece = [](const char* kind, const char* id, int type) {
    return json{{kind, {{"id", id}, {"type_id", type}}}};
  };
  ::attattr::testing::TempDir typed("attattr-hostile-types");
  RewriteCheckpoint(
      "roberta", typed.path(), [](json&) {}, [](auto&) {});
  RewritePostProcessor(typed.path(), {{"type", "TemplateProcessing"},
                                      {"single",
                                       {piece("SpecialToken", "<s>", 0), piece("Sequence", "A", 0),
                                        piece("SpecialToken", "</s>", 0)}},
                                      {"pair",
                                       {piece("SpecialToken", "<s>", 0), piece("Sequence", "A", 0),
                                        piece("SpecialToken", "</s>", 0), piece("Sequence", "B", 1),
                                        piece("SpecialToken", "</s>", 1)}},
                                      {"special_tokens", special}});
  auto model = Model::Load(typed.path());
  ASSERT_TRUE(model.ok()) << model.status();
  Example single;
  single.text = "a fine movie";
  EXPECT_TRUE(model->get()->Encode(single).ok());
  Example pair = single;
  pair.text_pair = "it was";
  auto refused = model->get()->Encode(pair);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
  EXPECT_NE(refused.status().message().find("text_pair: the tokenizer gave token type 1 but the "
                                            "model has 1 token type"),
            std::string::npos)
      << refused.status();
  // The same check of an encoding the tokenizer made directly (the Explain RPC tokenizes without
  // truncation to tell an over-long text, then checks it: regression, job-spec review).
  auto raw = model->get()->tokenizer().Encode("a fine movie", std::string_view("it was"), 1 << 20);
  ASSERT_TRUE(raw.ok()) << raw.status();
  const absl::Status checked = model->get()->CheckEncoding(*raw, /*pair=*/true);
  EXPECT_EQ(checked.code(), absl::StatusCode::kInvalidArgument) << checked;
  EXPECT_NE(checked.message().find("text_pair: the tokenizer gave token type 1"), std::string::npos)
      << checked;

  ::attattr::testing::TempDir repeated("attattr-hostile-repeat");
  RewriteCheckpoint(
      "roberta", repeated.path(), [](json&) {}, [](auto&) {});
  RewritePostProcessor(repeated.path(),
                       {{"type", "TemplateProcessing"},
                        {"single",
                         {piece("SpecialToken", "<s>", 0), piece("Sequence", "A", 0),
                          piece("Sequence", "A", 0), piece("SpecialToken", "</s>", 0)}},
                        {"pair", {piece("Sequence", "A", 0), piece("Sequence", "B", 0)}},
                        {"special_tokens", special}});
  auto twice = Model::Load(repeated.path());
  ASSERT_TRUE(twice.ok()) << twice.status();
  Example longest;
  for (int i = 0; i < twice->get()->info().max_length; ++i) longest.text += "a ";
  auto grown = twice->get()->Encode(longest);
  ASSERT_EQ(grown.status().code(), absl::StatusCode::kInvalidArgument) << grown.status();
  EXPECT_NE(grown.status().message().find("post-processor made"), std::string::npos)
      << grown.status();
}

// Configs as released checkpoints write them: Mistral's `"sliding_window": null` (v0.2 on) is no
// window; a rotary head size that is odd is refused when the config is read.
TEST(DecoderConfigTest, NullSlidingWindowLoadsAndAnOddRotaryHeadIsRefused) {
  ::attattr::testing::TempDir unwindowed("attattr-mistral-null-window");
  RewriteCheckpoint(
      "mistral", unwindowed.path(), [](json& c) { c["sliding_window"] = nullptr; }, [](auto&) {});
  auto mistral = Model::Load(unwindowed.path());
  EXPECT_TRUE(mistral.ok()) << mistral.status();

  ::attattr::testing::TempDir odd("attattr-llama-odd-head");
  RewriteCheckpoint(
      "llama", odd.path(),
      [](json& c) {
        const int hidden = c["hidden_size"].get<int>();
        c["num_attention_heads"] = hidden;  // head size 1
        c["num_key_value_heads"] = hidden;
        c.erase("head_dim");
      },
      [](auto&) {});
  auto refused = Model::Load(odd.path());
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
  EXPECT_NE(refused.status().message().find("(1) is odd"), std::string::npos) << refused.status();
}

// GPT-2 checkpoints in the other layouts Hugging Face writes load as the same decoder: with the
// causal-mask buffers older transformers saved in every layer (`attn.bias`, `attn.masked_bias`),
// as a causal LM (`transformer.*` and `lm_head`, no classifier), and as a bare `GPT2Model`.
TEST(Gpt2CheckpointTest, BuffersLmHeadAndBareLayoutsLoad) {
  json oracle = json::parse(std::ifstream(OracleDir("gpt2") + "/oracle.json"));
  auto reference = Model::Load(OracleDir("gpt2"));
  ASSERT_TRUE(reference.ok()) << reference.status();
  const auto want = LastHidden(**reference, oracle);
  const int layers = reference->get()->info().num_layers;
  const int positions = reference->get()->info().max_length;

  ::attattr::testing::TempDir buffers("attattr-gpt2-buffers");
  RewriteCheckpoint(
      "gpt2", buffers.path(), [](json&) {},
      [&](std::map<std::string, torch::Tensor>& t) {
        for (int l = 0; l < layers; ++l) {
          const std::string p = "transformer.h." + std::to_string(l) + ".attn.";
          t[p + "bias"] = torch::ones({1, 1, positions, positions}).tril();
          t[p + "masked_bias"] = torch::full({1}, -1e4);
        }
      });
  auto with_buffers = Model::Load(buffers.path());
  ASSERT_TRUE(with_buffers.ok()) << with_buffers.status();
  EXPECT_TRUE(with_buffers->get()->info().has_classifier);
  EXPECT_EQ(MaxDiff(ToVector(LastHidden(**with_buffers, oracle)), ToVector(want)), 0.0);

  ::attattr::testing::TempDir lm("attattr-gpt2-lm");
  RewriteCheckpoint(
      "gpt2", lm.path(), [](json& c) { c["architectures"] = json({"GPT2LMHeadModel"}); },
      [](std::map<std::string, torch::Tensor>& t) {
        t["lm_head.weight"] = t["transformer.wte.weight"].clone();
        t.erase("score.weight");
      });
  auto causal_lm = Model::Load(lm.path());
  ASSERT_TRUE(causal_lm.ok()) << causal_lm.status();
  EXPECT_TRUE(causal_lm->get()->info().language_model);
  EXPECT_TRUE(causal_lm->get()->info().labels.empty());
  EXPECT_EQ(causal_lm->get()->info().num_classes, causal_lm->get()->info().vocab_size);
  EXPECT_EQ(causal_lm->get()->info().architecture, "GPT2LMHeadModel");
  EXPECT_EQ(MaxDiff(ToVector(LastHidden(**causal_lm, oracle)), ToVector(want)), 0.0);

  ::attattr::testing::TempDir bare("attattr-gpt2-bare");
  RewriteCheckpoint(
      "gpt2", bare.path(), [](json& c) { c["architectures"] = json({"GPT2Model"}); },
      [](std::map<std::string, torch::Tensor>& t) {
        std::map<std::string, torch::Tensor> renamed;
        const std::string prefix = "transformer.";
        for (const auto& [name, v] : t) {
          if (name.rfind(prefix, 0) == 0) renamed[name.substr(prefix.size())] = v;
        }
        t = std::move(renamed);
      });
  auto base = Model::Load(bare.path());
  ASSERT_TRUE(base.ok()) << base.status();
  EXPECT_FALSE(base->get()->info().has_classifier);
  EXPECT_EQ(MaxDiff(ToVector(LastHidden(**base, oracle)), ToVector(want)), 0.0);
  // A Conv1D weight saved in torch::linear's orientation ([out, in]) is refused, naming it.
  ::attattr::testing::TempDir flipped("attattr-gpt2-flipped");
  RewriteCheckpoint(
      "gpt2", flipped.path(), [](json&) {},
      [](std::map<std::string, torch::Tensor>& t) {
        auto& w = t["transformer.h.0.mlp.c_fc.weight"];
        w = w.t().contiguous();
      });
  auto bad = Model::Load(flipped.path());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("transformer.h.0.mlp.c_fc.weight"), std::string::npos)
      << bad.status();
}

// A Llama-family causal LM with tie_word_embeddings (as Llama-3.2-1B and Qwen2-0.5B ship, no
// lm_head.weight saved) reads its next-token logits off the input embeddings; one whose config
// says untied but that lacks lm_head.weight is refused, naming the tensor.
TEST(LlamaLmCheckpointTest, TiedEmbeddingsServeAsTheHeadAndAMissingHeadIsRefused) {
  json oracle = json::parse(std::ifstream(OracleDir("llama-lm") + "/oracle.json"));
  ::attattr::testing::TempDir tied("attattr-llama-tied");
  torch::Tensor embed;
  RewriteCheckpoint(
      "llama-lm", tied.path(), [](json& c) { c["tie_word_embeddings"] = true; },
      [&](std::map<std::string, torch::Tensor>& t) {
        t.erase("lm_head.weight");
        embed = t["model.embed_tokens.weight"];
      });
  auto model = Model::Load(tied.path());
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_TRUE(model->get()->info().language_model);
  EXPECT_EQ(model->get()->info().architecture, "LlamaForCausalLM");
  const auto hidden = LastHidden(**model, oracle);  // [1, n, d], final RMSNorm applied
  Example ex;
  ex.text = oracle["forward"][0]["text"].get<std::string>();
  auto enc = model->get()->Encode(ex);
  ASSERT_TRUE(enc.ok()) << enc.status();
  auto predictions = model->get()->Predict({*enc});
  ASSERT_TRUE(predictions.ok()) << predictions.status();
  const auto want = torch::matmul(hidden[0][hidden.size(1) - 1], embed.t());
  const auto& top = (*predictions)[0].top_tokens;
  ASSERT_FALSE(top.empty());
  EXPECT_EQ(top[0].id, want.argmax().item<int64_t>());
  for (const auto& t : top) EXPECT_NEAR(t.logit, want[t.id].item<float>(), 1e-4) << t.id;

  ::attattr::testing::TempDir headless("attattr-llama-headless");
  RewriteCheckpoint(
      "llama-lm", headless.path(), [](json&) {},
      [](std::map<std::string, torch::Tensor>& t) { t.erase("lm_head.weight"); });
  auto refused = Model::Load(headless.path());
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kNotFound) << refused.status();
  EXPECT_NE(refused.status().message().find("missing tensor 'lm_head.weight'"), std::string::npos)
      << refused.status();
}

// Every RoPE scaling type the engine reads (default, linear, dynamic NTK below and past its length,
// llama3, YaRN with and without truncation, mscale, a given attention factor or a null factor):
// from the config.json transformers writes, the inverse frequencies and the cos/sin scaling equal
// what HF's own ROPE_INIT_FUNCTIONS compute (oracle.json "rope_variants").
TEST(RopeScalingTest, FrequenciesEqualHuggingFace) {
  json oracle = json::parse(std::ifstream(OracleDir("llama") + "/oracle.json"));
  ASSERT_GE(oracle["rope_variants"].size(), 10u);
  for (const auto& v : oracle["rope_variants"]) {
    SCOPED_TRACE(v["config"]["rope_parameters"].dump());
    auto config = ParseModelConfig(v["config"].dump(), "config.json");
    ASSERT_TRUE(config.ok()) << config.status();
    const int head_dim = config->hidden_size / config->num_attention_heads;
    const RotaryEmbedding rope(config->decoder.rope, head_dim, torch::kCPU);
    const int64_t n = std::max<int64_t>(v["seq_len"].get<int64_t>(), 1);
    const auto got = ToVector(rope.InverseFrequencies(n));
    const auto want = v["inv_freq"].get<std::vector<float>>();
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_NEAR(got[i], want[i], 1e-6 * std::abs(want[i])) << "frequency " << i;
    }
    EXPECT_NEAR(rope.attention_scaling(), v["attention_scaling"].get<double>(), 1e-12);
  }
  // Past its length, dynamic NTK's frequencies differ from those it starts with.
  auto dynamic = ParseModelConfig(oracle["rope_variants"][2]["config"].dump(), "config.json");
  ASSERT_TRUE(dynamic.ok()) << dynamic.status();
  const RotaryEmbedding rope(dynamic->decoder.rope, 16, torch::kCPU);
  EXPECT_GT(
      MaxDiff(ToVector(rope.InverseFrequencies(1000)), ToVector(rope.InverseFrequencies(256))),
      1e-3);
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyOracleTest,
                         ::testing::Values("bert", "distilbert", "electra", "roberta",
                                           "xlm-roberta", "deberta-v2", "modernbert", "llama",
                                           "mistral", "qwen2", "gpt2", "llama-lm", "gpt2-lm"),
                         [](const auto& info) {
                           std::string name = info.param;  // test names are [A-Za-z0-9_]
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace attattr::engine
