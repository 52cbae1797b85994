// A decoder sequence classifier's pad_token_id (Model::EndAtScoredToken): transformers scores the
// rightmost token that is not pad_token_id — with pad = EOS, common for Llama classifiers, the
// token before a trailing EOS. Regression (model-config review): the engine scored the last token,
// so such an input got another token's score; then it refused the input; now it ends the encoding
// at the token transformers scores and gives transformers' logits (oracle.json "pad_scored": a
// text with a literal pad token inside, which is read, and two at its end, which are skipped).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "attattr/engine/model.h"
#include "nlohmann/json.hpp"
#include "support/oracle_dir.h"

namespace attattr::engine {
namespace {

class DecoderPadTokenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(DecoderPadTokenTest, TheClassifierScoresTheRightmostTokenThatIsNotPad) {
  const nlohmann::json oracle = ::attattr::testing::ReadOracleJson(GetParam());
  ASSERT_TRUE(oracle.contains("pad_scored")) << GetParam();
  const auto& c = oracle["pad_scored"];
  auto model = Model::Load(::attattr::testing::OracleDir(GetParam()));
  ASSERT_TRUE(model.ok()) << model.status();
  const auto hf_ids = c["ids"].get<std::vector<int32_t>>();
  ASSERT_GE(hf_ids.size(), 3u);
  const int32_t pad = hf_ids.back();
  ASSERT_EQ(hf_ids[hf_ids.size() - 2], pad);

  auto encoded = (*model)->Encode({c["text"].get<std::string>(), std::nullopt, -1});
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  // The tokenizer's ids up to the scored token: the inner pad kept, the two trailing ones cut,
  // with the tokens, types and offsets that go with them.
  const std::vector<int32_t> scored(hf_ids.begin(), hf_ids.end() - 2);
  EXPECT_EQ(encoded->input_ids, scored);
  EXPECT_NE(std::find(scored.begin(), scored.end(), pad), scored.end());
  EXPECT_EQ(encoded->tokens.size(), scored.size());
  EXPECT_EQ(encoded->token_type_ids.size(), scored.size());
  EXPECT_EQ(encoded->offsets.size(), scored.size());

  auto predictions = (*model)->Predict({*encoded});
  ASSERT_TRUE(predictions.ok()) << predictions.status();
  const auto hf_logits = c["logits"].get<std::vector<float>>();
  ASSERT_EQ(predictions->at(0).logits.size(), hf_logits.size());
  for (size_t k = 0; k < hf_logits.size(); ++k) {
    EXPECT_NEAR(predictions->at(0).logits[k], hf_logits[k], 1e-4) << "class " << k;
  }

  // An encoding made elsewhere (the Explain RPC tokenizes itself) is cut the same way; one that
  // is all pad ids keeps its first token, the position transformers reads.
  Encoding raw = *encoded;
  raw.tokens.push_back(raw.tokens.back());
  raw.input_ids.push_back(pad);
  raw.token_type_ids.push_back(0);
  raw.offsets.push_back({});
  ASSERT_TRUE((*model)->EndAtScoredToken(&raw, false).ok());
  EXPECT_EQ(raw.input_ids, scored);
  Encoding all_pad;
  all_pad.tokens = {"p", "p", "p"};
  all_pad.input_ids = {pad, pad, pad};
  all_pad.token_type_ids = {0, 0, 0};
  all_pad.offsets.assign(3, {0, 0, 1});
  ASSERT_TRUE((*model)->EndAtScoredToken(&all_pad, false).ok());
  EXPECT_EQ(all_pad.input_ids, std::vector<int32_t>{pad});
  EXPECT_EQ(all_pad.tokens.size(), 1u);
}

// A segment of nothing but pad tokens after the last scored token would be cut away entirely:
// refused naming the segment (regression, review: a pair example became a single sentence and a
// BOS-only text passed the submission checks, then failed trigger search at run time).
TEST(DecoderPadTokenSegmentTest, ASegmentOfOnlyPadTokensIsRefusedNamingIt) {
  auto model = Model::Load(::attattr::testing::OracleDir("llama"));  // BOS before each segment
  ASSERT_TRUE(model.ok()) << model.status();
  auto text = (*model)->Encode({"<|pad|>", std::nullopt, -1});
  ASSERT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument) << text.status();
  EXPECT_NE(text.status().message().find("text: holds only the model's pad_token_id"),
            std::string::npos)
      << text.status();
  auto pair = (*model)->Encode({"a fine film", std::string("<|pad|><|pad|>"), -1});
  ASSERT_EQ(pair.status().code(), absl::StatusCode::kInvalidArgument) << pair.status();
  EXPECT_NE(pair.status().message().find("text_pair: holds only"), std::string::npos)
      << pair.status();
  // A pad token that is not at the end is read.
  EXPECT_TRUE((*model)->Encode({"<|pad|> a fine film", std::nullopt, -1}).ok());
  // Without a BOS the only token is kept, as transformers reads position 0.
  auto gpt2 = Model::Load(::attattr::testing::OracleDir("gpt2"));
  ASSERT_TRUE(gpt2.ok()) << gpt2.status();
  auto alone = (*gpt2)->Encode({"<|pad|>", std::nullopt, -1});
  ASSERT_TRUE(alone.ok()) << alone.status();
  EXPECT_EQ(alone->size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Families, DecoderPadTokenTest,
                         ::testing::Values("llama", "mistral", "qwen2", "gpt2"));

// A causal LM has no pad rule: its encodings are left as the tokenizer made them.
TEST(DecoderPadTokenLmTest, ALanguageModelKeepsTrailingPadIds) {
  auto model = Model::Load(::attattr::testing::OracleDir("llama-lm"));
  ASSERT_TRUE(model.ok()) << model.status();
  auto encoded = (*model)->Encode({"a fine film<|pad|>", std::nullopt, -1});
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  ASSERT_GE(encoded->tokens.size(), 2u);
  EXPECT_EQ(encoded->tokens.back(), "<|pad|>");
}

}  // namespace
}  // namespace attattr::engine
