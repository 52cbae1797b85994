// Each model family against Hugging Face itself (tests/oracle): tiny random checkpoints that HF
// `transformers` built and saved (bert, distilbert, electra, roberta, xlm-roberta, and deberta-v2
// with its disentangled relative-position attention; WordPiece, byte-level BPE and Unigram
// tokenizers from tokenizer.json), and what HF answered about them — token ids of 505 strings,
// logits and every layer's attention probabilities, and self-attention attributions computed by an
// independent Python reference (HF's model with layer l's probabilities replaced, autograd,
// Gauss–Legendre m = 20). The engine must load each checkpoint as saved and agree: ids exactly,
// logits and probabilities within 1e-4, attributions within 1e-4 of each layer's largest value,
// F(A) and F(0) within 1e-5, the reference's completeness gap, and a gap below 1e-3 where the
// target is smooth in α (not DistilBERT, whose head has a ReLU).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "attattr/engine/attention_attribution.h"
#include "attattr/engine/completeness_gap.h"
#include "attattr/engine/model.h"
#include "attattr/engine/wordpiece_tokenizer.h"
#include "model_impl.h"
#include "nlohmann/json.hpp"

namespace attattr::engine {
namespace {

using nlohmann::json;

std::string OracleDir(const std::string& family) {
  return std::string(ATTATTR_ORACLE_DIR) + "/" + family;
}

class FamilyOracleTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string dir = OracleDir(GetParam());
    std::ifstream in(dir + "/oracle.json");
    ASSERT_TRUE(in.good()) << dir << "/oracle.json is missing: the CTest fixture "
                           << "oracle_checkpoints (tests/oracle) writes it";
    oracle_ = json::parse(in);
    auto model = Model::Load(dir);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
    ASSERT_EQ(model_->info().family, GetParam());
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
    EXPECT_LT(MaxDiff(ToVector(out.logits[0]), Flatten(c["logits"])), 1e-4) << ex.text;
    const auto& attentions = c["attentions"];
    ASSERT_EQ(out.attentions.size(), attentions.size());
    for (size_t l = 0; l < attentions.size(); ++l) {
      EXPECT_LT(MaxDiff(ToVector(out.attentions[l][0]), Flatten(attentions[l])), 1e-4)
          << ex.text << ", layer " << l;
    }
  }
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
      EXPECT_LT(MaxDiff(got.layers[l].attribution, reference) / scale, 1e-4)
          << "example " << e << ", layer " << l;
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
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyOracleTest,
                         ::testing::Values("bert", "distilbert", "electra", "roberta",
                                           "xlm-roberta", "deberta-v2"),
                         [](const auto& info) {
                           std::string name = info.param;  // test names are [A-Za-z0-9_]
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace attattr::engine
