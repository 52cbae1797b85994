// `attattr explain` on the families with tokenizer.json vocabularies, as a user runs it against a
// checkpoint directory: the tiny RoBERTa and ModernBERT (byte-level BPE), XLM-RoBERTa and
// DeBERTa-v2 (Unigram) checkpoints that Hugging Face saved for the family oracle (tests/oracle,
// CTest fixture `oracle_checkpoints`). Their special tokens and pair templates (<s> A </s></s> B
// </s>, [CLS] A [SEP] B [SEP]) reach the output, the tree's nodes are the family's own pieces, and
// completeness holds.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "support/server_process.h"
#include "support/test_paths.h"

namespace {

using ::attattr::testing::BinDir;

::attattr::testing::CommandResult RunCli(const std::string& args) {
  return ::attattr::testing::RunCommand(BinDir() + "/attattr " + args + " 2>/dev/null");
}

class FamilyCliTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::string Model() const {
    return "--model " + std::string(ATTATTR_ORACLE_DIR) + "/" + GetParam() + " --threads 1";
  }
};

TEST_P(FamilyCliTest, ExplainsAPairWithTheFamilysTemplateAndTree) {
  auto r = RunCli("explain " + Model() +
                  " --text 'a gorgeous , witty movie .' --text-pair 'it is bad .' --tree");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  const auto tokens = j["tokens"].get<std::vector<std::string>>();
  ASSERT_GE(tokens.size(), 6u);
  const bool bert_template =
      GetParam() == "deberta-v2" || GetParam() == "modernbert";  // [CLS] [SEP]
  const std::string cls = bert_template ? "[CLS]" : "<s>", sep = bert_template ? "[SEP]" : "</s>";
  EXPECT_EQ(tokens.front(), cls);
  EXPECT_EQ(tokens.back(), sep);
  std::vector<size_t> separators;  // inside the encoding
  for (size_t i = 1; i + 1 < tokens.size(); ++i) {
    if (tokens[i] == sep) separators.push_back(i);
  }
  if (bert_template) {
    EXPECT_EQ(separators.size(), 1u) << "[CLS] A [SEP] B [SEP]";
  } else {
    ASSERT_EQ(separators.size(), 2u) << "<s> A </s></s> B </s>";
    EXPECT_EQ(separators[1], separators[0] + 1);
  }
  ASSERT_EQ(j["layers"].size(), 3u);
  for (const auto& layer : j["layers"]) {
    EXPECT_LT(layer["completeness_gap"].get<double>(), 1e-3);
  }
  ASSERT_TRUE(j.contains("tree"));
  ASSERT_FALSE(j["tree"]["nodes"].empty());
  for (const auto& node : j["tree"]["nodes"]) {  // the family's pieces, at their positions
    EXPECT_EQ(node["token"], tokens.at(node["position"].get<size_t>()));
  }
}

TEST_P(FamilyCliTest, TextOutputNamesTheTokens) {
  auto r = RunCli("explain " + Model() + " --text 'the plot is a mess' --format text");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("prediction:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("layer 2"), std::string::npos) << r.out;
}

// Test names are [A-Za-z0-9_]: "xlm-roberta" -> "xlm_roberta".
std::string ParamName(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  for (char& c : name) c = c == '-' ? '_' : c;
  return name;
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyCliTest,
                         ::testing::Values("roberta", "xlm-roberta", "deberta-v2", "modernbert"),
                         ParamName);

// A decoder (Llama, GPT-2) explains from the command line like an encoder (its attributions
// lower-triangular); its tree is rooted at the last token, which its classifier reads.
class DecoderCliTest : public ::testing::TestWithParam<std::string> {};

TEST_P(DecoderCliTest, ExplainsCausallyWithTreesAtTheLastToken) {
  const std::string model = "--model " + std::string(ATTATTR_ORACLE_DIR) + "/" + GetParam() +
                            " --threads 1 --text 'a witty movie .'";
  auto r = RunCli("explain " + model + " --rule gauss-legendre --steps 20");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  // Llama's tokenizer puts its BOS first; GPT-2's adds nothing.
  EXPECT_EQ(j["tokens"][0], GetParam().rfind("llama", 0) == 0 ? "<|begin_of_text|>" : "a");
  for (const auto& layer : j["layers"]) {
    EXPECT_LT(layer["completeness_gap"].get<double>(), 1e-3);
    for (const auto& head : layer["attribution"]) {  // query i reads keys j <= i only
      for (size_t i = 0; i < head.size(); ++i) {
        for (size_t k = i + 1; k < head[i].size(); ++k) EXPECT_EQ(head[i][k].get<float>(), 0.0f);
      }
    }
  }
  auto tree = RunCli("explain " + model + " --steps 2 --tree --tau 0.1");
  ASSERT_EQ(tree.exit_code, 0) << tree.out;
  auto t = nlohmann::json::parse(tree.out);
  const int last = static_cast<int>(t["tokens"].size()) - 1;
  ASSERT_TRUE(t.contains("tree")) << tree.out;
  EXPECT_EQ(t["tree"]["root"], last);
  for (const auto& node : t["tree"]["nodes"]) EXPECT_NE(node["position"], last);
}

// A causal LM explains the log-probability of a next token given as text, and says what it would
// predict next; text that is not one token is refused, naming the field.
TEST_P(DecoderCliTest, CausalLanguageModelsExplainNextTokens) {
  if (GetParam().find("-lm") == std::string::npos) GTEST_SKIP() << "a classifier";
  const std::string model = "--model " + std::string(ATTATTR_ORACLE_DIR) + "/" + GetParam() +
                            " --threads 1 --text 'a witty movie .' --steps 8";
  auto r = RunCli("explain " + model + " --target \"next_token_logprob: the\" --format text");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("next token: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("target: next_token_logprob: the"), std::string::npos) << r.out;
  auto j = RunCli("explain " + model + " --target \"next_token: the\"");
  ASSERT_EQ(j.exit_code, 0) << j.out;
  auto json = nlohmann::json::parse(j.out);
  EXPECT_EQ(json["prediction"]["top_tokens"].size(), 10u);
  EXPECT_EQ(json["prediction"]["token_id"], json["prediction"]["top_tokens"][0]["id"]);
  for (const auto& layer : json["layers"]) {
    EXPECT_GT(layer["target_at_full"].get<double>(), 0.0);  // a probability this time
    EXPECT_LT(layer["completeness_gap"].get<double>(), 1e-2);
  }
  auto sequence = RunCli("explain " + model + " --target \"sequence_logprob: and it is good\"");
  ASSERT_EQ(sequence.exit_code, 0) << sequence.out;
  auto seq = nlohmann::json::parse(sequence.out);
  EXPECT_EQ(seq["target"], "sequence_logprob: and it is good");
  EXPECT_LT(seq["layers"][0]["target_at_full"].get<double>(), 0.0);  // a log-probability
  auto refused = ::attattr::testing::RunCommand(BinDir() + "/attattr explain " + model +
                                                " --target \"next_token: the film\" 2>&1");
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.out.find("--target: next_token: ' the film' is 2 tokens"), std::string::npos)
      << refused.out;
}

INSTANTIATE_TEST_SUITE_P(Decoders, DecoderCliTest,
                         ::testing::Values("llama", "gpt2", "llama-lm", "gpt2-lm"), ParamName);

}  // namespace
