// HfTokenizer (tokenizer.json through the Hugging Face tokenizers crate) on the oracle's tiny
// checkpoints (tests/oracle, CTest fixture `oracle_checkpoints`): the algorithm each file names,
// special and word-continuing pieces as trigger search needs them, byte spans and segments of a
// pair under each family's template, the errors a client can cause (text that is not UTF-8, a
// max_length that cannot hold the special tokens, a file that is not a tokenizer), and many
// threads encoding with one tokenizer. Equality with Hugging Face on 505 strings is
// family_oracle_test's.
#include "attattr/engine/hf_tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "attattr/engine/trigger_insertion.h"
#include "nlohmann/json.hpp"

namespace attattr::engine {
namespace {

std::unique_ptr<HfTokenizer> LoadFamily(const std::string& family) {
  auto t = HfTokenizer::Load(std::string(ATTATTR_ORACLE_DIR) + "/" + family + "/tokenizer.json");
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? std::move(*t) : nullptr;
}

TEST(HfTokenizerTest, KindsSpecialsAndWordStarts) {
  const auto bpe = LoadFamily("roberta");
  const auto unigram = LoadFamily("xlm-roberta");
  const auto wordpiece = LoadFamily("bert");
  ASSERT_TRUE(bpe && unigram && wordpiece);
  EXPECT_EQ(bpe->kind(), "bpe");
  EXPECT_EQ(unigram->kind(), "unigram");
  EXPECT_EQ(wordpiece->kind(), "wordpiece");
  for (const auto* t : {bpe.get(), unigram.get()}) {
    EXPECT_TRUE(t->IsSpecial(*t->TokenToId("<s>")));
    EXPECT_TRUE(t->IsSpecial(*t->TokenToId("</s>")));
    EXPECT_FALSE(t->TokenToId("[CLS]").has_value());
  }
  EXPECT_TRUE(wordpiece->IsSpecial(*wordpiece->TokenToId("[CLS]")));
  // Word starts carry the algorithm's marker; "##" continues a WordPiece word.
  auto film = bpe->Encode("a film", std::nullopt, 16);
  ASSERT_TRUE(film.ok());
  ASSERT_EQ(film->tokens.size(), 4u);  // <s> a Ġfilm </s>
  EXPECT_EQ(film->tokens[2],
            "\xC4\xA0"
            "film");
  EXPECT_FALSE(bpe->ContinuesWord(film->input_ids[2]));
  auto sp = unigram->Encode("a film", std::nullopt, 16);
  ASSERT_TRUE(sp.ok());
  EXPECT_FALSE(unigram->ContinuesWord(sp->input_ids[1]));  // "▁a"
  EXPECT_TRUE(wordpiece->ContinuesWord(*wordpiece->TokenToId("##s")));
  EXPECT_FALSE(wordpiece->ContinuesWord(*wordpiece->TokenToId("film")));
  EXPECT_EQ(bpe->IdToToken(-1), "");
  EXPECT_EQ(bpe->IdToToken(bpe->vocab_size()), "");
}

TEST(HfTokenizerTest, PairSpansAndSegmentsFollowTheTemplate) {
  const auto bpe = LoadFamily("roberta");
  ASSERT_TRUE(bpe);
  const std::string a = "a gorgeous movie", b = "it is bad";
  auto e = bpe->Encode(a, b, 64);
  ASSERT_TRUE(e.ok()) << e.status();
  auto bounds = FindSegments(*e);
  ASSERT_TRUE(bounds.ok()) << bounds.status();
  EXPECT_EQ(e->tokens[static_cast<size_t>(bounds->a_end)], "</s>");
  EXPECT_EQ(e->tokens[static_cast<size_t>(bounds->a_end) + 1], "</s>");
  for (size_t i = 0; i < e->size(); ++i) {
    const auto& span = e->offsets[i];
    if (span.segment < 0) continue;
    const std::string& text = span.segment == 0 ? a : b;
    ASSERT_LE(span.end, text.size());
    // A piece's span covers its word (byte-level BPE trims the leading space from the span).
    const std::string piece = text.substr(span.begin, span.end - span.begin);
    EXPECT_NE(e->tokens[i].find(piece), std::string::npos) << e->tokens[i] << " vs " << piece;
  }
  // Longest-first truncation keeps both segments and every special token.
  auto cut = bpe->Encode(a + " " + a + " " + a, b, 10);
  ASSERT_TRUE(cut.ok());
  EXPECT_EQ(cut->size(), 10u);
  EXPECT_TRUE(FindSegments(*cut).ok());
  EXPECT_EQ(cut->tokens.back(), "</s>");
}

TEST(HfTokenizerTest, ClientErrorsNameTheField) {
  const auto bpe = LoadFamily("roberta");
  ASSERT_TRUE(bpe);
  auto bad = bpe->Encode("ok \xff\xfe", std::nullopt, 16);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(bad.status().message()).find("not UTF-8"), std::string::npos);
  auto bad_pair = bpe->Encode("ok", std::string_view("\xc3", 1), 16);
  EXPECT_EQ(bad_pair.status().code(), absl::StatusCode::kInvalidArgument);
  auto tiny = bpe->Encode("ok", std::string_view("fine"), 4);  // <s> </s></s> </s> + 2 tokens
  EXPECT_EQ(tiny.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(tiny.status().message()).find("max_length"), std::string::npos);
  EXPECT_EQ(bpe->Encode("ok", std::nullopt, 0).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(HfTokenizerTest, FilesThatAreNotTokenizersAreRefused) {
  EXPECT_EQ(HfTokenizer::Load("/nonexistent/tokenizer.json").status().code(),
            absl::StatusCode::kNotFound);
  const std::vector<std::string> not_tokenizers = {"", "{}", "[1, 2]",
                                                   R"({"model": {"type": "BPE", "vocab": 3}})",
                                                   std::string("{\"model\": \0}", 12)};
  for (const std::string& json : not_tokenizers) {
    auto t = HfTokenizer::FromJson(json, "tokenizer.json");
    ASSERT_FALSE(t.ok()) << json;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(t.status().message()).find("tokenizer.json"), std::string::npos);
  }
  const std::string huge(HfTokenizer::kMaxFileBytes + 1, ' ');
  EXPECT_NE(std::string(HfTokenizer::FromJson(huge, "big.json").status().message()).find("bytes"),
            std::string::npos);
}

// tokenizer.json settings that would make loading or tokenizing unbounded, or random, are refused
// when the file is read, at once: a WordPiece word bound of 10^9 (its search is cubic in a word's
// length), BPE dropout, and vocabularies whose ids run to 2^31 and beyond with two tokens (the
// crate listed 4 billion holes to read WordPiece's prefix; a slot per id would take 64 GB).
TEST(HfTokenizerTest, SettingsThatMakeTokenizingUnboundedAreRefused) {
  auto read = [](const std::string& family) {
    return nlohmann::json::parse(
        std::ifstream(std::string(ATTATTR_ORACLE_DIR) + "/" + family + "/tokenizer.json"));
  };
  auto refused = [](const nlohmann::json& j, const std::string& why) {
    auto t = HfTokenizer::FromJson(j.dump(), "tokenizer.json");
    ASSERT_FALSE(t.ok()) << why;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << t.status();
    EXPECT_NE(std::string(t.status().message()).find(why), std::string::npos) << t.status();
  };
  nlohmann::json wordpiece = read("bert");
  wordpiece["model"]["max_input_chars_per_word"] = 1000000000;
  refused(wordpiece, "max_input_chars_per_word 1000000000 is above 1000");
  nlohmann::json sparse = read("bert");
  sparse["model"]["vocab"]["zzz"] = 4294967294u;
  refused(sparse, "have no token");
  nlohmann::json dropout = read("roberta");
  dropout["model"]["dropout"] = 0.5;
  refused(dropout, "dropout");
  nlohmann::json far = read("roberta");
  far["model"]["vocab"]["<far>"] = 2000000000;
  far["added_tokens"].push_back({{"id", 2000000000},
                                 {"content", "<far>"},
                                 {"single_word", false},
                                 {"lstrip", false},
                                 {"rstrip", false},
                                 {"normalized", false},
                                 {"special", true}});
  refused(far, "have no token");
}

TEST(HfTokenizerTest, ManyThreadsShareOneTokenizer) {
  const auto unigram = LoadFamily("xlm-roberta");
  ASSERT_TRUE(unigram);
  const auto expected = unigram->Encode("the film is a gorgeous mess", std::nullopt, 64);
  ASSERT_TRUE(expected.ok());
  std::vector<std::thread> threads;
  std::vector<int> mismatches(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        auto e = unigram->Encode("the film is a gorgeous mess", std::nullopt, 64);
        if (!e.ok() || e->input_ids != expected->input_ids) ++mismatches[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

}  // namespace
}  // namespace attattr::engine
