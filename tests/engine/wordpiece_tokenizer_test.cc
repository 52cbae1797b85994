// WordPieceTokenizer against Hugging Face's slow BertTokenizer: loading errors on small temporary
// vocabularies, then ids pinned from transformers (testdata/make_tokenizer_expectations.py) for
// tricky inputs and the first 200 SST-2 dev sentences with the bert-base vocabularies from
// ../shared (skipped when absent), plus byte offsets, segments and longest-first truncation.
#include "attattr/engine/wordpiece_tokenizer.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "support/test_paths.h"

namespace attattr::engine {
namespace {

using ::attattr::testing::SharedDir;

std::string UncasedVocab() { return SharedDir() + "/vocab/bert-base-uncased-vocab.txt"; }
std::string CasedVocab() { return SharedDir() + "/vocab/bert-base-cased-vocab.txt"; }
std::string Sst2Dev() { return SharedDir() + "/data/sst2/dev.tsv"; }
std::string TestDataDir() { return ATTATTR_TOKENIZER_TESTDATA; }

// A new empty directory for one test; all of them go when the process exits.
std::string FreshDir() {
  static const ::attattr::testing::TempDir root("tok");
  static int count = 0;
  const std::string dir = root.path() + "/" + std::to_string(count++);
  std::filesystem::create_directory(dir);
  return dir;
}

std::string WriteFile(const std::string& dir, const std::string& name, const std::string& data) {
  const std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary) << data;
  return path;
}

// A tiny vocabulary: specials, a few words and continuations.
std::string TinyVocab(const std::string& dir) {
  return WriteFile(dir, "vocab.txt",
                   "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nplay\n##ing\n##s\nun\n##believ\n##able\n"
                   "!\n,\ncafe\nhello\nworld\n");
}

std::unique_ptr<WordPieceTokenizer> MustLoad(const std::string& path,
                                             TokenizerOptions options = {}) {
  auto tok = WordPieceTokenizer::Load(path, options);
  EXPECT_TRUE(tok.ok()) << tok.status();
  return tok.ok() ? std::move(*tok) : nullptr;
}

std::vector<std::string> Pieces(const std::vector<WordPiece>& pieces) {
  std::vector<std::string> out;
  for (const WordPiece& p : pieces) out.push_back(p.piece);
  return out;
}

std::vector<int32_t> Ids(const std::vector<WordPiece>& pieces) {
  std::vector<int32_t> out;
  for (const WordPiece& p : pieces) out.push_back(p.id);
  return out;
}

// ---------------------------------------------------------------- loading (no shared data needed)

TEST(WordPieceTokenizerLoadTest, MissingFileIsNotFoundNamingThePath) {
  const std::string path = FreshDir() + "/nope.txt";
  auto tok = WordPieceTokenizer::Load(path, {});
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(tok.status().message().find(path), std::string::npos) << tok.status();
}

TEST(WordPieceTokenizerLoadTest, EmptyFileIsInvalidArgument) {
  const std::string path = WriteFile(FreshDir(), "vocab.txt", "");
  auto tok = WordPieceTokenizer::Load(path, {});
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(tok.status().message().find(path), std::string::npos) << tok.status();
}

TEST(WordPieceTokenizerLoadTest, DirectoryIsInvalidArgument) {
  const std::string dir = FreshDir();
  auto tok = WordPieceTokenizer::Load(dir, {});
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(WordPieceTokenizerLoadTest, MissingSpecialTokenIsInvalidArgumentNamingIt) {
  for (const std::string missing : {"[CLS]", "[SEP]", "[PAD]", "[UNK]"}) {
    std::string data;
    for (const std::string t : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello"}) {
      if (t != missing) data += t + "\n";
    }
    const std::string path = WriteFile(FreshDir(), "vocab.txt", data);
    auto tok = WordPieceTokenizer::Load(path, {});
    ASSERT_FALSE(tok.ok()) << missing;
    EXPECT_EQ(tok.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(tok.status().message().find(path), std::string::npos) << tok.status();
    EXPECT_NE(tok.status().message().find(missing), std::string::npos) << tok.status();
  }
}

TEST(WordPieceTokenizerLoadTest, InvalidUtf8LineIsInvalidArgument) {
  const std::string path =
      WriteFile(FreshDir(), "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nbad\xff\n");
  auto tok = WordPieceTokenizer::Load(path, {});
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(tok.status().message().find("line 5"), std::string::npos) << tok.status();
}

TEST(WordPieceTokenizerLoadTest, IdsAreLineNumbersAndLineEndingsAreStripped) {
  // CRLF and a missing final newline; a repeated token maps to its last line, as in HF.
  const std::string path =
      WriteFile(FreshDir(), "vocab.txt", "[PAD]\r\n[UNK]\r\n[CLS]\n[SEP]\nhello\nworld\nhello");
  auto tok = MustLoad(path);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->vocab_size(), 7);
  EXPECT_EQ(tok->pad_id(), 0);
  EXPECT_EQ(tok->unk_id(), 1);
  EXPECT_EQ(tok->cls_id(), 2);
  EXPECT_EQ(tok->sep_id(), 3);
  EXPECT_EQ(tok->TokenToId("world"), 5);
  EXPECT_EQ(tok->TokenToId("hello"), 6);
  EXPECT_EQ(tok->TokenToId("[PAD]\r"), std::nullopt);
  EXPECT_EQ(tok->IdToToken(1), "[UNK]");
  EXPECT_EQ(tok->IdToToken(5), "world");
  EXPECT_EQ(tok->IdToToken(-1), "[UNK]");
  EXPECT_EQ(tok->IdToToken(7), "[UNK]");
}

// ------------------------------------------------------------- behaviour on a tiny vocabulary

TEST(WordPieceTokenizerTinyTest, GreedyLongestMatchFirstWithContinuations) {
  const std::string dir = FreshDir();
  auto tok = MustLoad(TinyVocab(dir));
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(
      Pieces(tok->Tokenize("Playing unbelievable PLAYS!")),
      (std::vector<std::string>{"play", "##ing", "un", "##believ", "##able", "play", "##s", "!"}));
  // A word with any unmatched remainder is one [UNK], covering the whole word.
  const std::vector<WordPiece> unk = tok->Tokenize("hello playx world");
  EXPECT_EQ(Pieces(unk), (std::vector<std::string>{"hello", "[UNK]", "world"}));
  EXPECT_EQ(unk[1].begin, 6u);
  EXPECT_EQ(unk[1].end, 11u);
  EXPECT_TRUE(tok->Tokenize("").empty());
  EXPECT_TRUE(tok->Tokenize(" \t\r\n\xc2\xa0 ").empty());
}

TEST(WordPieceTokenizerTinyTest, MaxInputCharsPerWordCountsCharacters) {
  const std::string dir = FreshDir();
  TokenizerOptions options;
  options.max_input_chars_per_word = 5;
  auto tok = MustLoad(TinyVocab(dir), options);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(Pieces(tok->Tokenize("hello playing")), (std::vector<std::string>{"hello", "[UNK]"}));
  // "café" is 4 characters (5 bytes) and becomes "cafe".
  EXPECT_EQ(Pieces(tok->Tokenize("Café")), (std::vector<std::string>{"cafe"}));
}

TEST(WordPieceTokenizerTinyTest, InvalidUtf8BytesAreDroppedAndOffsetsStayInOriginalBytes) {
  const std::string dir = FreshDir();
  auto tok = MustLoad(TinyVocab(dir));
  ASSERT_NE(tok, nullptr);
  // Stray continuation byte, truncated sequence, overlong "/" (C0 AF) and an encoded surrogate.
  const std::string text = "hel\x80lo \xe2\x82 wor\xc0\xafld\xed\xa0\x80";
  const std::vector<WordPiece> pieces = tok->Tokenize(text);
  ASSERT_EQ(Pieces(pieces), (std::vector<std::string>{"hello", "world"}));
  EXPECT_EQ(pieces[0].begin, 0u);
  EXPECT_EQ(pieces[0].end, 6u);
  EXPECT_EQ(pieces[1].begin, 10u);
  EXPECT_EQ(pieces[1].end, 17u);
}

TEST(WordPieceTokenizerTinyTest, EncodeRejectsTooSmallMaxLength) {
  const std::string dir = FreshDir();
  auto tok = MustLoad(TinyVocab(dir));
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->Encode("hello", std::nullopt, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(tok->Encode("hello", "world", 2).status().code(), absl::StatusCode::kInvalidArgument);
  auto two = tok->Encode("hello world", std::nullopt, 2);
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ(two->tokens, (std::vector<std::string>{"[CLS]", "[SEP]"}));
}

TEST(WordPieceTokenizerTinyTest, EncodePairSegmentsAndOffsets) {
  const std::string dir = FreshDir();
  auto tok = MustLoad(TinyVocab(dir));
  ASSERT_NE(tok, nullptr);
  auto enc = tok->Encode("Hello, world", "playing", 64);
  ASSERT_TRUE(enc.ok()) << enc.status();
  EXPECT_EQ(enc->tokens, (std::vector<std::string>{"[CLS]", "hello", ",", "world", "[SEP]", "play",
                                                   "##ing", "[SEP]"}));
  EXPECT_EQ(enc->input_ids, (std::vector<int32_t>{2, 14, 12, 15, 3, 5, 6, 3}));
  EXPECT_EQ(enc->token_type_ids, (std::vector<int32_t>{0, 0, 0, 0, 0, 1, 1, 1}));
  ASSERT_EQ(enc->offsets.size(), 8u);
  const std::vector<std::tuple<int, std::size_t, std::size_t>> want = {
      {-1, 0, 0}, {0, 0, 5}, {0, 5, 6}, {0, 7, 12}, {-1, 0, 0}, {1, 0, 4}, {1, 4, 7}, {-1, 0, 0}};
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(enc->offsets[i].segment, std::get<0>(want[i])) << i;
    EXPECT_EQ(enc->offsets[i].begin, std::get<1>(want[i])) << i;
    EXPECT_EQ(enc->offsets[i].end, std::get<2>(want[i])) << i;
  }
  EXPECT_EQ(enc->size(), 8u);
}

TEST(WordPieceTokenizerTinyTest, ConstMethodsAreSafeFromManyThreads) {
  const std::string dir = FreshDir();
  auto tok = MustLoad(TinyVocab(dir));
  ASSERT_NE(tok, nullptr);
  const std::vector<std::string> want = Pieces(tok->Tokenize("Playing unbelievable café, world!"));
  std::vector<int> ok(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        ok[t] += Pieces(tok->Tokenize("Playing unbelievable café, world!")) == want;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(ok[t], 200);
}

// ------------------------------------------- ids pinned from transformers' slow BertTokenizer

struct PinnedCase {
  const char* name;
  bool uncased;       // bert-base-uncased vocab with do_lower_case, else cased without
  int strip_accents;  // -1 unset, 0 false, 1 true
  bool tokenize_chinese_chars;
  std::string_view text;  // may hold NULs
  std::optional<std::string_view> text_pair;
  int max_length;  // -1: no truncation
  std::vector<int32_t> ids;
};

// Generated by make_tokenizer_expectations.py --cpp (transformers 4.57.6, BertTokenizer slow).
const std::vector<PinnedCase>& PinnedCases() {
  using namespace std::string_view_literals;  // NOLINT(build/namespaces)
  static const auto* cases = new std::vector<PinnedCase>{
      {"accents_uncased",
       true,
       -1,
       true,
       "Café résumé naïve"sv,
       std::nullopt,
       -1,
       {101, 7668, 13746, 15743, 102}},
      {"accents_cased",
       false,
       -1,
       true,
       "Café résumé naïve"sv,
       std::nullopt,
       -1,
       {101, 21036, 187, 10051, 1818, 2744, 9468, 28203, 2707, 102}},
      {"upper_accents_uncased",
       true,
       -1,
       true,
       "CAFÉ RÉSUMÉ NAÏVE ÀÉÎÕÜ Ångström"sv,
       std::nullopt,
       -1,
       {101, 7668, 13746, 15743, 29347, 3695, 2226, 17076, 15687, 102}},
      {"upper_accents_cased",
       false,
       -1,
       true,
       "CAFÉ RÉSUMÉ NAÏVE ÀÉÎÕÜ Ångström"sv,
       std::nullopt,
       -1,
       {101, 8784, 2271, 28187, 155, 28187, 17281, 2107, 28187, 100, 100, 230, 2118, 2050, 26370,
        102}},
      {"decomposed_uncased",
       true,
       -1,
       true,
       "Cafe\u0301 re\u0301sume\u0301 A\u030angstro\u0308m"sv,
       std::nullopt,
       -1,
       {101, 7668, 13746, 17076, 15687, 102}},
      {"decomposed_cased_nfc",
       false,
       -1,
       true,
       "Cafe\u0301 re\u0301sume\u0301 A\u030angstro\u0308m"sv,
       std::nullopt,
       -1,
       {101, 21036, 187, 10051, 1818, 2744, 230, 2118, 2050, 26370, 102}},
      {"no_strip_uncased",
       true,
       0,
       true,
       "Café résumé naïve"sv,
       std::nullopt,
       -1,
       {101, 100, 100, 100, 102}},
      {"strip_cased",
       false,
       1,
       true,
       "Café Résumé naïve"sv,
       std::nullopt,
       -1,
       {101, 18375, 11336, 22369, 22607, 102}},
      {"emoji_uncased",
       true,
       -1,
       true,
       "I love it 😀👍🏽 🎉! ☃"sv,
       std::nullopt,
       -1,
       {101, 1045, 2293, 2009, 100, 100, 999, 100, 102}},
      {"emoji_cased",
       false,
       -1,
       true,
       "I love it 😀👍🏽 🎉! ☃"sv,
       std::nullopt,
       -1,
       {101, 146, 1567, 1122, 100, 100, 106, 100, 102}},
      {"cjk_uncased",
       true,
       -1,
       true,
       "我爱北京天安门 and 東京タワー 서울 豈丽"sv,
       std::nullopt,
       -1,
       {101,  1855,  100,   1781, 1755,  1811,  1820,  100,   1998, 1879, 1755,
        1709, 30262, 30265, 1461, 30008, 29999, 30014, 30022, 100,  100,  102}},
      {"cjk_cased",
       false,
       -1,
       true,
       "我爱北京天安门 and 東京タワー 서울"sv,
       std::nullopt,
       -1,
       {101, 100, 100, 993, 984, 1010, 1016, 100, 1105, 1042, 984, 100, 100, 102}},
      {"cjk_no_split",
       true,
       -1,
       false,
       "我爱北京 東京タワー"sv,
       std::nullopt,
       -1,
       {101, 100, 1879, 30281, 30235, 30262, 30265, 102}},
      {"mixed_scripts_uncased",
       true,
       -1,
       true,
       "Привет мир, Ελληνικά ΟΔΟΣ, مرحبا, שלום, ह\u093fन\u094dद\u0940, İstanbul, straße, ﬁne, Å K"sv,
       std::nullopt,
       -1,
       {101,   1194,  16856, 10325, 25529, 15290, 22919, 1191,  10325, 16856, 1010,  1159,  29727,
        29727, 24824, 16177, 18199, 29726, 14608, 1169,  29722, 29730, 29733, 1010,  1295,  17149,
        29820, 29816, 25573, 1010,  1266,  29799, 29792, 29800, 1010,  1339,  29877, 29863, 29861,
        29878, 1010,  9960,  1010,  2358,  27807, 1010,  1984,  2638,  1010,  1037,  1047,  102}},
      {"mixed_scripts_cased",
       false,
       -1,
       true,
       "Привет мир, Ελληνικά ΟΔΟΣ, مرحبا, שלום, ह\u093fन\u094dद\u0940, İstanbul, straße, ﬁne, Å K"sv,
       std::nullopt,
       -1,
       {101,   462,   20442, 17424, 28394, 19692, 28404, 487,   17424, 20442, 117,   398,
        28348, 28348, 28344, 23907, 28346, 28347, 28335, 406,   28318, 28327, 28329, 117,
        589,   19775, 28480, 28476, 28475, 117,   557,   28456, 28450, 28457, 117,   627,
        28532, 28518, 28537, 28516, 28533, 117,   300,   13946, 27515, 117,   188,   4487,
        13750, 117,   1094,  1673,  117,   230,   148,   102}},
      {"punctuation_runs",
       true,
       -1,
       true,
       "!!!...?? wow!!! (really)?! a--b 'quoted' “smart” — dash… $100 3.14 1,000 e-mail@x.org #tag ~^_`|{}"sv,
       std::nullopt,
       -1,
       {101,  999,   999,  999,  1012, 1012, 1012, 1029, 1029, 10166, 999,  999,  999,  1006,
        2428, 1007,  1029, 999,  1037, 1011, 1011, 1038, 1005, 9339,  1005, 1523, 6047, 1524,
        1517, 11454, 1529, 1002, 2531, 1017, 1012, 2403, 1015, 1010,  2199, 1041, 1011, 5653,
        1030, 1060,  1012, 8917, 1001, 6415, 1066, 1034, 1035, 1036,  1064, 1063, 1065, 102}},
      {"long_words",
       true,
       -1,
       true,
       "ok aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb supersupersupersupersupersupersupersupersupersupersupersupersupersupersupersupersupersupersupersupersupersupersupersupersuper end"sv,
       std::nullopt,
       -1,
       {101,   7929,  13360, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057,
        11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057,
        11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057,
        11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057, 11057,
        11057, 11057, 11057, 2050,  100,   100,   2203,  102}},
      {"long_word_with_accents",
       true,
       -1,
       true,
       "e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301"sv,
       std::nullopt,
       -1,
       {101,  25212, 4402, 4402, 4402, 4402, 4402, 4402, 4402, 4402, 4402,
        4402, 4402,  4402, 4402, 4402, 4402, 4402, 4402, 4402, 4402, 4402,
        4402, 4402,  4402, 4402, 4402, 4402, 4402, 4402, 4402, 102}},
      {"empty", true, -1, true, ""sv, std::nullopt, -1, {101, 102}},
      {"whitespace_only",
       true,
       -1,
       true,
       "   \x09"
       "\x0a"
       "\x0d"
       "\u00a0\u3000\u2028  "sv,
       std::nullopt,
       -1,
       {101, 102}},
      {"control_chars",
       true,
       -1,
       true,
       "hello\x00"
       "world\x07"
       " foo\u200bbar� baz\u2028qux\x1f"
       " end\x7f"
       "\u00ad! \ue000pua"sv,
       std::nullopt,
       -1,
       {101, 7592, 11108, 29379, 8237, 8670, 2480, 24209, 2595, 2203, 999, 16405, 2050, 102}},
      {"special_tokens_in_text_uncased",
       true,
       -1,
       true,
       "hello [SEP] world[MASK] [sep] [[CLS]] [UNK]x [PAD]"sv,
       std::nullopt,
       -1,
       {101, 7592, 102, 2088, 103, 1031, 19802, 1033, 1031, 101, 1033, 100, 1060, 0, 102}},
      {"special_tokens_in_text_cased",
       false,
       -1,
       true,
       "Hello [SEP] World [MASK]. [Sep]"sv,
       std::nullopt,
       -1,
       {101, 8667, 102, 1291, 103, 119, 164, 23181, 166, 102}},
      {"unknown_word",
       true,
       -1,
       true,
       "the ☃☃ snowman 𝓐"sv,
       std::nullopt,
       -1,
       {101, 1996, 100, 4586, 2386, 100, 102}},
      {"pair_no_truncation",
       true,
       -1,
       true,
       "The cat sat."sv,
       "It was happy!"sv,
       64,
       {101, 1996, 4937, 2938, 1012, 102, 2009, 2001, 3407, 999, 102}},
      {"pair_long_first_longer",
       true,
       -1,
       true,
       "This sentence is considerably longer than the other one, with many more words in it."sv,
       "Short one."sv,
       16,
       {101, 2023, 6251, 2003, 9839, 2936, 2084, 1996, 2060, 2028, 1010, 102, 2460, 2028, 1012,
        102}},
      {"pair_long_second_longer",
       true,
       -1,
       true,
       "Short one."sv,
       "This sentence is considerably longer than the other one, with many more words in it."sv,
       16,
       {101, 2460, 2028, 1012, 102, 2023, 6251, 2003, 9839, 2936, 2084, 1996, 2060, 2028, 1010,
        102}},
      {"pair_equal_odd_removal",
       true,
       -1,
       true,
       "one two three four five six"sv,
       "seven eight nine ten eleven twelve"sv,
       12,
       // Hugging Face's fast tokenizer (transformers 5): the first keeps budget / 2 = 4, the
       // second 5; the legacy Python tokenizer kept 5 + 4.
       {101, 2028, 2048, 2093, 2176, 102, 2698, 2809, 3157, 2702, 5408, 102}},
      {"pair_equal_even_removal",
       true,
       -1,
       true,
       "one two three four five six"sv,
       "seven eight nine ten eleven twelve"sv,
       11,
       {101, 2028, 2048, 2093, 2176, 102, 2698, 2809, 3157, 2702, 102}},
      {"pair_min_length", true, -1, true, "alpha beta"sv, "gamma"sv, 3, {101, 102, 102}},
      {"pair_one_empty",
       true,
       -1,
       true,
       ""sv,
       "only the second text has words here"sv,
       6,
       {101, 102, 2069, 1996, 2117, 102}},
      {"single_truncated",
       true,
       -1,
       true,
       "Tokenization of a long single sentence gets cut."sv,
       std::nullopt,
       6,
       {101, 19204, 3989, 1997, 1037, 102}},
      {"single_cased_truncated",
       false,
       -1,
       true,
       "Tokenization of a Long Single sentence."sv,
       std::nullopt,
       8,
       {101, 1706, 6378, 2734, 1104, 170, 3261, 102}},
  };
  return *cases;
}

TEST(WordPieceTokenizerPinnedTest, MatchesTransformersSlowBertTokenizer) {
  ATTATTR_SKIP_IF_MISSING(UncasedVocab());
  ATTATTR_SKIP_IF_MISSING(CasedVocab());
  std::map<std::tuple<bool, int, bool>, std::unique_ptr<WordPieceTokenizer>> loaded;
  for (const PinnedCase& c : PinnedCases()) {
    SCOPED_TRACE(c.name);
    auto& tok = loaded[{c.uncased, c.strip_accents, c.tokenize_chinese_chars}];
    if (tok == nullptr) {
      TokenizerOptions options;
      options.do_lower_case = c.uncased;
      if (c.strip_accents >= 0) options.strip_accents = c.strip_accents == 1;
      options.tokenize_chinese_chars = c.tokenize_chinese_chars;
      tok = MustLoad(c.uncased ? UncasedVocab() : CasedVocab(), options);
    }
    ASSERT_NE(tok, nullptr);
    auto enc = tok->Encode(c.text, c.text_pair, c.max_length < 0 ? 1 << 20 : c.max_length);
    ASSERT_TRUE(enc.ok()) << enc.status();
    EXPECT_EQ(enc->input_ids, c.ids);
    ASSERT_EQ(enc->tokens.size(), enc->input_ids.size());
    for (std::size_t i = 0; i < enc->size(); ++i) {
      EXPECT_EQ(tok->IdToToken(enc->input_ids[i]), enc->tokens[i]);
    }
  }
}

// -------------------------------------------------------------------------- SST-2 dev, 200 lines

std::vector<std::string> FirstSst2Sentences(std::size_t n) {
  std::ifstream in(Sst2Dev());
  std::string line;
  std::getline(in, line);  // header
  std::vector<std::string> out;
  while (out.size() < n && std::getline(in, line)) out.push_back(line.substr(0, line.rfind('\t')));
  return out;
}

std::vector<std::vector<int32_t>> ReadIdLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::vector<int32_t>> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::vector<int32_t> ids;
    int32_t id;
    while (ss >> id) ids.push_back(id);
    out.push_back(std::move(ids));
  }
  return out;
}

void ExpectSst2Matches(const std::string& vocab, bool uncased, const std::string& expected_path) {
  ATTATTR_SKIP_IF_MISSING(vocab);
  ATTATTR_SKIP_IF_MISSING(Sst2Dev());
  ATTATTR_SKIP_IF_MISSING(expected_path);
  TokenizerOptions options;
  options.do_lower_case = uncased;
  auto tok = MustLoad(vocab, options);
  ASSERT_NE(tok, nullptr);
  const std::vector<std::string> sentences = FirstSst2Sentences(200);
  const std::vector<std::vector<int32_t>> expected = ReadIdLines(expected_path);
  ASSERT_EQ(sentences.size(), 200u);
  ASSERT_EQ(expected.size(), 200u);
  for (std::size_t i = 0; i < sentences.size(); ++i) {
    auto enc = tok->Encode(sentences[i], std::nullopt, 512);
    ASSERT_TRUE(enc.ok()) << enc.status();
    EXPECT_EQ(enc->input_ids, expected[i]) << "sentence " << i << ": " << sentences[i];
  }
}

TEST(WordPieceTokenizerSst2Test, First200DevSentencesMatchTransformersUncased) {
  ExpectSst2Matches(UncasedVocab(), true, TestDataDir() + "/sst2_dev200_uncased_ids.txt");
}

TEST(WordPieceTokenizerSst2Test, First200DevSentencesMatchTransformersCased) {
  ExpectSst2Matches(CasedVocab(), false, TestDataDir() + "/sst2_dev200_cased_ids.txt");
}

bool IsAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 128; });
}

TEST(WordPieceTokenizerSst2Test, OffsetsOfAsciiPiecesSpellThePiece) {
  ATTATTR_SKIP_IF_MISSING(UncasedVocab());
  ATTATTR_SKIP_IF_MISSING(Sst2Dev());
  auto tok = MustLoad(UncasedVocab());
  ASSERT_NE(tok, nullptr);
  int checked = 0;
  for (const std::string& text : FirstSst2Sentences(200)) {
    std::size_t last_end = 0;
    for (const WordPiece& p : tok->Tokenize(text)) {
      ASSERT_LE(p.begin, p.end);
      ASSERT_LE(p.end, text.size());
      EXPECT_GE(p.begin, last_end) << text;
      last_end = p.end;
      std::string span = text.substr(p.begin, p.end - p.begin);
      if (!IsAscii(span) || p.piece == "[UNK]") continue;
      for (char& c : span) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      const std::string piece = p.piece.rfind("##", 0) == 0 ? p.piece.substr(2) : p.piece;
      EXPECT_EQ(span, piece) << text;
      ++checked;
    }
  }
  EXPECT_GT(checked, 3000);
}

// ------------------------------------------------------------------ offsets of changed characters

struct Expected {
  std::string piece;
  std::size_t begin;
  std::size_t end;
};

void ExpectPieces(const std::vector<WordPiece>& got, const std::vector<Expected>& want) {
  ASSERT_EQ(got.size(), want.size()) << ::testing::PrintToString(Pieces(got));
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].piece, want[i].piece) << i;
    EXPECT_EQ(got[i].begin, want[i].begin) << i << " " << got[i].piece;
    EXPECT_EQ(got[i].end, want[i].end) << i << " " << got[i].piece;
  }
}

TEST(WordPieceTokenizerOffsetsTest, AccentsAndDecompositionMapToOriginalBytes) {
  ATTATTR_SKIP_IF_MISSING(UncasedVocab());
  ATTATTR_SKIP_IF_MISSING(CasedVocab());
  auto uncased = MustLoad(UncasedVocab());
  ASSERT_NE(uncased, nullptr);
  // "Café" is 5 bytes, "résumé" 8, "naïve" 6.
  ExpectPieces(uncased->Tokenize("Café résumé naïve"),
               {{"cafe", 0, 5}, {"resume", 6, 14}, {"naive", 15, 21}});
  // Decomposed input: the combining acute (2 bytes) belongs to the piece of its base letter.
  ExpectPieces(uncased->Tokenize("Cafe\xcc\x81!"), {{"cafe", 0, 6}, {"!", 6, 7}});
  // U+0130 lower-cases to "i" + U+0307; both come from the same 2 original bytes.
  ExpectPieces(uncased->Tokenize("\xc4\xb0stanbul"), {{"istanbul", 0, 9}});

  TokenizerOptions cased_options;
  cased_options.do_lower_case = false;
  auto cased = MustLoad(CasedVocab(), cased_options);
  ASSERT_NE(cased, nullptr);
  // NFC composes "e" + U+0301 into "é": one character spanning 3 original bytes.
  const std::vector<WordPiece> nfc = cased->Tokenize("re\xcc\x81sume\xcc\x81");
  const std::vector<WordPiece> composed = cased->Tokenize("r\xc3\xa9sum\xc3\xa9");
  EXPECT_EQ(Ids(nfc), Ids(composed));
  ASSERT_FALSE(nfc.empty());
  EXPECT_EQ(nfc.front().begin, 0u);
  EXPECT_EQ(nfc.back().end, 10u);
  for (std::size_t i = 1; i < nfc.size(); ++i) EXPECT_EQ(nfc[i].begin, nfc[i - 1].end);
}

TEST(WordPieceTokenizerOffsetsTest, CjkEmojiSpecialTokensAndUnknownWords) {
  ATTATTR_SKIP_IF_MISSING(UncasedVocab());
  auto tok = MustLoad(UncasedVocab());
  ASSERT_NE(tok, nullptr);
  // Each ideograph is 3 bytes and its own word; an emoji word is one [UNK] over all its bytes.
  const std::string text = "\xe6\x88\x91\xe7\x88\xb1 ok \xf0\x9f\x98\x80\xf0\x9f\x91\x8d [SEP]x";
  const std::vector<WordPiece> pieces = tok->Tokenize(text);
  ExpectPieces(pieces, {{"\xe6\x88\x91", 0, 3},
                        {"[UNK]", 3, 6},
                        {"ok", 7, 9},
                        {"[UNK]", 10, 18},
                        {"[SEP]", 19, 24},
                        {"x", 24, 25}});
  EXPECT_EQ(pieces[4].id, tok->sep_id());
  EXPECT_EQ(pieces[1].id, tok->unk_id());
}

TEST(WordPieceTokenizerOffsetsTest, TruncatedPairKeepsSegmentSpans) {
  ATTATTR_SKIP_IF_MISSING(UncasedVocab());
  auto tok = MustLoad(UncasedVocab());
  ASSERT_NE(tok, nullptr);
  const std::string a = "one two three four five six";
  const std::string b = "seven eight nine";
  auto enc = tok->Encode(a, b, 9);  // 6 + 3 pieces, 3 to remove: longest first -> 3 + 3
  ASSERT_TRUE(enc.ok()) << enc.status();
  EXPECT_EQ(enc->tokens, (std::vector<std::string>{"[CLS]", "one", "two", "three", "[SEP]", "seven",
                                                   "eight", "nine", "[SEP]"}));
  EXPECT_EQ(enc->token_type_ids, (std::vector<int32_t>{0, 0, 0, 0, 0, 1, 1, 1, 1}));
  for (std::size_t i = 0; i < enc->size(); ++i) {
    const Encoding::Span& s = enc->offsets[i];
    if (s.segment < 0) {
      EXPECT_EQ(s.begin, s.end);
      continue;
    }
    const std::string& src = s.segment == 0 ? a : b;
    EXPECT_EQ(src.substr(s.begin, s.end - s.begin), enc->tokens[i]);
  }
}

}  // namespace
}  // namespace attattr::engine
